"""Liquity V1's trove events: topics and a decoder (borrower indexed, the rest static words).

TroveManager.sol and BorrowerOperations.sol (liquity/dev 5174ecd) both emit `TroveUpdated(address indexed _borrower,
uint _debt, uint _coll, uint _stake, <operation enum>)`; enums are uint8 in an event's signature, so both share one
topic and differ only in the operation's meaning. TroveManager also emits `TroveLiquidated(address indexed, uint
_debt, uint _coll, TroveManagerOperation)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrisk.abi import event_topic

EVENTS: dict[str, str] = {
    "TroveUpdated": "TroveUpdated(address,uint256,uint256,uint256,uint8)",
    "TroveLiquidated": "TroveLiquidated(address,uint256,uint256,uint8)",
}
TOPICS: dict[str, str] = {event_topic(sig): name for name, sig in EVENTS.items()}
#: TroveManager.TroveManagerOperation and BorrowerOperations.BorrowerOperation, by enum value.
TROVE_MANAGER_OPERATIONS = (
    "applyPendingRewards",
    "liquidateInNormalMode",
    "liquidateInRecoveryMode",
    "redeemCollateral",
)
BORROWER_OPERATIONS = ("openTrove", "closeTrove", "adjustTrove")


@dataclass(frozen=True)
class TroveEvent:
    block_number: int  #: block
    block_hash: str  #: block hash, for reorg checks
    tx_hash: str  #: transaction hash
    log_index: int  #: position of the log in the block
    event: str  #: TroveUpdated or TroveLiquidated
    emitter: str  #: "TroveManager" or "BorrowerOperations"
    wallet: str  #: the borrower
    debt: int  #: debt after the operation (TroveUpdated) or liquidated (TroveLiquidated), LUSD wei
    coll: int  #: collateral likewise, wei (a capped Recovery Mode liquidation reports what went to the pool)
    stake: int | None  #: stake after the operation (TroveUpdated)
    operation: int  #: the operation enum's value
    operation_name: str  #: its name in the emitter's enum


def decode_log(log: dict[str, Any], trove_manager: str) -> TroveEvent | None:
    """A trove log as a TroveEvent, or None for other logs."""
    topics: list[str] = log["topics"]
    name = TOPICS.get(topics[0]) if topics else None
    if name is None:
        return None
    body = log["data"][2:]
    words = [int(body[i : i + 64], 16) for i in range(0, len(body), 64)]
    from_trove_manager = log["address"].lower() == trove_manager
    operation = words[-1]
    names = TROVE_MANAGER_OPERATIONS if from_trove_manager else BORROWER_OPERATIONS
    return TroveEvent(
        block_number=int(log["blockNumber"], 16),
        block_hash=log["blockHash"],
        tx_hash=log["transactionHash"],
        log_index=int(log["logIndex"], 16),
        event=name,
        emitter="TroveManager" if from_trove_manager else "BorrowerOperations",
        wallet="0x" + topics[1][-40:],
        debt=words[0],
        coll=words[1],
        stake=words[2] if name == "TroveUpdated" else None,
        operation=operation,
        operation_name=names[operation] if operation < len(names) else str(operation),
    )
