// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

import "./LibNote.sol";

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
contract Spotter is LibNote {
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
