"""Reads an Aave V3 market at one pinned block: its version, deployment, reserves, e-mode categories and every
account, each version's way (3.0 to 3.7)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.aave_v3.account import Balances, is_borrowing, is_collateral
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve, ReserveConfiguration
from chainrisk.protocols.aave_v3.version import V3_0, PoolVersion
from chainrisk.protocols.lens import decoded, getters_of, lens_answers, unanswered_read
from chainrisk.protocols.quality import DECODE_ERRORS, Problem, decode_uint, read_token_info
from chainrisk.protocols.tokens import any_word_address
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.units import HUGEINT_LIMIT

PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
POOL = load_abi("aave-v3", "IPool")
#: The Pool views releases 3.1 to 3.6 added (IPool at aave-v3-origin's tags v3.1.0-v3.6.0), and POOL_REVISION.
POOL_3X = load_abi("aave-v3", "IPoolV3x")
ORACLE = load_abi("aave-v3", "IAaveOracle")
#: A reserve's interest rate strategy: aave-v3-origin's DefaultReserveInterestRateStrategyV2 (3.1+: one contract
#: holding every reserve's curve, getInterestRateData(reserve) in ray) or 3.0's DefaultReserveInterestRateStrategy
#: (@aave/core-v3: one contract per curve, its parameters immutable, no-argument getters in ray).
STRATEGY_V2 = load_abi("aave-v3", "IDefaultInterestRateStrategyV2")
STRATEGY_V1 = load_abi("aave-v3", "IDefaultInterestRateStrategy")
#: The V1 getters of the four parameters V2's getInterestRateData answers together, in its order.
_V1_CURVE = ("OPTIMAL_USAGE_RATIO", "getBaseVariableBorrowRate", "getVariableRateSlope1", "getVariableRateSlope2")
DATA_PROVIDER = load_abi("aave-v3", "AaveProtocolDataProvider")
ERC20 = load_abi("erc20", "IERC20Detailed")
LENS = load_abi("aave-v3", "AaveV3AccountsLens")
A_TOKEN = load_abi("aave-v3", "IAToken")
VARIABLE_DEBT = load_abi("aave-v3", "IVariableDebtToken")
STABLE_DEBT = load_abi("aave-v3", "IStableDebtToken")
ZERO = "0x" + "0" * 40
#: Where the lens's code is placed by state override; an address nobody controls.
LENS_ADDRESS = "0x00000000000000000000000000000000c4a1e115"
LENS_RUNTIME = (Path(__file__).parent / "contracts" / "AaveV3AccountsLens.bin-runtime").read_text().strip()
#: Accounts per lens call: keeps each eth_call well under nodes' default gas cap (50M on geth).
LENS_CHUNK = 250
#: Fewest accounts a lens call that ran out of gas or time is halved down to before they are read getter by getter.
LENS_CHUNK_MIN = 16
#: A view each release added to IPool, newest first: the newest one a pool answers is its minor version (IPool
#: at aave-v3-origin's tags; 3.0 is @aave/core-v3). 3.5 added no view (its changes are rounding): POOL_REVISION
#: tells it from 3.4 (PoolInstance: 8 for v3.4.0, 9 for v3.5.0).
VERSION_PROBES: tuple[tuple[int, str, tuple[Any, ...]], ...] = (
    (7, "getIsEModeCategoryIsolated", (0,)),
    (6, "getEModeCategoryLtvzeroBitmap", (0,)),
    (4, "RESERVE_INTEREST_RATE_STRATEGY", ()),
    (3, "getReserveDeficit", (ZERO,)),
    (2, "getEModeCategoryCollateralConfig", (0,)),
    (1, "getLiquidationGracePeriod", (ZERO,)),
)
V3_5_FIRST_REVISION = 9
V3_1, V3_2, V3_3, V3_4, V3_6, V3_7 = (PoolVersion(3, minor) for minor in (1, 2, 3, 4, 6, 7))
#: Token problems that matter in an Aave pool: its configuration holds each reserve's decimals, so a token without
#: decimals() loses nothing; one without a (string) symbol, or without code, loses its symbol.
AAVE_TOKEN_PROBLEMS = ("no_code", "token_reverts", "no_symbol", "bytes32_symbol")
#: E-mode category ids (uint8; 0 is "no e-mode"): 3.2+ lists no category per reserve, so all are probed.
EMODE_IDS = range(1, 256)


@dataclass(frozen=True)
class Deployment:
    """What the PoolAddressesProvider names at the snapshot block."""

    provider: str  #: PoolAddressesProvider, lowercase hex
    pool: str  #: Pool proxy
    oracle: str  #: AaveOracle
    data_provider: str  #: AaveProtocolDataProvider
    base_currency_unit: int  #: AaveOracle.BASE_CURRENCY_UNIT (1e8 for USD markets)
    version: PoolVersion = V3_0  #: the Pool's version as its views tell (read_version)
    pool_revision: int | None = None  #: Pool.POOL_REVISION; None when the pool does not answer it
    #: PoolConfigurator, whose logs (with the oracle's) say when governance changed a setting; None where unset
    configurator: str | None = None


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
    return discover_listed(rpc, provider, block)[0]


def discover_listed(rpc: RpcClient, provider: str, block: int) -> tuple[Deployment, Any]:
    """`discover`, and the pool's getReservesList answer (what `read_reserves` takes as `listed`), asked in the same
    round trip as the oracle's unit and the pool's version."""
    tag = _block_tag(block)
    names = ("getPool", "getPriceOracle", "getPoolDataProvider", "getPoolConfigurator")
    try:
        raw = rpc.batch([eth_call(provider, PROVIDER, fn, block=tag) for fn in names])
        pool, oracle, data_provider, configurator = (
            _lower(PROVIDER.decode(fn, r)[0]) for fn, r in zip(names, raw, strict=True)
        )
    except (RpcError, ValueError, TypeError) as exc:
        raise UserError(
            f"{provider} is not an Aave V3 PoolAddressesProvider ({type(exc).__name__}); check --address, "
            "or give --protocol for the contract it is"
        ) from None
    if ZERO in (pool, oracle, data_provider):
        raise UserError(f"{provider} names no Pool, oracle or data provider at block {block}; is it set up?")
    # The oracle's unit with the pool's version probes, in one round trip no revert can sink.
    unit_call = eth_call(oracle, ORACLE, "BASE_CURRENCY_UNIT", block=tag)
    list_call = eth_call(pool, POOL, "getReservesList", block=tag)
    *answers, listed = rpc.batch_each([unit_call, *_version_calls(pool, tag), list_call])
    try:
        # A refused call is asked again on its own, for the node's own words on why.
        unit = ORACLE.decode("BASE_CURRENCY_UNIT", answers[0] if answers[0] is not None else rpc.call(*unit_call))[0]
    except (RpcError, ValueError) as exc:
        raise UserError(f"oracle {oracle} of {provider} does not answer BASE_CURRENCY_UNIT ({exc})") from None
    version, revision = _version_of(answers[1:])
    deployment = Deployment(
        _lower(provider),
        pool,
        oracle,
        data_provider,
        unit,
        version,
        revision,
        None if configurator == ZERO else configurator,
    )
    return deployment, listed


def read_version(rpc: RpcClient, pool: str, block: int) -> tuple[PoolVersion, int | None]:
    """The pool's version from the views it answers (VERSION_PROBES), and its POOL_REVISION.

    By what the pool does, not by its revision number alone: forks number their revisions their own way, and an
    upgraded pool answers exactly the views its implementation has. A view missing reverts (None here)."""
    return _version_of(rpc.batch_each(_version_calls(pool, _block_tag(block))))


def _version_calls(pool: str, tag: str) -> list[tuple[str, list[Any]]]:
    """read_version's calls: POOL_REVISION, then each of VERSION_PROBES (answered by _version_of)."""
    calls = [eth_call(pool, POOL_3X, "POOL_REVISION", block=tag)]
    return calls + [eth_call(pool, POOL_3X, fn, *args, block=tag) for _, fn, args in VERSION_PROBES]


