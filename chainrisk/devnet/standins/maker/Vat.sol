// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

/// @title Vat (stand-in)
/// @notice Stand-in for Maker's Vat, the CDP database: chainrisk's own Solidity written from the public interface
/// and documented maths of makerdao/dss src/vat.sol at tag 1.0.0 (the version deployed on mainnet), not Maker's
/// bytecode. Faithful where chainrisk reads it: the `ilks`/`urns` getters and their units (Art, art, ink [wad];
/// rate, spot [ray]; line, dust [rad]), the safety check `art * rate <= ink * spot` of frob and fork, and the
/// anonymous LibNote log every noted call emits exactly as that version does (topic0 the selector padded right,
/// topics 1-3 the first three arguments, data the first 224 bytes of calldata as `bytes`).
contract Vat {
    mapping(address => uint256) public wards;
    mapping(address => mapping(address => uint256)) public can;

    struct Ilk {
        uint256 Art; // total normalised debt [wad]
        uint256 rate; // accumulated rate [ray]
        uint256 spot; // price with safety margin [ray]
        uint256 line; // debt ceiling [rad]
        uint256 dust; // urn debt floor [rad]
    }

    struct Urn {
        uint256 ink; // locked collateral [wad]
        uint256 art; // normalised debt [wad]
    }

    mapping(bytes32 => Ilk) public ilks;
    mapping(bytes32 => mapping(address => Urn)) public urns;
    mapping(bytes32 => mapping(address => uint256)) public gem; // [wad]
    mapping(address => uint256) public dai; // [rad]
    mapping(address => uint256) public sin; // [rad]

    uint256 public debt; // total dai issued [rad]
    uint256 public vice; // total unbacked dai [rad]
    uint256 public Line; // total debt ceiling [rad]
    uint256 public live; // 1 while the system runs

    /// @dev Declared for the ABI; the `note` modifier emits it by hand, as dss 1.0.0's Vat does.
    event LogNote(bytes4 indexed sig, bytes32 indexed arg1, bytes32 indexed arg2, bytes32 indexed arg3, bytes data)
        anonymous;

    /// @dev After the body: log4 of 288 bytes (offset 0x20, length 224, calldata[0:224], zero-padded past the
    /// call's end) under topics (msg.sig << 224, calldata word at 4, at 36, at 68).
    modifier note() {
        _;
        assembly {
            let mark := mload(0x40)
            mstore(0x40, add(mark, 288))
            mstore(mark, 0x20)
            mstore(add(mark, 0x20), 224)
            calldatacopy(add(mark, 0x40), 0, 224)
            log4(mark, 288, shl(224, shr(224, calldataload(0))), calldataload(4), calldataload(36), calldataload(68))
        }
    }

    modifier auth() {
        require(wards[msg.sender] == 1, "Vat/not-authorized");
        _;
    }

    constructor() {
        wards[msg.sender] = 1;
        live = 1;
    }

    function rely(address usr) external note auth {
        require(live == 1, "Vat/not-live");
        wards[usr] = 1;
    }

    function deny(address usr) external note auth {
        require(live == 1, "Vat/not-live");
        wards[usr] = 0;
    }

    function hope(address usr) external note {
        can[msg.sender][usr] = 1;
    }

    function nope(address usr) external note {
        can[msg.sender][usr] = 0;
    }

    function wish(address bit, address usr) internal view returns (bool) {
        return bit == usr || can[bit][usr] == 1;
    }

    // --- Signed arithmetic, reverting where dss's checks revert ---
    function _add(uint256 x, int256 y) internal pure returns (uint256) {
        return y >= 0 ? x + uint256(y) : x - uint256(-y);
    }

    function _mul(uint256 x, int256 y) internal pure returns (int256) {
        require(int256(x) >= 0);
        return int256(x) * y;
    }

    // --- Administration ---
    function init(bytes32 ilk) external note auth {
        require(ilks[ilk].rate == 0, "Vat/ilk-already-init");
        ilks[ilk].rate = 10 ** 27;
    }

    function file(bytes32 what, uint256 data) external note auth {
        require(live == 1, "Vat/not-live");
        if (what == "Line") Line = data;
        else revert("Vat/file-unrecognized-param");
    }

    function file(bytes32 ilk, bytes32 what, uint256 data) external note auth {
        require(live == 1, "Vat/not-live");
        if (what == "spot") ilks[ilk].spot = data;
        else if (what == "line") ilks[ilk].line = data;
        else if (what == "dust") ilks[ilk].dust = data;
        else revert("Vat/file-unrecognized-param");
    }

    function cage() external note auth {
        live = 0;
    }

    // --- Fungibility ---
    function slip(bytes32 ilk, address usr, int256 wad) external note auth {
        gem[ilk][usr] = _add(gem[ilk][usr], wad);
    }

    function flux(bytes32 ilk, address src, address dst, uint256 wad) external note {
        require(wish(src, msg.sender), "Vat/not-allowed");
        gem[ilk][src] -= wad;
        gem[ilk][dst] += wad;
    }

    function move(address src, address dst, uint256 rad) external note {
        require(wish(src, msg.sender), "Vat/not-allowed");
        dai[src] -= rad;
        dai[dst] += rad;
    }

    // --- CDP manipulation ---
    function frob(bytes32 i, address u, address v, address w, int256 dink, int256 dart) external note {
        require(live == 1, "Vat/not-live");
        Urn memory urn = urns[i][u];
        Ilk memory ilk = ilks[i];
        require(ilk.rate != 0, "Vat/ilk-not-init");

        urn.ink = _add(urn.ink, dink);
        urn.art = _add(urn.art, dart);
        ilk.Art = _add(ilk.Art, dart);

        int256 dtab = _mul(ilk.rate, dart);
        uint256 tab = ilk.rate * urn.art;
        debt = _add(debt, dtab);

        bool lessRisky = dart <= 0 && dink >= 0;
        require(dart <= 0 || (ilk.Art * ilk.rate <= ilk.line && debt <= Line), "Vat/ceiling-exceeded");
        require(lessRisky || tab <= urn.ink * ilk.spot, "Vat/not-safe");
        require(lessRisky || wish(u, msg.sender), "Vat/not-allowed-u");
        require(dink <= 0 || wish(v, msg.sender), "Vat/not-allowed-v");
        require(dart >= 0 || wish(w, msg.sender), "Vat/not-allowed-w");
        require(urn.art == 0 || tab >= ilk.dust, "Vat/dust");

        gem[i][v] = _add(gem[i][v], -dink);
        dai[w] = _add(dai[w], dtab);
        urns[i][u] = urn;
        ilks[i] = ilk;
    }

    function fork(bytes32 ilk, address src, address dst, int256 dink, int256 dart) external note {
        Urn storage u = urns[ilk][src];
        Urn storage v = urns[ilk][dst];
        Ilk storage i = ilks[ilk];

        u.ink = _add(u.ink, -dink);
        u.art = _add(u.art, -dart);
        v.ink = _add(v.ink, dink);
        v.art = _add(v.art, dart);

        uint256 utab = u.art * i.rate;
        uint256 vtab = v.art * i.rate;
        require(wish(src, msg.sender) && wish(dst, msg.sender), "Vat/not-allowed");
        require(utab <= u.ink * i.spot, "Vat/not-safe-src");
        require(vtab <= v.ink * i.spot, "Vat/not-safe-dst");
        require(utab >= i.dust || u.art == 0, "Vat/dust-src");
        require(vtab >= i.dust || v.art == 0, "Vat/dust-dst");
    }

    function grab(bytes32 i, address u, address v, address w, int256 dink, int256 dart) external note auth {
        Urn storage urn = urns[i][u];
        Ilk storage ilk = ilks[i];
        urn.ink = _add(urn.ink, dink);
        urn.art = _add(urn.art, dart);
        ilk.Art = _add(ilk.Art, dart);
        int256 dtab = _mul(ilk.rate, dart);
        gem[i][v] = _add(gem[i][v], -dink);
        sin[w] = _add(sin[w], -dtab);
        vice = _add(vice, -dtab);
    }

    // --- Settlement ---
    function heal(uint256 rad) external note {
        address u = msg.sender;
        sin[u] -= rad;
        dai[u] -= rad;
        vice -= rad;
        debt -= rad;
    }

    function suck(address u, address v, uint256 rad) external note auth {
        sin[u] += rad;
        dai[v] += rad;
        vice += rad;
        debt += rad;
    }

    // --- Rates ---
    function fold(bytes32 i, address u, int256 rate) external note auth {
        require(live == 1, "Vat/not-live");
        Ilk storage ilk = ilks[i];
        ilk.rate = _add(ilk.rate, rate);
        int256 rad = _mul(ilk.Art, rate);
        dai[u] = _add(dai[u], rad);
        debt = _add(debt, rad);
    }
}
