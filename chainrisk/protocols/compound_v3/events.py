"""Compound V3 (Comet) events (CometMainInterface.sol, and its proxy's Upgraded): topics, and a decoder that slices
the log's hex (every field is static); which addresses in them hold positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrisk.abi import event_topic
from chainrisk.abi import word_address as _address

#: CometMainInterface's events: signature, and the roles of its indexed addresses (topics 1..3) in our columns.
EVENTS: dict[str, str] = {
    "Supply": "Supply(address,address,uint256)",  # from, dst (indexed); amount
    "Transfer": "Transfer(address,address,uint256)",  # from, to (indexed); amount
    "Withdraw": "Withdraw(address,address,uint256)",  # src, to (indexed); amount
    "SupplyCollateral": "SupplyCollateral(address,address,address,uint256)",  # from, dst, asset; amount
    "TransferCollateral": "TransferCollateral(address,address,address,uint256)",  # from, to, asset; amount
    "WithdrawCollateral": "WithdrawCollateral(address,address,address,uint256)",  # src, to, asset; amount
    "AbsorbDebt": "AbsorbDebt(address,address,uint256,uint256)",  # absorber, borrower; basePaidOut, usdValue
    # absorber, borrower, asset (indexed); collateralAbsorbed, usdValue
    "AbsorbCollateral": "AbsorbCollateral(address,address,address,uint256,uint256)",
    "BuyCollateral": "BuyCollateral(address,address,uint256,uint256)",  # buyer, asset; baseAmount, collateralAmount
    # The pause guardian's or governor's Comet.pause: the five flags (data), stored as the pauseFlags bitmap they make
    # (CometCore's PAUSE_*_OFFSET: supply 0, transfer 1, withdraw 2, absorb 3, buy 4) in the amount, the counterparty
    # the Comet itself (the log names no caller).
    "PauseAction": "PauseAction(bool,bool,bool,bool,bool)",
    # Not Comet's own: its proxy's (OpenZeppelin's TransparentUpgradeableProxy, ERC1967Upgrade._upgradeTo), logged at
    # the address Comet's events come from when CometProxyAdmin.deployAndUpgradeTo points it at a new implementation:
    # the moment every setting a Configurator proposal changed takes effect. The implementation (indexed) is stored as
    # the counterparty, the amount as 0.
    "Upgraded": "Upgraded(address)",
}
TOPICS: dict[str, str] = {event_topic(sig): name for name, sig in EVENTS.items()}
#: Events whose counterparty holds a position too: both sides of a transfer.
TWO_SIDED = ("Transfer", "TransferCollateral")
ZERO = "0x" + "0" * 40

#: (wallet topic, counterparty topic, asset topic) per event; None where the event has no such address.
_ROLES: dict[str, tuple[int | None, int, int | None]] = {
    "Supply": (2, 1, None),
    "Transfer": (1, 2, None),
    "Withdraw": (1, 2, None),
    "SupplyCollateral": (2, 1, 3),
    "TransferCollateral": (1, 2, 3),
    "WithdrawCollateral": (1, 2, 3),
    "AbsorbDebt": (2, 1, None),
    "AbsorbCollateral": (2, 1, 3),
    "BuyCollateral": (None, 1, 2),
    "Upgraded": (None, 1, None),
    "PauseAction": (None, 0, None),  # no address topic: the counterparty is the log's address (decode_log)
}


@dataclass(frozen=True)
class CometEvent:
    """One decoded log."""

    block_number: int  #: block
    block_hash: str  #: block hash, for reorg checks
    tx_hash: str  #: transaction hash
    log_index: int  #: position of the log in the block
    event: str  #: event name
    wallet: str | None  #: the account whose position changes (the sender of a transfer; None for BuyCollateral)
    #: the other party: payer, receiver, transfer recipient, absorber or buyer; the new implementation (Upgraded); the
    #: Comet (PauseAction)
    counterparty: str
    asset: str | None  #: collateral asset (None for base-token events)
    #: amount; basePaidOut (AbsorbDebt); collateralAbsorbed (AbsorbCollateral); baseAmount (Buy); the pauseFlags
    #: bitmap (PauseAction); 0 (Upgraded)
    amount: int
    value: int | None  #: usdValue of the absorb events (price units, 8 decimals)
    collateral_amount: int | None  #: BuyCollateral: collateral bought


def decode_log(log: dict[str, Any]) -> CometEvent | None:
    """A Comet log as a CometEvent, or None for events that say nothing about positions or governance."""
    topics: list[str] = log["topics"]
    name = TOPICS.get(topics[0]) if topics else None
    if name is None:
        return None
    body = log["data"][2:]
    words = [int(body[i : i + 64], 16) for i in range(0, len(body), 64)]
    wallet_topic, counterparty_topic, asset_topic = _ROLES[name]
    return CometEvent(
        block_number=int(log["blockNumber"], 16),
        block_hash=log["blockHash"],
        tx_hash=log["transactionHash"],
        log_index=int(log["logIndex"], 16),
        event=name,
        wallet=_address(topics[wallet_topic]) if wallet_topic is not None else None,
        counterparty=log["address"].lower() if counterparty_topic == 0 else _address(topics[counterparty_topic]),
        asset=_address(topics[asset_topic]) if asset_topic is not None else None,
        amount=sum(flag << offset for offset, flag in enumerate(words))
        if name == "PauseAction"
        else (words[0] if words else 0),
        value=words[1] if name in ("AbsorbDebt", "AbsorbCollateral") else None,
        collateral_amount=words[1] if name == "BuyCollateral" else None,
    )
