// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";
import "./LiquityBase.sol";

/// @title TroveManager (stand-in)
/// @notice Stand-in for Liquity V1's TroveManager as deployed on mainnet (liquity/dev 5174ecd): the same public
/// getters (Troves, rewardSnapshots, L_ETH, L_LUSDDebt, totalStakes, the redistribution error terms, baseRate),
/// the same events with the same indexed topics, stakes and reward snapshots, the redistribution arithmetic with
/// its error feedback, and liquidate / batchLiquidateTroves in Normal and Recovery Mode (including the mainnet
/// batch's Recovery Mode tracker, which takes only the collateral sent to the Stability Pool off the system
/// collateral). Redemptions, LQTY and liquidateTroves(n) are left out. chainrisk's own Solidity, written from the
/// published interface and documented maths; not Liquity's bytecode.
contract TroveManager is LiquityBase {
    string public constant NAME = "TroveManager";

    uint256 public constant SECONDS_IN_ONE_MINUTE = 60;
    /// Half-life of 12 h: (1/2)^(1/720) per minute.
    uint256 public constant MINUTE_DECAY_FACTOR = 999037758833783000;
    uint256 public constant MAX_BORROWING_FEE = (DECIMAL_PRECISION / 100) * 5;

    address public owner;
    address public borrowerOperationsAddress;
    IStabilityPool public stabilityPool;
    address public gasPoolAddress;
    ICollSurplusPool public collSurplusPool;
    ILUSDToken public lusdToken;
    ISortedTroves public sortedTroves;

    uint256 public baseRate;
    uint256 public lastFeeOperationTime;

    enum Status {
        nonExistent,
        active,
        closedByOwner,
        closedByLiquidation,
        closedByRedemption
    }

    struct Trove {
        uint256 debt;
        uint256 coll;
        uint256 stake;
        Status status;
        uint128 arrayIndex;
    }

    mapping(address => Trove) public Troves;

    uint256 public totalStakes;
    uint256 public totalStakesSnapshot;
    uint256 public totalCollateralSnapshot;

    uint256 public L_ETH;
    uint256 public L_LUSDDebt;

    struct RewardSnapshot {
        uint256 ETH;
        uint256 LUSDDebt;
    }

    mapping(address => RewardSnapshot) public rewardSnapshots;

    address[] public TroveOwners;

    uint256 public lastETHError_Redistribution;
    uint256 public lastLUSDDebtError_Redistribution;

    struct LiquidationValues {
        uint256 entireTroveDebt;
        uint256 entireTroveColl;
        uint256 collGasCompensation;
        uint256 LUSDGasCompensation;
        uint256 debtToOffset;
        uint256 collToSendToSP;
        uint256 debtToRedistribute;
        uint256 collToRedistribute;
        uint256 collSurplus;
    }

    struct LiquidationTotals {
        uint256 totalCollInSequence;
        uint256 totalDebtInSequence;
        uint256 totalCollGasCompensation;
        uint256 totalLUSDGasCompensation;
        uint256 totalDebtToOffset;
        uint256 totalCollToSendToSP;
        uint256 totalDebtToRedistribute;
        uint256 totalCollToRedistribute;
        uint256 totalCollSurplus;
    }

    struct SequenceVars {
        uint256 remainingLUSDInStabPool;
        uint256 ICR;
        address user;
        bool backToNormalMode;
        uint256 entireSystemDebt;
        uint256 entireSystemColl;
    }

    enum TroveManagerOperation {
        applyPendingRewards,
        liquidateInNormalMode,
        liquidateInRecoveryMode,
        redeemCollateral
    }

    event Liquidation(uint256 _liquidatedDebt, uint256 _liquidatedColl, uint256 _collGasCompensation, uint256 _LUSDGasCompensation);
    event TroveUpdated(address indexed _borrower, uint256 _debt, uint256 _coll, uint256 _stake, TroveManagerOperation _operation);
    event TroveLiquidated(address indexed _borrower, uint256 _debt, uint256 _coll, TroveManagerOperation _operation);
    event BaseRateUpdated(uint256 _baseRate);
    event LastFeeOpTimeUpdated(uint256 _lastFeeOpTime);
    event TotalStakesUpdated(uint256 _newTotalStakes);
    event SystemSnapshotsUpdated(uint256 _totalStakesSnapshot, uint256 _totalCollateralSnapshot);
    event LTermsUpdated(uint256 _L_ETH, uint256 _L_LUSDDebt);
    event TroveSnapshotsUpdated(uint256 _L_ETH, uint256 _L_LUSDDebt);
    event TroveIndexUpdated(address _borrower, uint256 _newIndex);

    constructor() {
        owner = msg.sender;
    }

    /// Wiring after deployment (the contracts refer to each other); the owner gives it up, as Liquity's does.
    function setAddresses(
        address _borrowerOperationsAddress,
        address _activePoolAddress,
        address _defaultPoolAddress,
        address _stabilityPoolAddress,
        address _gasPoolAddress,
        address _collSurplusPoolAddress,
        address _priceFeedAddress,
        address _lusdTokenAddress,
        address _sortedTrovesAddress
    ) external {
        require(msg.sender == owner, "TroveManager: caller is not the owner");
        borrowerOperationsAddress = _borrowerOperationsAddress;
        activePool = IActivePool(_activePoolAddress);
        defaultPool = IDefaultPool(_defaultPoolAddress);
        stabilityPool = IStabilityPool(_stabilityPoolAddress);
        gasPoolAddress = _gasPoolAddress;
        collSurplusPool = ICollSurplusPool(_collSurplusPoolAddress);
        priceFeed = IPriceFeed(_priceFeedAddress);
        lusdToken = ILUSDToken(_lusdTokenAddress);
        sortedTroves = ISortedTroves(_sortedTrovesAddress);
        owner = address(0);
    }

    // --- Getters ---

    function getTroveOwnersCount() external view returns (uint256) {
        return TroveOwners.length;
    }

    function getTroveFromTroveOwnersArray(uint256 _index) external view returns (address) {
        return TroveOwners[_index];
    }

    // --- Liquidations ---

    function liquidate(address _borrower) external {
        _requireTroveIsActive(_borrower);
        address[] memory borrowers = new address[](1);
        borrowers[0] = _borrower;
        batchLiquidateTroves(borrowers);
    }

    function _liquidateNormalMode(address _borrower, uint256 _LUSDInStabPool)
        internal
        returns (LiquidationValues memory single)
    {
        uint256 pendingDebtReward;
        uint256 pendingCollReward;
        (single.entireTroveDebt, single.entireTroveColl, pendingDebtReward, pendingCollReward) =
            getEntireDebtAndColl(_borrower);
        _movePendingTroveRewardsToActivePool(pendingDebtReward, pendingCollReward);
        _removeStake(_borrower);

        single.collGasCompensation = _getCollGasCompensation(single.entireTroveColl);
        single.LUSDGasCompensation = LUSD_GAS_COMPENSATION;
        uint256 collToLiquidate = single.entireTroveColl - single.collGasCompensation;
        (single.debtToOffset, single.collToSendToSP, single.debtToRedistribute, single.collToRedistribute) =
            _getOffsetAndRedistributionVals(single.entireTroveDebt, collToLiquidate, _LUSDInStabPool);

        _closeTrove(_borrower, Status.closedByLiquidation);
        emit TroveLiquidated(_borrower, single.entireTroveDebt, single.entireTroveColl, TroveManagerOperation.liquidateInNormalMode);
        emit TroveUpdated(_borrower, 0, 0, 0, TroveManagerOperation.liquidateInNormalMode);
    }

    function _liquidateRecoveryMode(address _borrower, uint256 _ICR, uint256 _LUSDInStabPool, uint256 _TCR, uint256 _price)
        internal
        returns (LiquidationValues memory single)
    {
        if (TroveOwners.length <= 1) {
            return single; // the last trove is never liquidated
        }
        uint256 pendingDebtReward;
        uint256 pendingCollReward;
        (single.entireTroveDebt, single.entireTroveColl, pendingDebtReward, pendingCollReward) =
            getEntireDebtAndColl(_borrower);
        single.collGasCompensation = _getCollGasCompensation(single.entireTroveColl);
        single.LUSDGasCompensation = LUSD_GAS_COMPENSATION;
        uint256 collToLiquidate = single.entireTroveColl - single.collGasCompensation;

        if (_ICR <= _100pct) {
            // Under 100 %: everything is redistributed, nothing offset.
            _movePendingTroveRewardsToActivePool(pendingDebtReward, pendingCollReward);
            _removeStake(_borrower);
            single.debtToOffset = 0;
            single.collToSendToSP = 0;
            single.debtToRedistribute = single.entireTroveDebt;
            single.collToRedistribute = collToLiquidate;
            _closeTrove(_borrower, Status.closedByLiquidation);
            emit TroveLiquidated(_borrower, single.entireTroveDebt, single.entireTroveColl, TroveManagerOperation.liquidateInRecoveryMode);
            emit TroveUpdated(_borrower, 0, 0, 0, TroveManagerOperation.liquidateInRecoveryMode);
        } else if (_ICR < MCR) {
            _movePendingTroveRewardsToActivePool(pendingDebtReward, pendingCollReward);
            _removeStake(_borrower);
            (single.debtToOffset, single.collToSendToSP, single.debtToRedistribute, single.collToRedistribute) =
                _getOffsetAndRedistributionVals(single.entireTroveDebt, collToLiquidate, _LUSDInStabPool);
            _closeTrove(_borrower, Status.closedByLiquidation);
            emit TroveLiquidated(_borrower, single.entireTroveDebt, single.entireTroveColl, TroveManagerOperation.liquidateInRecoveryMode);
            emit TroveUpdated(_borrower, 0, 0, 0, TroveManagerOperation.liquidateInRecoveryMode);
        } else if (_ICR < _TCR && single.entireTroveDebt <= _LUSDInStabPool) {
            // MCR <= ICR < TCR and the pool covers the whole debt: offset only, collateral capped at MCR.
            _movePendingTroveRewardsToActivePool(pendingDebtReward, pendingCollReward);
            assert(_LUSDInStabPool != 0);
            _removeStake(_borrower);
            single = _getCappedOffsetVals(single.entireTroveDebt, single.entireTroveColl, _price);
            _closeTrove(_borrower, Status.closedByLiquidation);
            if (single.collSurplus > 0) {
                collSurplusPool.accountSurplus(_borrower, single.collSurplus);
            }
            emit TroveLiquidated(_borrower, single.entireTroveDebt, single.collToSendToSP, TroveManagerOperation.liquidateInRecoveryMode);
            emit TroveUpdated(_borrower, 0, 0, 0, TroveManagerOperation.liquidateInRecoveryMode);
        } else {
            LiquidationValues memory zeroVals;
            return zeroVals;
        }
    }

    function _getOffsetAndRedistributionVals(uint256 _debt, uint256 _coll, uint256 _LUSDInStabPool)
        internal
        pure
        returns (uint256 debtToOffset, uint256 collToSendToSP, uint256 debtToRedistribute, uint256 collToRedistribute)
    {
        if (_LUSDInStabPool > 0) {
            debtToOffset = _min(_debt, _LUSDInStabPool);
            collToSendToSP = (_coll * debtToOffset) / _debt;
            debtToRedistribute = _debt - debtToOffset;
            collToRedistribute = _coll - collToSendToSP;
        } else {
            debtToRedistribute = _debt;
            collToRedistribute = _coll;
        }
    }

    function _getCappedOffsetVals(uint256 _entireTroveDebt, uint256 _entireTroveColl, uint256 _price)
        internal
        pure
        returns (LiquidationValues memory single)
    {
        single.entireTroveDebt = _entireTroveDebt;
        single.entireTroveColl = _entireTroveColl;
        uint256 collToOffset = (_entireTroveDebt * MCR) / _price;
        single.collGasCompensation = _getCollGasCompensation(collToOffset);
        single.LUSDGasCompensation = LUSD_GAS_COMPENSATION;
        single.debtToOffset = _entireTroveDebt;
        single.collToSendToSP = collToOffset - single.collGasCompensation;
        single.collSurplus = _entireTroveColl - collToOffset;
    }

    function batchLiquidateTroves(address[] memory _troveArray) public {
        require(_troveArray.length != 0, "TroveManager: Calldata address array must not be empty");
        uint256 price = priceFeed.fetchPrice();
        uint256 LUSDInStabPool = stabilityPool.getTotalLUSDDeposits();
        LiquidationTotals memory totals;
        if (_checkRecoveryMode(price)) {
            totals = _getTotalFromBatchLiquidate_RecoveryMode(price, LUSDInStabPool, _troveArray);
        } else {
            totals = _getTotalsFromBatchLiquidate_NormalMode(price, LUSDInStabPool, _troveArray);
        }
        require(totals.totalDebtInSequence > 0, "TroveManager: nothing to liquidate");

        stabilityPool.offset(totals.totalDebtToOffset, totals.totalCollToSendToSP);
        _redistributeDebtAndColl(totals.totalDebtToRedistribute, totals.totalCollToRedistribute);
        if (totals.totalCollSurplus > 0) {
            activePool.sendETH(address(collSurplusPool), totals.totalCollSurplus);
        }
        _updateSystemSnapshots_excludeCollRemainder(totals.totalCollGasCompensation);

        uint256 liquidatedColl = totals.totalCollInSequence - totals.totalCollGasCompensation - totals.totalCollSurplus;
        emit Liquidation(totals.totalDebtInSequence, liquidatedColl, totals.totalCollGasCompensation, totals.totalLUSDGasCompensation);
        _sendGasCompensation(msg.sender, totals.totalLUSDGasCompensation, totals.totalCollGasCompensation);
    }

    function _getTotalFromBatchLiquidate_RecoveryMode(uint256 _price, uint256 _LUSDInStabPool, address[] memory _troveArray)
        internal
        returns (LiquidationTotals memory totals)
    {
        SequenceVars memory vars;
        LiquidationValues memory single;
        vars.remainingLUSDInStabPool = _LUSDInStabPool;
        vars.entireSystemDebt = getEntireSystemDebt();
        vars.entireSystemColl = getEntireSystemColl();
        for (uint256 i = 0; i < _troveArray.length; i++) {
            vars.user = _troveArray[i];
            if (Troves[vars.user].status != Status.active) {
                continue;
            }
            vars.ICR = getCurrentICR(vars.user, _price);
            if (!vars.backToNormalMode) {
                if (vars.ICR >= MCR && vars.remainingLUSDInStabPool == 0) {
                    continue;
                }
                uint256 TCR = _computeCR(vars.entireSystemColl, vars.entireSystemDebt, _price);
                single = _liquidateRecoveryMode(vars.user, vars.ICR, vars.remainingLUSDInStabPool, TCR, _price);
                vars.remainingLUSDInStabPool -= single.debtToOffset;
                vars.entireSystemDebt -= single.debtToOffset;
                // As deployed on mainnet: only the collateral sent to the pool leaves the tracked system collateral.
                vars.entireSystemColl -= single.collToSendToSP;
                totals = _addLiquidationValuesToTotals(totals, single);
                vars.backToNormalMode = _computeCR(vars.entireSystemColl, vars.entireSystemDebt, _price) >= CCR;
            } else if (vars.ICR < MCR) {
                single = _liquidateNormalMode(vars.user, vars.remainingLUSDInStabPool);
                vars.remainingLUSDInStabPool -= single.debtToOffset;
                totals = _addLiquidationValuesToTotals(totals, single);
            }
        }
    }

    function _getTotalsFromBatchLiquidate_NormalMode(uint256 _price, uint256 _LUSDInStabPool, address[] memory _troveArray)
        internal
        returns (LiquidationTotals memory totals)
    {
        uint256 remaining = _LUSDInStabPool;
        for (uint256 i = 0; i < _troveArray.length; i++) {
            address user = _troveArray[i];
            if (getCurrentICR(user, _price) < MCR) {
                LiquidationValues memory single = _liquidateNormalMode(user, remaining);
                remaining -= single.debtToOffset;
                totals = _addLiquidationValuesToTotals(totals, single);
            }
        }
    }

    function _addLiquidationValuesToTotals(LiquidationTotals memory t, LiquidationValues memory s)
        internal
        pure
        returns (LiquidationTotals memory n)
    {
        n.totalCollGasCompensation = t.totalCollGasCompensation + s.collGasCompensation;
        n.totalLUSDGasCompensation = t.totalLUSDGasCompensation + s.LUSDGasCompensation;
        n.totalDebtInSequence = t.totalDebtInSequence + s.entireTroveDebt;
        n.totalCollInSequence = t.totalCollInSequence + s.entireTroveColl;
        n.totalDebtToOffset = t.totalDebtToOffset + s.debtToOffset;
        n.totalCollToSendToSP = t.totalCollToSendToSP + s.collToSendToSP;
        n.totalDebtToRedistribute = t.totalDebtToRedistribute + s.debtToRedistribute;
        n.totalCollToRedistribute = t.totalCollToRedistribute + s.collToRedistribute;
        n.totalCollSurplus = t.totalCollSurplus + s.collSurplus;
    }

    function _sendGasCompensation(address _liquidator, uint256 _LUSD, uint256 _ETH) internal {
        if (_LUSD > 0) {
            lusdToken.returnFromPool(gasPoolAddress, _liquidator, _LUSD);
        }
        if (_ETH > 0) {
            activePool.sendETH(_liquidator, _ETH);
        }
    }

    function _movePendingTroveRewardsToActivePool(uint256 _LUSD, uint256 _ETH) internal {
        defaultPool.decreaseLUSDDebt(_LUSD);
        activePool.increaseLUSDDebt(_LUSD);
        defaultPool.sendETHToActivePool(_ETH);
    }

    // --- Trove amounts with pending redistribution rewards ---

    function getNominalICR(address _borrower) public view returns (uint256) {
        (uint256 currentETH, uint256 currentLUSDDebt) = _getCurrentTroveAmounts(_borrower);
        return _computeNominalCR(currentETH, currentLUSDDebt);
    }

    function getCurrentICR(address _borrower, uint256 _price) public view returns (uint256) {
        (uint256 currentETH, uint256 currentLUSDDebt) = _getCurrentTroveAmounts(_borrower);
        return _computeCR(currentETH, currentLUSDDebt, _price);
    }

    function _getCurrentTroveAmounts(address _borrower) internal view returns (uint256, uint256) {
        return (
            Troves[_borrower].coll + getPendingETHReward(_borrower),
            Troves[_borrower].debt + getPendingLUSDDebtReward(_borrower)
        );
    }

    function applyPendingRewards(address _borrower) external {
        _requireCallerIsBorrowerOperations();
        _applyPendingRewards(_borrower);
    }

    function _applyPendingRewards(address _borrower) internal {
        if (hasPendingRewards(_borrower)) {
            _requireTroveIsActive(_borrower);
            uint256 pendingETHReward = getPendingETHReward(_borrower);
            uint256 pendingLUSDDebtReward = getPendingLUSDDebtReward(_borrower);
            Troves[_borrower].coll += pendingETHReward;
            Troves[_borrower].debt += pendingLUSDDebtReward;
            _updateTroveRewardSnapshots(_borrower);
            _movePendingTroveRewardsToActivePool(pendingLUSDDebtReward, pendingETHReward);
            emit TroveUpdated(
                _borrower, Troves[_borrower].debt, Troves[_borrower].coll, Troves[_borrower].stake,
                TroveManagerOperation.applyPendingRewards
            );
        }
    }

    function updateTroveRewardSnapshots(address _borrower) external {
        _requireCallerIsBorrowerOperations();
        _updateTroveRewardSnapshots(_borrower);
    }

    function _updateTroveRewardSnapshots(address _borrower) internal {
        rewardSnapshots[_borrower].ETH = L_ETH;
        rewardSnapshots[_borrower].LUSDDebt = L_LUSDDebt;
        emit TroveSnapshotsUpdated(L_ETH, L_LUSDDebt);
    }

    function getPendingETHReward(address _borrower) public view returns (uint256) {
        uint256 rewardPerUnitStaked = L_ETH - rewardSnapshots[_borrower].ETH;
        if (rewardPerUnitStaked == 0 || Troves[_borrower].status != Status.active) {
            return 0;
        }
        return (Troves[_borrower].stake * rewardPerUnitStaked) / DECIMAL_PRECISION;
    }

    function getPendingLUSDDebtReward(address _borrower) public view returns (uint256) {
        uint256 rewardPerUnitStaked = L_LUSDDebt - rewardSnapshots[_borrower].LUSDDebt;
        if (rewardPerUnitStaked == 0 || Troves[_borrower].status != Status.active) {
            return 0;
        }
        return (Troves[_borrower].stake * rewardPerUnitStaked) / DECIMAL_PRECISION;
    }

    function hasPendingRewards(address _borrower) public view returns (bool) {
        if (Troves[_borrower].status != Status.active) {
            return false;
        }
        return rewardSnapshots[_borrower].ETH < L_ETH;
    }

    function getEntireDebtAndColl(address _borrower)
        public
        view
        returns (uint256 debt, uint256 coll, uint256 pendingLUSDDebtReward, uint256 pendingETHReward)
    {
        pendingLUSDDebtReward = getPendingLUSDDebtReward(_borrower);
        pendingETHReward = getPendingETHReward(_borrower);
        debt = Troves[_borrower].debt + pendingLUSDDebtReward;
        coll = Troves[_borrower].coll + pendingETHReward;
    }

    // --- Stakes ---

    function removeStake(address _borrower) external {
        _requireCallerIsBorrowerOperations();
        _removeStake(_borrower);
    }

    function _removeStake(address _borrower) internal {
        totalStakes -= Troves[_borrower].stake;
        Troves[_borrower].stake = 0;
    }

    function updateStakeAndTotalStakes(address _borrower) external returns (uint256) {
        _requireCallerIsBorrowerOperations();
        uint256 newStake = _computeNewStake(Troves[_borrower].coll);
        uint256 oldStake = Troves[_borrower].stake;
        Troves[_borrower].stake = newStake;
        totalStakes = totalStakes - oldStake + newStake;
        emit TotalStakesUpdated(totalStakes);
        return newStake;
    }

    /// A new stake is the collateral scaled by the snapshots taken at the last liquidation, so that earlier stakes
    /// keep their share of later redistributions.
    function _computeNewStake(uint256 _coll) internal view returns (uint256) {
        if (totalCollateralSnapshot == 0) {
            return _coll;
        }
        assert(totalStakesSnapshot > 0);
        return (_coll * totalStakesSnapshot) / totalCollateralSnapshot;
    }

    /// Redistribution per unit staked, with the floor-division error carried into the next call.
    function _redistributeDebtAndColl(uint256 _debt, uint256 _coll) internal {
        if (_debt == 0) {
            return;
        }
        uint256 ETHNumerator = _coll * DECIMAL_PRECISION + lastETHError_Redistribution;
        uint256 LUSDDebtNumerator = _debt * DECIMAL_PRECISION + lastLUSDDebtError_Redistribution;
        uint256 ETHRewardPerUnitStaked = ETHNumerator / totalStakes;
        uint256 LUSDDebtRewardPerUnitStaked = LUSDDebtNumerator / totalStakes;
        lastETHError_Redistribution = ETHNumerator - ETHRewardPerUnitStaked * totalStakes;
        lastLUSDDebtError_Redistribution = LUSDDebtNumerator - LUSDDebtRewardPerUnitStaked * totalStakes;
        L_ETH += ETHRewardPerUnitStaked;
        L_LUSDDebt += LUSDDebtRewardPerUnitStaked;
        emit LTermsUpdated(L_ETH, L_LUSDDebt);
        activePool.decreaseLUSDDebt(_debt);
        defaultPool.increaseLUSDDebt(_debt);
        activePool.sendETH(address(defaultPool), _coll);
    }

    function closeTrove(address _borrower) external {
        _requireCallerIsBorrowerOperations();
        _closeTrove(_borrower, Status.closedByOwner);
    }

    function _closeTrove(address _borrower, Status closedStatus) internal {
        uint256 ownersLength = TroveOwners.length;
        require(ownersLength > 1 && sortedTroves.getSize() > 1, "TroveManager: Only one trove in the system");
        Troves[_borrower].status = closedStatus;
        Troves[_borrower].coll = 0;
        Troves[_borrower].debt = 0;
        rewardSnapshots[_borrower].ETH = 0;
        rewardSnapshots[_borrower].LUSDDebt = 0;
        _removeTroveOwner(_borrower, ownersLength);
        sortedTroves.remove(_borrower);
    }

    function _updateSystemSnapshots_excludeCollRemainder(uint256 _collRemainder) internal {
        totalStakesSnapshot = totalStakes;
        totalCollateralSnapshot = activePool.getETH() - _collRemainder + defaultPool.getETH();
        emit SystemSnapshotsUpdated(totalStakesSnapshot, totalCollateralSnapshot);
    }

    function addTroveOwnerToArray(address _borrower) external returns (uint256 index) {
        _requireCallerIsBorrowerOperations();
        TroveOwners.push(_borrower);
        index = TroveOwners.length - 1;
        Troves[_borrower].arrayIndex = uint128(index);
    }

    function _removeTroveOwner(address _borrower, uint256 _length) internal {
        uint128 index = Troves[_borrower].arrayIndex;
        address addressToMove = TroveOwners[_length - 1];
        TroveOwners[index] = addressToMove;
        Troves[addressToMove].arrayIndex = index;
        emit TroveIndexUpdated(addressToMove, index);
        TroveOwners.pop();
    }

    // --- Recovery Mode and TCR ---

    function getTCR(uint256 _price) external view returns (uint256) {
        return _getTCR(_price);
    }

    function checkRecoveryMode(uint256 _price) external view returns (bool) {
        return _checkRecoveryMode(_price);
    }

    // --- Borrowing fee and base rate ---

    function getBorrowingRate() public view returns (uint256) {
        return _calcBorrowingRate(baseRate);
    }

    function getBorrowingRateWithDecay() public view returns (uint256) {
        return _calcBorrowingRate(_calcDecayedBaseRate());
    }

    function _calcBorrowingRate(uint256 _baseRate) internal pure returns (uint256) {
        return _min(BORROWING_FEE_FLOOR + _baseRate, MAX_BORROWING_FEE);
    }

    function getBorrowingFee(uint256 _LUSDDebt) external view returns (uint256) {
        return (getBorrowingRate() * _LUSDDebt) / DECIMAL_PRECISION;
    }

    function getBorrowingFeeWithDecay(uint256 _LUSDDebt) external view returns (uint256) {
        return (getBorrowingRateWithDecay() * _LUSDDebt) / DECIMAL_PRECISION;
    }

    function decayBaseRateFromBorrowing() external {
        _requireCallerIsBorrowerOperations();
        uint256 decayedBaseRate = _calcDecayedBaseRate();
        baseRate = decayedBaseRate;
        emit BaseRateUpdated(decayedBaseRate);
        _updateLastFeeOpTime();
    }

    function _updateLastFeeOpTime() internal {
        if (block.timestamp - lastFeeOperationTime >= SECONDS_IN_ONE_MINUTE) {
            lastFeeOperationTime = block.timestamp;
            emit LastFeeOpTimeUpdated(block.timestamp);
        }
    }

    function _calcDecayedBaseRate() internal view returns (uint256) {
        uint256 minutesPassed = (block.timestamp - lastFeeOperationTime) / SECONDS_IN_ONE_MINUTE;
        return (baseRate * _decPow(MINUTE_DECAY_FACTOR, minutesPassed)) / DECIMAL_PRECISION;
    }

    // --- Requires ---

    function _requireCallerIsBorrowerOperations() internal view {
        require(msg.sender == borrowerOperationsAddress, "TroveManager: Caller is not the BorrowerOperations contract");
    }

    function _requireTroveIsActive(address _borrower) internal view {
        require(Troves[_borrower].status == Status.active, "TroveManager: Trove does not exist or is closed");
    }

    // --- Trove property getters and setters (BorrowerOperations) ---

    function getTroveStatus(address _borrower) external view returns (uint256) {
        return uint256(Troves[_borrower].status);
    }

    function getTroveStake(address _borrower) external view returns (uint256) {
        return Troves[_borrower].stake;
    }

    function getTroveDebt(address _borrower) external view returns (uint256) {
        return Troves[_borrower].debt;
    }

    function getTroveColl(address _borrower) external view returns (uint256) {
        return Troves[_borrower].coll;
    }

    function setTroveStatus(address _borrower, uint256 _num) external {
        _requireCallerIsBorrowerOperations();
        Troves[_borrower].status = Status(_num);
    }

    function increaseTroveColl(address _borrower, uint256 _collIncrease) external returns (uint256) {
        _requireCallerIsBorrowerOperations();
        return Troves[_borrower].coll += _collIncrease;
    }

    function decreaseTroveColl(address _borrower, uint256 _collDecrease) external returns (uint256) {
        _requireCallerIsBorrowerOperations();
        return Troves[_borrower].coll -= _collDecrease;
    }

    function increaseTroveDebt(address _borrower, uint256 _debtIncrease) external returns (uint256) {
        _requireCallerIsBorrowerOperations();
        return Troves[_borrower].debt += _debtIncrease;
    }

    function decreaseTroveDebt(address _borrower, uint256 _debtDecrease) external returns (uint256) {
        _requireCallerIsBorrowerOperations();
        return Troves[_borrower].debt -= _debtDecrease;
    }
}
