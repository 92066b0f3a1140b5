// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IMorpho, Id, MarketParams, Market} from "@morpho-org/morpho-blue/src/interfaces/IMorpho.sol";
import {MarketParamsLib} from "@morpho-org/morpho-blue/src/libraries/MarketParamsLib.sol";
import {SharesMathLib} from "@morpho-org/morpho-blue/src/libraries/SharesMathLib.sol";

/// @dev Aave's MintableERC20 (the devnet's open-mint test token), which the devnet's stETH is.
interface IMintable {
    function mint(uint256 value) external returns (bool);
}

/// @notice A wstETH-like liquid-staking wrapper with the public interface of Lido's wstETH
/// (lidofinance/lido-dao, contracts/0.6.12/WstETH.sol): balances are static and the stETH each token claims
/// grows as the exchange rate rises.
/// @dev On Lido the rate is stETH's pooled ether per share, moved once a day by the accounting oracle's report
/// (the rebase). Here the owner's `report` stands in for that report: it sets the rate and mints the stETH the
/// rewards would have added to the wrapper's balance, so every wstETH stays fully backed and `unwrap` always pays.
contract DevnetWstETH is ERC20, Ownable {
    using SafeERC20 for IERC20;

    IERC20 public immutable stETH;
    /// @notice stETH claimed by one wstETH (18 decimals), as Lido's `stEthPerToken()`.
    uint256 public stEthPerToken;

    event RateReported(uint256 previousStEthPerToken, uint256 newStEthPerToken, uint256 timestamp);

    constructor(IERC20 stETH_, uint256 initialStEthPerToken) ERC20("Wrapped liquid staked Ether 2.0", "wstETH") {
        require(initialStEthPerToken > 0, "wstETH: zero rate");
        stETH = stETH_;
        stEthPerToken = initialStEthPerToken;
        emit RateReported(0, initialStEthPerToken, block.timestamp);
    }

    /// @notice wstETH for `_stETHAmount` stETH, rounded down (Lido: stETH.getSharesByPooledEth).
    function getWstETHByStETH(uint256 _stETHAmount) public view returns (uint256) {
        return _stETHAmount * 1e18 / stEthPerToken;
    }

    /// @notice stETH for `_wstETHAmount` wstETH, rounded down (Lido: stETH.getPooledEthByShares).
    function getStETHByWstETH(uint256 _wstETHAmount) public view returns (uint256) {
        return _wstETHAmount * stEthPerToken / 1e18;
    }

    /// @notice wstETH for one stETH, as Lido's `tokensPerStEth()`.
    function tokensPerStEth() external view returns (uint256) {
        return getWstETHByStETH(1e18);
    }

    function wrap(uint256 _stETHAmount) external returns (uint256) {
        require(_stETHAmount > 0, "wstETH: can't wrap zero stETH");
        uint256 wstETHAmount = getWstETHByStETH(_stETHAmount);
        _mint(msg.sender, wstETHAmount);
        stETH.safeTransferFrom(msg.sender, address(this), _stETHAmount);
        return wstETHAmount;
    }

    function unwrap(uint256 _wstETHAmount) external returns (uint256) {
        require(_wstETHAmount > 0, "wstETH: zero amount unwrap not allowed");
        uint256 stETHAmount = getStETHByWstETH(_wstETHAmount);
        _burn(msg.sender, _wstETHAmount);
        stETH.safeTransfer(msg.sender, stETHAmount);
        return stETHAmount;
    }

    /// @notice The devnet's oracle report: the new rate, and the stETH the rewards add to the wrapper's balance.
    function report(uint256 newStEthPerToken) external onlyOwner {
        require(newStEthPerToken > 0, "wstETH: zero rate");
        uint256 previous = stEthPerToken;
        stEthPerToken = newStEthPerToken;
        uint256 backing = getStETHByWstETH(totalSupply());
        uint256 held = stETH.balanceOf(address(this));
        if (backing > held) {
            require(IMintable(address(stETH)).mint(backing - held), "wstETH: stETH mint failed");
        }
        emit RateReported(previous, newStEthPerToken, block.timestamp);
    }
}

