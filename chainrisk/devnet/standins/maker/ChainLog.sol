// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

/// @title ChainLog (stand-in)
/// @notice Stand-in for Maker's on-chain changelog: chainrisk's own Solidity written from the public interface of
/// makerdao/dss-chain-log src/ChainLog.sol, not Maker's bytecode. `getAddress(key)` reverts for unknown keys;
/// the constructor registers the log itself under "CHANGELOG", as mainnet's does.
contract ChainLog {
    mapping(address => uint256) public wards;

    struct Location {
        uint256 pos;
        address addr;
    }

    mapping(bytes32 => Location) internal location;
    bytes32[] public keys;
    string public version;

    event UpdateAddress(bytes32 key, address addr);

    modifier auth() {
        require(wards[msg.sender] == 1, "ChainLog/not-authorized");
        _;
    }

    constructor() {
        wards[msg.sender] = 1;
        version = "0.0.0";
        setAddress("CHANGELOG", address(this));
    }

    function setVersion(string calldata version_) external auth {
        version = version_;
    }

    function setAddress(bytes32 key, address addr) public auth {
        if (keys.length > 0 && keys[location[key].pos] == key) {
            location[key].addr = addr;
        } else {
            keys.push(key);
            location[key] = Location(keys.length - 1, addr);
        }
        emit UpdateAddress(key, addr);
    }

    function count() external view returns (uint256) {
        return keys.length;
    }

    function get(uint256 index) external view returns (bytes32, address) {
        return (keys[index], location[keys[index]].addr);
    }

    function list() external view returns (bytes32[] memory) {
        return keys;
    }

    function getAddress(bytes32 key) external view returns (address addr) {
        addr = location[key].addr;
        require(addr != address(0), "dss-chain-log/invalid-key");
    }
}
