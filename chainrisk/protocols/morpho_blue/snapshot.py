"""Reads Morpho Blue at one pinned block: the singleton, each market's state, oracle price and IRM rate, and
every position (three storage words each, fetched in bulk with Morpho's own `extSloads`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.morpho_blue.maths import MarketState, accrue_interest
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.units import ZERO_ADDRESS

MORPHO = load_abi("morpho-blue", "IMorpho")
ORACLE = load_abi("morpho-blue", "IOracle")
IRM = load_abi("morpho-blue", "IIrm")
ERC20 = load_abi("erc20", "IERC20Detailed")
#: An AaveOracle-compatible USD source (getAssetPrice, BASE_CURRENCY_UNIT).
USD_ORACLE = load_abi("aave-v3", "IAaveOracle")
#: MorphoStorageLib.POSITION_SLOT: `position` is the third storage variable of Morpho.
POSITION_SLOT = 2
#: Positions per extSloads call (two slots each): 2,000 storage reads, far under any gas cap.
SLOAD_CHUNK = 1_000


@dataclass(frozen=True)
class Deployment:
    morpho: str  #: the singleton, lowercase hex
    fee_recipient: str  #: receives fee shares at accrual (without a Supply event)
    usd_oracle: str | None  #: AaveOracle-compatible USD price source, if configured
    usd_base_unit: int  #: its BASE_CURRENCY_UNIT (1 when none)


@dataclass(frozen=True)
class MarketParams:
    market_id: str  #: Id, bytes32 hex
    loan_token: str  #: lowercase hex
    collateral_token: str  #: lowercase hex (zero for idle markets)
    oracle: str  #: IOracle (zero for idle markets)
    irm: str  #: IIrm (zero: no interest)
    lltv: int  #: WAD

    @property
    def tuple(self) -> tuple[str, str, str, str, int]:
        return (self.loan_token, self.collateral_token, self.oracle, self.irm, self.lltv)


@dataclass(frozen=True)
class Token:
    address: str  #: lowercase hex
    symbol: str  #: ERC-20 symbol (address prefix when the token has none)
    decimals: int  #: ERC-20 decimals
    price_usd: float | None  #: from the USD oracle, when it knows the token


@dataclass(frozen=True)
class Market:
    params: MarketParams  #: as created
    state: MarketState  #: IMorpho.market(id) at the block, as stored
    borrow_rate: int  #: IRM rate per second (WAD) for accrual from state.last_update
    accrued: MarketState  #: state with interest accrued to the block's timestamp (Morpho._accrueInterest)
    price: int | None  #: IOracle.price() (1e36-scaled), None when the oracle reverts or is absent
    loan: Token  #: loan token
    collateral: Token | None  #: collateral token (None for idle markets)


@dataclass(frozen=True)
class Position:
    market_id: str  #: Id
    wallet: str  #: lowercase hex
    supply_shares: int  #: supply shares
    borrow_shares: int  #: borrow shares
    collateral: int  #: collateral, token units


def _lower(address: str) -> str:
    return address.lower()


def discover(rpc: RpcClient, address: str, block: int, usd_oracle: str | None) -> Deployment:
    """The singleton's fee recipient, after checking the address is a Morpho Blue; the USD oracle's unit."""
    tag = hex(block)
    try:
        raw = rpc.batch([eth_call(address, MORPHO, fn, block=tag) for fn in ("owner", "feeRecipient")])
        MORPHO.decode("owner", raw[0])
        fee_recipient = _lower(MORPHO.decode("feeRecipient", raw[1])[0])
        # A market id nobody created: Morpho answers an all-zero Market; other contracts revert or answer junk.
        probe = MORPHO.decode("market", rpc.call(*eth_call(address, MORPHO, "market", b"\x00" * 32, block=tag)))[0]
        if any(probe):
            raise ValueError("market(0) is not empty")
    except (RpcError, ValueError, TypeError, OverflowError) as exc:
        raise UserError(
            f"{address} is not a Morpho Blue singleton ({type(exc).__name__}); check --address, "
            "or give --protocol for the contract it is"
        ) from None
    unit = 1
    if usd_oracle:
        usd_oracle = _lower(usd_oracle)
        try:
            call = eth_call(usd_oracle, USD_ORACLE, "BASE_CURRENCY_UNIT", block=tag)
            unit = USD_ORACLE.decode("BASE_CURRENCY_UNIT", rpc.call(*call))[0]
        except (RpcError, ValueError, TypeError) as exc:
            raise UserError(
                f"USD oracle {usd_oracle} does not answer BASE_CURRENCY_UNIT ({type(exc).__name__}); "
                "it must be an AaveOracle-compatible contract"
            ) from None
    return Deployment(_lower(address), fee_recipient, usd_oracle or None, unit)


def _each(rpc: RpcClient, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """Results of `calls`, with None for those that fail (one reverting oracle must not sink the batch)."""
    return rpc.batch_each(calls)


def read_tokens(rpc: RpcClient, deployment: Deployment, addresses: list[str], block: int) -> dict[str, Token]:
    tag = hex(block)
    calls: list[tuple[str, list[Any]]] = []
    for token in addresses:
        calls.append(eth_call(token, ERC20, "symbol", block=tag))
        calls.append(eth_call(token, ERC20, "decimals", block=tag))
        if deployment.usd_oracle:
            calls.append(eth_call(deployment.usd_oracle, USD_ORACLE, "getAssetPrice", token, block=tag))
    raw = _each(rpc, calls)
    step = 3 if deployment.usd_oracle else 2
    tokens = {}
    for i, token in enumerate(addresses):
        symbol_raw, decimals_raw = raw[step * i], raw[step * i + 1]
        try:
            symbol = str(ERC20.decode("symbol", symbol_raw)[0]) if symbol_raw else token[:10]
        except (ValueError, TypeError, OverflowError):  # bytes32 symbols (MKR-style) and other oddities
            symbol = token[:10]
        if not decimals_raw or decimals_raw == "0x":
            raise UserError(f"token {token} does not answer decimals(); cannot value its amounts")
        decimals = int(ERC20.decode("decimals", decimals_raw)[0])
        price_usd = None
        if deployment.usd_oracle and raw[step * i + 2] not in (None, "0x"):
            price = USD_ORACLE.decode("getAssetPrice", raw[step * i + 2])[0]
            price_usd = price / deployment.usd_base_unit if price else None
        tokens[token] = Token(token, symbol, decimals, price_usd)
    return tokens


def read_markets(
    rpc: RpcClient, deployment: Deployment, created: list[MarketParams], block: int, timestamp: int
) -> list[Market]:
    """Each market's stored state, oracle price and IRM rate at `block`, and its state accrued to `timestamp`."""
    tag = hex(block)
    morpho = deployment.morpho
    states_raw = rpc.batch([eth_call(morpho, MORPHO, "market", bytes.fromhex(p.market_id[2:]), block=tag)
                            for p in created])  # fmt: skip
    states = [MarketState(*MORPHO.decode("market", r)[0]) for r in states_raw]
    rate_calls = [
        eth_call(p.irm, IRM, "borrowRateView", p.tuple, astuple(s), block=tag)
        for p, s in zip(created, states, strict=True)
        if p.irm != ZERO_ADDRESS
    ]
    rates_raw = iter(_each(rpc, rate_calls))
    prices_raw = iter(
        _each(rpc, [eth_call(p.oracle, ORACLE, "price", block=tag) for p in created if p.oracle != ZERO_ADDRESS])
    )
    addresses = sorted({p.loan_token for p in created} | {p.collateral_token for p in created} - {ZERO_ADDRESS})
    tokens = read_tokens(rpc, deployment, addresses, block)
    markets = []
    for params, state in zip(created, states, strict=True):
        rate = 0
        if params.irm != ZERO_ADDRESS:
            raw = next(rates_raw)
            if raw is None:
                raise UserError(f"IRM {params.irm} of market {params.market_id} reverts on borrowRateView")
            rate = IRM.decode("borrowRateView", raw)[0]
        price = None
        if params.oracle != ZERO_ADDRESS:
            raw = next(prices_raw)
            price = ORACLE.decode("price", raw)[0] if raw not in (None, "0x") else None
        accrued = accrue_interest(state, rate, timestamp, has_irm=params.irm != ZERO_ADDRESS).market
        collateral = tokens.get(params.collateral_token) if params.collateral_token != ZERO_ADDRESS else None
        markets.append(Market(params, state, rate, accrued, price, tokens[params.loan_token], collateral))
    return markets


