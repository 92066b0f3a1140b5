// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";
import "./LiquityBase.sol";

/// @title BorrowerOperations (stand-in)
/// @notice Stand-in for Liquity V1's BorrowerOperations (liquity/dev 5174ecd): openTrove, adjustTrove and its
/// shorthands, closeTrove and claimCollateral, with the 200 LUSD gas compensation, the borrowing fee (floor 0.5 %
/// plus the decayed base rate, minted to the fee recipient that stands for LQTY staking), the minimum net debt,
/// and the Normal / Recovery Mode checks on ICR and TCR; the same TroveUpdated event (borrower indexed) as the
/// real contract. chainrisk's own Solidity, written from the published interface and documented maths; not
/// Liquity's bytecode.
contract BorrowerOperations is LiquityBase {
    string public constant NAME = "BorrowerOperations";

    address public owner;
    ITroveManager public troveManager;
    address public stabilityPoolAddress;
    address public gasPoolAddress;
    ICollSurplusPool public collSurplusPool;
    ILUSDToken public lusdToken;
    ISortedTroves public sortedTroves;
    /// Receives the borrowing fee (LQTYStaking on mainnet).
    address public lqtyStakingAddress;

    enum BorrowerOperation {
        openTrove,
        closeTrove,
        adjustTrove
    }

    struct AdjustVars {
        uint256 price;
        uint256 collChange;
        uint256 netDebtChange;
        bool isCollIncrease;
        uint256 debt;
        uint256 coll;
        uint256 oldICR;
        uint256 newICR;
        uint256 LUSDFee;
        uint256 newDebt;
        uint256 newColl;
        uint256 stake;
    }

    event TroveCreated(address indexed _borrower, uint256 arrayIndex);
    event TroveUpdated(address indexed _borrower, uint256 _debt, uint256 _coll, uint256 stake, BorrowerOperation operation);
    event LUSDBorrowingFeePaid(address indexed _borrower, uint256 _LUSDFee);

    constructor() {
        owner = msg.sender;
    }

    function setAddresses(
        address _troveManagerAddress,
        address _activePoolAddress,
        address _defaultPoolAddress,
        address _stabilityPoolAddress,
        address _gasPoolAddress,
        address _collSurplusPoolAddress,
        address _priceFeedAddress,
        address _sortedTrovesAddress,
        address _lusdTokenAddress,
        address _lqtyStakingAddress
    ) external {
        require(msg.sender == owner, "BorrowerOps: caller is not the owner");
        troveManager = ITroveManager(_troveManagerAddress);
        activePool = IActivePool(_activePoolAddress);
        defaultPool = IDefaultPool(_defaultPoolAddress);
        stabilityPoolAddress = _stabilityPoolAddress;
        gasPoolAddress = _gasPoolAddress;
        collSurplusPool = ICollSurplusPool(_collSurplusPoolAddress);
        priceFeed = IPriceFeed(_priceFeedAddress);
        sortedTroves = ISortedTroves(_sortedTrovesAddress);
        lusdToken = ILUSDToken(_lusdTokenAddress);
        lqtyStakingAddress = _lqtyStakingAddress;
        owner = address(0);
    }

    function openTrove(uint256 _maxFeePercentage, uint256 _LUSDAmount, address _upperHint, address _lowerHint)
        external
        payable
    {
        uint256 price = priceFeed.fetchPrice();
        bool isRecoveryMode = _checkRecoveryMode(price);
        _requireValidMaxFeePercentage(_maxFeePercentage, isRecoveryMode);
        require(troveManager.getTroveStatus(msg.sender) != 1, "BorrowerOps: Trove is active");

        uint256 LUSDFee;
        uint256 netDebt = _LUSDAmount;
        if (!isRecoveryMode) {
            LUSDFee = _triggerBorrowingFee(_LUSDAmount, _maxFeePercentage);
            netDebt += LUSDFee;
        }
        _requireAtLeastMinNetDebt(netDebt);
        uint256 compositeDebt = _getCompositeDebt(netDebt);
        uint256 ICR = _computeCR(msg.value, compositeDebt, price);
        uint256 NICR = _computeNominalCR(msg.value, compositeDebt);
        if (isRecoveryMode) {
            _requireICRisAboveCCR(ICR);
        } else {
            _requireICRisAboveMCR(ICR);
            _requireNewTCRisAboveCCR(_getNewTCRFromTroveChange(msg.value, true, compositeDebt, true, price));
        }

        troveManager.setTroveStatus(msg.sender, 1);
        troveManager.increaseTroveColl(msg.sender, msg.value);
        troveManager.increaseTroveDebt(msg.sender, compositeDebt);
        troveManager.updateTroveRewardSnapshots(msg.sender);
        uint256 stake = troveManager.updateStakeAndTotalStakes(msg.sender);
        sortedTroves.insert(msg.sender, NICR, _upperHint, _lowerHint);
        uint256 arrayIndex = troveManager.addTroveOwnerToArray(msg.sender);
        emit TroveCreated(msg.sender, arrayIndex);

        _activePoolAddColl(msg.value);
        _withdrawLUSD(msg.sender, _LUSDAmount, netDebt);
        _withdrawLUSD(gasPoolAddress, LUSD_GAS_COMPENSATION, LUSD_GAS_COMPENSATION);

        emit TroveUpdated(msg.sender, compositeDebt, msg.value, stake, BorrowerOperation.openTrove);
        emit LUSDBorrowingFeePaid(msg.sender, LUSDFee);
    }

    function addColl(address _upperHint, address _lowerHint) external payable {
        _adjustTrove(msg.sender, 0, 0, false, _upperHint, _lowerHint, 0);
    }

    function withdrawColl(uint256 _collWithdrawal, address _upperHint, address _lowerHint) external {
        _adjustTrove(msg.sender, _collWithdrawal, 0, false, _upperHint, _lowerHint, 0);
    }

    function withdrawLUSD(uint256 _maxFeePercentage, uint256 _LUSDAmount, address _upperHint, address _lowerHint) external {
        _adjustTrove(msg.sender, 0, _LUSDAmount, true, _upperHint, _lowerHint, _maxFeePercentage);
    }

    function repayLUSD(uint256 _LUSDAmount, address _upperHint, address _lowerHint) external {
        _adjustTrove(msg.sender, 0, _LUSDAmount, false, _upperHint, _lowerHint, 0);
    }

    function adjustTrove(
        uint256 _maxFeePercentage,
        uint256 _collWithdrawal,
        uint256 _LUSDChange,
        bool _isDebtIncrease,
        address _upperHint,
        address _lowerHint
    ) external payable {
        _adjustTrove(msg.sender, _collWithdrawal, _LUSDChange, _isDebtIncrease, _upperHint, _lowerHint, _maxFeePercentage);
    }

    function _adjustTrove(
        address _borrower,
        uint256 _collWithdrawal,
        uint256 _LUSDChange,
        bool _isDebtIncrease,
        address _upperHint,
        address _lowerHint,
        uint256 _maxFeePercentage
    ) internal {
        AdjustVars memory vars;
        vars.price = priceFeed.fetchPrice();
        bool isRecoveryMode = _checkRecoveryMode(vars.price);
        if (_isDebtIncrease) {
            _requireValidMaxFeePercentage(_maxFeePercentage, isRecoveryMode);
            require(_LUSDChange > 0, "BorrowerOps: Debt increase requires non-zero debtChange");
        }
        require(msg.value == 0 || _collWithdrawal == 0, "BorrowerOperations: Cannot withdraw and add coll");
        require(msg.value != 0 || _collWithdrawal != 0 || _LUSDChange != 0, "BorrowerOps: There must be either a collateral change or a debt change");
        require(troveManager.getTroveStatus(_borrower) == 1, "BorrowerOps: Trove does not exist or is closed");

        troveManager.applyPendingRewards(_borrower);
        if (msg.value != 0) {
            vars.collChange = msg.value;
            vars.isCollIncrease = true;
        } else {
            vars.collChange = _collWithdrawal;
        }
        vars.netDebtChange = _LUSDChange;
        if (_isDebtIncrease && !isRecoveryMode) {
            vars.LUSDFee = _triggerBorrowingFee(_LUSDChange, _maxFeePercentage);
            vars.netDebtChange += vars.LUSDFee;
        }
        vars.debt = troveManager.getTroveDebt(_borrower);
        vars.coll = troveManager.getTroveColl(_borrower);
        vars.oldICR = _computeCR(vars.coll, vars.debt, vars.price);
        (uint256 newColl, uint256 newDebt) =
            _newTroveAmounts(vars.coll, vars.debt, vars.collChange, vars.isCollIncrease, vars.netDebtChange, _isDebtIncrease);
        vars.newICR = _computeCR(newColl, newDebt, vars.price);
        require(_collWithdrawal <= vars.coll, "BorrowerOps: withdrawal exceeds the collateral");

        if (isRecoveryMode) {
            require(_collWithdrawal == 0, "BorrowerOps: Collateral withdrawal not permitted Recovery Mode");
            if (_isDebtIncrease) {
                _requireICRisAboveCCR(vars.newICR);
                require(vars.newICR >= vars.oldICR, "BorrowerOps: Cannot decrease your Trove's ICR in Recovery Mode");
            }
        } else {
            _requireICRisAboveMCR(vars.newICR);
            _requireNewTCRisAboveCCR(
                _getNewTCRFromTroveChange(vars.collChange, vars.isCollIncrease, vars.netDebtChange, _isDebtIncrease, vars.price)
            );
        }
        if (!_isDebtIncrease && _LUSDChange > 0) {
            _requireAtLeastMinNetDebt(_getNetDebt(vars.debt) - vars.netDebtChange);
            require(vars.netDebtChange <= vars.debt - LUSD_GAS_COMPENSATION, "BorrowerOps: Amount repaid must not be larger than the Trove's debt");
            require(lusdToken.balanceOf(_borrower) >= vars.netDebtChange, "BorrowerOps: Caller doesnt have enough LUSD to make repayment");
        }

        vars.newColl = vars.isCollIncrease
            ? troveManager.increaseTroveColl(_borrower, vars.collChange)
            : troveManager.decreaseTroveColl(_borrower, vars.collChange);
        vars.newDebt = _isDebtIncrease
            ? troveManager.increaseTroveDebt(_borrower, vars.netDebtChange)
            : troveManager.decreaseTroveDebt(_borrower, vars.netDebtChange);
        vars.stake = troveManager.updateStakeAndTotalStakes(_borrower);
        sortedTroves.reInsert(_borrower, _computeNominalCR(newColl, newDebt), _upperHint, _lowerHint);

        emit TroveUpdated(_borrower, vars.newDebt, vars.newColl, vars.stake, BorrowerOperation.adjustTrove);
        emit LUSDBorrowingFeePaid(msg.sender, vars.LUSDFee);

        if (_isDebtIncrease) {
            _withdrawLUSD(msg.sender, _LUSDChange, vars.netDebtChange);
        } else {
            _repayLUSD(msg.sender, _LUSDChange);
        }
        if (vars.isCollIncrease) {
            _activePoolAddColl(vars.collChange);
        } else {
            activePool.sendETH(msg.sender, vars.collChange);
        }
    }

    function closeTrove() external {
        require(troveManager.getTroveStatus(msg.sender) == 1, "BorrowerOps: Trove does not exist or is closed");
        uint256 price = priceFeed.fetchPrice();
        require(!_checkRecoveryMode(price), "BorrowerOps: Operation not permitted during Recovery Mode");
        troveManager.applyPendingRewards(msg.sender);
        uint256 coll = troveManager.getTroveColl(msg.sender);
        uint256 debt = troveManager.getTroveDebt(msg.sender);
        require(lusdToken.balanceOf(msg.sender) >= debt - LUSD_GAS_COMPENSATION, "BorrowerOps: Caller doesnt have enough LUSD to make repayment");
        _requireNewTCRisAboveCCR(_getNewTCRFromTroveChange(coll, false, debt, false, price));
        troveManager.removeStake(msg.sender);
        troveManager.closeTrove(msg.sender);
        emit TroveUpdated(msg.sender, 0, 0, 0, BorrowerOperation.closeTrove);
        _repayLUSD(msg.sender, debt - LUSD_GAS_COMPENSATION);
        _repayLUSD(gasPoolAddress, LUSD_GAS_COMPENSATION);
        activePool.sendETH(msg.sender, coll);
    }

    function claimCollateral() external {
        collSurplusPool.claimColl(msg.sender);
    }

    function _triggerBorrowingFee(uint256 _LUSDAmount, uint256 _maxFeePercentage) internal returns (uint256) {
        troveManager.decayBaseRateFromBorrowing();
        uint256 LUSDFee = troveManager.getBorrowingFee(_LUSDAmount);
        _requireUserAcceptsFee(LUSDFee, _LUSDAmount, _maxFeePercentage);
        lusdToken.mint(lqtyStakingAddress, LUSDFee);
        return LUSDFee;
    }

    function _newTroveAmounts(
        uint256 _coll,
        uint256 _debt,
        uint256 _collChange,
        bool _isCollIncrease,
        uint256 _debtChange,
        bool _isDebtIncrease
    ) internal pure returns (uint256, uint256) {
        return (
            _isCollIncrease ? _coll + _collChange : _coll - _collChange,
            _isDebtIncrease ? _debt + _debtChange : _debt - _debtChange
        );
    }

    function _getNewTCRFromTroveChange(
        uint256 _collChange,
        bool _isCollIncrease,
        uint256 _debtChange,
        bool _isDebtIncrease,
        uint256 _price
    ) internal view returns (uint256) {
        (uint256 totalColl, uint256 totalDebt) = _newTroveAmounts(
            getEntireSystemColl(), getEntireSystemDebt(), _collChange, _isCollIncrease, _debtChange, _isDebtIncrease
        );
        return _computeCR(totalColl, totalDebt, _price);
    }

    function _activePoolAddColl(uint256 _amount) internal {
        (bool success,) = address(activePool).call{value: _amount}("");
        require(success, "BorrowerOps: Sending ETH to ActivePool failed");
    }

    function _withdrawLUSD(address _account, uint256 _LUSDAmount, uint256 _netDebtIncrease) internal {
        activePool.increaseLUSDDebt(_netDebtIncrease);
        lusdToken.mint(_account, _LUSDAmount);
    }

    function _repayLUSD(address _account, uint256 _LUSD) internal {
        activePool.decreaseLUSDDebt(_LUSD);
        lusdToken.burn(_account, _LUSD);
    }

    function _requireICRisAboveMCR(uint256 _newICR) internal pure {
        require(_newICR >= MCR, "BorrowerOps: An operation that would result in ICR < MCR is not permitted");
    }

    function _requireICRisAboveCCR(uint256 _newICR) internal pure {
        require(_newICR >= CCR, "BorrowerOps: Operation must leave trove with ICR >= CCR");
    }

    function _requireNewTCRisAboveCCR(uint256 _newTCR) internal pure {
        require(_newTCR >= CCR, "BorrowerOps: An operation that would result in TCR < CCR is not permitted");
    }

    function _requireAtLeastMinNetDebt(uint256 _netDebt) internal pure {
        require(_netDebt >= MIN_NET_DEBT, "BorrowerOps: Trove's net debt must be greater than minimum");
    }

    function _requireValidMaxFeePercentage(uint256 _maxFeePercentage, bool _isRecoveryMode) internal pure {
        if (_isRecoveryMode) {
            require(_maxFeePercentage <= DECIMAL_PRECISION, "Max fee percentage must less than or equal to 100%");
        } else {
            require(
                _maxFeePercentage >= BORROWING_FEE_FLOOR && _maxFeePercentage <= DECIMAL_PRECISION,
                "Max fee percentage must be between 0.5% and 100%"
            );
        }
    }
}
