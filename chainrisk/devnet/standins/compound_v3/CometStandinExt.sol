// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import "./CometStandinInterfaces.sol";

/// @title Compound V3 Comet stand-in: the extension delegate
/// @notice Stand-in: chainrisk's own Solidity for the devnet, not Compound's bytecode. Reached through the main
/// contract's fallback (delegatecall, so it reads the market's storage): totalsBasic, collateral balances, the
/// ERC-20 name, symbol and all-or-nothing approvals, and the protocol scales.
contract CometStandinExt is CometStandinExtInterface {
    bytes32 internal immutable name32;
    bytes32 internal immutable symbol32;

    constructor(ExtConfiguration memory config) {
        name32 = config.name32;
        symbol32 = config.symbol32;
    }

    function version() external pure override returns (string memory) {
        return "0-standin";
    }

    function baseAccrualScale() external pure override returns (uint64) {
        return BASE_ACCRUAL_SCALE;
    }

    function baseIndexScale() external pure override returns (uint64) {
        return BASE_INDEX_SCALE;
    }

    function factorScale() external pure override returns (uint64) {
        return FACTOR_SCALE;
    }

    function priceScale() external pure override returns (uint64) {
        return PRICE_SCALE;
    }

    function maxAssets() external pure override returns (uint8) {
        return MAX_ASSETS;
    }

    function totalsBasic() external view override returns (TotalsBasic memory) {
        return TotalsBasic({
            baseSupplyIndex: baseSupplyIndex,
            baseBorrowIndex: baseBorrowIndex,
            trackingSupplyIndex: trackingSupplyIndex,
            trackingBorrowIndex: trackingBorrowIndex,
            totalSupplyBase: totalSupplyBase,
            totalBorrowBase: totalBorrowBase,
            lastAccrualTime: lastAccrualTime,
            pauseFlags: pauseFlags
        });
    }

    function name() external view override returns (string memory) {
        return trimmed(name32);
    }

    function symbol() external view override returns (string memory) {
        return trimmed(symbol32);
    }

    /// @dev The bytes32 up to its first zero byte.
    function trimmed(bytes32 text) internal pure returns (string memory) {
        uint256 length = 0;
        while (length < 32 && text[length] != 0) length++;
        bytes memory out = new bytes(length);
        for (uint256 i = 0; i < length; i++) out[i] = text[i];
        return string(out);
    }

    function collateralBalanceOf(address account, address asset) external view override returns (uint128) {
        return userCollateral[account][asset].balance;
    }

    function baseTrackingAccrued(address account) external view override returns (uint64) {
        return userBasic[account].baseTrackingAccrued;
    }

    /// @dev Comet's approvals are permissions: only zero or the maximum are accepted.
    function approve(address spender, uint256 amount) external override returns (bool) {
        if (amount == type(uint256).max) {
            allowInternal(msg.sender, spender, true);
        } else if (amount == 0) {
            allowInternal(msg.sender, spender, false);
        } else {
            revert BadAmount();
        }
        return true;
    }

    function allowance(address owner, address spender) external view override returns (uint256) {
        return hasPermission(owner, spender) ? type(uint256).max : 0;
    }

    function allow(address manager, bool isAllowed_) external override {
        allowInternal(msg.sender, manager, isAllowed_);
    }

    function allowInternal(address owner, address manager, bool isAllowed_) internal {
        isAllowed[owner][manager] = isAllowed_;
        emit Approval(owner, manager, isAllowed_ ? type(uint256).max : 0);
    }
}
