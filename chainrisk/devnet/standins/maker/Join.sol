// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.19;

interface JoinVatLike {
    function slip(bytes32, address, int256) external;
    function move(address, address, uint256) external;
}

interface JoinGemLike {
    function decimals() external view returns (uint8);
    function transfer(address, uint256) external returns (bool);
    function transferFrom(address, address, uint256) external returns (bool);
}

interface JoinDaiLike {
    function mint(address, uint256) external;
    function burn(address, uint256) external;
}

/// @title GemJoin (stand-in)
/// @notice Stand-in for Maker's GemJoin: chainrisk's own Solidity written from the public interface of
/// makerdao/dss src/join.sol, not Maker's bytecode. An 18-decimals token enters the Vat one to one:
/// `join(usr, wad)` credits gem[ilk][usr] with wad; `vat`, `ilk`, `gem`, `dec` and `live` as on mainnet.
contract GemJoin {
    mapping(address => uint256) public wards;
    address public vat;
    bytes32 public ilk;
    address public gem;
    uint256 public dec;
    uint256 public live;

    event Join(address indexed usr, uint256 wad);
    event Exit(address indexed usr, uint256 wad);

    constructor(address vat_, bytes32 ilk_, address gem_) {
        wards[msg.sender] = 1;
        live = 1;
        vat = vat_;
        ilk = ilk_;
        gem = gem_;
        dec = JoinGemLike(gem_).decimals();
    }

    function join(address usr, uint256 wad) external {
        require(live == 1, "GemJoin/not-live");
        require(int256(wad) >= 0, "GemJoin/overflow");
        JoinVatLike(vat).slip(ilk, usr, int256(wad));
        require(JoinGemLike(gem).transferFrom(msg.sender, address(this), wad), "GemJoin/failed-transfer");
        emit Join(usr, wad);
    }

    function exit(address usr, uint256 wad) external {
        require(wad <= 2 ** 255, "GemJoin/overflow");
        JoinVatLike(vat).slip(ilk, msg.sender, -int256(wad));
        require(JoinGemLike(gem).transfer(usr, wad), "GemJoin/failed-transfer");
        emit Exit(usr, wad);
    }
}

/// @title GemJoin5 (stand-in)
/// @notice Stand-in for Maker's GemJoin5, the join of tokens with fewer than 18 decimals (WBTC's 8, USDC's 6):
/// chainrisk's own Solidity written from the public interface of makerdao/dss-gem-joins src/join-5.sol, not
/// Maker's bytecode. `join(urn, amt)` takes amt token units and credits the Vat with amt * 10^(18 - dec), so the
/// Vat counts every gem in 18-decimal units; `exit(guy, amt)` debits amt * 10^(18 - dec).
contract GemJoin5 {
    mapping(address => uint256) public wards;
    address public vat;
    bytes32 public ilk;
    address public gem;
    uint256 public dec;
    uint256 public live;

    event Join(address indexed urn, uint256 amt);
    event Exit(address indexed guy, uint256 amt);

    constructor(address vat_, bytes32 ilk_, address gem_) {
        dec = JoinGemLike(gem_).decimals();
        require(dec < 18, "GemJoin5/decimals-18-or-higher");
        wards[msg.sender] = 1;
        live = 1;
        vat = vat_;
        ilk = ilk_;
        gem = gem_;
    }

    function join(address urn, uint256 amt) external {
        require(live == 1, "GemJoin5/not-live");
        uint256 wad = amt * 10 ** (18 - dec);
        require(int256(wad) >= 0, "GemJoin5/overflow");
        JoinVatLike(vat).slip(ilk, urn, int256(wad));
        require(JoinGemLike(gem).transferFrom(msg.sender, address(this), amt), "GemJoin5/failed-transfer");
        emit Join(urn, amt);
    }

    function exit(address guy, uint256 amt) external {
        uint256 wad = amt * 10 ** (18 - dec);
        require(int256(wad) >= 0, "GemJoin5/overflow");
        JoinVatLike(vat).slip(ilk, msg.sender, -int256(wad));
        require(JoinGemLike(gem).transfer(guy, amt), "GemJoin5/failed-transfer");
        emit Exit(guy, amt);
    }
}

/// @title DaiJoin (stand-in)
/// @notice Stand-in for Maker's DaiJoin: chainrisk's own Solidity written from the public interface of
/// makerdao/dss src/join.sol, not Maker's bytecode. `exit` turns Vat dai (rad) into ERC-20 DAI (wad, 1e27 rad each)
/// and `join` back.
contract DaiJoin {
    mapping(address => uint256) public wards;
    address public vat;
    address public dai;
    uint256 public live;

    uint256 internal constant ONE = 10 ** 27;

    constructor(address vat_, address dai_) {
        wards[msg.sender] = 1;
        live = 1;
        vat = vat_;
        dai = dai_;
    }

    function join(address usr, uint256 wad) external {
        JoinVatLike(vat).move(address(this), usr, ONE * wad);
        JoinDaiLike(dai).burn(msg.sender, wad);
    }

    function exit(address usr, uint256 wad) external {
        require(live == 1, "DaiJoin/not-live");
        JoinVatLike(vat).move(msg.sender, address(this), ONE * wad);
        JoinDaiLike(dai).mint(usr, wad);
    }
}

/// @title Dai (stand-in)
/// @notice Stand-in for the Dai stablecoin token: chainrisk's own Solidity written from the public interface of
/// makerdao/dss src/dai.sol, not Maker's bytecode (no permit). 18 decimals; wards mint; burn by holder or allowance.
contract Dai {
    mapping(address => uint256) public wards;
    string public constant name = "Dai Stablecoin";
    string public constant symbol = "DAI";
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Approval(address indexed src, address indexed guy, uint256 wad);
    event Transfer(address indexed src, address indexed dst, uint256 wad);

    constructor() {
        wards[msg.sender] = 1;
    }

    function rely(address usr) external {
        require(wards[msg.sender] == 1, "Dai/not-authorized");
        wards[usr] = 1;
    }

    function transfer(address dst, uint256 wad) external returns (bool) {
        return transferFrom(msg.sender, dst, wad);
    }

    function transferFrom(address src, address dst, uint256 wad) public returns (bool) {
        require(balanceOf[src] >= wad, "Dai/insufficient-balance");
        _spend(src, wad);
        balanceOf[src] -= wad;
        balanceOf[dst] += wad;
        emit Transfer(src, dst, wad);
        return true;
    }

    function mint(address usr, uint256 wad) external {
        require(wards[msg.sender] == 1, "Dai/not-authorized");
        balanceOf[usr] += wad;
        totalSupply += wad;
        emit Transfer(address(0), usr, wad);
    }

    function burn(address usr, uint256 wad) external {
        require(balanceOf[usr] >= wad, "Dai/insufficient-balance");
        _spend(usr, wad);
        balanceOf[usr] -= wad;
        totalSupply -= wad;
        emit Transfer(usr, address(0), wad);
    }

    function approve(address usr, uint256 wad) external returns (bool) {
        allowance[msg.sender][usr] = wad;
        emit Approval(msg.sender, usr, wad);
        return true;
    }

    function _spend(address src, uint256 wad) internal {
        if (src != msg.sender && allowance[src][msg.sender] != type(uint256).max) {
            require(allowance[src][msg.sender] >= wad, "Dai/insufficient-allowance");
            allowance[src][msg.sender] -= wad;
        }
    }
}
