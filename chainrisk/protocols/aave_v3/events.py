"""Aave V3 events that reveal accounts, and the logs of governance's changes: topics, and a decoder that slices the
log's hex without eth-abi."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from chainrisk.abi import data_word as _word
from chainrisk.abi import event_topic
from chainrisk.abi import word_address as _address
from chainrisk.protocols.aave_v3.reserve import Reserve

ZERO_ADDRESS = "0x" + "0" * 40


#: Pool events, by name: (signature, which indexed topic / data word holds what).
POOL_EVENTS: dict[str, str] = {
    "Supply": "Supply(address,address,address,uint256,uint16)",
    "Withdraw": "Withdraw(address,address,address,uint256)",
    "Borrow": "Borrow(address,address,address,uint256,uint8,uint256,uint16)",
    "Repay": "Repay(address,address,address,uint256,bool)",
    "LiquidationCall": "LiquidationCall(address,address,address,uint256,uint256,address,bool)",
    "ReserveUsedAsCollateralEnabled": "ReserveUsedAsCollateralEnabled(address,address)",
    "ReserveUsedAsCollateralDisabled": "ReserveUsedAsCollateralDisabled(address,address)",
    "UserEModeSet": "UserEModeSet(address,uint8)",
    # 3.3+: debt a liquidation left on a wallet without collateral, burnt into the reserve's deficit.
    "DeficitCreated": "DeficitCreated(address,address,uint256)",
}
#: ERC-20 Transfer, emitted by aTokens (supply, withdraw, transfer) and debt tokens (mint, burn).
TRANSFER = "Transfer(address,address,uint256)"

POOL_TOPICS: dict[str, str] = {event_topic(sig): name for name, sig in POOL_EVENTS.items()}
TRANSFER_TOPIC = event_topic(TRANSFER)

#: The logs in which governance changes what stg_aave_v3_parameter_changes reads: the PoolConfigurator's
#: (IPoolConfigurator, the same signatures from @aave/core-v3 1.19 (3.0.2) to aave-v3-origin 3.6; an event a version
#: does not have is never logged) and the AaveOracle's AssetSourceUpdated. Each is stored with the reserve it names
#: (the asset: topic 1, or the first data word where it is not indexed, BorrowableInIsolationChanged), or the e-mode
#: category (EModeCategoryAdded, in `code`), the wallet the zero address; the new oracle source or rate strategy
#: (AssetSourceUpdated, ReserveInterestRateStrategyChanged, ReserveInterestRateDataChanged) as the counterparty. The
#: values themselves are the snapshots'.
GOVERNANCE_EVENTS: dict[str, str] = {
    "ReserveInitialized": "ReserveInitialized(address,address,address,address,address)",
    "ReserveDropped": "ReserveDropped(address)",
    "CollateralConfigurationChanged": "CollateralConfigurationChanged(address,uint256,uint256,uint256)",
    "ReserveFactorChanged": "ReserveFactorChanged(address,uint256,uint256)",
    "LiquidationProtocolFeeChanged": "LiquidationProtocolFeeChanged(address,uint256,uint256)",
    "BorrowCapChanged": "BorrowCapChanged(address,uint256,uint256)",
    "SupplyCapChanged": "SupplyCapChanged(address,uint256,uint256)",
    "UnbackedMintCapChanged": "UnbackedMintCapChanged(address,uint256,uint256)",
    "DebtCeilingChanged": "DebtCeilingChanged(address,uint256,uint256)",
    "LiquidationGracePeriodChanged": "LiquidationGracePeriodChanged(address,uint40)",
    "LiquidationGracePeriodDisabled": "LiquidationGracePeriodDisabled(address)",
    "EModeAssetCategoryChanged": "EModeAssetCategoryChanged(address,uint8,uint8)",
    "ReserveInterestRateStrategyChanged": "ReserveInterestRateStrategyChanged(address,address,address)",
    "ReserveInterestRateDataChanged": "ReserveInterestRateDataChanged(address,address,bytes)",
    "ReserveActive": "ReserveActive(address,bool)",
    "ReserveFrozen": "ReserveFrozen(address,bool)",
    "ReservePaused": "ReservePaused(address,bool)",
    "ReserveBorrowing": "ReserveBorrowing(address,bool)",
    "ReserveStableRateBorrowing": "ReserveStableRateBorrowing(address,bool)",
    "BorrowableInIsolationChanged": "BorrowableInIsolationChanged(address,bool)",
    "SiloedBorrowingChanged": "SiloedBorrowingChanged(address,bool,bool)",
    "ReserveFlashLoaning": "ReserveFlashLoaning(address,bool)",
    "EModeCategoryAdded": "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)",
    "AssetSourceUpdated": "AssetSourceUpdated(address,address)",
}
GOVERNANCE_TOPICS: dict[str, str] = {event_topic(sig): name for name, sig in GOVERNANCE_EVENTS.items()}


@dataclass(frozen=True)
class AaveEvent:
    """One decoded log, normalised: `wallet` is the account whose position the event changes."""

    block_number: int  #: block
    block_hash: str  #: block hash, for reorg checks
    tx_hash: str  #: transaction hash
    log_index: int  #: position of the log in the block
    contract: str  #: emitting contract
    event: str  #: event name; token transfers are ATokenTransfer / VariableDebtTransfer / StableDebtTransfer
    reserve: str | None  #: underlying asset (the collateral asset for LiquidationCall)
    wallet: str  #: account affected
    counterparty: str | None  #: caller, receiver, repayer, liquidator or transfer sender
    amount: int | None  #: token amount (debtToCover for LiquidationCall)
    amount2: int | None  #: liquidatedCollateralAmount for LiquidationCall
    debt_asset: str | None  #: LiquidationCall's debt asset
    code: int | None  #: interest-rate mode (Borrow), e-mode category (UserEModeSet), referral (Supply)
    flag: bool | None  #: useATokens (Repay) or receiveAToken (LiquidationCall)


def token_kinds(reserves: Iterable[Reserve]) -> dict[str, tuple[str, str]]:
    """Token address -> (event name for its transfers, underlying asset), for decode_log."""
    kinds: dict[str, tuple[str, str]] = {}
    for r in reserves:
        kinds[r.a_token] = ("ATokenTransfer", r.asset)
        kinds[r.variable_debt_token] = ("VariableDebtTransfer", r.asset)
        if r.stable_debt_token != ZERO_ADDRESS:  # none since 3.2
            kinds[r.stable_debt_token] = ("StableDebtTransfer", r.asset)
    return kinds


def decode_log(
    log: dict[str, Any], token_kinds: dict[str, tuple[str, str]], governors: Collection[str] = ()
) -> AaveEvent | None:
    """Decodes a pool event, a token Transfer or, from one of `governors` (the market's PoolConfigurator and
    AaveOracle), a governance log (GOVERNANCE_EVENTS); `token_kinds` maps token address -> (kind, underlying).

    Slices the hex directly (static ABI layout: indexed values in topics, the rest one word each in data).
    Returns None for logs that are neither (e.g. transfers to the zero address on burn).
    """
    topics = log["topics"]
    data: str = log["data"]
    head = (
        int(log["blockNumber"], 16),
        log["blockHash"],
        log["transactionHash"],
        int(log["logIndex"], 16),
        log["address"].lower(),
    )
    t0 = topics[0]
    if t0 == TRANSFER_TOPIC:
        kind, underlying = token_kinds.get(head[4], ("", ""))
        if not kind:
            return None
        sender, receiver = _address(topics[1]), _address(topics[2])
        if receiver == ZERO_ADDRESS:
            return None  # a burn: the sender's position shrinks; Withdraw/Repay name the account anyway
        return AaveEvent(*head, kind, underlying, receiver, sender, int(_word(data, 0), 16), None, None, None, None)
    if head[4] in governors and t0 in GOVERNANCE_TOPICS:
        return _governance(head, GOVERNANCE_TOPICS[t0], topics, data)
    name = POOL_TOPICS.get(t0)
    if name is None:
        return None
    if name == "Supply":
        return AaveEvent(
            *head,
            name,
            _address(topics[1]),
            _address(topics[2]),
            _address(_word(data, 0)),
            int(_word(data, 1), 16),
            None,
            None,
            int(topics[3], 16),
            None,
        )
    if name == "Withdraw":
        return AaveEvent(
            *head,
            name,
            _address(topics[1]),
            _address(topics[2]),
            _address(topics[3]),
            int(_word(data, 0), 16),
            None,
            None,
            None,
            None,
        )
    if name == "Borrow":
        return AaveEvent(
            *head,
            name,
            _address(topics[1]),
            _address(topics[2]),
            _address(_word(data, 0)),
            int(_word(data, 1), 16),
            None,
            None,
            int(_word(data, 2), 16),
            None,
        )
    if name == "Repay":
        return AaveEvent(
            *head,
            name,
            _address(topics[1]),
            _address(topics[2]),
            _address(topics[3]),
            int(_word(data, 0), 16),
            None,
            None,
            None,
            int(_word(data, 1), 16) == 1,
        )
    if name == "LiquidationCall":
        return AaveEvent(
            *head,
            name,
            _address(topics[1]),
            _address(topics[3]),
            _address(_word(data, 2)),
            int(_word(data, 0), 16),
            int(_word(data, 1), 16),
            _address(topics[2]),
            None,
            int(_word(data, 3), 16) == 1,
        )
    if name in ("ReserveUsedAsCollateralEnabled", "ReserveUsedAsCollateralDisabled"):
        return AaveEvent(*head, name, _address(topics[1]), _address(topics[2]), None, None, None, None, None, None)
    if name == "DeficitCreated":
        return AaveEvent(
            *head, name, _address(topics[2]), _address(topics[1]), None, int(_word(data, 0), 16), None, None, None, None
        )
    # UserEModeSet(address indexed user, uint8 categoryId)
    return AaveEvent(*head, name, None, _address(topics[1]), None, None, None, None, int(_word(data, 0), 16), None)


def _governance(head: tuple[int, str, str, int, str], name: str, topics: list[str], data: str) -> AaveEvent:
    """A governance log (GOVERNANCE_EVENTS) as an AaveEvent: its reserve or e-mode category, and the new source or
    strategy it names."""
    if name == "EModeCategoryAdded":
        return AaveEvent(*head, name, None, ZERO_ADDRESS, None, None, None, None, int(topics[1], 16), None)
    asset = _address(_word(data, 0)) if name == "BorrowableInIsolationChanged" else _address(topics[1])
    counterparty = None
    if name in ("AssetSourceUpdated", "ReserveInterestRateDataChanged"):
        counterparty = _address(topics[2])
    elif name == "ReserveInterestRateStrategyChanged":
        counterparty = _address(_word(data, 1))
    return AaveEvent(*head, name, asset, ZERO_ADDRESS, counterparty, None, None, None, None, None)
