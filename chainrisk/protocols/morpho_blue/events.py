"""Morpho Blue events (EventsLib): topics, and a decoder that slices the log's hex (every field is static)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrisk.abi import event_topic
from chainrisk.abi import word_address as _address

#: EventsLib signatures (Id is bytes32, MarketParams a tuple of four addresses and a uint256).
EVENTS: dict[str, str] = {
    "CreateMarket": "CreateMarket(bytes32,(address,address,address,address,uint256))",
    "Supply": "Supply(bytes32,address,address,uint256,uint256)",
    "Withdraw": "Withdraw(bytes32,address,address,address,uint256,uint256)",
    "Borrow": "Borrow(bytes32,address,address,address,uint256,uint256)",
    "Repay": "Repay(bytes32,address,address,uint256,uint256)",
    "SupplyCollateral": "SupplyCollateral(bytes32,address,address,uint256)",
    "WithdrawCollateral": "WithdrawCollateral(bytes32,address,address,address,uint256)",
    "Liquidate": "Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)",
    "AccrueInterest": "AccrueInterest(bytes32,uint256,uint256,uint256)",
    "SetFee": "SetFee(bytes32,uint256)",
    "SetFeeRecipient": "SetFeeRecipient(address)",
}
TOPICS: dict[str, str] = {event_topic(sig): name for name, sig in EVENTS.items()}
#: Events that change a position (the account is `wallet`).
POSITION_EVENTS = ("Supply", "Withdraw", "Borrow", "Repay", "SupplyCollateral", "WithdrawCollateral", "Liquidate")


@dataclass(frozen=True)
class MorphoEvent:
    """One decoded log. Which amount column holds what depends on the event (see `decode_log`)."""

    block_number: int  #: block
    block_hash: str  #: block hash, for reorg checks
    tx_hash: str  #: transaction hash
    log_index: int  #: position of the log in the block
    event: str  #: event name
    market_id: str | None  #: Id (bytes32 hex); None for SetFeeRecipient
    wallet: str | None  #: position owner (onBehalf, borrower) or the new fee recipient
    caller: str | None  #: msg.sender
    receiver: str | None  #: receiver of withdrawn or borrowed assets
    assets: int | None  #: assets; repaidAssets (Liquidate); interest (AccrueInterest); fee (SetFee)
    shares: int | None  #: shares; repaidShares (Liquidate); feeShares (AccrueInterest)
    seized_assets: int | None  #: Liquidate: collateral seized
    bad_debt_assets: int | None  #: Liquidate: debt written off, loan units
    bad_debt_shares: int | None  #: Liquidate: borrow shares written off
    rate: int | None  #: AccrueInterest: the per-second borrow rate used (WAD)
    loan_token: str | None  #: CreateMarket
    collateral_token: str | None  #: CreateMarket
    oracle: str | None  #: CreateMarket
    irm: str | None  #: CreateMarket
    lltv: int | None  #: CreateMarket (WAD)


def _words(data: str) -> list[str]:
    body = data[2:]
    return [body[i : i + 64] for i in range(0, len(body), 64)]


def decode_log(log: dict[str, Any]) -> MorphoEvent | None:
    """A Morpho log as a MorphoEvent, or None for events that say nothing about markets or positions."""
    topics: list[str] = log["topics"]
    name = TOPICS.get(topics[0]) if topics else None
    if name is None:
        return None
    words = _words(log["data"])
    ints = [int(w, 16) for w in words]
    fields: dict[str, Any] = dict.fromkeys(MorphoEvent.__dataclass_fields__)
    fields.update(
        block_number=int(log["blockNumber"], 16),
        block_hash=log["blockHash"],
        tx_hash=log["transactionHash"],
        log_index=int(log["logIndex"], 16),
        event=name,
        market_id=topics[1] if name != "SetFeeRecipient" else None,
    )
    if name == "CreateMarket":
        fields.update(
            loan_token=_address(words[0]),
            collateral_token=_address(words[1]),
            oracle=_address(words[2]),
            irm=_address(words[3]),
            lltv=ints[4],
        )
    elif name in ("Supply", "Repay"):
        fields.update(caller=_address(topics[2]), wallet=_address(topics[3]), assets=ints[0], shares=ints[1])
    elif name in ("Withdraw", "Borrow"):
        fields.update(
            caller=_address(words[0]),
            wallet=_address(topics[2]),
            receiver=_address(topics[3]),
            assets=ints[1],
            shares=ints[2],
        )
    elif name == "SupplyCollateral":
        fields.update(caller=_address(topics[2]), wallet=_address(topics[3]), assets=ints[0])
    elif name == "WithdrawCollateral":
        fields.update(
            caller=_address(words[0]), wallet=_address(topics[2]), receiver=_address(topics[3]), assets=ints[1]
        )
    elif name == "Liquidate":
        fields.update(
            caller=_address(topics[2]),
            wallet=_address(topics[3]),
            assets=ints[0],
            shares=ints[1],
            seized_assets=ints[2],
            bad_debt_assets=ints[3],
            bad_debt_shares=ints[4],
        )
    elif name == "AccrueInterest":
        fields.update(rate=ints[0], assets=ints[1], shares=ints[2])
    elif name == "SetFee":
        fields.update(assets=ints[0])
    else:  # SetFeeRecipient(address indexed newFeeRecipient)
        fields.update(wallet=_address(topics[1]))
    return MorphoEvent(**fields)
