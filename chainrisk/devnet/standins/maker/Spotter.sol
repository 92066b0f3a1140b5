// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface SpotterVatLike {
    function file(bytes32 ilk, bytes32 what, uint256 data) external;
}

interface PipLike {
    function peek() external returns (bytes32, bool);
}

/// @title Spotter (stand-in)
/// @notice Stand-in for Maker's Spotter: chainrisk's own Solidity written from the public interface and documented
/// maths of makerdao/dss src/spot.sol, not Maker's bytecode. `poke` sets the Vat's spot to
/// rdiv(rdiv(val * 1e9, par), mat) with rdiv(x, y) = x * RAY / y rounded down, or 0 when the pip has no value;
/// `ilks(ilk)` answers (pip, mat [ray]) and `par` the reference per dai [ray]; its files log LibNote's anonymous
/// note, as the deployed Spotter's do.
contract Spotter {
    mapping(address => uint256) public wards;

    struct Ilk {
        address pip; // price feed
        uint256 mat; // liquidation ratio [ray]
    }

    mapping(bytes32 => Ilk) public ilks;
    address public vat;
    uint256 public par; // ref per dai [ray]
    uint256 public live;

    uint256 internal constant RAY = 10 ** 27;

    event Poke(bytes32 ilk, bytes32 val, uint256 spot);

    /// @dev dss src/lib.sol's LibNote, which dss 1.0.0's Spotter inherits: declared for the ABI, emitted by hand.
    event LogNote(bytes4 indexed sig, address indexed usr, bytes32 indexed arg1, bytes32 indexed arg2, bytes data)
        anonymous;

    /// @dev After the body: log4 of 288 bytes (offset 0x20, length 224, calldata[0:224], zero-padded past the
    /// call's end) under topics (msg.sig << 224, the caller, calldata word at 4, at 36), as LibNote's `note` does.
    modifier note() {
        _;
        assembly {
            let mark := mload(0x40)
            mstore(0x40, add(mark, 288))
            mstore(mark, 0x20)
            mstore(add(mark, 0x20), 224)
            calldatacopy(add(mark, 0x40), 0, 224)
            log4(mark, 288, shl(224, shr(224, calldataload(0))), caller(), calldataload(4), calldataload(36))
        }
    }

    modifier auth() {
        require(wards[msg.sender] == 1, "Spotter/not-authorized");
        _;
    }

    constructor(address vat_) {
        wards[msg.sender] = 1;
        vat = vat_;
        par = RAY;
        live = 1;
    }

    function rely(address usr) external auth {
        wards[usr] = 1;
    }

    function deny(address usr) external auth {
        wards[usr] = 0;
    }

    function file(bytes32 ilk, bytes32 what, address pip_) external note auth {
        require(live == 1, "Spotter/not-live");
        if (what == "pip") ilks[ilk].pip = pip_;
        else revert("Spotter/file-unrecognized-param");
    }

    function file(bytes32 what, uint256 data) external note auth {
        require(live == 1, "Spotter/not-live");
        if (what == "par") par = data;
        else revert("Spotter/file-unrecognized-param");
    }

    function file(bytes32 ilk, bytes32 what, uint256 data) external note auth {
        require(live == 1, "Spotter/not-live");
        if (what == "mat") ilks[ilk].mat = data;
        else revert("Spotter/file-unrecognized-param");
    }

    function poke(bytes32 ilk) external {
        (bytes32 val, bool has) = PipLike(ilks[ilk].pip).peek();
        uint256 spot = has ? (((uint256(val) * 10 ** 9) * RAY) / par) * RAY / ilks[ilk].mat : 0;
        SpotterVatLike(vat).file(ilk, "spot", spot);
        emit Poke(ilk, val, spot);
    }

    function cage() external auth {
        live = 0;
    }
}