def _version_of(raw: Sequence[Any]) -> tuple[PoolVersion, int | None]:
    """read_version from the answers to _version_calls (None for a revert)."""
    revision = POOL_3X.decode("POOL_REVISION", raw[0])[0] if _answered(raw[0]) else None
    minor = next((m for (m, _, _), answer in zip(VERSION_PROBES, raw[1:], strict=True) if _answered(answer)), 0)
    if minor == 4 and revision is not None and revision >= V3_5_FIRST_REVISION:
        minor = 5
    return PoolVersion(3, minor), revision


def _answered(raw: str | None) -> bool:
    """An eth_call that returned data (a missing function on a contract without fallback reverts; one with a
    fallback returns nothing)."""
    return raw is not None and len(raw) > 2


def read_reserves(rpc: RpcClient, deployment: Deployment, block: int, listed: Any = None) -> list[Reserve]:
    """Every listed reserve: Pool.getReserveData decoded, normalised income and debt, the oracle price, and what
    the pool's version adds: the liquidation grace period (3.1+) and the deficit (3.3+). `listed`: the pool's
    getReservesList answer at `block` where the caller has it (discover_listed; None: asked here, as is a refused
    one, for the node's own words)."""
    tag = _block_tag(block)
    version = deployment.version
    list_call = eth_call(deployment.pool, POOL, "getReservesList", block=tag)
    assets = [_lower(a) for a in POOL.decode("getReservesList", listed or rpc.call(*list_call))[0]]
    per_asset: list[tuple[Any, str]] = [
        (POOL, "getReserveData"),
        (POOL, "getReserveNormalizedIncome"),
        (POOL, "getReserveNormalizedVariableDebt"),
    ]
    if version >= V3_1:
        per_asset.append((POOL_3X, "getLiquidationGracePeriod"))
    if version >= V3_3:
        per_asset.append((POOL_3X, "getReserveDeficit"))
    calls: list[tuple[str, list[Any]]] = []
    for asset in assets:
        calls.extend(eth_call(deployment.pool, abi, fn, asset, block=tag) for abi, fn in per_asset)
    raw = rpc.batch(calls)
    width = len(per_asset)
    decoded = [
        {
            fn: abi.decode(fn, item)[0]
            for (abi, fn), item in zip(per_asset, raw[width * i : width * (i + 1)], strict=True)
        }
        for i in range(len(assets))
    ]
    strategies = {a: _lower(answers["getReserveData"][11]) for a, answers in zip(assets, decoded, strict=True)}
    curve_calls, read_curves = _rate_curve_calls(strategies, tag)
    supply_calls = _supply_calls([answers["getReserveData"] for answers in decoded], version, tag)
    # The pool's own views must answer; a listed token, a price source or a strategy may not (one reverting feed, one
    # token without symbol()), which must not sink the batch: the data provider's getAllReservesTokens then reverts
    # too. One batch for those: the tokens' stored totals, prices, sources, the strategies' curves, the data
    # provider's symbols.
    totals_and_reads = rpc.batch_each(
        [
            *supply_calls,
            *(eth_call(deployment.oracle, ORACLE, "getAssetPrice", asset, block=tag) for asset in assets),
            *(eth_call(deployment.oracle, ORACLE, "getSourceOfAsset", asset, block=tag) for asset in assets),
            *curve_calls,
            eth_call(deployment.data_provider, DATA_PROVIDER, "getAllReservesTokens", block=tag),
        ]
    )
    totals, reads = totals_and_reads[: len(supply_calls)], totals_and_reads[len(supply_calls) :]
    n = len(assets)
    symbols, problems = _reserve_symbols(rpc, assets, reads[-1], tag)
    sources = {a: any_word_address(raw) for a, raw in zip(assets, reads[n : 2 * n], strict=True)}
    prices = _reserve_prices(deployment, assets, reads[:n], sources, problems)
    curves = read_curves(reads[2 * n : -1])
    reserves = []
    for asset, answers in zip(assets, decoded, strict=True):
        data = answers["getReserveData"]
        word = data[0][0]
        reserves.append(
            Reserve(
                asset=asset,
                symbol=symbols.get(asset, asset[:10]),
                reserve_id=data[7],
                configuration_word=word,
                config=configuration_of(word, version),
                a_token=_lower(data[8]),
                # Stable debt is gone from 3.2; the slot then names a zero-answering mock (Pool.getReserveData).
                stable_debt_token=_lower(data[9]) if version < V3_2 else ZERO,
                variable_debt_token=_lower(data[10]),
                liquidity_index=data[1],
                liquidity_rate=data[2],
                variable_borrow_index=data[3],
                variable_borrow_rate=data[4],
                last_update_timestamp=data[6],
                isolation_mode_total_debt=data[14],
                normalized_income=answers["getReserveNormalizedIncome"],
                normalized_variable_debt=answers["getReserveNormalizedVariableDebt"],
                price=prices[asset] or 0,
                liquidation_grace_period_until=answers.get("getLiquidationGracePeriod", 0),
                deficit=answers.get("getReserveDeficit", 0),
                price_known=prices[asset] is not None,
                problems=tuple(problems.get(asset, ())),
                accrued_to_treasury=data[12],
                price_source=sources[asset],
                interest_rate_strategy=strategies[asset],
                rate_curve=curves.get(asset),
            )
        )
    return _with_supplies(reserves, version, totals)


