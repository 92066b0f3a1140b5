// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @notice chainrisk's call aggregator: many read-only calls of one block in one eth_call, for providers that bill and
/// rate-limit by the call. Never deployed; the RPC client places its runtime code at an unused address with an eth_call
/// state override. Each call is a STATICCALL, so no call sees another's writes (as separate eth_calls would not).
contract CallAggregator {
    /// @dev Gas kept back from the calls for encoding the answers: a call never takes it, so the eth_call itself does
    /// not run out of gas when the calls use up the node's cap; the calls after that are left unrun.
    uint256 private constant RESERVE = 1_000_000;
    uint8 private constant UNRUN = 0;
    uint8 private constant RETURNED = 1;
    /// @dev Failed having used under half the gas it was given: the callee's own refusal, not a lack of gas.
    uint8 private constant REVERTED = 2;
    /// @dev Failed having used half the gas it was given or more: it may have run out (of its own, or an inner call's).
    uint8 private constant EXHAUSTED = 3;

    /// @return status each call's outcome: UNRUN, RETURNED, REVERTED or EXHAUSTED
    /// @return answers each call's return data, its revert data, or nothing where unrun
    function aggregate(address[] calldata targets, bytes[] calldata data)
        external
        view
        returns (uint8[] memory status, bytes[] memory answers)
    {
        status = new uint8[](targets.length);
        answers = new bytes[](targets.length);
        for (uint256 k = 0; k < targets.length; k++) {
            uint256 before = gasleft();
            if (before <= RESERVE) {
                break;
            }
            uint256 allowance = before - RESERVE;
            bool ok;
            (ok, answers[k]) = targets[k].staticcall{gas: allowance}(data[k]);
            if (ok) {
                status[k] = RETURNED;
            } else {
                status[k] = before - gasleft() < allowance / 2 ? REVERTED : EXHAUSTED;
            }
        }
    }
}
