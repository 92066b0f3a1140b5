// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./CometStandinCore.sol";

/// @title Comet stand-in: main interface
/// @notice Stand-in (chainrisk's own Solidity, not Compound's bytecode). The function signatures, events and
/// indexed topics of Compound III's published main interface, as the chainrisk adapter reads them.
abstract contract CometStandinMainInterface is CometStandinCore {
    error Absurd();
    error AlreadyInitialized();
    error BadAsset();
    error BadDecimals();
    error BadDiscount();
    error BadMinimum();
    error BadPrice();
    error BorrowTooSmall();
    error BorrowCFTooLarge();
    error InsufficientReserves();
    error LiquidateCFTooLarge();
    error NoSelfTransfer();
    error NotCollateralized();
    error NotForSale();
    error NotLiquidatable();
    error Paused();
    error ReentrantCallBlocked();
    error SupplyCapExceeded();
    error TimestampTooLarge();
    error TooManyAssets();
    error TooMuchSlippage();
    error TransferInFailed();
    error TransferOutFailed();
    error Unauthorized();

    event Supply(address indexed from, address indexed dst, uint256 amount);
    event Transfer(address indexed from, address indexed to, uint256 amount);
    event Withdraw(address indexed src, address indexed to, uint256 amount);
    event SupplyCollateral(address indexed from, address indexed dst, address indexed asset, uint256 amount);
    event TransferCollateral(address indexed from, address indexed to, address indexed asset, uint256 amount);
    event WithdrawCollateral(address indexed src, address indexed to, address indexed asset, uint256 amount);
    event AbsorbDebt(address indexed absorber, address indexed borrower, uint256 basePaidOut, uint256 usdValue);
    event AbsorbCollateral(
        address indexed absorber,
        address indexed borrower,
        address indexed asset,
        uint256 collateralAbsorbed,
        uint256 usdValue
    );
    event BuyCollateral(address indexed buyer, address indexed asset, uint256 baseAmount, uint256 collateralAmount);
    event PauseAction(bool supplyPaused, bool transferPaused, bool withdrawPaused, bool absorbPaused, bool buyPaused);
    event WithdrawReserves(address indexed to, uint256 amount);

    function supply(address asset, uint256 amount) external virtual;
    function supplyTo(address dst, address asset, uint256 amount) external virtual;
    function supplyFrom(address from, address dst, address asset, uint256 amount) external virtual;
    function transfer(address dst, uint256 amount) external virtual returns (bool);
    function transferFrom(address src, address dst, uint256 amount) external virtual returns (bool);
    function transferAsset(address dst, address asset, uint256 amount) external virtual;
    function transferAssetFrom(address src, address dst, address asset, uint256 amount) external virtual;
    function withdraw(address asset, uint256 amount) external virtual;
    function withdrawTo(address to, address asset, uint256 amount) external virtual;
    function withdrawFrom(address src, address to, address asset, uint256 amount) external virtual;
    function approveThis(address manager, address asset, uint256 amount) external virtual;
    function withdrawReserves(address to, uint256 amount) external virtual;
    function absorb(address absorber, address[] calldata accounts) external virtual;
    function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient) external virtual;
    function quoteCollateral(address asset, uint256 baseAmount) public view virtual returns (uint256);
    function getAssetInfo(uint8 i) public view virtual returns (AssetInfo memory);
    function getAssetInfoByAddress(address asset) public view virtual returns (AssetInfo memory);
    function getCollateralReserves(address asset) public view virtual returns (uint256);
    function getReserves() public view virtual returns (int256);
    function getPrice(address priceFeed) public view virtual returns (uint256);
    function isBorrowCollateralized(address account) public view virtual returns (bool);
    function isLiquidatable(address account) public view virtual returns (bool);
    function totalSupply() external view virtual returns (uint256);
    function totalBorrow() external view virtual returns (uint256);
    function balanceOf(address owner) public view virtual returns (uint256);
    function borrowBalanceOf(address account) public view virtual returns (uint256);
    function pause(bool supplyPaused, bool transferPaused, bool withdrawPaused, bool absorbPaused, bool buyPaused)
        external
        virtual;
    function isSupplyPaused() public view virtual returns (bool);
    function isTransferPaused() public view virtual returns (bool);
    function isWithdrawPaused() public view virtual returns (bool);
    function isAbsorbPaused() public view virtual returns (bool);
    function isBuyPaused() public view virtual returns (bool);
    function accrueAccount(address account) external virtual;
    function getSupplyRate(uint256 utilization) public view virtual returns (uint64);
    function getBorrowRate(uint256 utilization) public view virtual returns (uint64);
    function getUtilization() public view virtual returns (uint256);
    function governor() external view virtual returns (address);
    function pauseGuardian() external view virtual returns (address);
    function baseToken() external view virtual returns (address);
    function baseTokenPriceFeed() external view virtual returns (address);
    function extensionDelegate() external view virtual returns (address);
    function supplyKink() external view virtual returns (uint256);
    function supplyPerSecondInterestRateSlopeLow() external view virtual returns (uint256);
    function supplyPerSecondInterestRateSlopeHigh() external view virtual returns (uint256);
    function supplyPerSecondInterestRateBase() external view virtual returns (uint256);
    function borrowKink() external view virtual returns (uint256);
    function borrowPerSecondInterestRateSlopeLow() external view virtual returns (uint256);
    function borrowPerSecondInterestRateSlopeHigh() external view virtual returns (uint256);
    function borrowPerSecondInterestRateBase() external view virtual returns (uint256);
    function storeFrontPriceFactor() external view virtual returns (uint256);
    function baseScale() external view virtual returns (uint256);
    function trackingIndexScale() external view virtual returns (uint256);
    function baseTrackingSupplySpeed() external view virtual returns (uint256);
    function baseTrackingBorrowSpeed() external view virtual returns (uint256);
    function baseMinForRewards() external view virtual returns (uint256);
    function baseBorrowMin() external view virtual returns (uint256);
    function targetReserves() external view virtual returns (uint256);
    function numAssets() external view virtual returns (uint8);
    function decimals() external view virtual returns (uint8);
    function initializeStorage() external virtual;
}