def _rate_curve_calls(
    strategies: dict[str, str], tag: str
) -> tuple[list[tuple[str, list[Any]]], Callable[[list[Any]], dict[str, tuple[int, int, int, int]]]]:
    """The calls that read each reserve's interest rate curve (optimal usage ratio, base variable borrow rate, the
    variable slopes below and above the optimum; ray), and what reads their answers: V2's getInterestRateData(reserve)
    per reserve (3.1+: one strategy holds every reserve's curve), and V1's four getters once per strategy (3.0: one
    immutable curve per contract, shared by reserves). A reserve takes V2's answer, else its strategy's V1 answers; one
    whose strategy answers neither (a custom strategy: GHO's, a fork's) is left out. Answers read with `batch_each`:
    a strategy that reverts never sinks the snapshot."""
    unique = sorted(set(strategies.values()))
    calls = [eth_call(s, STRATEGY_V2, "getInterestRateData", a, block=tag) for a, s in strategies.items()]
    calls += [eth_call(s, STRATEGY_V1, fn, block=tag) for s in unique for fn in _V1_CURVE]

    def read(answers: list[Any]) -> dict[str, tuple[int, int, int, int]]:
        v1: dict[str, tuple[int, int, int, int]] = {}
        for k, strategy in enumerate(unique):
            row = answers[len(strategies) + 4 * k : len(strategies) + 4 * (k + 1)]
            values = [
                v
                for v in (decode_uint(STRATEGY_V1, fn, r) for fn, r in zip(_V1_CURVE, row, strict=True))
                if v is not None
            ]
            if len(values) == len(_V1_CURVE):
                v1[strategy] = (values[0], values[1], values[2], values[3])
        curves: dict[str, tuple[int, int, int, int]] = {}
        for (asset, strategy), raw in zip(strategies.items(), answers, strict=False):
            with contextlib.suppress(*DECODE_ERRORS):
                if raw not in (None, "0x"):
                    optimal, base, slope1, slope2 = (int(v) for v in STRATEGY_V2.decode("getInterestRateData", raw)[0])
                    curves[asset] = (optimal, base, slope1, slope2)
            if asset not in curves and strategy in v1:
                curves[asset] = v1[strategy]
        return curves

    return calls, read


