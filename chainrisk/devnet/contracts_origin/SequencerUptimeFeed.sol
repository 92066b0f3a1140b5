// SPDX-License-Identifier: MIT
pragma solidity 0.8.27;

/// @notice chainrisk's own settable L2 sequencer-uptime feed for the devnet's L2 Aave market (not Chainlink's
/// contract): it answers `latestRoundData()` as Chainlink's sequencer uptime feeds do, which is all Aave's
/// PriceOracleSentinel reads: answer 0 = sequencer up, 1 = down; `startedAt` = when that status began.
contract SequencerUptimeFeed {
    address public immutable owner;
    int256 public latestAnswer;
    uint256 public startedAt;
    uint80 public latestRound;

    event StatusChanged(int256 indexed answer, uint80 indexed roundId, uint256 startedAt);

    constructor(bool up, uint256 since) {
        owner = msg.sender;
        _set(up, since);
    }

    /// @notice Sets the sequencer status as of `since` (a past timestamp backdates a recovery's grace period).
    function setStatus(bool up, uint256 since) external {
        require(msg.sender == owner, "SequencerUptimeFeed: not owner");
        _set(up, since);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt_, uint256 updatedAt, uint80 answeredInRound)
    {
        return (latestRound, latestAnswer, startedAt, startedAt, latestRound);
    }

    function _set(bool up, uint256 since) private {
        require(since <= block.timestamp, "SequencerUptimeFeed: future status");
        latestAnswer = up ? int256(0) : int256(1);
        startedAt = since;
        latestRound += 1;
        emit StatusChanged(latestAnswer, latestRound, since);
    }
}
