// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

// Odd contracts a permissionless market may list, for tests (chainrisk's own, not any protocol's): ERC-20s without
// the optional metadata, with a bytes32 symbol, or whose every call reverts once broken; a price source that answers
// what it is told, zero, or reverts. Compiled by tests with chainrisk.devnet.toolchain.folder_contracts.

/// An ERC-20 core (balances, allowances, open mint) without the optional name(), symbol() and decimals().
contract BareToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 internal supply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function totalSupply() external view virtual returns (uint256) {
        return supply;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        supply += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        return _move(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        return _move(from, to, amount);
    }

    function _move(address from, address to, uint256 amount) internal virtual returns (bool) {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}

/// MKR-style metadata: symbol() and name() answer a bytes32, not a string.
contract Bytes32Token is BareToken {
    bytes32 public symbol;
    bytes32 public name;
    uint8 public decimals;

    constructor(bytes32 symbol_, uint8 decimals_) {
        symbol = symbol_;
        name = symbol_;
        decimals = decimals_;
    }
}

/// A token that works until `breakIt`, then reverts on every call (a paused or emptied-out proxy).
contract BreakableToken is BareToken {
    string internal tokenSymbol;
    uint8 internal tokenDecimals;
    bool internal broken;

    constructor(string memory symbol_, uint8 decimals_) {
        tokenSymbol = symbol_;
        tokenDecimals = decimals_;
    }

    function breakIt() external {
        broken = true;
    }

    function symbol() external view returns (string memory) {
        require(!broken, "token broken");
        return tokenSymbol;
    }

    function decimals() external view returns (uint8) {
        require(!broken, "token broken");
        return tokenDecimals;
    }

    function totalSupply() external view override returns (uint256) {
        require(!broken, "token broken");
        return supply;
    }

    function _move(address from, address to, uint256 amount) internal override returns (bool) {
        require(!broken, "token broken");
        return super._move(from, to, amount);
    }
}

/// A price source answering what it is told (Morpho's IOracle.price(), Chainlink's latestAnswer() as AaveOracle reads
/// it), zero included, or reverting.
contract OddOracle {
    uint256 internal answer;
    bool internal reverting;

    constructor(uint256 answer_) {
        answer = answer_;
    }

    function set(uint256 answer_, bool reverting_) external {
        answer = answer_;
        reverting = reverting_;
    }

    function price() external view returns (uint256) {
        require(!reverting, "oracle down");
        return answer;
    }

    function latestAnswer() external view returns (int256) {
        require(!reverting, "oracle down");
        return int256(answer);
    }

    function decimals() external pure returns (uint8) {
        return 8;
    }
}

/// Metadata no decoder expects: decimals() as a full word past uint8, a symbol() of bytes that are not UTF-8 (or any
/// length asked).
contract WildMetadataToken is BareToken {
    uint256 public decimals;
    string public symbol;

    constructor(uint256 decimals_, bytes memory symbol_) {
        decimals = decimals_;
        symbol = string(symbol_);
    }
}

/// A price source that spends every unit of gas it is given (a loop that never ends), answers with no data at all, or
/// with half a word, as `mode` says (1, 2, 3). `mode` lives in the code, so the runtime can be put over another
/// oracle's (anvil_setCode) once markets have borrowed against that one.
contract BrokenOracle {
    uint256 internal immutable mode;
    uint256 internal spin;

    constructor(uint256 mode_) {
        mode = mode_;
    }

    function price() external view returns (uint256) {
        if (mode == 1) {
            uint256 i;
            while (gasleft() > 0) {
                i += spin + 1;
            }
            return i;
        }
        if (mode == 2) {
            assembly {
                return(0, 0)
            }
        }
        assembly {
            mstore(0, 0x1234)
            return(16, 16)
        }
    }
}

/// Morpho Blue's IIrm with a rate it is told (per second, WAD): a rate past sense makes Morpho's accrual overflow.
contract OddIrm {
    struct MarketParams {
        address loanToken;
        address collateralToken;
        address oracle;
        address irm;
        uint256 lltv;
    }

    struct Market {
        uint128 totalSupplyAssets;
        uint128 totalSupplyShares;
        uint128 totalBorrowAssets;
        uint128 totalBorrowShares;
        uint128 lastUpdate;
        uint128 fee;
    }

    uint256 internal rate;

    function set(uint256 rate_) external {
        rate = rate_;
    }

    function borrowRate(MarketParams memory, Market memory) external view returns (uint256) {
        return rate;
    }

    function borrowRateView(MarketParams memory, Market memory) external view returns (uint256) {
        return rate;
    }
}

/// An ERC-4626 vault's read side answering what it is told, over a BareToken's core (so that a market can take its
/// shares as collateral): assets per 1e18 shares, totalAssets() and totalSupply() as set, however large. Its
/// convertToAssets checks its product as any 0.8 vault does, so a large enough amount reverts.
contract OddVault is BareToken {
    address public immutable asset;
    uint256 internal assetsPerShare;
    uint256 public totalAssets;
    uint256 internal shownSupply;

    constructor(address asset_, uint256 assetsPerShare_) {
        asset = asset_;
        assetsPerShare = assetsPerShare_;
    }

    function set(uint256 assetsPerShare_, uint256 totalAssets_, uint256 totalSupply_) external {
        assetsPerShare = assetsPerShare_;
        totalAssets = totalAssets_;
        shownSupply = totalSupply_;
    }

    function symbol() external pure returns (string memory) {
        return "ODDV";
    }

    function decimals() external pure returns (uint8) {
        return 18;
    }

    function totalSupply() external view override returns (uint256) {
        return shownSupply == 0 ? supply : shownSupply;
    }

    function convertToAssets(uint256 shares) external view returns (uint256) {
        return shares * assetsPerShare / 1e18;
    }
}
