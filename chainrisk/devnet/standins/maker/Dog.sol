// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface DogClipperLike {
    function ilk() external view returns (bytes32);
    function kick(uint256 tab, uint256 lot, address usr, address kpr) external returns (uint256);
}

interface DogVatLike {
    function ilks(bytes32) external view returns (uint256 Art, uint256 rate, uint256 spot, uint256 line, uint256 dust);
    function urns(bytes32, address) external view returns (uint256 ink, uint256 art);
    function grab(bytes32, address, address, address, int256, int256) external;
}

interface DogVowLike {
    function fess(uint256 tab) external;
}

/// @title Dog (stand-in)
/// @notice Stand-in for Maker's Dog (Liquidations 2.0): chainrisk's own Solidity written from the public interface
/// and documented maths of makerdao/dss src/dog.sol, not Maker's bytecode. `bark` accepts exactly the urns with
/// spot > 0 and ink * spot < art * rate, takes dart = min(art, room * WAD / rate / chop) within the global and
/// per-ilk limits (Hole - Dirt, hole - dirt), the whole urn when the rest would be dusty, grabs ink * dart / art
/// and kicks a Clipper auction for tab = dart * rate * chop / WAD.
contract Dog {
    mapping(address => uint256) public wards;

    struct Ilk {
        address clip; // liquidator
        uint256 chop; // liquidation penalty [wad]
        uint256 hole; // max dai needed to cover debt+fees of active auctions per ilk [rad]
        uint256 dirt; // dai needed to cover debt+fees of active auctions per ilk [rad]
    }

    address public immutable vat;
    mapping(bytes32 => Ilk) public ilks;
    address public vow;
    uint256 public live;
    uint256 public Hole; // [rad]
    uint256 public Dirt; // [rad]

    uint256 internal constant WAD = 10 ** 18;

    event Bark(
        bytes32 indexed ilk, address indexed urn, uint256 ink, uint256 art, uint256 due, address clip, uint256 indexed id
    );
    event Digs(bytes32 indexed ilk, uint256 rad);
    // dss src/dog.sol's File events, one per file.
    event File(bytes32 indexed what, uint256 data);
    event File(bytes32 indexed what, address data);
    event File(bytes32 indexed ilk, bytes32 indexed what, uint256 data);
    event File(bytes32 indexed ilk, bytes32 indexed what, address clip);

    modifier auth() {
        require(wards[msg.sender] == 1, "Dog/not-authorized");
        _;
    }

    constructor(address vat_) {
        vat = vat_;
        live = 1;
        wards[msg.sender] = 1;
    }

    function rely(address usr) external auth {
        wards[usr] = 1;
    }

    function deny(address usr) external auth {
        wards[usr] = 0;
    }

    function file(bytes32 what, address data) external auth {
        if (what == "vow") vow = data;
        else revert("Dog/file-unrecognized-param");
        emit File(what, data);
    }

    function file(bytes32 what, uint256 data) external auth {
        if (what == "Hole") Hole = data;
        else revert("Dog/file-unrecognized-param");
        emit File(what, data);
    }

    function file(bytes32 ilk, bytes32 what, uint256 data) external auth {
        if (what == "chop") {
            require(data >= WAD, "Dog/file-chop-lt-WAD");
            ilks[ilk].chop = data;
        } else if (what == "hole") {
            ilks[ilk].hole = data;
        } else {
            revert("Dog/file-unrecognized-param");
        }
        emit File(ilk, what, data);
    }

    function file(bytes32 ilk, bytes32 what, address clip) external auth {
        if (what == "clip") {
            require(ilk == DogClipperLike(clip).ilk(), "Dog/file-ilk-neq-clip.ilk");
            ilks[ilk].clip = clip;
        } else {
            revert("Dog/file-unrecognized-param");
        }
        emit File(ilk, what, clip);
    }

    function chop(bytes32 ilk) external view returns (uint256) {
        return ilks[ilk].chop;
    }

    function bark(bytes32 ilk, address urn, address kpr) external returns (uint256 id) {
        require(live == 1, "Dog/not-live");
        (uint256 ink, uint256 art) = DogVatLike(vat).urns(ilk, urn);
        Ilk memory milk = ilks[ilk];
        uint256 dart;
        uint256 rate;
        {
            uint256 spot;
            uint256 dust;
            (, rate, spot,, dust) = DogVatLike(vat).ilks(ilk);
            require(spot > 0 && ink * spot < art * rate, "Dog/not-unsafe");
            require(Hole > Dirt && milk.hole > milk.dirt, "Dog/liquidation-limit-hit");
            uint256 room = Hole - Dirt < milk.hole - milk.dirt ? Hole - Dirt : milk.hole - milk.dirt;
            dart = room * WAD / rate / milk.chop;
            if (dart > art) dart = art;
            if (art > dart) {
                if ((art - dart) * rate < dust) {
                    dart = art; // a dusty remainder goes with the rest
                } else {
                    require(dart * rate >= dust, "Dog/dusty-auction-from-partial-liquidation");
                }
            }
        }
        uint256 dink = ink * dart / art;
        require(dink > 0, "Dog/null-auction");
        require(dart <= 2 ** 255 && dink <= 2 ** 255, "Dog/overflow");

        DogVatLike(vat).grab(ilk, urn, milk.clip, vow, -int256(dink), -int256(dart));
        uint256 due = dart * rate;
        DogVowLike(vow).fess(due);
        uint256 tab = due * milk.chop / WAD;
        Dirt += tab;
        ilks[ilk].dirt = milk.dirt + tab;
        id = DogClipperLike(milk.clip).kick(tab, dink, urn, kpr);
        emit Bark(ilk, urn, dink, dart, due, milk.clip, id);
    }

    function digs(bytes32 ilk, uint256 rad) external auth {
        Dirt -= rad;
        ilks[ilk].dirt -= rad;
        emit Digs(ilk, rad);
    }

    function cage() external auth {
        live = 0;
    }
}
