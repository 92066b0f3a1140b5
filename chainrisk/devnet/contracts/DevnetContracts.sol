// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @notice Chainlink-style USD price feed whose answer the devnet price replay moves.
/// @dev AaveOracle reads `latestAnswer()`; Chainlink consumers read `latestRoundData()`.
contract SettableFeed {
    uint8 public immutable decimals;
    address public immutable owner;
    string public description;
    int256 public latestAnswer;
    uint256 public latestTimestamp;
    uint80 public latestRound;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(uint8 decimals_, int256 initialAnswer, string memory description_) {
        decimals = decimals_;
        owner = msg.sender;
        description = description_;
        _set(initialAnswer);
    }

    function setAnswer(int256 answer) external {
        require(msg.sender == owner, "SettableFeed: not owner");
        _set(answer);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return (latestRound, latestAnswer, latestTimestamp, latestTimestamp, latestRound);
    }

    function _set(int256 answer) private {
        require(answer > 0, "SettableFeed: non-positive answer");
        latestAnswer = answer;
        latestTimestamp = block.timestamp;
        latestRound += 1;
        emit AnswerUpdated(answer, latestRound, block.timestamp);
    }
}

interface IPriceFeed {
    function latestAnswer() external view returns (int256);
}

/// @notice A price adapter over another feed, answering what it answers: what `chainrisk devnet govern` swaps an Aave
/// asset's oracle source to, as Aave's governance swaps a source to an adapter wrapping the asset's Chainlink feed
/// (so the devnet's price replay, which moves the feed, still moves the asset).
contract FeedAdapter {
    address public immutable source;
    uint8 public immutable decimals;

    constructor(address source_) {
        source = source_;
        decimals = SettableFeed(source_).decimals();
    }

    function latestAnswer() external view returns (int256) {
        return IPriceFeed(source).latestAnswer();
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return SettableFeed(source).latestRoundData();
    }
}

/// @notice Morpho Blue oracle: the price of one collateral token unit in loan token units, scaled by 1e36,
/// derived from two USD feeds of equal decimals, so Morpho and Aave see the same market.
/// @dev A stand-in for Morpho's MorphoChainlinkOracleV2 (morpho-org/morpho-blue-oracles,
/// src/morpho-chainlink/MorphoChainlinkOracleV2.sol; no registry ships it) in its one-feed-a-side form: the same
/// public getters, with no vaults (conversion samples 1) and no second feeds, and the same price,
/// SCALE_FACTOR.mulDiv(base feed answer, quote feed answer) with SCALE_FACTOR = 10^(36 + loanDecimals -
/// collateralDecimals) (the feeds' decimals, equal, cancel out of V2's formula).
contract FeedRatioOracle {
    address public constant BASE_VAULT = address(0);
    uint256 public constant BASE_VAULT_CONVERSION_SAMPLE = 1;
    address public constant QUOTE_VAULT = address(0);
    uint256 public constant QUOTE_VAULT_CONVERSION_SAMPLE = 1;
    address public constant BASE_FEED_2 = address(0);
    address public constant QUOTE_FEED_2 = address(0);
    /// @notice The collateral's USD feed.
    IPriceFeed public immutable BASE_FEED_1;
    /// @notice The loan token's USD feed.
    IPriceFeed public immutable QUOTE_FEED_1;
    uint256 public immutable SCALE_FACTOR;

    constructor(address collateralFeed_, address loanFeed_, uint8 collateralDecimals, uint8 loanDecimals) {
        BASE_FEED_1 = IPriceFeed(collateralFeed_);
        QUOTE_FEED_1 = IPriceFeed(loanFeed_);
        SCALE_FACTOR = 10 ** (36 + uint256(loanDecimals) - uint256(collateralDecimals));
    }

    function price() external view returns (uint256) {
        int256 collateralUsd = BASE_FEED_1.latestAnswer();
        int256 loanUsd = QUOTE_FEED_1.latestAnswer();
        require(collateralUsd > 0 && loanUsd > 0, "FeedRatioOracle: bad answer");
        return uint256(collateralUsd) * SCALE_FACTOR / uint256(loanUsd);
    }
}

/// @dev Mirrors Morpho Blue's MarketParams and Market structs (IMorpho.sol) so the IRM ABI matches.
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

/// @notice Morpho Blue IRM with a kinked utilisation curve (rates per second, WAD-scaled), stateless.
contract KinkedIrm {
    uint256 private constant WAD = 1e18;
    uint256 public immutable baseRatePerSecond;
    uint256 public immutable slope1PerSecond;
    uint256 public immutable slope2PerSecond;
    uint256 public immutable optimalUtilization;

    constructor(uint256 baseRate_, uint256 slope1_, uint256 slope2_, uint256 optimalUtilization_) {
        require(optimalUtilization_ > 0 && optimalUtilization_ < WAD, "KinkedIrm: bad kink");
        baseRatePerSecond = baseRate_;
        slope1PerSecond = slope1_;
        slope2PerSecond = slope2_;
        optimalUtilization = optimalUtilization_;
    }

    function borrowRate(MarketParams memory marketParams, Market memory market) external view returns (uint256) {
        return borrowRateView(marketParams, market);
    }

    function borrowRateView(MarketParams memory, Market memory market) public view returns (uint256) {
        if (market.totalSupplyAssets == 0) return baseRatePerSecond;
        uint256 utilization = uint256(market.totalBorrowAssets) * WAD / uint256(market.totalSupplyAssets);
        if (utilization <= optimalUtilization) {
            return baseRatePerSecond + slope1PerSecond * utilization / optimalUtilization;
        }
        uint256 excess = (utilization - optimalUtilization) * WAD / (WAD - optimalUtilization);
        return baseRatePerSecond + slope1PerSecond + slope2PerSecond * excess / WAD;
    }
}
