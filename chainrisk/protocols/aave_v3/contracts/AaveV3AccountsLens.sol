// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

interface IAavePoolReader {
    function getUserConfiguration(address user) external view returns (uint256);
    function getUserEMode(address user) external view returns (uint256);
}

interface IScaledBalance {
    function scaledBalanceOf(address user) external view returns (uint256);
    function balanceOf(address user) external view returns (uint256);
}

/// @notice Read-only lens for chainrisk: every account's raw Aave V3 state in one eth_call. Never deployed;
/// the indexer places its runtime code at an unused address with an eth_call state override.
/// @dev Output, per user: configuration bitmap, e-mode category, then for each reserve id whose collateral
/// or borrowing bit is set, or whose bit is set in the user's `heldMask` (aTokens received per the logs, so
/// supplies not used as collateral are read too): aToken scaled balance, variable debt scaled balance,
/// stable debt balance (balanceOf, which carries its own accrued interest).
contract AaveV3AccountsLens {
    function accounts(
        address pool,
        address[] calldata users,
        uint256[] calldata heldMasks,
        address[] calldata aTokens,
        address[] calldata variableDebtTokens,
        address[] calldata stableDebtTokens
    ) external view returns (uint256[] memory out) {
        uint256 reserves = aTokens.length;
        uint256[] memory buffer = new uint256[](users.length * (2 + 3 * reserves));
        uint256 n = 0;
        for (uint256 u = 0; u < users.length; u++) {
            address user = users[u];
            uint256 config = IAavePoolReader(pool).getUserConfiguration(user);
            buffer[n++] = config;
            buffer[n++] = IAavePoolReader(pool).getUserEMode(user);
            uint256 held = heldMasks[u];
            for (uint256 i = 0; i < reserves; i++) {
                if ((config >> (i << 1)) & 3 == 0 && (held >> i) & 1 == 0) continue;
                buffer[n++] = aTokens[i] == address(0) ? 0 : IScaledBalance(aTokens[i]).scaledBalanceOf(user);
                buffer[n++] = variableDebtTokens[i] == address(0)
                    ? 0
                    : IScaledBalance(variableDebtTokens[i]).scaledBalanceOf(user);
                buffer[n++] = stableDebtTokens[i] == address(0) ? 0 : IScaledBalance(stableDebtTokens[i]).balanceOf(user);
            }
        }
        out = new uint256[](n);
        for (uint256 k = 0; k < n; k++) {
            out[k] = buffer[k];
        }
    }
}
