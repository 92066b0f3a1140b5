// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./CometStandinInterfaces.sol";

/// @title Compound V3 Comet stand-in: the market contract
/// @notice Stand-in: chainrisk's own Solidity for the devnet, written from Compound III's published interface and
/// documentation, not Compound's bytecode. It keeps what the chainrisk adapter and tests read faithful: the same
/// functions, events and indexed topics; configuration packed into immutables (factors kept to four decimals);
/// per-second kinked rates and index accrual; present and principal values with Compound's rounding;
/// isLiquidatable / isBorrowCollateralized summing floor(floor(balance x price / scale) x factor / 1e18) against
/// the debt's price-weighted value; absorb moving the whole position onto reserves; the store front's discount.
/// Rewards tracking is kept; signature approvals are left out. Unknown selectors go to the extension delegate.
contract CometStandin is CometStandinMainInterface {
    address public immutable override governor;
    address public immutable override pauseGuardian;
    address public immutable override baseToken;
    address public immutable override baseTokenPriceFeed;
    address public immutable override extensionDelegate;
    uint256 public immutable override supplyKink;
    uint256 public immutable override supplyPerSecondInterestRateSlopeLow;
    uint256 public immutable override supplyPerSecondInterestRateSlopeHigh;
    uint256 public immutable override supplyPerSecondInterestRateBase;
    uint256 public immutable override borrowKink;
    uint256 public immutable override borrowPerSecondInterestRateSlopeLow;
    uint256 public immutable override borrowPerSecondInterestRateSlopeHigh;
    uint256 public immutable override borrowPerSecondInterestRateBase;
    uint256 public immutable override storeFrontPriceFactor;
    uint256 public immutable override baseScale;
    uint256 public immutable override trackingIndexScale;
    uint256 public immutable override baseTrackingSupplySpeed;
    uint256 public immutable override baseTrackingBorrowSpeed;
    uint256 public immutable override baseMinForRewards;
    uint256 public immutable override baseBorrowMin;
    uint256 public immutable override targetReserves;
    uint8 public immutable override decimals;
    uint8 public immutable override numAssets;
    uint256 internal immutable accrualDescaleFactor;

    // Two words per collateral asset, as Comet keeps them: (asset, factors) and (feed, decimals, cap).
    uint256 internal immutable asset0a;
    uint256 internal immutable asset0b;
    uint256 internal immutable asset1a;
    uint256 internal immutable asset1b;
    uint256 internal immutable asset2a;
    uint256 internal immutable asset2b;
    uint256 internal immutable asset3a;
    uint256 internal immutable asset3b;
    uint256 internal immutable asset4a;
    uint256 internal immutable asset4b;
    uint256 internal immutable asset5a;
    uint256 internal immutable asset5b;
    uint256 internal immutable asset6a;
    uint256 internal immutable asset6b;
    uint256 internal immutable asset7a;
    uint256 internal immutable asset7b;

    bytes32 internal constant REENTRANCY_GUARD_FLAG_SLOT = bytes32(keccak256("comet.reentrancy.guard"));

    constructor(Configuration memory config) {
        uint8 baseDecimals = ICometStandinToken(config.baseToken).decimals();
        if (baseDecimals > MAX_BASE_DECIMALS) revert BadDecimals();
        if (config.storeFrontPriceFactor > FACTOR_SCALE) revert BadDiscount();
        if (config.assetConfigs.length > MAX_ASSETS) revert TooManyAssets();
        if (config.baseMinForRewards == 0) revert BadMinimum();
        if (ICometStandinPriceFeed(config.baseTokenPriceFeed).decimals() != PRICE_FEED_DECIMALS) revert BadDecimals();

        governor = config.governor;
        pauseGuardian = config.pauseGuardian;
        baseToken = config.baseToken;
        baseTokenPriceFeed = config.baseTokenPriceFeed;
        extensionDelegate = config.extensionDelegate;
        storeFrontPriceFactor = config.storeFrontPriceFactor;
        decimals = baseDecimals;
        uint256 scale = 10 ** baseDecimals;
        if (scale < BASE_ACCRUAL_SCALE) revert BadDecimals();
        baseScale = scale;
        accrualDescaleFactor = scale / BASE_ACCRUAL_SCALE;
        trackingIndexScale = config.trackingIndexScale;
        baseMinForRewards = config.baseMinForRewards;
        baseTrackingSupplySpeed = config.baseTrackingSupplySpeed;
        baseTrackingBorrowSpeed = config.baseTrackingBorrowSpeed;
        baseBorrowMin = config.baseBorrowMin;
        targetReserves = config.targetReserves;

        // Yearly rates become per-second rates once, by integer division, as Comet's constructor does.
        supplyKink = config.supplyKink;
        supplyPerSecondInterestRateSlopeLow = config.supplyPerYearInterestRateSlopeLow / SECONDS_PER_YEAR;
        supplyPerSecondInterestRateSlopeHigh = config.supplyPerYearInterestRateSlopeHigh / SECONDS_PER_YEAR;
        supplyPerSecondInterestRateBase = config.supplyPerYearInterestRateBase / SECONDS_PER_YEAR;
        borrowKink = config.borrowKink;
        borrowPerSecondInterestRateSlopeLow = config.borrowPerYearInterestRateSlopeLow / SECONDS_PER_YEAR;
        borrowPerSecondInterestRateSlopeHigh = config.borrowPerYearInterestRateSlopeHigh / SECONDS_PER_YEAR;
        borrowPerSecondInterestRateBase = config.borrowPerYearInterestRateBase / SECONDS_PER_YEAR;

        numAssets = uint8(config.assetConfigs.length);
        (asset0a, asset0b) = packAsset(config.assetConfigs, 0);
        (asset1a, asset1b) = packAsset(config.assetConfigs, 1);
        (asset2a, asset2b) = packAsset(config.assetConfigs, 2);
        (asset3a, asset3b) = packAsset(config.assetConfigs, 3);
        (asset4a, asset4b) = packAsset(config.assetConfigs, 4);
        (asset5a, asset5b) = packAsset(config.assetConfigs, 5);
        (asset6a, asset6b) = packAsset(config.assetConfigs, 6);
        (asset7a, asset7b) = packAsset(config.assetConfigs, 7);
    }

    modifier nonReentrant() {
        bytes32 slot = REENTRANCY_GUARD_FLAG_SLOT;
        uint256 status;
        assembly ("memory-safe") {
            status := sload(slot)
        }
        if (status == 1) revert ReentrantCallBlocked();
        assembly ("memory-safe") {
            sstore(slot, 1)
        }
        _;
        assembly ("memory-safe") {
            sstore(slot, 0)
        }
    }

    function initializeStorage() external override {
        if (lastAccrualTime != 0) revert AlreadyInitialized();
        lastAccrualTime = getNowInternal();
        baseSupplyIndex = BASE_INDEX_SCALE;
        baseBorrowIndex = BASE_INDEX_SCALE;
    }

    /// @dev Factors keep four decimals and the supply cap whole tokens, as Comet packs them.
    function packAsset(AssetConfig[] memory configs, uint256 i) internal view returns (uint256, uint256) {
        if (i >= configs.length) return (0, 0);
        AssetConfig memory c = configs[i];
        if (ICometStandinPriceFeed(c.priceFeed).decimals() != PRICE_FEED_DECIMALS) revert BadDecimals();
        if (ICometStandinToken(c.asset).decimals() != c.decimals) revert BadDecimals();
        if (c.borrowCollateralFactor >= c.liquidateCollateralFactor) revert BorrowCFTooLarge();
        if (c.liquidateCollateralFactor > MAX_COLLATERAL_FACTOR) revert LiquidateCFTooLarge();
        uint64 descale = FACTOR_SCALE / 1e4;
        uint256 borrowCF = c.borrowCollateralFactor / descale;
        uint256 liquidateCF = c.liquidateCollateralFactor / descale;
        uint256 liquidationFactor = c.liquidationFactor / descale;
        if (borrowCF >= liquidateCF) revert BorrowCFTooLarge();
        uint256 cap = c.supplyCap / (10 ** c.decimals);
        uint256 wordA = uint256(uint160(c.asset)) | (borrowCF << 160) | (liquidateCF << 176) | (liquidationFactor << 192);
        uint256 wordB = uint256(uint160(c.priceFeed)) | (uint256(c.decimals) << 160) | (cap << 168);
        return (wordA, wordB);
    }

    function getAssetInfo(uint8 i) public view override returns (AssetInfo memory) {
        if (i >= numAssets) revert BadAsset();
        uint256 wordA;
        uint256 wordB;
        if (i == 0) (wordA, wordB) = (asset0a, asset0b);
        else if (i == 1) (wordA, wordB) = (asset1a, asset1b);
        else if (i == 2) (wordA, wordB) = (asset2a, asset2b);
        else if (i == 3) (wordA, wordB) = (asset3a, asset3b);
        else if (i == 4) (wordA, wordB) = (asset4a, asset4b);
        else if (i == 5) (wordA, wordB) = (asset5a, asset5b);
        else if (i == 6) (wordA, wordB) = (asset6a, asset6b);
        else if (i == 7) (wordA, wordB) = (asset7a, asset7b);
        else revert Absurd();
        uint64 rescale = FACTOR_SCALE / 1e4;
        uint8 assetDecimals = uint8(wordB >> 160);
        uint64 scale = uint64(10 ** assetDecimals);
        return AssetInfo({
            offset: i,
            asset: address(uint160(wordA)),
            priceFeed: address(uint160(wordB)),
            scale: scale,
            borrowCollateralFactor: uint64(((wordA >> 160) & type(uint16).max) * rescale),
            liquidateCollateralFactor: uint64(((wordA >> 176) & type(uint16).max) * rescale),
            liquidationFactor: uint64(((wordA >> 192) & type(uint16).max) * rescale),
            supplyCap: uint128(((wordB >> 168) & type(uint64).max) * scale)
        });
    }

    function getAssetInfoByAddress(address asset) public view override returns (AssetInfo memory) {
        for (uint8 i = 0; i < numAssets; i++) {
            AssetInfo memory info = getAssetInfo(i);
            if (info.asset == asset) return info;
        }
        revert BadAsset();
    }

    function getNowInternal() internal view returns (uint40) {
        if (block.timestamp >= 2 ** 40) revert TimestampTooLarge();
        return uint40(block.timestamp);
    }

    /// @dev Indices after `elapsed` seconds at the rates of the stored utilization (simple interest per step).
    function accruedInterestIndices(uint256 elapsed) internal view returns (uint64, uint64) {
        uint64 supplyIndex = baseSupplyIndex;
        uint64 borrowIndex = baseBorrowIndex;
        if (elapsed > 0) {
            uint256 utilization = getUtilization();
            uint256 supplyRate = getSupplyRate(utilization);
            uint256 borrowRate = getBorrowRate(utilization);
            supplyIndex += safe64(mulFactor(supplyIndex, supplyRate * elapsed));
            borrowIndex += safe64(mulFactor(borrowIndex, borrowRate * elapsed));
        }
        return (supplyIndex, borrowIndex);
    }

    function accrueInternal() internal {
        uint40 now_ = getNowInternal();
        uint256 elapsed = uint256(now_ - lastAccrualTime);
        if (elapsed > 0) {
            (baseSupplyIndex, baseBorrowIndex) = accruedInterestIndices(elapsed);
            if (totalSupplyBase >= baseMinForRewards) {
                trackingSupplyIndex += safe64(divBaseWei(baseTrackingSupplySpeed * elapsed, totalSupplyBase));
            }
            if (totalBorrowBase >= baseMinForRewards) {
                trackingBorrowIndex += safe64(divBaseWei(baseTrackingBorrowSpeed * elapsed, totalBorrowBase));
            }
            lastAccrualTime = now_;
        }
    }

    function accrueAccount(address account) external override {
        accrueInternal();
        UserBasic memory basic = userBasic[account];
        updateBasePrincipal(account, basic, basic.principal);
    }

    function getSupplyRate(uint256 utilization) public view override returns (uint64) {
        return kinkedRate(
            utilization,
            supplyKink,
            supplyPerSecondInterestRateBase,
            supplyPerSecondInterestRateSlopeLow,
            supplyPerSecondInterestRateSlopeHigh
        );
    }

    function getBorrowRate(uint256 utilization) public view override returns (uint64) {
        return kinkedRate(
            utilization,
            borrowKink,
            borrowPerSecondInterestRateBase,
            borrowPerSecondInterestRateSlopeLow,
            borrowPerSecondInterestRateSlopeHigh
        );
    }

    /// @dev base + low slope up to the kink, plus high slope past it; each product floored by mulFactor.
    function kinkedRate(uint256 utilization, uint256 kink, uint256 base, uint256 low, uint256 high)
        internal
        pure
        returns (uint64)
    {
        if (utilization <= kink) {
            return safe64(base + mulFactor(low, utilization));
        }
        return safe64(base + mulFactor(low, kink) + mulFactor(high, utilization - kink));
    }

    function getUtilization() public view override returns (uint256) {
        uint256 supplied = presentValueSupply(baseSupplyIndex, totalSupplyBase);
        uint256 borrowed = presentValueBorrow(baseBorrowIndex, totalBorrowBase);
        if (supplied == 0) return 0;
        return borrowed * FACTOR_SCALE / supplied;
    }

    function getPrice(address priceFeed) public view override returns (uint256) {
        (, int256 price,,,) = ICometStandinPriceFeed(priceFeed).latestRoundData();
        if (price <= 0) revert BadPrice();
        return uint256(price);
    }

    function getCollateralReserves(address asset) public view override returns (uint256) {
        return ICometStandinToken(asset).balanceOf(address(this)) - totalsCollateral[asset].totalSupplyAsset;
    }

    function getReserves() public view override returns (int256) {
        (uint64 supplyIndex, uint64 borrowIndex) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
        uint256 balance = ICometStandinToken(baseToken).balanceOf(address(this));
        uint256 supplied = presentValueSupply(supplyIndex, totalSupplyBase);
        uint256 borrowed = presentValueBorrow(borrowIndex, totalBorrowBase);
        return signed256(balance) - signed256(supplied) + signed256(borrowed);
    }

    function isBorrowCollateralized(address account) public view override returns (bool) {
        return liquidity(account, false) >= 0;
    }

    function isLiquidatable(address account) public view override returns (bool) {
        return liquidity(account, true) < 0;
    }

    /// @dev The debt's value (negative) plus each entered collateral's floor(floor(balance x price / scale) x
    /// factor), in price units; stops reading prices once it is non-negative, as Comet's loops return early.
    function liquidity(address account, bool forLiquidation) internal view returns (int256) {
        int104 principal = userBasic[account].principal;
        if (principal >= 0) return 0;
        uint16 assetsIn = userBasic[account].assetsIn;
        int256 total = signedMulPrice(presentValue(principal), getPrice(baseTokenPriceFeed), uint64(baseScale));
        for (uint8 i = 0; i < numAssets; i++) {
            if (isInAsset(assetsIn, i)) {
                if (total >= 0) return total;
                AssetInfo memory info = getAssetInfo(i);
                uint256 value =
                    mulPrice(userCollateral[account][info.asset].balance, getPrice(info.priceFeed), info.scale);
                uint256 factor = forLiquidation ? info.liquidateCollateralFactor : info.borrowCollateralFactor;
                total += signed256(mulFactor(value, factor));
            }
        }
        return total;
    }

    function repayAndSupplyAmount(int104 oldPrincipal, int104 newPrincipal) internal pure returns (uint104, uint104) {
        if (newPrincipal < oldPrincipal) return (0, 0);
        if (newPrincipal <= 0) return (uint104(newPrincipal - oldPrincipal), 0);
        if (oldPrincipal >= 0) return (0, uint104(newPrincipal - oldPrincipal));
        return (uint104(-oldPrincipal), uint104(newPrincipal));
    }

    function withdrawAndBorrowAmount(int104 oldPrincipal, int104 newPrincipal)
        internal
        pure
        returns (uint104, uint104)
    {
        if (newPrincipal > oldPrincipal) return (0, 0);
        if (newPrincipal >= 0) return (uint104(oldPrincipal - newPrincipal), 0);
        if (oldPrincipal <= 0) return (0, uint104(oldPrincipal - newPrincipal));
        return (uint104(oldPrincipal), uint104(-newPrincipal));
    }

    function pause(bool supplyPaused, bool transferPaused, bool withdrawPaused, bool absorbPaused, bool buyPaused)
        external
        override
    {
        if (msg.sender != governor && msg.sender != pauseGuardian) revert Unauthorized();
        pauseFlags = (toUInt8(supplyPaused) << PAUSE_SUPPLY_OFFSET) | (toUInt8(transferPaused) << PAUSE_TRANSFER_OFFSET)
            | (toUInt8(withdrawPaused) << PAUSE_WITHDRAW_OFFSET) | (toUInt8(absorbPaused) << PAUSE_ABSORB_OFFSET)
            | (toUInt8(buyPaused) << PAUSE_BUY_OFFSET);
        emit PauseAction(supplyPaused, transferPaused, withdrawPaused, absorbPaused, buyPaused);
    }

    function isSupplyPaused() public view override returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_SUPPLY_OFFSET) != 0;
    }

    function isTransferPaused() public view override returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_TRANSFER_OFFSET) != 0;
    }

    function isWithdrawPaused() public view override returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_WITHDRAW_OFFSET) != 0;
    }

    function isAbsorbPaused() public view override returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_ABSORB_OFFSET) != 0;
    }

    function isBuyPaused() public view override returns (bool) {
        return pauseFlags & (uint8(1) << PAUSE_BUY_OFFSET) != 0;
    }

    function toUInt8(bool x) internal pure returns (uint8) {
        return x ? 1 : 0;
    }

    function mulFactor(uint256 n, uint256 factor) internal pure returns (uint256) {
        return n * factor / FACTOR_SCALE;
    }

    function divBaseWei(uint256 n, uint256 baseWei) internal view returns (uint256) {
        return n * baseScale / baseWei;
    }

    function mulPrice(uint256 n, uint256 price, uint64 fromScale) internal pure returns (uint256) {
        return n * price / fromScale;
    }

    /// @dev Solidity's signed division truncates toward zero: a debt's value rounds toward zero too.
    function signedMulPrice(int256 n, uint256 price, uint64 fromScale) internal pure returns (int256) {
        return n * signed256(price) / int256(uint256(fromScale));
    }

    function divPrice(uint256 n, uint256 price, uint64 toScale) internal pure returns (uint256) {
        return n * toScale / price;
    }

    function isInAsset(uint16 assetsIn, uint8 offset) internal pure returns (bool) {
        return assetsIn & (uint16(1) << offset) != 0;
    }

    /// @dev The asset's bit is set when a balance leaves zero and cleared when it returns to zero.
    function updateAssetsIn(address account, AssetInfo memory info, uint128 before, uint128 afterwards) internal {
        if (before == 0 && afterwards != 0) {
            userBasic[account].assetsIn |= (uint16(1) << info.offset);
        } else if (before != 0 && afterwards == 0) {
            userBasic[account].assetsIn &= ~(uint16(1) << info.offset);
        }
    }

    function updateBasePrincipal(address account, UserBasic memory basic, int104 principalNew) internal {
        int104 principal = basic.principal;
        basic.principal = principalNew;
        if (principal >= 0) {
            uint256 delta = uint256(trackingSupplyIndex - basic.baseTrackingIndex);
            basic.baseTrackingAccrued +=
                safe64(uint104(principal) * delta / trackingIndexScale / accrualDescaleFactor);
        } else {
            uint256 delta = uint256(trackingBorrowIndex - basic.baseTrackingIndex);
            basic.baseTrackingAccrued +=
                safe64(uint104(-principal) * delta / trackingIndexScale / accrualDescaleFactor);
        }
        basic.baseTrackingIndex = principalNew >= 0 ? trackingSupplyIndex : trackingBorrowIndex;
        userBasic[account] = basic;
    }

    /// @dev Pulls `amount` and returns what arrived; tokens answering nothing or `true` both pass.
    function doTransferIn(address asset, address from, uint256 amount) internal returns (uint256) {
        uint256 before = ICometStandinToken(asset).balanceOf(address(this));
        ICometStandinToken(asset).transferFrom(from, address(this), amount);
        if (!lastCallSucceeded()) revert TransferInFailed();
        return ICometStandinToken(asset).balanceOf(address(this)) - before;
    }

    function doTransferOut(address asset, address to, uint256 amount) internal {
        ICometStandinToken(asset).transfer(to, amount);
        if (!lastCallSucceeded()) revert TransferOutFailed();
    }

    function lastCallSucceeded() internal pure returns (bool success) {
        assembly ("memory-safe") {
            switch returndatasize()
            case 0 { success := 1 }
            case 32 {
                returndatacopy(0, 0, 32)
                success := mload(0)
            }
            default { revert(0, 0) }
        }
    }

    function supply(address asset, uint256 amount) external override {
        supplyInternal(msg.sender, msg.sender, msg.sender, asset, amount);
    }

    function supplyTo(address dst, address asset, uint256 amount) external override {
        supplyInternal(msg.sender, msg.sender, dst, asset, amount);
    }

    function supplyFrom(address from, address dst, address asset, uint256 amount) external override {
        supplyInternal(msg.sender, from, dst, asset, amount);
    }

    /// @dev `amount` of uint256 max repays the whole accrued borrow of `dst`.
    function supplyInternal(address operator, address from, address dst, address asset, uint256 amount)
        internal
        nonReentrant
    {
        if (isSupplyPaused()) revert Paused();
        if (!hasPermission(from, operator)) revert Unauthorized();
        if (asset == baseToken) {
            if (amount == type(uint256).max) amount = borrowBalanceOf(dst);
            supplyBase(from, dst, amount);
        } else {
            supplyCollateral(from, dst, asset, safe128(amount));
        }
    }

    function supplyBase(address from, address dst, uint256 amount) internal {
        amount = doTransferIn(baseToken, from, amount);
        accrueInternal();
        UserBasic memory dstUser = userBasic[dst];
        int104 principal = dstUser.principal;
        int104 principalNew = principalValue(presentValue(principal) + signed256(amount));
        (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(principal, principalNew);
        totalSupplyBase += supplyAmount;
        totalBorrowBase -= repayAmount;
        updateBasePrincipal(dst, dstUser, principalNew);
        emit Supply(from, dst, amount);
        if (supplyAmount > 0) emit Transfer(address(0), dst, presentValueSupply(baseSupplyIndex, supplyAmount));
    }

    function supplyCollateral(address from, address dst, address asset, uint128 amount) internal {
        amount = safe128(doTransferIn(asset, from, amount));
        AssetInfo memory info = getAssetInfoByAddress(asset);
        TotalsCollateral memory totals = totalsCollateral[asset];
        totals.totalSupplyAsset += amount;
        if (totals.totalSupplyAsset > info.supplyCap) revert SupplyCapExceeded();
        uint128 balance = userCollateral[dst][asset].balance;
        uint128 balanceNew = balance + amount;
        totalsCollateral[asset] = totals;
        userCollateral[dst][asset].balance = balanceNew;
        updateAssetsIn(dst, info, balance, balanceNew);
        emit SupplyCollateral(from, dst, asset, amount);
    }

    function transfer(address dst, uint256 amount) external override returns (bool) {
        transferInternal(msg.sender, msg.sender, dst, baseToken, amount);
        return true;
    }

    function transferFrom(address src, address dst, uint256 amount) external override returns (bool) {
        transferInternal(msg.sender, src, dst, baseToken, amount);
        return true;
    }

    function transferAsset(address dst, address asset, uint256 amount) external override {
        transferInternal(msg.sender, msg.sender, dst, asset, amount);
    }

    function transferAssetFrom(address src, address dst, address asset, uint256 amount) external override {
        transferInternal(msg.sender, src, dst, asset, amount);
    }

    function transferInternal(address operator, address src, address dst, address asset, uint256 amount)
        internal
        nonReentrant
    {
        if (isTransferPaused()) revert Paused();
        if (!hasPermission(src, operator)) revert Unauthorized();
        if (src == dst) revert NoSelfTransfer();
        if (asset == baseToken) {
            if (amount == type(uint256).max) amount = balanceOf(src);
            transferBase(src, dst, amount);
        } else {
            transferCollateral(src, dst, asset, safe128(amount));
        }
    }

    /// @dev Moves a present value: the sender may borrow, the receiver may repay; only supply moves emit Transfer.
    function transferBase(address src, address dst, uint256 amount) internal {
        accrueInternal();
        UserBasic memory srcUser = userBasic[src];
        UserBasic memory dstUser = userBasic[dst];
        int256 srcBalance = presentValue(srcUser.principal) - signed256(amount);
        int104 srcPrincipalNew = principalValue(srcBalance);
        int104 dstPrincipalNew = principalValue(presentValue(dstUser.principal) + signed256(amount));
        (uint104 withdrawAmount, uint104 borrowAmount) = withdrawAndBorrowAmount(srcUser.principal, srcPrincipalNew);
        (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(dstUser.principal, dstPrincipalNew);
        totalSupplyBase = totalSupplyBase + supplyAmount - withdrawAmount;
        totalBorrowBase = totalBorrowBase + borrowAmount - repayAmount;
        updateBasePrincipal(src, srcUser, srcPrincipalNew);
        updateBasePrincipal(dst, dstUser, dstPrincipalNew);
        if (srcBalance < 0) {
            if (uint256(-srcBalance) < baseBorrowMin) revert BorrowTooSmall();
            if (!isBorrowCollateralized(src)) revert NotCollateralized();
        }
        if (withdrawAmount > 0) emit Transfer(src, address(0), presentValueSupply(baseSupplyIndex, withdrawAmount));
        if (supplyAmount > 0) emit Transfer(address(0), dst, presentValueSupply(baseSupplyIndex, supplyAmount));
    }

    function transferCollateral(address src, address dst, address asset, uint128 amount) internal {
        uint128 srcBalance = userCollateral[src][asset].balance;
        uint128 dstBalance = userCollateral[dst][asset].balance;
        uint128 srcBalanceNew = srcBalance - amount;
        uint128 dstBalanceNew = dstBalance + amount;
        userCollateral[src][asset].balance = srcBalanceNew;
        userCollateral[dst][asset].balance = dstBalanceNew;
        AssetInfo memory info = getAssetInfoByAddress(asset);
        updateAssetsIn(src, info, srcBalance, srcBalanceNew);
        updateAssetsIn(dst, info, dstBalance, dstBalanceNew);
        // No accrual first: the gap between the borrow and liquidation factors covers the interest owed since.
        if (!isBorrowCollateralized(src)) revert NotCollateralized();
        emit TransferCollateral(src, dst, asset, amount);
    }

    function withdraw(address asset, uint256 amount) external override {
        withdrawInternal(msg.sender, msg.sender, msg.sender, asset, amount);
    }

    function withdrawTo(address to, address asset, uint256 amount) external override {
        withdrawInternal(msg.sender, msg.sender, to, asset, amount);
    }

    function withdrawFrom(address src, address to, address asset, uint256 amount) external override {
        withdrawInternal(msg.sender, src, to, asset, amount);
    }

    /// @dev `amount` of uint256 max withdraws the whole accrued supply of `src`.
    function withdrawInternal(address operator, address src, address to, address asset, uint256 amount)
        internal
        nonReentrant
    {
        if (isWithdrawPaused()) revert Paused();
        if (!hasPermission(src, operator)) revert Unauthorized();
        if (asset == baseToken) {
            if (amount == type(uint256).max) amount = balanceOf(src);
            withdrawBase(src, to, amount);
        } else {
            withdrawCollateral(src, to, asset, safe128(amount));
        }
    }

    function withdrawBase(address src, address to, uint256 amount) internal {
        accrueInternal();
        UserBasic memory srcUser = userBasic[src];
        int104 principal = srcUser.principal;
        int256 balance = presentValue(principal) - signed256(amount);
        int104 principalNew = principalValue(balance);
        (uint104 withdrawAmount, uint104 borrowAmount) = withdrawAndBorrowAmount(principal, principalNew);
        totalSupplyBase -= withdrawAmount;
        totalBorrowBase += borrowAmount;
        updateBasePrincipal(src, srcUser, principalNew);
        if (balance < 0) {
            if (uint256(-balance) < baseBorrowMin) revert BorrowTooSmall();
            if (!isBorrowCollateralized(src)) revert NotCollateralized();
        }
        doTransferOut(baseToken, to, amount);
        emit Withdraw(src, to, amount);
        if (withdrawAmount > 0) emit Transfer(src, address(0), presentValueSupply(baseSupplyIndex, withdrawAmount));
    }

    function withdrawCollateral(address src, address to, address asset, uint128 amount) internal {
        uint128 balance = userCollateral[src][asset].balance;
        uint128 balanceNew = balance - amount;
        totalsCollateral[asset].totalSupplyAsset -= amount;
        userCollateral[src][asset].balance = balanceNew;
        updateAssetsIn(src, getAssetInfoByAddress(asset), balance, balanceNew);
        if (!isBorrowCollateralized(src)) revert NotCollateralized();
        doTransferOut(asset, to, amount);
        emit WithdrawCollateral(src, to, asset, amount);
    }

    function absorb(address absorber, address[] calldata accounts) external override {
        if (isAbsorbPaused()) revert Paused();
        uint256 startGas = gasleft();
        accrueInternal();
        for (uint256 i = 0; i < accounts.length; i++) {
            absorbInternal(absorber, accounts[i]);
        }
        uint256 gasUsed = startGas - gasleft();
        LiquidatorPoints memory points = liquidatorPoints[absorber];
        points.numAbsorbs++;
        points.numAbsorbed += safe64(accounts.length);
        points.approxSpend += safe128(gasUsed * block.basefee);
        liquidatorPoints[absorber] = points;
    }

    /// @dev The account's collateral goes to the protocol, credited at each asset's liquidation factor; its debt
    /// is closed; a credit beyond the debt becomes its supply, a shortfall is paid by the reserves.
    function absorbInternal(address absorber, address account) internal {
        if (!isLiquidatable(account)) revert NotLiquidatable();
        UserBasic memory accountUser = userBasic[account];
        int104 oldPrincipal = accountUser.principal;
        int256 oldBalance = presentValue(oldPrincipal);
        uint256 basePrice = getPrice(baseTokenPriceFeed);
        uint256 deltaValue = seizeCollateral(absorber, account, accountUser.assetsIn);
        int256 newBalance = oldBalance + signed256(divPrice(deltaValue, basePrice, uint64(baseScale)));
        if (newBalance < 0) newBalance = 0;
        int104 newPrincipal = principalValue(newBalance);
        updateBasePrincipal(account, accountUser, newPrincipal);
        userBasic[account].assetsIn = 0;
        (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(oldPrincipal, newPrincipal);
        totalSupplyBase += supplyAmount;
        totalBorrowBase -= repayAmount;
        uint256 basePaidOut = unsigned256(newBalance - oldBalance);
        emit AbsorbDebt(absorber, account, basePaidOut, mulPrice(basePaidOut, basePrice, uint64(baseScale)));
        if (newPrincipal > 0) {
            emit Transfer(address(0), account, presentValueSupply(baseSupplyIndex, unsigned104(newPrincipal)));
        }
    }

    /// @dev Sum over the entered assets of floor(floor(balance x price / scale) x liquidationFactor / 1e18).
    function seizeCollateral(address absorber, address account, uint16 assetsIn) internal returns (uint256 credit) {
        for (uint8 i = 0; i < numAssets; i++) {
            if (isInAsset(assetsIn, i)) {
                AssetInfo memory info = getAssetInfo(i);
                uint128 seized = userCollateral[account][info.asset].balance;
                userCollateral[account][info.asset].balance = 0;
                totalsCollateral[info.asset].totalSupplyAsset -= seized;
                uint256 value = mulPrice(seized, getPrice(info.priceFeed), info.scale);
                credit += mulFactor(value, info.liquidationFactor);
                emit AbsorbCollateral(absorber, account, info.asset, seized, value);
            }
        }
    }

    function buyCollateral(address asset, uint256 minAmount, uint256 baseAmount, address recipient)
        external
        override
        nonReentrant
    {
        if (isBuyPaused()) revert Paused();
        int256 reserves = getReserves();
        if (reserves >= 0 && uint256(reserves) >= targetReserves) revert NotForSale();
        baseAmount = doTransferIn(baseToken, msg.sender, baseAmount);
        uint256 collateralAmount = quoteCollateral(asset, baseAmount);
        if (collateralAmount < minAmount) revert TooMuchSlippage();
        if (collateralAmount > getCollateralReserves(asset)) revert InsufficientReserves();
        doTransferOut(asset, recipient, safe128(collateralAmount));
        emit BuyCollateral(msg.sender, asset, baseAmount, collateralAmount);
    }

    /// @dev Collateral for `baseAmount` at the asset's price less storeFrontPriceFactor x (1 - liquidationFactor).
    function quoteCollateral(address asset, uint256 baseAmount) public view override returns (uint256) {
        AssetInfo memory info = getAssetInfoByAddress(asset);
        uint256 assetPrice = getPrice(info.priceFeed);
        uint256 discountFactor = mulFactor(storeFrontPriceFactor, FACTOR_SCALE - info.liquidationFactor);
        uint256 discounted = mulFactor(assetPrice, FACTOR_SCALE - discountFactor);
        uint256 basePrice = getPrice(baseTokenPriceFeed);
        return basePrice * baseAmount * info.scale / discounted / baseScale;
    }

    function withdrawReserves(address to, uint256 amount) external override {
        if (msg.sender != governor) revert Unauthorized();
        int256 reserves = getReserves();
        if (reserves < 0 || amount > unsigned256(reserves)) revert InsufficientReserves();
        doTransferOut(baseToken, to, amount);
        emit WithdrawReserves(to, amount);
    }

    function approveThis(address manager, address asset, uint256 amount) external override {
        if (msg.sender != governor) revert Unauthorized();
        ICometStandinToken(asset).approve(manager, amount);
    }

    function totalSupply() external view override returns (uint256) {
        (uint64 supplyIndex,) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
        return presentValueSupply(supplyIndex, totalSupplyBase);
    }

    function totalBorrow() external view override returns (uint256) {
        (, uint64 borrowIndex) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
        return presentValueBorrow(borrowIndex, totalBorrowBase);
    }

    function balanceOf(address account) public view override returns (uint256) {
        (uint64 supplyIndex,) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
        int104 principal = userBasic[account].principal;
        return principal > 0 ? presentValueSupply(supplyIndex, unsigned104(principal)) : 0;
    }

    function borrowBalanceOf(address account) public view override returns (uint256) {
        (, uint64 borrowIndex) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
        int104 principal = userBasic[account].principal;
        return principal < 0 ? presentValueBorrow(borrowIndex, unsigned104(-principal)) : 0;
    }

    fallback() external payable {
        address delegate = extensionDelegate;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let result := delegatecall(gas(), delegate, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch result
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}
