// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @notice chainrisk's call aggregator: many read-only calls of one block in one eth_call, for providers that bill and
/// rate-limit by the call. Never deployed; the RPC client places its runtime code at an unused address with an eth_call
/// state override. Each call is a STATICCALL, so no call sees another's writes (as separate eth_calls would not); a
/// call that fails, or that the eth_call's gas left no room for, is reported as failed, and the client asks it again
/// on its own for the node's own answer.
contract CallAggregator {
    /// @dev Gas kept back from the calls for encoding the answers: a call never takes it, so the eth_call itself does
    /// not run out of gas when the calls use up the node's cap; the calls after that are left unrun (failed).
    uint256 private constant RESERVE = 1_000_000;

    /// @return ok whether each call returned (true), or reverted or was left unrun (false)
    /// @return answers each call's return data, its revert data, or nothing where unrun
    function aggregate(address[] calldata targets, bytes[] calldata data)
        external
        view
        returns (bool[] memory ok, bytes[] memory answers)
    {
        ok = new bool[](targets.length);
        answers = new bytes[](targets.length);
        for (uint256 k = 0; k < targets.length; k++) {
            if (gasleft() <= RESERVE) {
                break;
            }
            (ok[k], answers[k]) = targets[k].staticcall{gas: gasleft() - RESERVE}(data[k]);
        }
    }
}
