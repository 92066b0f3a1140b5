// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

interface ILiquityTroveManagerReader {
    function Troves(address borrower)
        external
        view
        returns (uint256 debt, uint256 coll, uint256 stake, uint8 status, uint128 arrayIndex);

    function rewardSnapshots(address borrower) external view returns (uint256 ETH, uint256 LUSDDebt);
}

/// @notice Read-only lens for chainrisk: many borrowers' Liquity V1 troves in one eth_call, through the
/// TroveManager's public getters only (Troves, rewardSnapshots). Never deployed; the indexer places its runtime code
/// at an unused address with an eth_call state override.
/// @dev Output, per borrower: debt, coll, stake, status, arrayIndex, rewardSnapshots.ETH, rewardSnapshots.LUSDDebt.
contract LiquityTrovesLens {
    function troves(address troveManager, address[] calldata borrowers) external view returns (uint256[] memory out) {
        ILiquityTroveManagerReader manager = ILiquityTroveManagerReader(troveManager);
        out = new uint256[](borrowers.length * 7);
        for (uint256 i = 0; i < borrowers.length; i++) {
            (uint256 debt, uint256 coll, uint256 stake, uint8 status, uint128 arrayIndex) = manager.Troves(borrowers[i]);
            (uint256 eth, uint256 lusdDebt) = manager.rewardSnapshots(borrowers[i]);
            uint256 k = i * 7;
            out[k] = debt;
            out[k + 1] = coll;
            out[k + 2] = stake;
            out[k + 3] = status;
            out[k + 4] = arrayIndex;
            out[k + 5] = eth;
            out[k + 6] = lusdDebt;
        }
    }
}
