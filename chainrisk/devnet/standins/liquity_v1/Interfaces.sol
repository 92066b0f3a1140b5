// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @notice Stand-in interfaces: the calls Liquity V1's contracts make on each other, with the signatures of
/// liquity/dev (packages/contracts/contracts/Interfaces, at mainnet deployment 5174ecd). chainrisk's own code.

interface IPriceFeed {
    function fetchPrice() external returns (uint256);
    function lastGoodPrice() external view returns (uint256);
}

interface IPool {
    function getETH() external view returns (uint256);
    function getLUSDDebt() external view returns (uint256);
    function increaseLUSDDebt(uint256 _amount) external;
    function decreaseLUSDDebt(uint256 _amount) external;
}

interface IActivePool is IPool {
    function sendETH(address _account, uint256 _amount) external;
}

interface IDefaultPool is IPool {
    function sendETHToActivePool(uint256 _amount) external;
}

interface ILUSDToken {
    function mint(address _account, uint256 _amount) external;
    function burn(address _account, uint256 _amount) external;
    function sendToPool(address _sender, address _poolAddress, uint256 _amount) external;
    function returnFromPool(address _poolAddress, address _receiver, uint256 _amount) external;
    function balanceOf(address _account) external view returns (uint256);
}

interface ISortedTroves {
    function insert(address _id, uint256 _NICR, address _prevId, address _nextId) external;
    function remove(address _id) external;
    function reInsert(address _id, uint256 _newNICR, address _prevId, address _nextId) external;
    function getSize() external view returns (uint256);
    function getFirst() external view returns (address);
    function getLast() external view returns (address);
}

interface IStabilityPool {
    function offset(uint256 _debt, uint256 _coll) external;
    function getTotalLUSDDeposits() external view returns (uint256);
}

interface ICollSurplusPool {
    function accountSurplus(address _account, uint256 _amount) external;
    function claimColl(address _account) external;
}

interface ITroveManager {
    function getTroveStatus(address _borrower) external view returns (uint256);
    function getTroveColl(address _borrower) external view returns (uint256);
    function getTroveDebt(address _borrower) external view returns (uint256);
    function getNominalICR(address _borrower) external view returns (uint256);
    function getCurrentICR(address _borrower, uint256 _price) external view returns (uint256);
    function setTroveStatus(address _borrower, uint256 _num) external;
    function increaseTroveColl(address _borrower, uint256 _collIncrease) external returns (uint256);
    function decreaseTroveColl(address _borrower, uint256 _collDecrease) external returns (uint256);
    function increaseTroveDebt(address _borrower, uint256 _debtIncrease) external returns (uint256);
    function decreaseTroveDebt(address _borrower, uint256 _debtDecrease) external returns (uint256);
    function applyPendingRewards(address _borrower) external;
    function updateTroveRewardSnapshots(address _borrower) external;
    function updateStakeAndTotalStakes(address _borrower) external returns (uint256);
    function addTroveOwnerToArray(address _borrower) external returns (uint256);
    function removeStake(address _borrower) external;
    function closeTrove(address _borrower) external;
    function decayBaseRateFromBorrowing() external;
    function getBorrowingFee(uint256 _LUSDDebt) external view returns (uint256);
}
