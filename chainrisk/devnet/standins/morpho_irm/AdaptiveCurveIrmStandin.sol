// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title Morpho AdaptiveCurveIrm stand-in
/// @notice Stand-in: chainrisk's own Solidity for tests, written from the public interface (IIrm's borrowRate and
/// borrowRateView, IAdaptiveCurveIrm's rateAtTarget) and the documented maths of Morpho's AdaptiveCurveIrm
/// (morpho-org/morpho-blue-irm): a curve of steepness 4 around a 90 % utilization target, the rate at target
/// adapting continuously at 50/year times the normalised error, bounded to 0.1 %-200 %/year and starting at 4 %,
/// the average over the elapsed time by a two-step trapezoid, e^x as 2^q times a second-order Taylor term, signed
/// divisions toward zero. Not Morpho's bytecode: no registry ships it. chainrisk's Python port is checked against
/// vectors recorded from the real contract (tests/data/adaptive_curve_irm_vectors.json); this contract lets a test
/// run Morpho Blue with an IRM whose rate moves with time.
contract AdaptiveCurveIrmStandin {
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

    int256 internal constant ONE = 1e18;
    int256 internal constant STEEPNESS = 4e18;
    int256 internal constant SPEED = 50e18 / int256(365 days);
    int256 internal constant TARGET = 0.9e18;
    int256 internal constant INITIAL = 0.04e18 / int256(365 days);
    int256 internal constant LOWEST = 0.001e18 / int256(365 days);
    int256 internal constant HIGHEST = 2e18 / int256(365 days);
    int256 internal constant LN2 = 693147180559945309;
    int256 internal constant LN_ONE_WEI = -41446531673892822312;
    int256 internal constant EXP_CLIP = 93859467695000404319;
    int256 internal constant EXP_AT_CLIP = 57716089161558943949701069502944508345128422502756744429568;

    address public immutable MORPHO;
    mapping(bytes32 => int256) public rateAtTarget;

    event BorrowRateUpdate(bytes32 indexed id, uint256 avgBorrowRate, uint256 rateAtTarget);

    constructor(address morpho) {
        MORPHO = morpho;
    }

    function borrowRateView(MarketParams memory params, Market memory market) external view returns (uint256) {
        (uint256 average,) = rates(keccak256(abi.encode(params)), market);
        return average;
    }

    function borrowRate(MarketParams memory params, Market memory market) external returns (uint256) {
        require(msg.sender == MORPHO, "not Morpho");
        bytes32 id = keccak256(abi.encode(params));
        (uint256 average, int256 end) = rates(id, market);
        rateAtTarget[id] = end;
        emit BorrowRateUpdate(id, average, uint256(end));
        return average;
    }

    function rates(bytes32 id, Market memory market) internal view returns (uint256, int256) {
        int256 used = market.totalSupplyAssets == 0
            ? int256(0)
            : int256(uint256(market.totalBorrowAssets) * 1e18 / uint256(market.totalSupplyAssets));
        int256 err = (used - TARGET) * ONE / (used > TARGET ? ONE - TARGET : TARGET);
        int256 start = rateAtTarget[id];
        if (start == 0) return (uint256(curve(INITIAL, err)), INITIAL);
        int256 adaptation = SPEED * err / ONE * int256(block.timestamp - market.lastUpdate);
        if (adaptation == 0) return (uint256(curve(start, err)), start);
        int256 end = adapted(start, adaptation);
        int256 mid = adapted(start, adaptation / 2);
        return (uint256(curve((start + end + 2 * mid) / 4, err)), end);
    }

    function curve(int256 atTarget, int256 err) internal pure returns (int256) {
        int256 slope = err < 0 ? ONE - ONE * ONE / STEEPNESS : STEEPNESS - ONE;
        return (slope * err / ONE + ONE) * atTarget / ONE;
    }

    function adapted(int256 start, int256 adaptation) internal pure returns (int256) {
        int256 moved = start * exp(adaptation) / ONE;
        if (moved > HIGHEST) return HIGHEST;
        if (moved < LOWEST) return LOWEST;
        return moved;
    }

    function exp(int256 x) internal pure returns (int256) {
        if (x < LN_ONE_WEI) return 0;
        if (x >= EXP_CLIP) return EXP_AT_CLIP;
        int256 q = (x + (x < 0 ? -(LN2 / 2) : LN2 / 2)) / LN2;
        int256 r = x - q * LN2;
        int256 taylor = ONE + r + r * r / ONE / 2;
        return q >= 0 ? taylor << uint256(q) : taylor >> uint256(-q);
    }
}
