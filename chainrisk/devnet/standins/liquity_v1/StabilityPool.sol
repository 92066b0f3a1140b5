// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./Interfaces.sol";
import "./LiquityBase.sol";

/// @title StabilityPool (stand-in)
/// @notice Stand-in for Liquity V1's StabilityPool (liquity/dev 5174ecd): provideToSP / withdrawFromSP, offset
/// (called by TroveManager's liquidations), getTotalLUSDDeposits and getETH, and each deposit compounded by the
/// product P and its ETH gain by the sum S, with epochs, scales and the error feedback of
/// _computeRewardsPerUnitStaked. No LQTY issuance and no front ends (provideToSP takes the front-end tag and
/// ignores it). chainrisk's own Solidity, written from the published interface and documented maths; not Liquity's
/// bytecode.
contract StabilityPool is LiquityBase, IStabilityPool {
    string public constant NAME = "StabilityPool";
    uint256 public constant SCALE_FACTOR = 1e9;

    address public owner;
    address public borrowerOperationsAddress;
    ITroveManager public troveManager;
    ILUSDToken public lusdToken;
    ISortedTroves public sortedTroves;

    uint256 internal ETH;
    uint256 internal totalLUSDDeposits;

    struct Deposit {
        uint256 initialValue;
        address frontEndTag;
    }

    struct Snapshots {
        uint256 S;
        uint256 P;
        uint256 G;
        uint128 scale;
        uint128 epoch;
    }

    mapping(address => Deposit) public deposits;
    mapping(address => Snapshots) public depositSnapshots;

    uint256 public P = DECIMAL_PRECISION;
    uint128 public currentScale;
    uint128 public currentEpoch;
    mapping(uint128 => mapping(uint128 => uint256)) public epochToScaleToSum;
    uint256 public lastETHError_Offset;
    uint256 public lastLUSDLossError_Offset;

    event StabilityPoolETHBalanceUpdated(uint256 _newBalance);
    event StabilityPoolLUSDBalanceUpdated(uint256 _newBalance);
    event P_Updated(uint256 _P);
    event S_Updated(uint256 _S, uint128 _epoch, uint128 _scale);
    event EpochUpdated(uint128 _currentEpoch);
    event ScaleUpdated(uint128 _currentScale);
    event DepositSnapshotUpdated(address indexed _depositor, uint256 _P, uint256 _S, uint256 _G);
    event UserDepositChanged(address indexed _depositor, uint256 _newDeposit);
    event ETHGainWithdrawn(address indexed _depositor, uint256 _ETH, uint256 _LUSDLoss);
    event EtherSent(address _to, uint256 _amount);

    constructor() {
        owner = msg.sender;
    }

    function setAddresses(
        address _borrowerOperationsAddress,
        address _troveManagerAddress,
        address _activePoolAddress,
        address _lusdTokenAddress,
        address _sortedTrovesAddress,
        address _priceFeedAddress
    ) external {
        require(msg.sender == owner, "StabilityPool: caller is not the owner");
        borrowerOperationsAddress = _borrowerOperationsAddress;
        troveManager = ITroveManager(_troveManagerAddress);
        activePool = IActivePool(_activePoolAddress);
        lusdToken = ILUSDToken(_lusdTokenAddress);
        sortedTroves = ISortedTroves(_sortedTrovesAddress);
        priceFeed = IPriceFeed(_priceFeedAddress);
        owner = address(0);
    }

    function getETH() external view returns (uint256) {
        return ETH;
    }

    function getTotalLUSDDeposits() external view returns (uint256) {
        return totalLUSDDeposits;
    }

    function provideToSP(uint256 _amount, address) external {
        require(_amount > 0, "StabilityPool: Amount must be non-zero");
        uint256 initialDeposit = deposits[msg.sender].initialValue;
        uint256 depositorETHGain = getDepositorETHGain(msg.sender);
        uint256 compoundedLUSDDeposit = getCompoundedLUSDDeposit(msg.sender);
        lusdToken.sendToPool(msg.sender, address(this), _amount);
        totalLUSDDeposits += _amount;
        emit StabilityPoolLUSDBalanceUpdated(totalLUSDDeposits);
        uint256 newDeposit = compoundedLUSDDeposit + _amount;
        _updateDepositAndSnapshots(msg.sender, newDeposit);
        emit UserDepositChanged(msg.sender, newDeposit);
        emit ETHGainWithdrawn(msg.sender, depositorETHGain, initialDeposit - compoundedLUSDDeposit);
        _sendETHGainToDepositor(depositorETHGain);
    }

    function withdrawFromSP(uint256 _amount) external {
        if (_amount != 0) {
            _requireNoUnderCollateralizedTroves();
        }
        uint256 initialDeposit = deposits[msg.sender].initialValue;
        require(initialDeposit > 0, "StabilityPool: User must have a non-zero deposit");
        uint256 depositorETHGain = getDepositorETHGain(msg.sender);
        uint256 compoundedLUSDDeposit = getCompoundedLUSDDeposit(msg.sender);
        uint256 LUSDtoWithdraw = _min(_amount, compoundedLUSDDeposit);
        lusdToken.returnFromPool(address(this), msg.sender, LUSDtoWithdraw);
        totalLUSDDeposits -= LUSDtoWithdraw;
        emit StabilityPoolLUSDBalanceUpdated(totalLUSDDeposits);
        uint256 newDeposit = compoundedLUSDDeposit - LUSDtoWithdraw;
        _updateDepositAndSnapshots(msg.sender, newDeposit);
        emit UserDepositChanged(msg.sender, newDeposit);
        emit ETHGainWithdrawn(msg.sender, depositorETHGain, initialDeposit - compoundedLUSDDeposit);
        _sendETHGainToDepositor(depositorETHGain);
    }

    function offset(uint256 _debtToOffset, uint256 _collToAdd) external {
        require(msg.sender == address(troveManager), "StabilityPool: Caller is not TroveManager");
        uint256 totalLUSD = totalLUSDDeposits;
        if (totalLUSD == 0 || _debtToOffset == 0) {
            return;
        }
        (uint256 ETHGainPerUnitStaked, uint256 LUSDLossPerUnitStaked) =
            _computeRewardsPerUnitStaked(_collToAdd, _debtToOffset, totalLUSD);
        _updateRewardSumAndProduct(ETHGainPerUnitStaked, LUSDLossPerUnitStaked);
        activePool.decreaseLUSDDebt(_debtToOffset);
        totalLUSDDeposits -= _debtToOffset;
        emit StabilityPoolLUSDBalanceUpdated(totalLUSDDeposits);
        lusdToken.burn(address(this), _debtToOffset);
        activePool.sendETH(address(this), _collToAdd);
    }

    /// Per-unit-staked ETH gain and LUSD loss, each floor division's error fed into the next (the loss rounded up
    /// by one so deposits err on the pool's side).
    function _computeRewardsPerUnitStaked(uint256 _collToAdd, uint256 _debtToOffset, uint256 _totalLUSDDeposits)
        internal
        returns (uint256 ETHGainPerUnitStaked, uint256 LUSDLossPerUnitStaked)
    {
        uint256 ETHNumerator = _collToAdd * DECIMAL_PRECISION + lastETHError_Offset;
        assert(_debtToOffset <= _totalLUSDDeposits);
        if (_debtToOffset == _totalLUSDDeposits) {
            LUSDLossPerUnitStaked = DECIMAL_PRECISION;
            lastLUSDLossError_Offset = 0;
        } else {
            uint256 LUSDLossNumerator = _debtToOffset * DECIMAL_PRECISION - lastLUSDLossError_Offset;
            LUSDLossPerUnitStaked = LUSDLossNumerator / _totalLUSDDeposits + 1;
            lastLUSDLossError_Offset = LUSDLossPerUnitStaked * _totalLUSDDeposits - LUSDLossNumerator;
        }
        ETHGainPerUnitStaked = ETHNumerator / _totalLUSDDeposits;
        lastETHError_Offset = ETHNumerator - ETHGainPerUnitStaked * _totalLUSDDeposits;
    }

    function _updateRewardSumAndProduct(uint256 _ETHGainPerUnitStaked, uint256 _LUSDLossPerUnitStaked) internal {
        uint256 currentP = P;
        uint256 newP;
        uint256 newProductFactor = DECIMAL_PRECISION - _LUSDLossPerUnitStaked;
        uint128 scale = currentScale;
        uint128 epoch = currentEpoch;
        uint256 newS = epochToScaleToSum[epoch][scale] + _ETHGainPerUnitStaked * currentP;
        epochToScaleToSum[epoch][scale] = newS;
        emit S_Updated(newS, epoch, scale);
        if (newProductFactor == 0) {
            currentEpoch = epoch + 1;
            emit EpochUpdated(currentEpoch);
            currentScale = 0;
            emit ScaleUpdated(0);
            newP = DECIMAL_PRECISION;
        } else if ((currentP * newProductFactor) / DECIMAL_PRECISION < SCALE_FACTOR) {
            newP = (currentP * newProductFactor * SCALE_FACTOR) / DECIMAL_PRECISION;
            currentScale = scale + 1;
            emit ScaleUpdated(currentScale);
        } else {
            newP = (currentP * newProductFactor) / DECIMAL_PRECISION;
        }
        assert(newP > 0);
        P = newP;
        emit P_Updated(newP);
    }

    function getDepositorETHGain(address _depositor) public view returns (uint256) {
        uint256 initialDeposit = deposits[_depositor].initialValue;
        if (initialDeposit == 0) {
            return 0;
        }
        Snapshots memory s = depositSnapshots[_depositor];
        uint256 firstPortion = epochToScaleToSum[s.epoch][s.scale] - s.S;
        uint256 secondPortion = epochToScaleToSum[s.epoch][s.scale + 1] / SCALE_FACTOR;
        return (initialDeposit * (firstPortion + secondPortion)) / s.P / DECIMAL_PRECISION;
    }

    function getCompoundedLUSDDeposit(address _depositor) public view returns (uint256) {
        uint256 initialDeposit = deposits[_depositor].initialValue;
        if (initialDeposit == 0) {
            return 0;
        }
        Snapshots memory s = depositSnapshots[_depositor];
        if (s.epoch < currentEpoch) {
            return 0;
        }
        uint256 compounded;
        uint128 scaleDiff = currentScale - s.scale;
        if (scaleDiff == 0) {
            compounded = (initialDeposit * P) / s.P;
        } else if (scaleDiff == 1) {
            compounded = (initialDeposit * P) / s.P / SCALE_FACTOR;
        }
        if (compounded < initialDeposit / 1e9) {
            return 0;
        }
        return compounded;
    }

    function _updateDepositAndSnapshots(address _depositor, uint256 _newValue) internal {
        deposits[_depositor].initialValue = _newValue;
        if (_newValue == 0) {
            delete depositSnapshots[_depositor];
            emit DepositSnapshotUpdated(_depositor, 0, 0, 0);
            return;
        }
        uint256 currentS = epochToScaleToSum[currentEpoch][currentScale];
        depositSnapshots[_depositor] = Snapshots(currentS, P, 0, currentScale, currentEpoch);
        emit DepositSnapshotUpdated(_depositor, P, currentS, 0);
    }

    function _sendETHGainToDepositor(uint256 _amount) internal {
        if (_amount == 0) {
            return;
        }
        ETH -= _amount;
        emit StabilityPoolETHBalanceUpdated(ETH);
        emit EtherSent(msg.sender, _amount);
        (bool success,) = msg.sender.call{value: _amount}("");
        require(success, "StabilityPool: sending ETH failed");
    }

    function _requireNoUnderCollateralizedTroves() internal {
        uint256 price = priceFeed.fetchPrice();
        address lowestTrove = sortedTroves.getLast();
        require(
            troveManager.getCurrentICR(lowestTrove, price) >= MCR,
            "StabilityPool: Cannot withdraw while there are troves with ICR < MCR"
        );
    }

    receive() external payable {
        require(msg.sender == address(activePool), "StabilityPool: Caller is not ActivePool");
        ETH += msg.value;
        emit StabilityPoolETHBalanceUpdated(ETH);
    }
}
