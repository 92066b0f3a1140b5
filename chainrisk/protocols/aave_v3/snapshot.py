"""Reads an Aave V3 market at one pinned block: deployment, reserves, e-mode categories and every account."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.aave_v3.account import Balances, is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve, ReserveConfiguration
from chainrisk.rpc import RpcClient, RpcError

PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
POOL = load_abi("aave-v3", "IPool")
ORACLE = load_abi("aave-v3", "IAaveOracle")
DATA_PROVIDER = load_abi("aave-v3", "AaveProtocolDataProvider")
ERC20 = load_abi("erc20", "IERC20Detailed")
LENS = load_abi("aave-v3", "AaveV3AccountsLens")
ZERO = "0x" + "0" * 40
#: Where the lens's code is placed by state override; an address nobody controls.
LENS_ADDRESS = "0x00000000000000000000000000000000c4a1e115"
LENS_RUNTIME = (Path(__file__).parent / "contracts" / "AaveV3AccountsLens.bin-runtime").read_text().strip()
#: Accounts per lens call: keeps each eth_call well under nodes' default gas cap (50M on geth).
LENS_CHUNK = 250


@dataclass(frozen=True)
class Deployment:
    """What the PoolAddressesProvider names at the snapshot block."""

    provider: str  #: PoolAddressesProvider, lowercase hex
    pool: str  #: Pool proxy
    oracle: str  #: AaveOracle
    data_provider: str  #: AaveProtocolDataProvider
    base_currency_unit: int  #: AaveOracle.BASE_CURRENCY_UNIT (1e8 for USD markets)


@dataclass(frozen=True)
class Account:
    """A wallet's raw state: configuration bitmap, e-mode and balances by reserve id."""

    wallet: str  #: lowercase hex
    configuration: int  #: UserConfigurationMap.data
    emode: int  #: e-mode category id, 0 for none
    balances: dict[int, Balances]  #: reserve id -> balances


def _block_tag(block: int) -> str:
    return hex(block)


def _lower(address: str) -> str:
    return address.lower()


def discover(rpc: RpcClient, provider: str, block: int) -> Deployment:
    """Pool, oracle and data provider from the provider; a clear error when the address is something else."""
    tag = _block_tag(block)
    names = ("getPool", "getPriceOracle", "getPoolDataProvider")
    try:
        raw = rpc.batch([eth_call(provider, PROVIDER, fn, block=tag) for fn in names])
        pool, oracle, data_provider = (_lower(PROVIDER.decode(fn, r)[0]) for fn, r in zip(names, raw, strict=True))
    except (RpcError, ValueError, TypeError) as exc:
        raise UserError(
            f"{provider} is not an Aave V3 PoolAddressesProvider ({type(exc).__name__}); check --address, "
            "or give --protocol for the contract it is"
        ) from None
    if ZERO in (pool, oracle, data_provider):
        raise UserError(f"{provider} names no Pool, oracle or data provider at block {block}; is it set up?")
    try:
        unit = ORACLE.decode(
            "BASE_CURRENCY_UNIT", rpc.call(*eth_call(oracle, ORACLE, "BASE_CURRENCY_UNIT", block=tag))
        )[0]
    except (RpcError, ValueError) as exc:
        raise UserError(f"oracle {oracle} of {provider} does not answer BASE_CURRENCY_UNIT ({exc})") from None
    return Deployment(_lower(provider), pool, oracle, data_provider, unit)


def read_reserves(rpc: RpcClient, deployment: Deployment, block: int) -> list[Reserve]:
    tag = _block_tag(block)
    listed = POOL.decode("getReservesList", rpc.call(*eth_call(deployment.pool, POOL, "getReservesList", block=tag)))[0]
    assets = [_lower(a) for a in listed]
    calls: list[tuple[str, list[Any]]] = []
    for asset in assets:
        calls.append(eth_call(deployment.pool, POOL, "getReserveData", asset, block=tag))
        calls.append(eth_call(deployment.pool, POOL, "getReserveNormalizedIncome", asset, block=tag))
        calls.append(eth_call(deployment.pool, POOL, "getReserveNormalizedVariableDebt", asset, block=tag))
        calls.append(eth_call(deployment.oracle, ORACLE, "getAssetPrice", asset, block=tag))
    calls.append(eth_call(deployment.data_provider, DATA_PROVIDER, "getAllReservesTokens", block=tag))
    raw = rpc.batch(calls)
    symbols = {_lower(a): s for s, a in DATA_PROVIDER.decode("getAllReservesTokens", raw[-1])[0]}
    reserves = []
    for i, asset in enumerate(assets):
        data = POOL.decode("getReserveData", raw[4 * i])[0]
        word = data[0][0]
        reserves.append(
            Reserve(
                asset=asset,
                symbol=symbols.get(asset, asset[:10]),
                reserve_id=data[7],
                configuration_word=word,
                config=ReserveConfiguration.decode(word),
                a_token=_lower(data[8]),
                stable_debt_token=_lower(data[9]),
                variable_debt_token=_lower(data[10]),
                liquidity_index=data[1],
                liquidity_rate=data[2],
                variable_borrow_index=data[3],
                variable_borrow_rate=data[4],
                last_update_timestamp=data[6],
                isolation_mode_total_debt=data[14],
                normalized_income=POOL.decode("getReserveNormalizedIncome", raw[4 * i + 1])[0],
                normalized_variable_debt=POOL.decode("getReserveNormalizedVariableDebt", raw[4 * i + 2])[0],
                price=ORACLE.decode("getAssetPrice", raw[4 * i + 3])[0],
            )
        )
    return reserves


