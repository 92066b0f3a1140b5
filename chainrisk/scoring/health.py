"""Health engine: per-wallet health, liquidation prices, liquidation mechanics and shocks, vectorised in polars.

Input is the `positions` contract (one row per wallet, market, asset). Values are taken to the market's base
currency as the protocols do (floor(amount * price / price_scale)) in exact 128-bit integers, so the unshocked
health factor equals the chain's and a shocked one equals what the chain would report with those oracle
prices; at the snapshot's own prices the adapters' exact values (`collateral_base`, `debt_base`) are used, and
shocked rows whose product would leave 128 bits fall back to float arithmetic. The `health_rule` column picks
how collateral combines: Aave's floored average threshold (before 3.5) or its exact threshold-weighted sum (3.5+),
a floored sum per position (Morpho, Compound, Maker), or a collateral ratio the collateral must reach over the
debt (Liquity's ICR against MCR). A position the protocol values at a reference price no market moves
(`price_fixed`: Maker/Sky's dai debt at the Spotter's par, Liquity's LUSD debt at one dollar) keeps its price under a
shock and has no liquidation price: a depeg of DAI does not move a vault's health in the Vat.

A frame without the optional contract columns (price_scale, base_currency_usd, collateral_base, debt_base,
health_rule, liquidation_threshold_wad, liquidation_bonus_wad, liquidation_recovery_wad, close_factor,
full_close_below_health, liquidation_takes_all, price_fixed) is read with Aave V3's meaning of them; the engine then
skips the work they would need. Bad debt is the debt less what the protocol recovers by selling all of the collateral:
its value / bonus where a liquidator repays for it, value x `liquidation_recovery_wad` where the protocol sells it
itself (Maker's chop is the Vow's penalty, not a keeper's cut).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import polars as pl

from chainrisk.scoring.curve import METRICS, Grouping, curve_sums, groups_of
from chainrisk.scoring.curve import curve_points as curve_points
from chainrisk.scoring.groups import STABLE_GROUP, group_expr
from chainrisk.scoring.wallets import (
    float_column,
    float_sums,
    gather_rows,
    label_wallets,
    per_wallet,
    split_float_sums,
    wallet_index,
)
from chainrisk.units import BPS, WAD

WALLET_KEY = ["protocol", "chain_id", "market", "wallet", "block_number", "block_timestamp"]
#: Aave V3 LiquidationLogic: below this health factor the whole debt may be repaid in one call.
CLOSE_FACTOR_HF_THRESHOLD = 0.95
DEFAULT_CLOSE_FACTOR = 0.5
#: Largest product kept in Int128 (its maximum is 1.7e38).
_INT128_SAFE = 1e37
PER_POSITION = "per-position"
#: Aave V3.5+: HF = wadDiv(sum(collateral_base * threshold_bps), debt) / 1e4, without the floored average threshold.
WEIGHTED_THRESHOLD = "weighted-threshold"
#: `liquidation_threshold_wad` is a minimum collateral ratio (Liquity's MCR, 1.1e18): liquidatable when
#: collateral_base * 1e18 < ratio * debt_base, compared exactly in integers.
COLLATERAL_RATIO = "collateral-ratio"
#: Rules whose threshold is not floored to whole bps in the float views (liquidation prices).
UNFLOORED_RULES = (PER_POSITION, WEIGHTED_THRESHOLD, COLLATERAL_RATIO)
#: The largest double below 1.0: a health factor that must read as liquidatable but rounds to 1.
BELOW_ONE = math.nextafter(1.0, 0.0)
#: Positions whose price the protocol fixes (`price_fixed`): shocks leave them, they have no liquidation price.
FIXED = "_fixed"


_POWERS_OF_TEN = pl.Series("unit", [10**d for d in range(37)], dtype=pl.Int128)
#: The same as doubles (each the nearest to the integer, as a cast of it gives): casting 128-bit integers costs more.
_POWERS_OF_TEN_FLOAT = pl.Series("unit", [float(10**d) for d in range(37)], dtype=pl.Float64)


def _pow10(decimals: pl.Expr) -> pl.Expr:
    """10^decimals as Int128 (token units per whole token)."""
    return pl.lit(_POWERS_OF_TEN).gather(decimals.cast(pl.UInt32))


def _pow10_float(decimals: pl.Expr) -> pl.Expr:
    """10^decimals as the nearest double."""
    return pl.lit(_POWERS_OF_TEN_FLOAT).gather(decimals.cast(pl.UInt32))


def _names(frame: pl.LazyFrame) -> list[str]:
    return frame.collect_schema().names()


def _unit(names: list[str]) -> pl.Expr:
    """What `price` is per: price_scale when given, else one whole token (10^decimals, Aave's oracle)."""
    return pl.col("_unit") if "_unit" in names else _pow10(pl.col("decimals"))


def _unit_float(names: list[str]) -> pl.Expr:
    """`_unit` as a double."""
    return pl.col("_unit").cast(pl.Float64) if "_unit" in names else _pow10_float(pl.col("decimals"))


def threshold_bps(names: list[str]) -> pl.Expr:
    """The threshold as a float in bps: `_lt_bps` where a health rule made it, else the whole bps themselves (not
    stored: a cast is cheaper than a column of a million positions)."""
    return pl.col("_lt_bps") if "_lt_bps" in names else pl.col("liquidation_threshold_bps").cast(pl.Float64)


def price_fixed(names: Sequence[str]) -> pl.Expr:
    """Whether the protocol fixes each position's price (`price_fixed`; NULL, or a frame without the column: no)."""
    return pl.col("price_fixed").fill_null(False) if "price_fixed" in names else pl.lit(False)


def _ratio_rule(names: Sequence[str], wad: pl.Expr) -> pl.Expr:
    """Rows whose `liquidation_threshold_wad` is a collateral ratio (COLLATERAL_RATIO), where `wad` is positive."""
    if "health_rule" not in names:
        return pl.lit(False)
    return (pl.col("health_rule") == COLLATERAL_RATIO) & (wad > 0)


def threshold_of_wad(names: Sequence[str]) -> pl.Expr:
    """Each row's liquidation threshold as a fraction in WAD (Int128) from `liquidation_threshold_wad`: the column
    itself, or for the collateral-ratio rule the threshold its ratio is (WAD / ratio: 0.909... for Liquity's 1.1)."""
    wad = pl.col("liquidation_threshold_wad").cast(pl.Int128)
    return pl.when(_ratio_rule(names, wad)).then(pl.lit(WAD * WAD, pl.Int128) // wad).otherwise(wad)


def wad_of_threshold(threshold: pl.Expr, names: Sequence[str]) -> pl.Expr:
    """What `liquidation_threshold_wad` holds for a threshold (a fraction in WAD, Int128) under each row's rule: the
    threshold, or for the collateral-ratio rule the ratio it is (WAD / threshold); threshold_of_wad's inverse."""
    return pl.when(_ratio_rule(names, threshold)).then(pl.lit(WAD * WAD, pl.Int128) // threshold).otherwise(threshold)


#: The engine's column of the value a sale of each position's collateral takes per unit of debt it repays: the bonus
#: itself where `liquidation_recovery_wad` is NULL (a liquidator repays for the collateral and its bonus), else 1 /
#: that recovery (a protocol that sells the collateral itself). A divisor, so that a NULL row is value / bonus to the
#: last bit, as a frame without the column reads it.
RECOVERY = "_recovery_bonus"


def recovered_usd(names: Sequence[str]) -> pl.Expr:
    """Per position: what the protocol recovers towards the debt by selling all of the collateral, in USD at the
    (shocked) price: value x recovery, or value / bonus where the row has none."""
    return pl.col("collateral_usd_now") / pl.col(RECOVERY if RECOVERY in names else "_bonus")


def _optional_inputs(names: list[str]) -> list[pl.Expr]:
    """The optional contract columns, renamed out of the way of the engine's outputs."""
    exprs = []
    if "price_scale" in names:
        exprs.append(pl.col("price_scale").cast(pl.Int128).alias("_unit"))
    if "collateral_base" in names and "debt_base" in names:
        exprs.append(pl.col("collateral_base").cast(pl.Int128).alias("_collateral_base_exact"))
        exprs.append(pl.col("debt_base").cast(pl.Int128).alias("_debt_base_exact"))
    if "health_rule" in names:
        exprs.append(pl.col("health_rule").alias("_rule"))
        threshold = (
            pl.col("liquidation_threshold_wad").cast(pl.Int128)
            if "liquidation_threshold_wad" in names
            else pl.col("liquidation_threshold_bps").cast(pl.Int128) * (WAD // BPS)
        )
        exprs.append(threshold.alias("_threshold_wad"))
        # The threshold as a float in bps for the float views (weighted sums, liquidation prices, curves), with the
        # fraction of a bps a WAD threshold carries (Maker's 1 / mat: 6,896.55... bps for 145 %); a collateral ratio
        # R is a threshold of 1 / R (Liquity's 1.1: 9,090.9... bps).
        exprs.append(
            pl.when(_ratio_rule(names, threshold))
            .then((BPS * WAD) / threshold.cast(pl.Float64))
            .otherwise(threshold.cast(pl.Float64) / (WAD // BPS))
            .alias("_lt_bps")
        )
    bonus = pl.col("liquidation_bonus_bps").cast(pl.Float64) / BPS
    if "liquidation_bonus_wad" in names:
        bonus = (pl.col("liquidation_bonus_wad").cast(pl.Float64) / WAD).fill_null(bonus)
    exprs.append(bonus.alias("_bonus"))
    if "liquidation_recovery_wad" in names:
        # The share of a collateral's value the protocol recovers towards the debt when all of it is sold (held as
        # its inverse, RECOVERY): 1 / bonus where a liquidator repays the debt for the collateral and its bonus (Aave,
        # Morpho, Liquity's Stability Pool), the protocol's own where it sells the collateral itself (Maker's Clipper:
        # chop is the Vow's penalty on top of the debt; Comet's store-front price after absorb).
        exprs.append((WAD / pl.col("liquidation_recovery_wad").cast(pl.Float64)).fill_null(bonus).alias(RECOVERY))
    if "liquidation_takes_all" in names:
        exprs.append(pl.col("liquidation_takes_all").fill_null(False).alias("_takes_all"))
    if "price_fixed" in names:
        exprs.append(price_fixed(names).alias(FIXED))
    if "close_factor" in names:
        exprs.append(pl.col("close_factor").cast(pl.Float64).alias("_close_factor"))
        full = "full_close_below_health"
        exprs.append((pl.col(full) if full in names else pl.lit(None)).cast(pl.Float64).alias("_full_close_below"))
        base = "full_close_below_base"
        exprs.append((pl.col(base) if base in names else pl.lit(None)).cast(pl.Int128).alias("_full_close_base"))
    return exprs


def _group(positions: pl.LazyFrame, groups: dict[str, str] | None) -> pl.Expr:
    """Each asset's correlated group: group_expr on the handful of distinct symbols, gathered per position (mapping
    millions of strings one by one costs several times more)."""
    symbols = positions.select(pl.col("symbol").drop_nulls().unique().sort()).collect().get_column("symbol")
    table = pl.select(group_expr(pl.lit(symbols), groups)).to_series()
    return pl.lit(table).gather(pl.col("symbol").cast(pl.Enum(symbols.to_list())).to_physical())


def prepare(positions: pl.DataFrame | pl.LazyFrame, groups: dict[str, str] | None = None) -> pl.LazyFrame:
    """Adds exact integer columns, the base-currency unit and each asset's correlated group."""
    lazy = positions.lazy()
    names = _names(lazy)
    base_unit = (
        1.0 / pl.col("base_currency_usd").cast(pl.Float64)
        if "base_currency_usd" in names
        else (pl.col("price").cast(pl.Float64) / pl.col("price_usd")).round(0)
    )
    prepared = lazy.with_columns(
        pl.col("collateral_amount").cast(pl.Int128),
        pl.col("debt_amount").cast(pl.Int128),
        pl.col("price").cast(pl.Int128),
        *_optional_inputs(names),
        base_unit.alias("_base_unit"),
        _group(lazy, groups).alias("group"),
        # One integer per (protocol, chain, market, wallet, block): group-bys on it are several times faster
        # than on the string columns. A 64-bit hash collides with odds near 1e-8 for a million wallets. Each column
        # hashed with its own seed and the hashes combined: half the cost of hashing the key as one struct.
        # Combined by a native expression: pl.reduce runs its function in Python, over whole Series (3x slower).
        functools.reduce(operator.xor, [pl.col(c).hash(seed=7 + i) for i, c in enumerate(WALLET_KEY)]).alias("_wid"),
    )
    # Each position labelled with its wallet's first row, once per book: later groupings key on the label.
    return label_wallets(prepared)


def apply_multipliers(prepared: pl.LazyFrame, multipliers: pl.DataFrame | None) -> pl.LazyFrame:
    """Oracle prices after a shock: floor(price * multiplier) by asset symbol (missing symbols: 1), or by asset
    address when `multipliers` has an `asset` column instead (tokens of one symbol at several addresses may then move
    apart: a wrapper the asset graph links and a look-alike it does not)."""
    if multipliers is None or multipliers.is_empty():
        return prepared.with_columns(pl.col("price").alias("_price"))
    key = "asset" if "asset" in multipliers.columns else "symbol"
    if multipliers[key].is_duplicated().any():
        raise ValueError(f"multipliers name one {key} twice")
    table = multipliers.lazy().select(pl.col(key), pl.col("multiplier").cast(pl.Float64))
    moved = (pl.col("price").cast(pl.Float64) * pl.col("multiplier").fill_null(1.0)).floor().cast(pl.Int128)
    if FIXED in _names(prepared):
        # A price the protocol fixes (dai at par in the Vat, LUSD at one dollar in Liquity) is not the market's.
        moved = pl.when(pl.col(FIXED)).then(pl.col("price")).otherwise(moved)
    shocked = (
        prepared.join(table, on=key, how="left", maintain_order="left")
        .with_columns(moved.alias("_price"))
        .drop("multiplier")
    )
    # Joined once: position_values reads the book three times (two bounds of _shortcut, then the values), and each
    # read of a lazy join would join the whole book again.
    return shocked.collect().lazy()


def _base_value(amount: str, names: list[str], exact_at_snapshot: str, shortcut: _Shortcut) -> pl.Expr:
    """floor(amount * price / unit) exactly in Int128; the adapter's exact value at the snapshot's own price;
    a float product where 128 bits won't do."""
    if exact_at_snapshot in names and shortcut.at_snapshot:
        return pl.col(exact_at_snapshot)
    exact = (pl.col(amount) * pl.col("_price")) // _unit(names)
    if shortcut.products_fit:
        value = exact
    else:
        product_estimate = pl.col(amount).cast(pl.Float64) * pl.col("_price").cast(pl.Float64)
        value = (
            pl.when(product_estimate < _INT128_SAFE)
            .then(exact)
            # Past Int128 (an odd oracle's price, shocked): unknown, never a failed cast that stops the model.
            .otherwise((product_estimate / _unit_float(names)).floor().cast(pl.Int128, strict=False))
        )
    if exact_at_snapshot in names:
        return pl.when(pl.col("_price") == pl.col("price")).then(pl.col(exact_at_snapshot)).otherwise(value)
    return value


@dataclass(frozen=True)
class _Shortcut:
    """What holds for every position of a book, so _base_value can skip a branch it would never take."""

    products_fit: bool  #: amount x price fits the exact branch everywhere
    at_snapshot: bool  #: every price is the snapshot's own (no shock)
    narrow: frozenset[str]  #: which of collateral_base, debt_base and _price fit in Int64 everywhere


#: When |amount| x |price| stays under this for every row, every row's float estimate of the product (a few ulps above
#: it at most) is under _INT128_SAFE: the exact branch holds for every row and the estimate need not be made.
_EXACT_BOUND = int(_INT128_SAFE * 0.99)
#: A base value bounded under this is taken to doubles through Int64 (a margin for the float branch's rounding).
_NARROW_BOUND = 2**62


def _shortcut(prepared: pl.LazyFrame, names: list[str]) -> _Shortcut:
    """Bounds of the book's products and base values, read before any is made, from the largest amounts at each
    (price, unit) pair: the largest amount and the largest price are often of different assets (18-decimal amounts,
    8-decimal BTC prices), so their product alone overstates the book's. A book holds a handful of such pairs, so the
    bounds are exact integers: max |amount| x |price| for the product, and that over the unit for the base value."""
    unit = pl.col("_unit") if "_unit" in names else pl.col("decimals")
    amounts = {"collateral_amount": "_collateral_base_exact", "debt_amount": "_debt_base_exact"}
    pairs = (
        prepared.group_by(pl.col("_price").alias("price"), unit.alias("unit"))
        .agg(*(pl.col(a).max().alias(f"{a}:max") for a in amounts), *(pl.col(a).min().alias(a) for a in amounts))
        .collect()
    )
    given = [pl.col(e).abs().max().alias(e) for e in amounts.values() if e in names]
    same = (pl.col("_price") == pl.col("price")).all(ignore_nulls=False).alias("same")
    book = prepared.select(*given, same, pl.col("_price").abs().max().alias("price")).collect().row(0, named=True)
    at_snapshot = book["same"] is True
    largest_product = 0
    largest_base = dict.fromkeys(amounts, 0)
    for pair in pairs.iter_rows(named=True):
        if pair["price"] is None or pair["unit"] is None:
            continue
        divisor = int(pair["unit"]) if "_unit" in names else 10 ** int(pair["unit"])
        for amount in amounts:
            largest = max(abs(int(pair[f"{amount}:max"] or 0)), abs(int(pair[amount] or 0)))
            product = largest * abs(int(pair["price"]))
            largest_product = max(largest_product, product)
            largest_base[amount] = max(largest_base[amount], product // divisor if divisor > 0 else product)
    narrow = {"_price"} if int(book["price"] or 0) < 2**63 else set()
    for (amount, exact), base in zip(amounts.items(), ("collateral_base", "debt_base"), strict=True):
        adapters = int(book[exact] or 0) if exact in names else None
        bound = adapters if adapters is not None and at_snapshot else max(largest_base[amount], adapters or 0)
        if bound < _NARROW_BOUND:
            narrow.add(base)
    return _Shortcut(largest_product < _EXACT_BOUND, at_snapshot, frozenset(narrow))


def _float(column: str, narrow: set[str]) -> pl.Expr:
    """An integer column as doubles: through Int64 when `narrow` says every value fits there (the same nearest double,
    by a hardware conversion; Int128's own is a software routine costing several times more)."""
    if column in narrow:
        return pl.col(column).cast(pl.Int64).cast(pl.Float64)
    return pl.col(column).cast(pl.Float64)


def _price_usd(price: pl.Expr, names: list[str]) -> pl.Expr:
    """USD per whole token at an oracle price."""
    if "_unit" not in names:
        return price / pl.col("_base_unit")
    per_token = _pow10_float(pl.col("decimals")) / pl.col("_unit").cast(pl.Float64)
    return price * per_token / pl.col("_base_unit")


def position_values(prepared: pl.LazyFrame) -> pl.LazyFrame:
    """Per position: collateral and debt in base units (Int128) and USD at the (shocked) price."""
    names = _names(prepared)
    shortcut = _shortcut(prepared, names)
    narrow = set(shortcut.narrow)
    return prepared.with_columns(
        _base_value("collateral_amount", names, "_collateral_base_exact", shortcut).alias("collateral_base"),
        _base_value("debt_amount", names, "_debt_base_exact", shortcut).alias("debt_base"),
    ).with_columns(
        (_float("collateral_base", narrow) / pl.col("_base_unit")).alias("collateral_usd_now"),
        (_float("debt_base", narrow) / pl.col("_base_unit")).alias("debt_usd_now"),
        _price_usd(_float("_price", narrow), names).alias("price_usd_now"),
    )


def _per_wallet(valued: pl.LazyFrame, keys: list[str], *aggregations: pl.Expr) -> pl.DataFrame:
    """One row per wallet: `_wid`, `keys` as in its first position, then `aggregations` over its positions.

    `first()` in a group_by leaves polars' fast grouped aggregation, so the keys are gathered from each wallet's
    first row instead.
    """
    frame = valued.collect()
    grouped, _ = per_wallet(frame, *aggregations)
    rows = grouped.get_column("_first")
    firsts = gather_rows([frame.get_column(k) for k in ("_wid", *keys)], rows)
    return pl.concat([pl.DataFrame(firsts), grouped.drop("_first")], how="horizontal")


def wallet_health(valued: pl.LazyFrame, keep_wid: bool = False) -> pl.LazyFrame:
    """Per wallet and market: the figures of getUserAccountData and what a risk team reads from them (with
    `keep_wid`, each wallet's `_wid` too).

    Aave (average-threshold): avg threshold = floor(sum(collateral_base * threshold) / sum(collateral_base)) and
    HF = percentMul(collateral, threshold) / debt, as GenericLogic computes them. Per-position rule (Morpho's
    _isHealthy, Comet's isLiquidatable): HF = sum(wMulDown(collateral_base, threshold_wad)) / debt, the
    product split at 1e18 so it stays inside 128 bits. HF itself is a float of the exact integers, below 1
    exactly when they say liquidatable.
    """
    names = _names(valued)
    rules = "_rule" in names
    keys = [*WALLET_KEY, "_base_unit", *(["_rule"] if rules else [])]
    keys += ["_close_factor", "_full_close_below", "_full_close_base"] if "_close_factor" in names else []
    per_position: list[pl.Expr] = []
    if rules:
        value, threshold = pl.col("collateral_base"), pl.col("_threshold_wad")
        floored = (value // WAD) * threshold + ((value % WAD) * threshold) // WAD
        # floor(value * 1e18 / ratio), split at the ratio so the product stays inside 128 bits.
        over_ratio = (value // threshold) * WAD + ((value % threshold) * WAD) // threshold
        per_position = [
            floored.sum().alias("_adjusted_per_position"),
            ((value * pl.col("ltv_bps").cast(pl.Int128)) // BPS).sum().alias("_capacity_per_position"),
            pl.when((pl.col("_rule") == COLLATERAL_RATIO) & (threshold > 0))
            .then(over_ratio)
            .otherwise(0)
            .sum()
            .alias("_adjusted_collateral_ratio"),
        ]
    # Whether the wallet's market liquidates everything at once (one market per wallet row: any position says so).
    takes_all = [pl.col("_takes_all").any().alias("_takes_all")] if "_takes_all" in names else []
    weighted = (pl.col("collateral_base") * pl.col("liquidation_threshold_bps").cast(pl.Int128)).sum()
    weighted_ltv = (pl.col("collateral_base") * pl.col("ltv_bps").cast(pl.Int128)).sum()
    stable = pl.col("group") == STABLE_GROUP
    weighted_usd = pl.col("collateral_usd_now") * threshold_bps(names) / BPS
    agg = _per_wallet(
        valued,
        keys,
        *per_position,
        *takes_all,
        pl.col("collateral_base").sum().alias("_collateral"),
        pl.col("debt_base").sum().alias("_debt"),
        weighted.alias("_weighted_lt"),
        weighted_ltv.alias("_weighted_ltv"),
        pl.col("collateral_usd_now").sum().alias("collateral_usd"),
        pl.col("debt_usd_now").sum().alias("debt_usd"),
        pl.when(stable).then(weighted_usd).otherwise(0.0).sum().alias("_stable_weighted_usd"),
        pl.when(stable).then(0.0).otherwise(weighted_usd).sum().alias("_volatile_weighted_usd"),
        (pl.col("collateral_usd_now") / pl.col("_bonus")).sum().alias("_recoverable_usd"),
        *([recovered_usd(names).sum().alias("_recovered_usd")] if RECOVERY in names else []),
    )
    if RECOVERY not in names:
        agg = agg.with_columns(pl.col("_recoverable_usd").alias("_recovered_usd"))
    if agg.get_column("_base_unit").null_count():
        # A market whose base currency has no USD price (Morpho Blue indexed without a usd_oracle): its positions'
        # USD figures are NULL, and a sum of them is unknown, not 0 (the health factor stays exact).
        unknown = pl.col("_base_unit").is_null()
        usd_sums = ("collateral_usd", "debt_usd", "_stable_weighted_usd", "_volatile_weighted_usd", "_recoverable_usd")
        agg = agg.with_columns(
            pl.when(unknown).then(None).otherwise(pl.col(c)).alias(c) for c in (*usd_sums, "_recovered_usd")
        )
    lt = pl.when(pl.col("_collateral") > 0).then(pl.col("_weighted_lt") // pl.col("_collateral")).otherwise(0)
    ltv = pl.when(pl.col("_collateral") > 0).then(pl.col("_weighted_ltv") // pl.col("_collateral")).otherwise(0)
    figures = {
        # Average threshold: PercentageMath.percentMul (half-up), exact in Int128; the others as each rule says.
        "_adjusted": _by_rule(
            rules,
            (pl.col("_collateral") * pl.col("liquidation_threshold_bps") + BPS // 2) // BPS,
            {
                PER_POSITION: pl.col("_adjusted_per_position"),
                COLLATERAL_RATIO: pl.col("_adjusted_collateral_ratio"),
                # Liquidatable when sum(value * threshold) < debt * 1e4, i.e. floor(sum / 1e4) < debt.
                WEIGHTED_THRESHOLD: pl.col("_weighted_lt") // BPS,
            },
        ),
        "_borrow_capacity": _by_rule(
            rules,
            (pl.col("_collateral") * pl.col("ltv_bps") + BPS // 2) // BPS,
            {
                PER_POSITION: pl.col("_capacity_per_position"),
                COLLATERAL_RATIO: pl.col("_capacity_per_position"),
                # GenericLogic.calculateAvailableBorrows from 3.5: percentMulFloor.
                WEIGHTED_THRESHOLD: (pl.col("_collateral") * pl.col("ltv_bps")) // BPS,
            },
        ),
    }
    wide = agg.filter(pl.col("_collateral") >= WIDE_COLLATERAL)
    if wide.height:
        # A wallet's value x a bps figure past Int128 (it wraps around silently): those wallets' weighted figures in
        # Python ints (_wide_figures), taken over the columns' where they are given.
        agg = agg.join(_wide_figures(valued, wide, rules), on="_wid", how="left", maintain_order="left")
        lt, ltv = pl.coalesce("_wide_lt", lt), pl.coalesce("_wide_ltv", ltv)
        figures = {name: pl.coalesce(f"_wide{name}", e) for name, e in figures.items()}
    return (
        agg.lazy()
        .with_columns(lt.alias("liquidation_threshold_bps"), ltv.alias("ltv_bps"))
        .with_columns(e.alias(name) for name, e in figures.items())
        .with_columns(
            pl.when(pl.col("_debt") > 0)
            .then(_ratio_below_one_exactly(pl.col("_adjusted"), pl.col("_debt"), _numerator(rules, wide.height > 0)))
            .alias("health_factor"),
            pl.when(pl.col("collateral_usd") > 0).then(pl.col("debt_usd") / pl.col("collateral_usd")).alias("ltv_used"),
            ((pl.col("_borrow_capacity") - pl.col("_debt")).cast(pl.Float64) / pl.col("_base_unit"))
            .clip(lower_bound=0)
            .alias("borrowing_power_usd"),
        )
        .with_columns(
            # The integers decide: a float ratio within a base unit of the line could round either way.
            ((pl.col("_debt") > 0) & (pl.col("_adjusted") < pl.col("_debt"))).alias("liquidatable"),
            # Uniform drop x of non-stable collateral with (S + V (1 - x)) = debt: x = 1 - (debt - S) / V; 0 for a
            # wallet liquidatable now; NULL where no such drop liquidates it (its stable collateral alone covers the
            # debt, or it holds no non-stable collateral), where it clipped to 1 ("a 100 % drop") or was NULL before.
            pl.when((pl.col("_debt") > 0) & (pl.col("_adjusted") < pl.col("_debt")))
            .then(0.0)
            .when(
                (pl.col("_debt") > 0)
                & (pl.col("_volatile_weighted_usd") > 0)
                & (pl.col("debt_usd") > pl.col("_stable_weighted_usd"))
            )
            .then(
                (1 - (pl.col("debt_usd") - pl.col("_stable_weighted_usd")) / pl.col("_volatile_weighted_usd")).clip(
                    0, 1
                )
            )
            .alias("distance_to_liquidation"),
            # Aave's LiquidationLogic: half of the debt while HF > 0.95, all of it at 0.95 or below, and from 3.3
            # all of it where the debt or the collateral is worth under MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD.
            (
                pl.when(
                    (pl.col("health_factor") <= pl.col("_full_close_below"))
                    | (pl.col("_debt") < pl.col("_full_close_base"))
                    | (pl.col("_collateral") < pl.col("_full_close_base"))
                )
                .then(1.0)
                .otherwise(pl.col("_close_factor"))
                if "_close_factor" in names
                else pl.when(pl.col("health_factor") <= CLOSE_FACTOR_HF_THRESHOLD)
                .then(1.0)
                .otherwise(DEFAULT_CLOSE_FACTOR)
            ).alias("close_factor"),
        )
        .with_columns(
            pl.when(pl.col("liquidatable"))
            .then(pl.min_horizontal(pl.col("debt_usd") * pl.col("close_factor"), pl.col("_recovered_usd")))
            .otherwise(0.0)
            .alias("liquidatable_debt_usd"),
            (pl.col("debt_usd") - pl.col("_recovered_usd")).clip(lower_bound=0).alias("bad_debt_usd"),
        )
        .with_columns(_seizable("_takes_all" in names, RECOVERY in names).alias("seizable_collateral_usd"))
        .select(pl.exclude("^_.*$"), *([pl.col("_wid")] if keep_wid else []))
    )


#: A wallet's collateral in base units from which its value times a bps figure (at most 1e4) may pass Int128's 2^127.
WIDE_COLLATERAL = 10**34


def _wide_figures(valued: pl.LazyFrame, wide: pl.DataFrame, rules: bool) -> pl.DataFrame:
    """The weighted figures of the wallets in `wide` (collateral of WIDE_COLLATERAL base units or more, an odd token's
    market), each position's value x bps summed in Python ints, as wallet_health's columns would hold them had no
    product passed 2^127: average threshold and LTV (bps), the threshold- and LTV-weighted rules' adjusted collateral
    and borrowing capacity, the per-position capacity, and the threshold-weighted sum over 1e4 as a double (Aave 3.5's
    health factor numerator). One row per `_wid`."""
    columns = ["_wid", "collateral_base", "liquidation_threshold_bps", "ltv_bps", *(["_rule"] if rules else [])]
    rows = valued.filter(pl.col("_wid").is_in(wide.get_column("_wid").implode())).select(columns).collect()
    sums: dict[int, list[int]] = {}
    rule_of: dict[int, str | None] = {}
    for row in rows.iter_rows(named=True):
        value = int(row["collateral_base"] or 0)
        threshold, ltv = int(row["liquidation_threshold_bps"]), int(row["ltv_bps"])
        totals = sums.setdefault(row["_wid"], [0, 0, 0, 0])
        totals[0] += value
        totals[1] += value * threshold
        totals[2] += value * ltv
        totals[3] += value * ltv // BPS
        rule_of[row["_wid"]] = row.get("_rule")
    out: dict[str, list[object]] = {
        c: [] for c in ("_wid", "_wide_lt", "_wide_ltv", "_wide_adjusted", "_wide_borrow_capacity", "_wide_weighted")
    }
    for wid, (collateral, weighted, weighted_ltv, capacity) in sums.items():
        lt = weighted // collateral if collateral > 0 else 0
        ltv = weighted_ltv // collateral if collateral > 0 else 0
        rule = rule_of[wid] if rules else None
        if rule in (PER_POSITION, COLLATERAL_RATIO):
            adjusted, borrow = None, capacity  # the adjusted collateral of these rules never multiplies by bps
        elif rule == WEIGHTED_THRESHOLD:
            adjusted, borrow = weighted // BPS, collateral * ltv // BPS
        else:  # Aave's average threshold: PercentageMath.percentMul, half up
            adjusted, borrow = (collateral * lt + BPS // 2) // BPS, (collateral * ltv + BPS // 2) // BPS
        for name, figure in zip(out, (wid, lt, ltv, adjusted, borrow, weighted / BPS), strict=True):
            out[name].append(figure)
    schema: dict[str, type[pl.DataType]] = {"_wid": pl.UInt64, "_wide_lt": pl.Int128, "_wide_ltv": pl.Int128}
    schema |= {"_wide_adjusted": pl.Int128, "_wide_borrow_capacity": pl.Int128, "_wide_weighted": pl.Float64}
    return pl.DataFrame(out, schema=schema)


def _seizable(takes_all: bool, recovery: bool) -> pl.Expr:
    """Collateral seized: repaid debt times the bonus, at the collateral-weighted average bonus, and no more than the
    wallet holds (where the protocol recovers more than 1 / bonus of it, Maker's Clipper sells up to tab = debt x chop
    and gives back the rest); all of it where a liquidation takes every collateral at once (Compound V3's absorb,
    which credits back what exceeds the debt)."""
    partial = (
        pl.when(pl.col("_recoverable_usd") > 0)
        .then(pl.col("liquidatable_debt_usd") * pl.col("collateral_usd") / pl.col("_recoverable_usd"))
        .otherwise(0.0)
    )
    if recovery:
        partial = pl.min_horizontal(partial, pl.col("collateral_usd"))
    if not takes_all:
        return partial
    return pl.when(pl.col("_takes_all") & pl.col("liquidatable")).then(pl.col("collateral_usd")).otherwise(partial)


def _numerator(rules: bool, wide: bool = False) -> pl.Expr:
    """The health factor's numerator as a float: the exact threshold-weighted sum over 1e4 for Aave 3.5+ (whose
    integer `_adjusted` is floored to decide the verdict), `_adjusted` for every other rule. `wide`: the sum is
    `_wide_weighted` where _wide_figures gives it."""
    adjusted = pl.col("_adjusted").cast(pl.Float64)
    if not rules:
        return adjusted
    weighted = pl.col("_weighted_lt").cast(pl.Float64) / BPS
    if wide:
        weighted = pl.coalesce("_wide_weighted", weighted)
    return pl.when(pl.col("_rule") == WEIGHTED_THRESHOLD).then(weighted).otherwise(adjusted)


def _ratio_below_one_exactly(adjusted: pl.Expr, debt: pl.Expr, numerator: pl.Expr) -> pl.Expr:
    """numerator / debt as a double that is below 1 exactly when the integers `adjusted` < `debt` are: two 1e27-scale
    integers that differ by less than one part in 2^53 divide to 1.0 in floating point, which would hide a wallet the
    protocol liquidates (Maker's ink * spot < art * rate by one wei); such a ratio becomes the largest double below 1,
    and one the integers call safe is at least 1."""
    ratio = numerator / debt.cast(pl.Float64)
    return (
        pl.when(adjusted < debt)
        .then(pl.min_horizontal(ratio, pl.lit(BELOW_ONE)))
        .otherwise(pl.max_horizontal(ratio, pl.lit(1.0)))
    )


def _by_rule(rules: bool, average_threshold: pl.Expr, others: dict[str, pl.Expr]) -> pl.Expr:
    """The average-threshold figure, or another rule's for wallets under that rule."""
    if not rules:
        return average_threshold
    chosen: Any = pl
    for rule, figure in others.items():
        chosen = chosen.when(pl.col("_rule") == rule).then(figure)
    return cast(pl.Expr, chosen.otherwise(average_threshold))


#: Relative slack on a float average threshold before it is floored to whole bps (the integers floor an exact ratio).
FLOOR_SLACK = 1e-9


def liquidation_prices(valued: pl.LazyFrame, iterations: int = 4) -> pl.LazyFrame:
    """Per position: the oracle price of this asset at which the wallet's HF reaches 1, other prices held.

    With C, D, W the wallet's collateral, debt and threshold-weighted collateral (base units, summed as
    floats: the price is a float anyway) without this asset, alpha and beta its collateral and debt per unit
    of price, and L the average threshold (bps), HF = 1 when (C + alpha p) L = 10^4 (D + beta p), so
    p = (10^4 D - L C) / (L alpha - 10^4 beta). Aave floors L = W / C, which moves with p; a few fixed-point
    rounds settle it, so the price applied on the chain gives HF = 1 to well within 1e-6. For a collateral
    asset the wallet is liquidated when the price falls below p; for a debt asset (beta dominant) when it
    rises above it.
    """
    names = _names(valued)
    unit = _unit_float(names)

    def average(x: pl.Expr) -> pl.Expr:
        """Aave before 3.5 floors the average threshold to whole bps; the other rules keep it exact. The float
        ratio of a whole bps can land a hair under it (one collateral at 6,800: W / C = 6,799.999...), which a bare
        floor took a bps lower (an HF of 1.000147 at the price given): floored with a relative slack of 1e-9."""
        floored = (x * (1 + FLOOR_SLACK)).floor()
        if "_rule" not in names:
            return floored
        return pl.when(pl.col("_rule").is_in(UNFLOORED_RULES)).then(x).otherwise(floored)

    # Each wallet's totals gathered back over its positions at the wallet's label (cheaper than window sums, which
    # group the book again for each total); the positions' own floats cast once.
    frame = valued.collect()
    # Doubles cast from Int128 here: finding which columns fit Int64 costs this stage more than it saves.
    own = frame.select(
        pl.col("collateral_base").cast(pl.Float64).alias("_own_c"), pl.col("debt_base").cast(pl.Float64).alias("_own_d")
    )
    sums = {"_c": pl.col("_own_c"), "_d": pl.col("_own_d"), "_w": pl.col("_own_c") * threshold_bps(names)}
    with_own = frame.with_columns(own)
    labelled = wallet_index(with_own)
    if labelled is not None:
        # Per-wallet totals summed by the labels and spread back over the wallet's positions by indexing.
        index, first = labelled
        totals = float_sums(with_own, index, len(first), sums)
        spread = with_own.with_columns(
            pl.Series(name, totals.get_column(name).to_numpy()[index]) for name in sums
        ).lazy()
    else:
        spread = with_own.lazy().with_columns(e.sum().over("_wid").alias(name) for name, e in sums.items())
    rows = spread.with_columns(threshold_bps(names).alias("_lt")).with_columns(
        (pl.col("_c") - pl.col("_own_c")).alias("_c_other"),
        (pl.col("_d") - pl.col("_own_d")).alias("_d_other"),
        (pl.col("_w") - pl.col("_own_c") * pl.col("_lt")).alias("_w_other"),
        (pl.col("collateral_amount").cast(pl.Float64) / unit).alias("_alpha"),
        (pl.col("debt_amount").cast(pl.Float64) / unit).alias("_beta"),
        pl.when(pl.col("_c") > 0).then(average(pl.col("_w") / pl.col("_c"))).otherwise(0.0).alias("_l"),
    )
    price = (BPS * pl.col("_d_other") - pl.col("_l") * pl.col("_c_other")) / (
        pl.col("_l") * pl.col("_alpha") - BPS * pl.col("_beta")
    )
    # Start from the root with the threshold average left unfloored (exact for the per-position rule):
    # W_other + alpha p LT = 10^4 (D_other + beta p). Flooring then moves L by under one bps, so a few
    # rounds settle it even where L itself moves fast with p (two collaterals of different thresholds).
    continuous = (BPS * pl.col("_d_other") - pl.col("_w_other")) / (
        pl.col("_alpha") * pl.col("_lt") - BPS * pl.col("_beta")
    )
    rows = rows.with_columns(continuous.alias("_p"))
    for _ in range(iterations):
        collateral_at_price = pl.col("_alpha") * pl.col("_p")
        rows = rows.with_columns(
            pl.when(((pl.col("_c_other") + collateral_at_price) > 0) & pl.col("_p").is_finite())
            .then(
                average(
                    (pl.col("_w_other") + collateral_at_price * pl.col("_lt"))
                    / (pl.col("_c_other") + collateral_at_price)
                )
            )
            .otherwise(pl.col("_l"))
            .alias("_l")
        ).with_columns(price.alias("_p"))
    # Aave's floored average makes HF(p) a staircase; where a step jumps over 1 the rounds alternate between
    # two thresholds and no price gives HF = 1 exactly. The boundary of the liquidatable set is then the step:
    # the price at which the average reaches the higher of the two, (W_other + alpha p LT) / (C_other + alpha p) = L.
    average_at_p = average(
        (pl.col("_w_other") + pl.col("_alpha") * pl.col("_p") * pl.col("_lt"))
        / (pl.col("_c_other") + pl.col("_alpha") * pl.col("_p"))
    )
    higher = pl.max_horizontal(average_at_p, pl.col("_l"))
    step = (higher * pl.col("_c_other") - pl.col("_w_other")) / (pl.col("_alpha") * (pl.col("_lt") - higher))
    rows = rows.with_columns(
        pl.when((average_at_p != pl.col("_l")) & (pl.col("_alpha") > 0) & step.is_finite() & (step > 0))
        .then(step)
        .otherwise(pl.col("_p"))
        .alias("_p")
    )
    valid = (pl.col("_d") > 0) & (pl.col("_p") > 0) & pl.col("_p").is_finite()
    if FIXED in names:
        valid = valid & ~pl.col(FIXED)  # no market price of it moves the wallet's health
    slope = pl.col("_l") * pl.col("_alpha") - BPS * pl.col("_beta")
    return rows.select(
        *WALLET_KEY,
        "asset",
        "symbol",
        "group",
        "collateral_usd_now",
        "debt_usd_now",
        "price_usd_now",
        pl.when(valid & (slope > 0))
        .then(pl.lit("falls below"))
        .when(valid & (slope < 0))
        .then(pl.lit("rises above"))
        .alias("liquidated_when_price"),
        pl.when(valid).then(pl.col("_p")).alias("liquidation_price"),
        pl.when(valid).then(_price_usd(pl.col("_p"), names)).alias("liquidation_price_usd"),
        pl.when(valid).then(pl.col("_p") / pl.col("_price").cast(pl.Float64) - 1).alias("liquidation_price_change"),
    )


#: Drops of the price-drop curve: 0 % to 90 % in 41 points (2.25 % steps).
DROPS = [round(0.9 * k / 40, 6) for k in range(41)]
#: Stablecoin depeg axis: 0 % to 20 % in 41 points.
DEPEGS = [round(0.2 * k / 40, 6) for k in range(41)]
CURVE_KEY = ["chain_id", "market", "block_number", "block_timestamp"]


#: A shock axis: kind, name, which positions it moves, and the drops it is taken through.
Axis = tuple[str, str, pl.Expr, list[float]]


def curve_axes(symbols: pl.DataFrame, groups: dict[str, str] | None = None) -> list[Axis]:
    """Every shock axis of a book holding `symbols` (a frame with a `symbol` column; its `group` column if it has one,
    else each symbol's group)."""
    present = (
        symbols
        if "group" in symbols.columns
        else symbols.with_columns(group_expr(pl.col("symbol"), groups).alias("group"))
    )
    return _axes(present.select("symbol", "group").unique())


def _axes(present: pl.DataFrame) -> list[Axis]:
    """(kind, name, membership expression, drops) for every shock axis of the (symbol, group) pairs present."""
    symbols = sorted(present["symbol"].to_list())
    groups = sorted(set(present["group"].to_list()) - {STABLE_GROUP})
    stable_symbols = sorted(present.filter(pl.col("group") == STABLE_GROUP)["symbol"].to_list())
    axes: list[Axis] = []
    for symbol in symbols:
        if symbol in stable_symbols:
            axes.append(("depeg", symbol, pl.col("symbol") == symbol, DEPEGS))
        else:
            axes.append(("asset", symbol, pl.col("symbol") == symbol, DROPS))
    for group in groups:
        axes.append(("group", group, pl.col("group") == group, DROPS))
    axes.append(("all_crypto", "all non-stable", pl.col("group") != STABLE_GROUP, DROPS))
    if stable_symbols:
        axes.append(("depeg", "all stablecoins", pl.col("group") == STABLE_GROUP, DEPEGS))
    return axes


def _axis_base_terms(names: list[str]) -> dict[str, pl.Expr]:
    """The terms of axis_coefficients per position, before they are split on and off an axis."""
    return {
        "a": pl.col("collateral_usd_now") * threshold_bps(names) / BPS,
        "b": pl.col("debt_usd_now"),
        "c": pl.col("collateral_usd_now"),
        "r": recovered_usd(names),
    }


def _axis_terms(member: pl.Expr, names: list[str], prefix: str = "") -> dict[str, pl.Expr]:
    """The terms of axis_coefficients for one axis, per position: each term on the axis (`_in`) and off it (`_out`),
    to be summed over the wallet's positions."""
    found = {}
    for name, expr in _axis_base_terms(names).items():
        found[f"{prefix}{name}_in"] = pl.when(member).then(expr).otherwise(0.0)
        found[f"{prefix}{name}_out"] = pl.when(member).then(0.0).otherwise(expr)
    return found


def axis_coefficients(valued: pl.LazyFrame, member: pl.Expr) -> pl.LazyFrame:
    """Per wallet, the terms of HF(m) = (A_out + m A_in) / (B_out + m B_in) for one shock axis, in USD."""
    return coefficients_by_axis(valued, [member])[0].lazy()


#: Per-wallet sums held at once when coefficients_by_axis sums several axes in one pass over the book.
_AXIS_CELLS = 16_000_000


def coefficients_by_axis(valued: pl.LazyFrame, members: list[pl.Expr]) -> list[pl.DataFrame]:
    """axis_coefficients for each axis of `members`, several axes to one pass over the book (as many as keep the
    per-wallet sums within _AXIS_CELLS, taking every position for a wallet)."""
    found = []
    for keys, sums in _axis_sums(valued, members):
        for axis in sums:
            in_debt = _in_debt(axis)
            both = pl.concat([keys, axis], how="horizontal")
            # Filtered only when some wallet has no debt: a filter copies every column.
            found.append(both if in_debt.all() else both.filter(pl.Series(in_debt)))
    return found


def _axis_sums(valued: pl.LazyFrame, members: list[pl.Expr]) -> list[tuple[pl.DataFrame, list[pl.DataFrame]]]:
    """Per pass over the book: the wallets' keys (`_wid` and CURVE_KEY, one row per wallet) and, for each axis of
    the pass, its terms (columns _TERMS of chainrisk.scoring.curve, rows of those wallets). The passes of a labelled
    book share one keys frame (the same object)."""
    frame = valued.collect()
    names = frame.columns
    if FIXED in names:
        # A position whose price the protocol fixes is on no shock axis: the axis moves market prices only.
        members = [member.fill_null(False) & ~pl.col(FIXED) for member in members]
    labelled = wallet_index(frame)
    keys: pl.DataFrame | None = None
    if labelled is not None:
        index, first = labelled
        keys = pl.DataFrame(gather_rows([frame.get_column(k) for k in ("_wid", *CURVE_KEY)], pl.Series(first)))
    per_pass = max(1, _AXIS_CELLS // (8 * max(frame.height, 1)))
    base_terms = _axis_base_terms(names)
    base: dict[str, pl.Expr | npt.NDArray[np.float64]] = dict(base_terms)
    if labelled is not None and len(members) > per_pass:
        # Several passes split the same four sums: each made once (four doubles a position, held through the passes).
        base = {name: float_column(frame, e) for name, e in base_terms.items()}
    passes = []
    for start in range(0, len(members), per_pass):
        batch = members[start : start + per_pass]
        if labelled is not None and keys is not None:
            wallets = split_float_sums(frame, index, keys.height, base, batch)
            pass_keys = keys
        else:
            terms = {n: e for i, member in enumerate(batch) for n, e in _axis_terms(member, names, f"{i}:").items()}
            wallets = _per_wallet(frame.lazy(), CURVE_KEY, *(e.sum().alias(name) for name, e in terms.items()))
            pass_keys = wallets.select("_wid", *CURVE_KEY)
        sums = []
        for i in range(len(batch)):
            columns = [c for c in wallets.columns if c.startswith(f"{i}:")]
            sums.append(wallets.select(pl.col(c).alias(c.split(":", 1)[1]) for c in columns))
        passes.append((pass_keys, sums))
    return passes


def _in_debt(axis: pl.DataFrame) -> npt.NDArray[np.bool_]:
    """Which wallets of one axis's terms owe anything: the curve holds only those."""
    in_debt: npt.NDArray[np.bool_] = (axis.get_column("b_in") + axis.get_column("b_out") > 0).to_numpy()
    return in_debt


def axis_curves(
    valued: pl.LazyFrame, axes: list[Axis], by: list[str]
) -> list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
    """Per axis of `axes`: its curve per group of `by` (columns of CURVE_KEY), its curve per chain (market 'all'),
    and the chains' latest block (chain_id, block_number, block_timestamp) among the wallets it holds. Each wallet is
    placed on each axis's grid once for both curves, and the groups of a set of wallets are found once for all the
    axes that hold it (every axis, unless an axis's wallets in debt differ)."""
    found = []
    # (keys frame, wallets in debt) -> the groupings of those wallets: per `by` and per chain, and the chains' blocks.
    seen: list[tuple[pl.DataFrame, npt.NDArray[np.bool_], tuple[Grouping, Grouping, pl.DataFrame]]] = []
    sums = [(keys, axis) for keys, axes_sums in _axis_sums(valued, [a[2] for a in axes]) for axis in axes_sums]
    verdicts = _verdicts_near_now(valued, sums)
    for (_, _, _, drops), (keys, axis) in zip(axes, sums, strict=True):
        in_debt = _in_debt(axis)
        everyone = bool(in_debt.all())
        held = next((g for k, m, g in seen if k is keys and np.array_equal(m, in_debt)), None)
        if held is None:
            wallets = keys if everyone else keys.filter(pl.Series(in_debt))
            chains = wallets.group_by("chain_id", maintain_order=True).agg(
                pl.col("block_number").max(), pl.col("block_timestamp").max()
            )
            held = (groups_of(wallets, by), groups_of(wallets, ["chain_id"]), chains)
            seen.append((keys, in_debt, held))
        per_group, per_chain, chains = held
        terms = axis if everyone else axis.filter(pl.Series(in_debt))
        arrays = {t: terms.get_column(t).to_numpy() for t in terms.columns}
        if id(keys) in verdicts:
            _agree_now(arrays, verdicts[id(keys)], None if everyone else in_debt)
        by_group, by_chain = curve_sums(arrays, drops, [per_group, per_chain])
        found.append((by_group, by_chain.with_columns(pl.lit("all").alias("market")), chains))
    return found


#: How near the line, relative to the size of its terms, a wallet's float test at the snapshot's prices (drop 0) must be
#: for the curve to ask the integers whether it is liquidatable: the float terms round each product, and the average
#: threshold Aave takes is a floor to whole bps (a relative 1e-4 at most) that the float weighted sum does not take.
_NEAR_NOW = 1e-3
#: The integers' verdict at the snapshot's prices on the wallets near the line, per pass's keys frame (by id): those
#: wallets' rows in it and whether each is liquidatable.
Verdicts = dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]]


def _near_now(terms: Mapping[str, npt.NDArray[np.float64]]) -> npt.NDArray[np.bool_]:
    """Which wallets' float test at multiplier 1 (A_out + A_in < B_out + B_in) is within _NEAR_NOW of the line."""
    with np.errstate(invalid="ignore", over="ignore"):
        adjusted, debt = terms["a_out"] + terms["a_in"], terms["b_out"] + terms["b_in"]
        near: npt.NDArray[np.bool_] = np.abs(adjusted - debt) <= _NEAR_NOW * (np.abs(adjusted) + np.abs(debt))
    return near


def _verdicts_near_now(valued: pl.LazyFrame, sums: list[tuple[pl.DataFrame, pl.DataFrame]]) -> Verdicts:
    """The integers' verdict (wallet_health's `liquidatable`) on every wallet the float terms put near the line at the
    snapshot's prices: the few wallets whose float test there could say otherwise. Found on one axis of each pass's
    wallets: at multiplier 1 every axis sums the same terms (split otherwise), so the axes' sums differ by rounding,
    a trillionth of _NEAR_NOW."""
    near: dict[int, tuple[pl.DataFrame, npt.NDArray[np.int64]]] = {}
    for keys, axis in sums:
        if id(keys) not in near:
            close = _near_now({t: axis.get_column(t).to_numpy() for t in ("a_out", "a_in", "b_out", "b_in")})
            near[id(keys)] = (keys, np.flatnonzero(close))
    wids = {int(w) for keys, rows in near.values() for w in keys.get_column("_wid").to_numpy()[rows]}
    if not wids:
        return {}
    wanted = pl.Series("_wid", sorted(wids), dtype=pl.UInt64)
    found = (
        wallet_health(valued.filter(pl.col("_wid").is_in(wanted.implode())), keep_wid=True)
        .select("_wid", pl.col("liquidatable").fill_null(False))
        .collect()
        .sort("_wid")
    )
    known, liquidatable = found.get_column("_wid").to_numpy(), found.get_column("liquidatable").to_numpy()
    verdicts: Verdicts = {}
    for key, (keys, rows) in near.items():
        asked = keys.get_column("_wid").to_numpy()[rows]
        at = np.minimum(np.searchsorted(known, asked), max(len(known) - 1, 0))
        hit = known[at] == asked if len(known) else np.zeros(len(rows), dtype=bool)
        verdicts[key] = (rows[hit], liquidatable[at[hit]])
    return verdicts


def _agree_now(
    terms: dict[str, npt.NDArray[np.float64]],
    verdicts: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]],
    in_debt: npt.NDArray[np.bool_] | None,
) -> None:
    """Moves `a_out` of each wallet whose float test at multiplier 1 disagrees with the integers' verdict (a wallet on
    the line: Maker's ink x spot equal to art x rate, safe to the Vat, or one Aave's floored average threshold tips)
    by the least that makes the test agree, so that the curve at a drop of 0 counts exactly the wallets wallet_health
    calls liquidatable. Other points keep the float test of the moved terms. `verdicts`: rows of the pass's keys and
    their verdicts; `in_debt`: which of those rows `terms` holds (None: all)."""
    rows, want = verdicts
    if in_debt is not None:
        held = in_debt[rows]
        rows, want = np.searchsorted(np.flatnonzero(in_debt), rows[held]), want[held]
    if not len(rows):
        return
    a_out, a_in = terms["a_out"][rows], terms["a_in"][rows]
    debt = terms["b_out"][rows] + terms["b_in"][rows]
    with np.errstate(invalid="ignore", over="ignore"):
        wrong = np.flatnonzero(np.isfinite(debt) & np.isfinite(a_out + a_in) & ((a_out + a_in < debt) != want))
        if not len(wrong):
            return
        moved = debt[wrong] - a_in[wrong]
        # Steps of an ulp of the sum (an ulp of `moved` itself may be far smaller: a wallet all on the axis).
        step = np.where(want[wrong], -1.0, 1.0) * np.spacing(np.abs(debt[wrong]))
        for _ in range(8):  # a step or two: the sum is within an ulp or so of `debt`
            off = (moved + a_in[wrong] < debt[wrong]) != want[wrong]
            if not off.any():
                break
            moved[off] += step[off]
    column = terms["a_out"].copy()  # the frame's own buffer may be read-only
    column[rows[wrong]] = moved
    terms["a_out"] = column


def liquidation_curve(valued: pl.LazyFrame, axes: list[Axis] | None = None) -> pl.DataFrame:
    """Collateral at risk vs price drop, per market and in total (market 'all'), for every shock axis (or `axes`)."""
    frames = []
    chosen = _axes(valued.select("symbol", "group").unique().collect()) if axes is None else axes
    columns = [*CURVE_KEY, "axis_kind", "axis", "drop", *METRICS]
    for (kind, name, _, drops), (per_market, per_chain, chains) in zip(
        chosen, axis_curves(valued, chosen, CURVE_KEY), strict=True
    ):
        total = per_chain.join(chains, on="chain_id", maintain_order="left")
        for part in (per_market, total):
            frames.append((part.with_columns(axis_kind=pl.lit(kind), axis=pl.lit(name)).select(columns), len(drops)))
    return _sorted_curve(frames, ascending=all(d == sorted(set(d)) for _, _, _, d in chosen))


def _sorted_curve(parts: list[tuple[pl.DataFrame, int]], ascending: bool) -> pl.DataFrame:
    """The curve's parts (each a run of blocks of `points` rows, one block per market or chain of one axis, its drops
    in the order given) as one frame sorted by CURVE_KEY, axis and drop. With every axis's drops `ascending`, each
    block already is in drop order: the blocks are sorted by their keys (one row each) and gathered, a fraction of
    sorting every point (747,594 rows of 251,188 wallets in 1,000 markets on 18 axes: 0.11 s against 0.21 s)."""
    order = [*CURVE_KEY, "axis_kind", "axis"]
    curve = pl.concat([part for part, _ in parts], rechunk=True)  # a gather across the parts' chunks is 5x slower
    if not ascending or curve.is_empty():
        return curve.sort([*order, "drop"])
    starts, sizes, offset = [], [], 0
    for part, points in parts:
        starts.append(np.arange(offset, offset + part.height, points, dtype=np.int64))
        sizes.append(np.full(len(starts[-1]), points, dtype=np.int64))
        offset += part.height
    first = np.concatenate(starts)
    blocks = (
        curve.select(order)
        .gather(pl.Series(first))
        .with_columns(_start=pl.Series(first), _points=pl.Series(np.concatenate(sizes)))
        .sort(order)
    )
    if blocks.select(order).is_duplicated().any():
        return curve.sort([*order, "drop"])  # two blocks of one key (an axis named twice): the points interleave
    lengths = blocks.get_column("_points").to_numpy()
    ends = np.cumsum(lengths)
    within = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)  # each row's place in its block
    return curve.gather(pl.Series(np.repeat(blocks.get_column("_start").to_numpy(), lengths) + within))


def reprice(prepared: pl.DataFrame | pl.LazyFrame, multipliers: pl.DataFrame | None = None) -> pl.LazyFrame:
    """A prepared book valued at the oracle prices times `multipliers` ((symbol or asset, multiplier): see
    apply_multipliers): what models that shock one book many times call, preparing it once."""
    return position_values(apply_multipliers(prepared.lazy(), multipliers))


def value_positions(
    positions: pl.DataFrame | pl.LazyFrame,
    multipliers: pl.DataFrame | None = None,
    groups: dict[str, str] | None = None,
) -> pl.LazyFrame:
    """Every position of a `positions` frame valued in base currency and USD, at the snapshot's oracle prices or
    those times `multipliers`: the one way into the engine."""
    return reprice(prepare(positions, groups), multipliers)


def stress(positions: pl.DataFrame | pl.LazyFrame, multipliers: pl.DataFrame | None = None) -> pl.DataFrame:
    """Post-shock health of every wallet in one vectorised pass (without `multipliers`: health now)."""
    return wallet_health(value_positions(positions, multipliers)).collect()
