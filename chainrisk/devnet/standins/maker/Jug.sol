// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

import "./LibNote.sol";

interface JugVatLike {
    function ilks(bytes32) external view returns (uint256 Art, uint256 rate, uint256 spot, uint256 line, uint256 dust);
    function fold(bytes32 ilk, address u, int256 rate) external;
}

/// @title Jug (stand-in)
/// @notice Stand-in for Maker's Jug, the stability-fee collector: chainrisk's own Solidity written from the public
/// interface and documented maths of makerdao/dss src/jug.sol, not Maker's bytecode. `drip` moves the ilk's rate
/// to rmul(rpow(base + duty, now - rho, RAY), rate), with rpow's square-and-multiply rounding half up at every
/// step and rmul rounding down, exactly as Jug computes them; `ilks(ilk)` answers (duty [ray], rho [s]); its files
/// log LibNote's anonymous note, as the deployed Jug's do.
contract Jug is LibNote {
    mapping(address => uint256) public wards;

    struct Ilk {
        uint256 duty; // per-second stability fee [ray]
        uint256 rho; // time of the last drip [unix epoch]
    }

    mapping(bytes32 => Ilk) public ilks;
    address public vat;
    address public vow;
    uint256 public base; // global per-second fee added to every duty [ray]

    uint256 internal constant ONE = 10 ** 27;

    modifier auth() {
        require(wards[msg.sender] == 1, "Jug/not-authorized");
        _;
    }

    constructor(address vat_) {
        wards[msg.sender] = 1;
        vat = vat_;
    }

    function rely(address usr) external auth {
        wards[usr] = 1;
    }

    function deny(address usr) external auth {
        wards[usr] = 0;
    }

    /// @dev x^n in base b by squaring; every product rounded half up, overflow reverts.
    function rpow(uint256 x, uint256 n, uint256 b) internal pure returns (uint256 z) {
        if (x == 0) return n == 0 ? b : 0;
        z = n % 2 == 0 ? b : x;
        uint256 half = b / 2;
        for (n /= 2; n != 0; n /= 2) {
            x = (x * x + half) / b;
            if (n % 2 == 1) {
                z = (z * x + half) / b;
            }
        }
    }

    function init(bytes32 ilk) external auth {
        Ilk storage i = ilks[ilk];
        require(i.duty == 0, "Jug/ilk-already-init");
        i.duty = ONE;
        i.rho = block.timestamp;
    }

    function file(bytes32 ilk, bytes32 what, uint256 data) external note auth {
        require(block.timestamp == ilks[ilk].rho, "Jug/rho-not-updated");
        if (what == "duty") ilks[ilk].duty = data;
        else revert("Jug/file-unrecognized-param");
    }

    function file(bytes32 what, uint256 data) external note auth {
        if (what == "base") base = data;
        else revert("Jug/file-unrecognized-param");
    }

    function file(bytes32 what, address data) external note auth {
        if (what == "vow") vow = data;
        else revert("Jug/file-unrecognized-param");
    }

    function drip(bytes32 ilk) external returns (uint256 rate) {
        require(block.timestamp >= ilks[ilk].rho, "Jug/invalid-now");
        (, uint256 prev,,,) = JugVatLike(vat).ilks(ilk);
        rate = rpow(base + ilks[ilk].duty, block.timestamp - ilks[ilk].rho, ONE) * prev / ONE;
        JugVatLike(vat).fold(ilk, vow, int256(rate) - int256(prev));
        ilks[ilk].rho = block.timestamp;
    }
}