def position_base_slot(market_id: str, wallet: str) -> int:
    """MorphoStorageLib.positionSupplySharesSlot: keccak256(user . keccak256(id . POSITION_SLOT))."""
    inner = keccak(abi_encode(["bytes32", "uint256"], [bytes.fromhex(market_id[2:]), POSITION_SLOT]))
    return int.from_bytes(keccak(abi_encode(["address", "bytes32"], [wallet, inner])), "big")


def read_positions(rpc: RpcClient, deployment: Deployment, pairs: list[tuple[str, str]], block: int) -> list[Position]:
    """Positions of (market id, wallet) pairs: supplyShares in the base slot, then borrowShares (low 128 bits)
    and collateral (high 128 bits) packed in the next one."""
    tag = hex(block)
    chunks = [pairs[i : i + SLOAD_CHUNK] for i in range(0, len(pairs), SLOAD_CHUNK)]
    calls = []
    for chunk in chunks:
        slots = []
        for market_id, wallet in chunk:
            base = position_base_slot(market_id, wallet)
            slots += [base.to_bytes(32, "big"), (base + 1).to_bytes(32, "big")]
        calls.append(eth_call(deployment.morpho, MORPHO, "extSloads", slots, block=tag))
    positions = []
    for chunk, raw in zip(chunks, rpc.batch(calls), strict=True):
        words = MORPHO.decode("extSloads", raw)[0]
        for k, (market_id, wallet) in enumerate(chunk):
            packed = int.from_bytes(words[2 * k + 1], "big")
            supply = int.from_bytes(words[2 * k], "big")
            positions.append(Position(market_id, wallet, supply, packed & (2**128 - 1), packed >> 128))
    return positions