def _supply_calls(reserve_data: list[Any], version: PoolVersion, tag: str) -> list[tuple[str, list[Any]]]:
    """The calls that read each reserve's tokens' stored totals (its getReserveData: the tokens' addresses): the
    aToken's and the variable debt token's scaledTotalSupply, and before 3.2 the stable debt token's getSupplyData
    (principal, average rate, last update); `_with_supplies` reads their answers."""
    calls = []
    for data in reserve_data:
        calls += [
            eth_call(_lower(data[8]), A_TOKEN, "scaledTotalSupply", block=tag),
            eth_call(_lower(data[10]), VARIABLE_DEBT, "scaledTotalSupply", block=tag),
        ]
        if version.has_stable_debt:
            calls.append(eth_call(_lower(data[9]), STABLE_DEBT, "getSupplyData", block=tag))
    return calls


def _with_supplies(reserves: list[Reserve], version: PoolVersion, answers: list[Any]) -> list[Reserve]:
    """Each reserve with its tokens' stored totals, from the answers to `_supply_calls` (read with `batch_each`: a
    token that does not answer leaves that reserve's totals unknown, None, never the snapshot)."""
    raw = iter(answers)
    found = []
    for r in reserves:
        a_supply = decode_uint(A_TOKEN, "scaledTotalSupply", next(raw))
        debt_supply = decode_uint(VARIABLE_DEBT, "scaledTotalSupply", next(raw))
        stable: tuple[int | None, int | None, int | None] = (0, 0, 0) if not version.has_stable_debt else (None,) * 3
        if version.has_stable_debt:
            supply = next(raw)
            with contextlib.suppress(*DECODE_ERRORS):
                principal, _, rate, updated = STABLE_DEBT.decode("getSupplyData", supply) if supply else (None,) * 4
                stable = (principal, rate, updated)
        known = None not in (a_supply, debt_supply, *stable)
        found.append(
            replace(
                r,
                a_token_scaled_supply=a_supply if known else None,
                variable_debt_scaled_supply=debt_supply if known else None,
                stable_principal=stable[0] if known else None,
                stable_avg_rate=stable[1] if known else None,
                stable_last_update=stable[2] if known else None,
            )
        )
    return found