/// @title Comet stand-in: extension interface
/// @notice Stand-in (chainrisk's own Solidity, not Compound's bytecode). The published extension interface
/// (reached through the main contract's fallback), without the signature-based `allowBySig`.
abstract contract CometStandinExtInterface is CometStandinCore {
    error BadAmount();

    event Approval(address indexed owner, address indexed spender, uint256 amount);

    function allow(address manager, bool isAllowed_) external virtual;
    function collateralBalanceOf(address account, address asset) external view virtual returns (uint128);
    function baseTrackingAccrued(address account) external view virtual returns (uint64);
    function baseAccrualScale() external view virtual returns (uint64);
    function baseIndexScale() external view virtual returns (uint64);
    function factorScale() external view virtual returns (uint64);
    function priceScale() external view virtual returns (uint64);
    function maxAssets() external view virtual returns (uint8);
    function totalsBasic() external view virtual returns (TotalsBasic memory);
    function version() external view virtual returns (string memory);
    function name() external view virtual returns (string memory);
    function symbol() external view virtual returns (string memory);
    function approve(address spender, uint256 amount) external virtual returns (bool);
    function allowance(address owner, address spender) external view virtual returns (uint256);
}

/// @title Comet stand-in: the whole interface a Comet proxy answers
/// @notice Stand-in (chainrisk's own Solidity, not Compound's bytecode). Main and extension interfaces together,
/// as Compound III's CometInterface combines them; its ABI is abis/compound-v3/IComet.json.
abstract contract CometStandinInterface is CometStandinMainInterface, CometStandinExtInterface {}