/// @dev The Chainlink aggregator reads the devnet's SettableFeed answers.
interface IUsdFeed {
    function decimals() external view returns (uint8);
    function latestAnswer() external view returns (int256);
    function latestTimestamp() external view returns (uint256);
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

/// @notice Chainlink-style USD feed of a wrapped asset: the base asset's feed times the wrapper's exchange rate,
/// read on chain, as real wrapped-asset oracles price wstETH or ERC-4626 shares. A shock to the base feed moves
/// every price built on it; a fall of the rate (a vault's bad debt) moves this price alone.
/// @dev answer = base.latestAnswer() * rate / scale, rate = source.<selector>(sample), e.g.
/// getStETHByWstETH(1e18) with scale 1e18, or convertToAssets(10**shareDecimals) with scale 10**assetDecimals.
contract RateFeed {
    IUsdFeed public immutable baseFeed;
    address public immutable source;
    bytes4 public immutable selector;
    uint256 public immutable sample;
    uint256 public immutable scale;
    uint8 public immutable decimals;
    string public description;

    constructor(
        address baseFeed_,
        address source_,
        bytes4 selector_,
        uint256 sample_,
        uint256 scale_,
        string memory description_
    ) {
        require(scale_ > 0, "RateFeed: zero scale");
        baseFeed = IUsdFeed(baseFeed_);
        source = source_;
        selector = selector_;
        sample = sample_;
        scale = scale_;
        decimals = IUsdFeed(baseFeed_).decimals();
        description = description_;
        rate(); // the source must answer now, not first at a liquidation
    }

    /// @notice The wrapper's exchange rate: what `sample` units of it are worth in the base asset's units.
    function rate() public view returns (uint256) {
        (bool ok, bytes memory data) = source.staticcall(abi.encodeWithSelector(selector, sample));
        require(ok && data.length == 32, "RateFeed: rate call failed");
        return abi.decode(data, (uint256));
    }

    function latestAnswer() public view returns (int256) {
        int256 base = baseFeed.latestAnswer();
        require(base > 0, "RateFeed: bad base answer");
        return int256(uint256(base) * rate() / scale);
    }

    function latestTimestamp() external view returns (uint256) {
        return baseFeed.latestTimestamp();
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        (roundId,, startedAt, updatedAt, answeredInRound) = baseFeed.latestRoundData();
        answer = latestAnswer();
    }
}

/// @notice A mini MetaMorpho: an ERC-4626 vault (OpenZeppelin 4.9) that supplies every deposit into one Morpho
/// Blue market and withdraws from it. Its share price is its claim on that market, so it rises with the
/// market's interest and falls when a liquidation there books bad debt: the contagion channel to any market
/// that takes these shares as collateral.
contract MorphoSupplyVault is ERC4626 {
    using SafeERC20 for IERC20;
    using SharesMathLib for uint256;
    using MarketParamsLib for MarketParams;

    IMorpho public immutable morpho;
    bytes32 public immutable marketId;
    MarketParams private _marketParams;

    constructor(IMorpho morpho_, MarketParams memory marketParams_, string memory name_, string memory symbol_)
        ERC4626(IERC20(marketParams_.loanToken))
        ERC20(name_, symbol_)
    {
        Id id = marketParams_.id();
        require(morpho_.market(id).lastUpdate != 0, "MorphoSupplyVault: market not created");
        morpho = morpho_;
        marketId = Id.unwrap(id);
        _marketParams = marketParams_;
        IERC20(marketParams_.loanToken).safeApprove(address(morpho_), type(uint256).max);
    }

    function marketParams() external view returns (MarketParams memory) {
        return _marketParams;
    }

    /// @notice Idle assets plus the vault's supply shares valued on the market's stored totals
    /// (SharesMathLib.toAssetsDown, virtual shares 1e6 and virtual assets 1, as Morpho values them).
    function totalAssets() public view override returns (uint256) {
        Id id = Id.wrap(marketId);
        Market memory state = morpho.market(id);
        uint256 supplyShares = morpho.position(id, address(this)).supplyShares;
        uint256 supplied = supplyShares.toAssetsDown(state.totalSupplyAssets, state.totalSupplyShares);
        return IERC20(asset()).balanceOf(address(this)) + supplied;
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares) internal override {
        super._deposit(caller, receiver, assets, shares);
        morpho.supply(_marketParams, assets, 0, address(this), "");
    }

    function _withdraw(address caller, address receiver, address owner, uint256 assets, uint256 shares)
        internal
        override
    {
        uint256 idle = IERC20(asset()).balanceOf(address(this));
        if (assets > idle) {
            morpho.withdraw(_marketParams, assets - idle, 0, address(this), address(this));
        }
        super._withdraw(caller, receiver, owner, assets, shares);
    }
}