def _reserve_symbols(
    rpc: RpcClient, assets: list[str], listed: Any, tag: str
) -> tuple[dict[str, str], dict[str, list[Problem]]]:
    """Each reserve token's symbol: from the data provider's getAllReservesTokens, or, when that reverts (it calls
    every token's symbol() as a string), from each token as far as it answers. The pool's configuration holds the
    decimals, so only a token's symbol (or its having no code) can be odd here."""
    with contextlib.suppress(*DECODE_ERRORS):
        if listed not in (None, "0x"):
            return {_lower(a): s for s, a in DATA_PROVIDER.decode("getAllReservesTokens", listed)[0]}, {}
    symbols: dict[str, str] = {}
    problems: dict[str, list[Problem]] = {}
    for asset, info in read_token_info(rpc, assets, tag).items():
        symbols[asset] = info.label
        for p in info.problems:
            if p.kind in AAVE_TOKEN_PROBLEMS:
                unknown = "symbol" if p.kind != "bytes32_symbol" else None
                problems.setdefault(asset, []).append(replace(p, unknown=unknown))
    return symbols, problems


def _reserve_prices(
    deployment: Deployment,
    assets: list[str],
    answers: list[Any],
    sources: dict[str, str | None],
    problems: dict[str, list[Problem]],
) -> dict[str, int | None]:
    """AaveOracle.getAssetPrice of each asset, None where it reverts; a revert or a zero price is a Problem of the
    asset, on the source the oracle names for it (`sources`: getSourceOfAsset) where it names one."""
    prices: dict[str, int | None] = {}
    odd: list[str] = []
    overflowing: dict[str, int] = {}
    for asset, raw in zip(assets, answers, strict=True):
        price = None
        with contextlib.suppress(*DECODE_ERRORS):
            if raw not in (None, "0x"):
                price = int(ORACLE.decode("getAssetPrice", raw)[0])
        if price is not None and price >= HUGEINT_LIMIT:
            # Past 38 digits (a base-currency price of 1e30 dollars a token): no price column holds it, and the
            # pool's own balance x price overflows for all but dust. Unknown, as a reverting price is.
            overflowing[asset], price = price, None
        prices[asset] = price
        if not price:
            odd.append(asset)
    for asset in odd:
        source = sources.get(asset)
        source = deployment.oracle if source in (None, ZERO) else source
        if asset in overflowing:
            problem = Problem(
                "oracle_overflow",
                f"AaveOracle {deployment.oracle} getAssetPrice answers {overflowing[asset]:.4e} (source {source}), "
                "past the 38 digits a price column holds",
                "its price, USD figures, and the health of every wallet using it as collateral or debt",
                source,
            )
        elif prices[asset] is None:
            problem = Problem(
                "oracle_reverts",
                f"AaveOracle {deployment.oracle} getAssetPrice reverts (source {source})",
                "its price, USD figures, and the health of every wallet using it as "
                "collateral or debt (the pool's own getUserAccountData reverts for them)",
                source,
            )
        else:
            problem = Problem(
                "oracle_zero",
                f"AaveOracle {deployment.oracle} getAssetPrice answers 0 (source {source})",
                "its USD figures",
                source,
            )
        problems.setdefault(asset, []).append(problem)
    return prices