def read_emode_categories(rpc: RpcClient, deployment: Deployment, ids: set[int], block: int) -> list[EModeCategory]:
    tag = _block_tag(block)
    ordered = sorted(i for i in ids if i)
    raw = rpc.batch([eth_call(deployment.pool, POOL, "getEModeCategoryData", i, block=tag) for i in ordered])
    categories = []
    for category_id, item in zip(ordered, raw, strict=True):
        ltv, threshold, bonus, source, label = POOL.decode("getEModeCategoryData", item)[0]
        price = 0
        if _lower(source) != ZERO:
            call = eth_call(deployment.oracle, ORACLE, "getAssetPrice", source, block=tag)
            price = ORACLE.decode("getAssetPrice", rpc.call(*call))[0]
        categories.append(EModeCategory(category_id, ltv, threshold, bonus, _lower(source), label, price))
    return categories


def _token_arrays(reserves: list[Reserve]) -> tuple[list[str], list[str], list[str]]:
    """Token addresses indexed by reserve id (gaps of dropped reserves hold the zero address)."""
    size = max((r.reserve_id for r in reserves), default=-1) + 1
    a_tokens, variable, stable = [ZERO] * size, [ZERO] * size, [ZERO] * size
    for r in reserves:
        a_tokens[r.reserve_id], variable[r.reserve_id], stable[r.reserve_id] = (
            r.a_token, r.variable_debt_token, r.stable_debt_token
        )  # fmt: skip
    return a_tokens, variable, stable


def read_accounts(
    rpc: RpcClient,
    deployment: Deployment,
    reserves: list[Reserve],
    wallets: list[str],
    held_masks: dict[str, int],
    block: int,
) -> list[Account]:
    """Every wallet's configuration, e-mode and balances at `block`, through the lens by state override.

    One eth_call per LENS_CHUNK wallets, sent as JSON-RPC batches; nothing is deployed on the chain.
    `held_masks` marks reserves whose aTokens a wallet received (per the logs) so that supplies not
    enabled as collateral are read as well.
    """
    a_tokens, variable, stable = _token_arrays(reserves)
    size = len(a_tokens)
    override = {LENS_ADDRESS: {"code": LENS_RUNTIME}}
    tag = _block_tag(block)
    chunks = [wallets[i : i + LENS_CHUNK] for i in range(0, len(wallets), LENS_CHUNK)]
    calls = []
    for chunk in chunks:
        masks = [held_masks.get(w, 0) for w in chunk]
        data = LENS.encode("accounts", deployment.pool, chunk, masks, a_tokens, variable, stable)
        calls.append(("eth_call", [{"to": LENS_ADDRESS, "data": data}, tag, override]))
    accounts: list[Account] = []
    for chunk, raw in zip(chunks, rpc.batch(calls), strict=True):
        words = _uint_array(raw)
        n = 0
        for wallet in chunk:
            configuration, emode = words[n], words[n + 1]
            n += 2
            held = held_masks.get(wallet, 0)
            balances: dict[int, Balances] = {}
            for reserve_id in range(size):
                if (is_collateral(configuration, reserve_id) or is_borrowing(configuration, reserve_id)
                        or (held >> reserve_id) & 1):  # fmt: skip
                    balances[reserve_id] = Balances(words[n], words[n + 1], words[n + 2])
                    n += 3
            accounts.append(Account(wallet, configuration, emode, balances))
        if n != len(words):
            raise RuntimeError(f"lens answer has {len(words)} words, parsed {n}")
    return accounts


def _uint_array(raw: str) -> list[int]:
    """ABI-decodes a returned uint256[] by slicing: offset word, length word, then the items."""
    body = raw[2:]
    length = int(body[64:128], 16)
    return [int(body[128 + 64 * i : 192 + 64 * i], 16) for i in range(length)]
