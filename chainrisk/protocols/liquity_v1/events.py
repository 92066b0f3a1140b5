"""Liquity V1's trove events: topics and a decoder (borrower indexed, the rest static words).

TroveManager.sol and BorrowerOperations.sol (liquity/dev 5174ecd) both emit `TroveUpdated(address indexed _borrower,
uint _debt, uint _coll, uint _stake, <operation enum>)`; enums are uint8 in an event's signature, so both share one
topic and differ only in the operation's meaning. TroveManager also emits `TroveLiquidated(address indexed, uint
_debt, uint _coll, TroveManagerOperation)`.

Neither names the liquidator. TroveManager.batchLiquidateTroves (which `liquidate` calls) ends by logging
`Liquidation(...)` and then paying the caller its gas compensation (`_sendGasCompensation`, to msg.sender): the
LUSD from the GasPool (`LUSDToken.returnFromPool`: a `Transfer(gasPool, liquidator, amount)`) when there is any, then
the ETH from the ActivePool (`sendETH`: `EtherSent(liquidator, amount)`). So in the transaction's receipt the first
such log after each `Liquidation` names the liquidator of the troves liquidated before it (`batches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrisk.abi import data_word, event_topic, word_address

EVENTS: dict[str, str] = {
    "TroveUpdated": "TroveUpdated(address,uint256,uint256,uint256,uint8)",
    "TroveLiquidated": "TroveLiquidated(address,uint256,uint256,uint8)",
}
TOPICS: dict[str, str] = {event_topic(sig): name for name, sig in EVENTS.items()}
#: TroveManager's summary of one batchLiquidateTroves, logged before it pays the caller.
LIQUIDATION = event_topic("Liquidation(uint256,uint256,uint256,uint256)")
TRANSFER = event_topic("Transfer(address,address,uint256)")
#: ActivePool.sendETH's log (address _to, uint _amount; neither indexed).
ETHER_SENT = event_topic("EtherSent(address,uint256)")
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
    liquidator: str | None = None  #: TroveLiquidated: who called the liquidation (from the receipt: `batches`)
    gas_compensation_lusd: int | None = None  #: TroveLiquidated: the LUSD its caller received for it (receipt)
    gas_compensation_eth: int | None = None  #: TroveLiquidated: the ETH likewise, wei


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
        wallet=word_address(topics[1]),
        debt=words[0],
        coll=words[1],
        stake=words[2] if name == "TroveUpdated" else None,
        operation=operation,
        operation_name=names[operation] if operation < len(names) else str(operation),
    )


@dataclass(frozen=True)
class Batch:
    """One batchLiquidateTroves of a transaction, from its receipt."""

    at: int  #: the log index of its `Liquidation`
    liquidator: str  #: the caller it paid its gas compensation to
    coll_compensation: int  #: `_collGasCompensation`: the ETH it paid the caller, wei, over every trove it took
    lusd_compensation: int  #: `_LUSDGasCompensation`: the LUSD likewise


def batches(receipt: dict[str, Any], trove_manager: str, lusd_token: str, active_pool: str) -> list[Batch]:
    """Each `Liquidation` the TroveManager logged in the transaction with the caller it paid after it, in log order;
    one with no payment after it (none was due) is left out."""
    found: list[Batch] = []
    pending: tuple[int, int, int] | None = None
    for log in receipt["logs"]:
        address, topics = str(log["address"]).lower(), log["topics"]
        if not topics:
            continue
        paid: str | None = None
        if address == trove_manager and topics[0] == LIQUIDATION and len(log["data"]) >= 2 + 64 * 4:
            words = [int(data_word(log["data"], k), 16) for k in range(4)]
            pending = (int(log["logIndex"], 16), words[2], words[3])
        elif pending is not None and address == lusd_token and topics[0] == TRANSFER and len(topics) == 3:
            paid = word_address(topics[2])
        elif pending is not None and address == active_pool and topics[0] == ETHER_SENT and len(log["data"]) >= 66:
            paid = word_address(data_word(log["data"], 0))
        if paid is not None and pending is not None:
            found.append(Batch(pending[0], paid, pending[1], pending[2]))
            pending = None
    return found