def configuration_of(word: int, version: PoolVersion) -> ReserveConfiguration:
    """The configuration bitmap as `version` lays it out: bits a release retired read as 0 (3.2 retired stable
    borrowing (59) and the e-mode category (168-175), 3.4 the unbacked mint cap (176-211)), and virtual
    accounting (bit 252, 3.1-3.3) is on for every reserve from 3.4 (ReserveConfiguration.sol at each tag)."""
    config = ReserveConfiguration.decode(word)
    if version < V3_1:  # bit 252 is unused
        return replace(config, virtual_accounting=False)
    if version < V3_2:
        return config
    config = replace(config, stable_borrowing_enabled=False, emode_category=0)
    if version >= V3_4:
        config = replace(config, unbacked_mint_cap=0, virtual_accounting=True)
    return config


def read_emode_categories(rpc: RpcClient, deployment: Deployment, ids: set[int], block: int) -> list[EModeCategory]:
    """The pool's e-mode categories: 3.0/3.1 the `ids` reserves name (getEModeCategoryData, with the price
    source's price); 3.2+ every category with a threshold among ids 1-255 (getEModeCategoryCollateralConfig),
    with its label and collateral and borrowable bitmaps, from 3.6 its ltvzero bitmap and from 3.7 whether it is
    isolated."""
    return emode_categories_and(rpc, deployment, ids, block, [])[0]


def emode_categories_and(
    rpc: RpcClient, deployment: Deployment, ids: set[int], block: int, more: Sequence[tuple[str, list[Any]]]
) -> tuple[list[EModeCategory], list[Any]]:
    """`read_emode_categories`, and the answers to the calls `more` (as `batch_each` gives them) asked in its first
    round trip. A category call the node refuses there is asked again on its own, for the node's own words."""
    tag = _block_tag(block)
    pool = deployment.pool
    if deployment.version < V3_2:
        ordered = sorted(i for i in ids if i)
        first = [eth_call(pool, POOL, "getEModeCategoryData", i, block=tag) for i in ordered]
    else:
        first = [eth_call(pool, POOL_3X, "getEModeCategoryCollateralConfig", i, block=tag) for i in EMODE_IDS]
    raw, extra = rpc.batch_with(first, more)
    if deployment.version < V3_2:
        return _legacy_emode_categories(rpc, deployment, ordered, raw, tag), extra
    found = []
    for category_id, item in zip(EMODE_IDS, raw, strict=True):
        ltv, threshold, bonus = POOL_3X.decode("getEModeCategoryCollateralConfig", item)[0]
        if threshold:  # PoolConfigurator.setEModeCategory requires one; an unset id answers zeros
            found.append((category_id, ltv, threshold, bonus))
    views = ["getEModeCategoryLabel", "getEModeCategoryCollateralBitmap", "getEModeCategoryBorrowableBitmap"]
    if deployment.version >= V3_6:
        views.append("getEModeCategoryLtvzeroBitmap")
    if deployment.version >= V3_7:
        views.append("getIsEModeCategoryIsolated")
    raw = rpc.batch([eth_call(pool, POOL_3X, fn, c[0], block=tag) for c in found for fn in views])
    categories = []
    for n, (category_id, ltv, threshold, bonus) in enumerate(found):
        values = [POOL_3X.decode(fn, raw[n * len(views) + k])[0] for k, fn in enumerate(views)]
        label, collateral, borrowable = values[:3]
        categories.append(
            EModeCategory(
                category_id,
                ltv,
                threshold,
                bonus,
                ZERO,
                label,
                0,
                collateral_bitmap=collateral,
                borrowable_bitmap=borrowable,
                ltvzero_bitmap=values[3] if len(values) > 3 else 0,
                isolated=bool(values[4]) if len(values) > 4 else False,
            )
        )
    return categories, extra


