// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface ManagerVatLike {
    function urns(bytes32, address) external view returns (uint256, uint256);
    function hope(address) external;
    function flux(bytes32, address, address, uint256) external;
    function move(address, address, uint256) external;
    function frob(bytes32, address, address, address, int256, int256) external;
    function fork(bytes32, address, address, int256, int256) external;
}

/// @title UrnHandler (stand-in)
/// @notice Stand-in for the DssCdpManager's per-vault urn: chainrisk's own Solidity written from the public
/// interface of makerdao/dss-cdp-manager src/DssCdpManager.sol, not Maker's bytecode. It lets the manager move it.
contract UrnHandler {
    constructor(address vat) {
        ManagerVatLike(vat).hope(msg.sender);
    }
}

/// @title DssCdpManager (stand-in)
/// @notice Stand-in for Maker's DssCdpManager: chainrisk's own Solidity written from the public interface of
/// makerdao/dss-cdp-manager src/DssCdpManager.sol, not Maker's bytecode. `open` creates an UrnHandler and emits
/// NewCdp(usr, own, cdp) with all three indexed, as mainnet's does; `urns`, `owns`, `ilks` answer per cdp id;
/// `give` changes the owner (no event, so owners are read at the snapshot); `quit` forks the urn to the owner's.
contract DssCdpManager {
    address public vat;
    uint256 public cdpi;
    mapping(uint256 => address) public urns;
    mapping(uint256 => address) public owns;
    mapping(uint256 => bytes32) public ilks;
    mapping(address => uint256) public count;
    mapping(address => mapping(uint256 => mapping(address => uint256))) public cdpCan;
    mapping(address => mapping(address => uint256)) public urnCan;

    event NewCdp(address indexed usr, address indexed own, uint256 indexed cdp);

    modifier cdpAllowed(uint256 cdp) {
        require(msg.sender == owns[cdp] || cdpCan[owns[cdp]][cdp][msg.sender] == 1, "cdp-not-allowed");
        _;
    }

    modifier urnAllowed(address urn) {
        require(msg.sender == urn || urnCan[urn][msg.sender] == 1, "urn-not-allowed");
        _;
    }

    constructor(address vat_) {
        vat = vat_;
    }

    function cdpAllow(uint256 cdp, address usr, uint256 ok) external cdpAllowed(cdp) {
        cdpCan[owns[cdp]][cdp][usr] = ok;
    }

    function urnAllow(address usr, uint256 ok) external {
        urnCan[msg.sender][usr] = ok;
    }

    function open(bytes32 ilk, address usr) external returns (uint256) {
        require(usr != address(0), "usr-address-0");
        cdpi += 1;
        urns[cdpi] = address(new UrnHandler(vat));
        owns[cdpi] = usr;
        ilks[cdpi] = ilk;
        count[usr] += 1;
        emit NewCdp(msg.sender, usr, cdpi);
        return cdpi;
    }

    function give(uint256 cdp, address dst) external cdpAllowed(cdp) {
        require(dst != address(0), "dst-address-0");
        require(dst != owns[cdp], "dst-already-owner");
        count[owns[cdp]] -= 1;
        owns[cdp] = dst;
        count[dst] += 1;
    }

    function frob(uint256 cdp, int256 dink, int256 dart) external cdpAllowed(cdp) {
        address urn = urns[cdp];
        ManagerVatLike(vat).frob(ilks[cdp], urn, urn, urn, dink, dart);
    }

    function flux(uint256 cdp, address dst, uint256 wad) external cdpAllowed(cdp) {
        ManagerVatLike(vat).flux(ilks[cdp], urns[cdp], dst, wad);
    }

    function move(uint256 cdp, address dst, uint256 rad) external cdpAllowed(cdp) {
        ManagerVatLike(vat).move(urns[cdp], dst, rad);
    }

    function quit(uint256 cdp, address dst) external cdpAllowed(cdp) urnAllowed(dst) {
        (uint256 ink, uint256 art) = ManagerVatLike(vat).urns(ilks[cdp], urns[cdp]);
        ManagerVatLike(vat).fork(ilks[cdp], urns[cdp], dst, int256(ink), int256(art));
    }
}
