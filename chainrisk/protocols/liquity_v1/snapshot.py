"""Reads Liquity V1 at one pinned block through its public getters only: the TroveManager's constants and linked
contracts, the system (pools, Stability Pool, L terms, stakes, base rate, price) and every trove's stored state and
reward snapshots (`Troves`, `rewardSnapshots`, many troves per eth_call through a read-only lens placed by state
override), in JSON-RPC batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.lens import getters_of, lens_answers, unanswered_read
from chainrisk.protocols.liquity_v1.constants import TROVE_MANAGER_NAME
from chainrisk.protocols.liquity_v1.maths import Params, System, Trove
from chainrisk.rpc import RpcClient, RpcError

TROVE_MANAGER = load_abi("liquity-v1", "ITroveManager")
STABILITY_POOL = load_abi("liquity-v1", "IStabilityPool")
POOL = load_abi("liquity-v1", "IPool")
PRICE_FEED = load_abi("liquity-v1", "IPriceFeed")
SORTED_TROVES = load_abi("liquity-v1", "ISortedTroves")
ERC20 = load_abi("erc20", "IERC20Detailed")
LENS = load_abi("liquity-v1", "LiquityTrovesLens")
#: Where the lens's code is placed by state override; an address nobody controls.
LENS_ADDRESS = "0x000000000000000000000000000000001a5e7105"
LENS_RUNTIME = (Path(__file__).parent / "contracts" / "LiquityTrovesLens.bin-runtime").read_text().strip()
#: Troves per lens call: two getter calls each (about 20k gas), 10M gas a call, well under nodes' 50M cap.
LENS_CHUNK = 500
#: The TroveManager getters that name its linked contracts, in Deployment's field order.
LINKED = (
    "borrowerOperationsAddress",
    "priceFeed",
    "stabilityPool",
    "activePool",
    "defaultPool",
    "sortedTroves",
    "lusdToken",
)
CONSTANTS = ("MCR", "CCR", "LUSD_GAS_COMPENSATION", "PERCENT_DIVISOR")
#: TroveManager scalars read per snapshot, in System's field order after the pools.
TROVE_MANAGER_STATE = (
    "totalStakes",
    "totalStakesSnapshot",
    "totalCollateralSnapshot",
    "L_ETH",
    "L_LUSDDebt",
    "lastETHError_Redistribution",
    "lastLUSDDebtError_Redistribution",
    "getTroveOwnersCount",
    "baseRate",
    "lastFeeOperationTime",
)


@dataclass(frozen=True)
class Deployment:
    trove_manager: str  #: the TroveManager, lowercase hex
    borrower_operations: str  #: BorrowerOperations (emits TroveUpdated too)
    price_feed: str  #: PriceFeed (lastGoodPrice)
    stability_pool: str  #: StabilityPool
    active_pool: str  #: ActivePool
    default_pool: str  #: DefaultPool
    sorted_troves: str  #: SortedTroves
    lusd_token: str  #: LUSD
    params: Params  #: MCR, CCR, gas compensation, percent divisor
    lusd_symbol: str  #: LUSD's symbol
    lusd_decimals: int  #: LUSD's decimals


def _word(abi_fn: str, raw: Any) -> Any:
    return TROVE_MANAGER.decode(abi_fn, raw)[0]


def discover(rpc: RpcClient, address: str, block: int) -> Deployment:
    """The TroveManager's constants and linked contracts, after checking it is one (NAME() == "TroveManager" and
    every getter answers)."""
    tag = hex(block)
    try:
        raw = rpc.batch([eth_call(address, TROVE_MANAGER, fn, block=tag) for fn in ("NAME", *CONSTANTS, *LINKED)])
        name = _word("NAME", raw[0])
        if name != TROVE_MANAGER_NAME:
            raise ValueError(f"NAME() is {name!r}")
        constants = [int(_word(fn, r)) for fn, r in zip(CONSTANTS, raw[1:5], strict=True)]
        linked = [str(_word(fn, r)).lower() for fn, r in zip(LINKED, raw[5:], strict=True)]
    except (RpcError, ValueError, TypeError, OverflowError) as exc:
        raise UserError(
            f"{address} is not a Liquity V1 TroveManager ({type(exc).__name__}); check --address, or give --protocol "
            "for the contract it is"
        ) from None
    lusd = linked[-1]
    symbol_raw, decimals_raw = rpc.batch_each(
        [eth_call(lusd, ERC20, "symbol", block=tag), eth_call(lusd, ERC20, "decimals", block=tag)]
    )
    try:
        symbol = str(ERC20.decode("symbol", symbol_raw)[0]) if symbol_raw else lusd[:10]
    except (ValueError, TypeError, OverflowError):  # a bytes32 symbol
        symbol = lusd[:10]
    decimals = int(ERC20.decode("decimals", decimals_raw)[0]) if decimals_raw not in (None, "0x") else 18
    bo, feed, sp, active, default, sorted_troves, lusd = linked
    return Deployment(
        address.lower(), bo, feed, sp, active, default, sorted_troves, lusd, Params(*constants), symbol, decimals
    )


def read_system(rpc: RpcClient, deployment: Deployment, block: int) -> System:
    """Pools, Stability Pool, price, stakes, L terms, errors, owners and base rate at `block`."""
    tag = hex(block)
    d = deployment
    calls = [
        eth_call(d.price_feed, PRICE_FEED, "lastGoodPrice", block=tag),
        eth_call(d.active_pool, POOL, "getETH", block=tag),
        eth_call(d.active_pool, POOL, "getLUSDDebt", block=tag),
        eth_call(d.default_pool, POOL, "getETH", block=tag),
        eth_call(d.default_pool, POOL, "getLUSDDebt", block=tag),
        eth_call(d.stability_pool, STABILITY_POOL, "getTotalLUSDDeposits", block=tag),
        eth_call(d.stability_pool, STABILITY_POOL, "getETH", block=tag),
        eth_call(d.sorted_troves, SORTED_TROVES, "getSize", block=tag),
        *(eth_call(d.trove_manager, TROVE_MANAGER, fn, block=tag) for fn in TROVE_MANAGER_STATE),
    ]
    raw = rpc.batch(calls)
    abis = [
        (PRICE_FEED, "lastGoodPrice"),
        (POOL, "getETH"),
        (POOL, "getLUSDDebt"),
        (POOL, "getETH"),
        (POOL, "getLUSDDebt"),
        (STABILITY_POOL, "getTotalLUSDDeposits"),
        (STABILITY_POOL, "getETH"),
        (SORTED_TROVES, "getSize"),
        *((TROVE_MANAGER, fn) for fn in TROVE_MANAGER_STATE),
    ]
    v = [int(abi.decode(fn, r)[0]) for (abi, fn), r in zip(abis, raw, strict=True)]
    state = dict(zip(TROVE_MANAGER_STATE, v[8:], strict=True))
    return System(
        params=d.params,
        price=v[0],
        active_eth=v[1],
        active_debt=v[2],
        default_eth=v[3],
        default_debt=v[4],
        sp_lusd=v[5],
        sp_eth=v[6],
        total_stakes=state["totalStakes"],
        total_stakes_snapshot=state["totalStakesSnapshot"],
        total_collateral_snapshot=state["totalCollateralSnapshot"],
        l_eth=state["L_ETH"],
        l_lusd_debt=state["L_LUSDDebt"],
        last_eth_error=state["lastETHError_Redistribution"],
        last_lusd_debt_error=state["lastLUSDDebtError_Redistribution"],
        trove_owners=state["getTroveOwnersCount"],
        sorted_troves=v[7],
        base_rate=state["baseRate"],
        last_fee_operation_time=state["lastFeeOperationTime"],
    )


def read_troves(rpc: RpcClient, deployment: Deployment, wallets: list[str], block: int) -> list[Trove]:
    """Troves(wallet) and rewardSnapshots(wallet) of each wallet at `block`, LENS_CHUNK wallets per eth_call through
    the lens placed by state override (it calls only those two getters), the calls sent as JSON-RPC batches. A lens
    call the node leaves unanswered (chainrisk.protocols.lens) has its wallets' two getters asked as plain eth_calls."""
    tag = hex(block)
    override = {LENS_ADDRESS: {"code": LENS_RUNTIME}}
    chunks = [wallets[i : i + LENS_CHUNK] for i in range(0, len(wallets), LENS_CHUNK)]
    calls = [
        (
            "eth_call",
            [{"to": LENS_ADDRESS, "data": LENS.encode("troves", deployment.trove_manager, chunk)}, tag, override],
        )
        for chunk in chunks
    ]
    answers = lens_answers(rpc, calls)
    # The getters LiquityTrovesLens.troves calls, their values in the order of its seven words.
    getters = ("Troves", "rewardSnapshots")
    plain = unanswered_read(
        chunks,
        answers,
        lambda ws: getters_of(rpc, deployment.trove_manager, TROVE_MANAGER, getters, [(w,) for w in ws], tag),
    )
    troves = []
    for chunk, raw, read in zip(chunks, answers, plain, strict=True):
        words = LENS.decode("troves", raw)[0] if raw is not None else [w for trove in read for v in trove for w in v]
        if len(words) != 7 * len(chunk):
            raise RuntimeError(f"lens answered {len(words)} words for {len(chunk)} troves")
        for k, wallet in enumerate(chunk):
            debt, coll, stake, status, index, eth, lusd = (int(w) for w in words[7 * k : 7 * k + 7])
            troves.append(Trove(wallet, debt, coll, stake, status, index, eth, lusd))
    return troves