def _legacy_emode_categories(
    rpc: RpcClient, deployment: Deployment, ordered: list[int], raw: list[Any], tag: str
) -> list[EModeCategory]:
    """3.0/3.1: the answers to Pool.getEModeCategoryData of the categories the reserves name (`ordered`), each priced
    by its price source (the sources' prices asked in one round trip)."""
    data = [POOL.decode("getEModeCategoryData", item)[0] for item in raw]
    sources = sorted({_lower(d[3]) for d in data} - {ZERO})
    answers = rpc.batch([eth_call(deployment.oracle, ORACLE, "getAssetPrice", s, block=tag) for s in sources])
    prices = {s: ORACLE.decode("getAssetPrice", a)[0] for s, a in zip(sources, answers, strict=True)}
    return [
        EModeCategory(category_id, ltv, threshold, bonus, _lower(source), label, prices.get(_lower(source), 0))
        for category_id, (ltv, threshold, bonus, source, label) in zip(ordered, data, strict=True)
    ]


def _token_arrays(reserves: list[Reserve]) -> tuple[list[str], list[str], list[str]]:
    """Token addresses indexed by reserve id (gaps of dropped reserves hold the zero address)."""
    size = max((r.reserve_id for r in reserves), default=-1) + 1
    a_tokens, variable, stable = [ZERO] * size, [ZERO] * size, [ZERO] * size
    for r in reserves:
        a_tokens[r.reserve_id], variable[r.reserve_id], stable[r.reserve_id] = (
            r.a_token,
            r.variable_debt_token,
            r.stable_debt_token,
        )
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
    enabled as collateral are read as well. A lens call the node leaves unanswered (chainrisk.protocols.lens) is
    asked again in halves where the node runs the lens (it answered another call of the batch, or runs an override's
    code: RpcClient.takes_overrides; this call ran out of gas or time, whales with many reserves under a node's
    eth_call cap), down to LENS_CHUNK_MIN wallets; the wallets of a call still unanswered, or of every call where the
    node refuses or drops state overrides, are read by plain eth_calls of the getters the lens calls.
    """
    tokens = _token_arrays(reserves)
    size = len(tokens[0])
    tag = _block_tag(block)
    words: dict[int, tuple[list[str], list[int]]] = {}  # first wallet's place -> its chunk and the lens's words
    pending = [(i, wallets[i : i + LENS_CHUNK]) for i in range(0, len(wallets), LENS_CHUNK)]
    plain: list[tuple[int, list[str]]] = []
    runs_the_lens = False
    while pending:
        answers = _lens_words(rpc, deployment.pool, [chunk for _, chunk in pending], held_masks, tokens, tag)
        # None answered: lens_answers has asked whether the node runs overrides at all.
        runs_the_lens = runs_the_lens or any(a is not None for a in answers) or not rpc.overrides_refused()
        halved: list[tuple[int, list[str]]] = []
        for (place, chunk), answer in zip(pending, answers, strict=True):
            if answer is not None:
                words[place] = (chunk, answer)
            elif runs_the_lens and len(chunk) > LENS_CHUNK_MIN:
                half = (len(chunk) + 1) // 2
                halved += [(place, chunk[:half]), (place + half, chunk[half:])]
            else:
                plain.append((place, chunk))
        pending = halved
    chunks = [chunk for _, chunk in plain]  # none of them answered by the lens
    read = unanswered_read(
        chunks, [None] * len(chunks), lambda ws: _accounts_by_getters(rpc, deployment.pool, ws, held_masks, tokens, tag)
    )
    for (place, chunk), accounts_words in zip(plain, read, strict=True):
        words[place] = (chunk, [w for account in accounts_words for w in account])
    accounts: list[Account] = []
    for place in sorted(words):
        chunk, found = words[place]
        n = 0
        for wallet in chunk:
            configuration, emode = found[n], found[n + 1]
            n += 2
            held = held_masks.get(wallet, 0)
            balances: dict[int, Balances] = {}
            for reserve_id in range(size):
                if (
                    is_collateral(configuration, reserve_id)
                    or is_borrowing(configuration, reserve_id)
                    or (held >> reserve_id) & 1
                ):
                    balances[reserve_id] = Balances(found[n], found[n + 1], found[n + 2])
                    n += 3
            accounts.append(Account(wallet, configuration, emode, balances))
        if n != len(found):
            raise RuntimeError(f"lens answer has {len(found)} words, parsed {n}")
    return accounts


def _lens_words(
    rpc: RpcClient,
    pool: str,
    chunks: list[list[str]],
    held_masks: dict[str, int],
    tokens: tuple[list[str], list[str], list[str]],
    tag: str,
) -> list[list[int] | None]:
    """The lens's words for each chunk of wallets, one eth_call each in JSON-RPC batches; None where the node left the
    call unanswered (chainrisk.protocols.lens)."""
    override = {LENS_ADDRESS: {"code": LENS_RUNTIME}}
    calls = []
    for chunk in chunks:
        masks = [held_masks.get(w, 0) for w in chunk]
        data = LENS.encode("accounts", pool, chunk, masks, *tokens)
        calls.append(("eth_call", [{"to": LENS_ADDRESS, "data": data}, tag, override]))
    return [None if raw is None else _uint_array(raw) for raw in lens_answers(rpc, calls)]


def _accounts_by_getters(
    rpc: RpcClient,
    pool: str,
    wallets: list[str],
    held_masks: dict[str, int],
    tokens: tuple[list[str], list[str], list[str]],
    tag: str,
) -> list[list[int]]:
    """Each wallet's words as AaveV3AccountsLens.accounts answers them (configuration, e-mode, then the three balances
    of every reserve it uses or holds), from plain eth_calls of the getters the lens calls: the pool's two for every
    wallet, then scaledBalanceOf / scaledBalanceOf / balanceOf of the reserves' tokens (0 for a token the reserve
    lacks). Two rounds of batches."""
    pool_getters = ("getUserConfiguration", "getUserEMode")
    heads = [
        (int(configuration[0]), int(emode))
        for configuration, emode in getters_of(rpc, pool, POOL, pool_getters, [(w,) for w in wallets], tag)
    ]
    getters = ((A_TOKEN, "scaledBalanceOf"), (VARIABLE_DEBT, "scaledBalanceOf"), (ERC20, "balanceOf"))
    asked: list[tuple[str, list[Any]]] = []
    decoders: list[tuple[Any, str]] = []
    places: list[list[int | None]] = []  # per wallet: its balance words, each an index into `asked` (None: no token)
    for wallet, (configuration, _) in zip(wallets, heads, strict=True):
        held = held_masks.get(wallet, 0)
        words: list[int | None] = []
        for reserve_id in range(len(tokens[0])):
            if (configuration >> (reserve_id << 1)) & 3 == 0 and (held >> reserve_id) & 1 == 0:
                continue
            for addresses, (abi, fn) in zip(tokens, getters, strict=True):
                if addresses[reserve_id] == ZERO:
                    words.append(None)
                else:
                    words.append(len(asked))
                    asked.append(eth_call(addresses[reserve_id], abi, fn, wallet, block=tag))
                    decoders.append((abi, fn))
        places.append(words)
    answered = rpc.batch(asked) if asked else []
    balances = [
        int(decoded(abi, fn, params[0]["to"], raw)[0])
        for (abi, fn), (_, params), raw in zip(decoders, asked, answered, strict=True)
    ]
    return [
        [configuration, emode, *(0 if k is None else balances[k] for k in words)]
        for (configuration, emode), words in zip(heads, places, strict=True)
    ]


def _uint_array(raw: str) -> list[int]:
    """ABI-decodes a returned uint256[] by slicing: offset word, length word, then the items."""
    body = raw[2:]
    length = int(body[64:128], 16)
    return [int(body[128 + 64 * i : 192 + 64 * i], 16) for i in range(length)]
