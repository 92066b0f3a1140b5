"""Credit features per wallet as of a cutoff block, from stored on-chain history only, and 30-day liquidation labels.

Everything a feature reads is filtered to blocks at or before the cutoff first: events (Aave V3 and Morpho Blue
borrows, repays, liquidations), the history samples (`chainrisk credit history`: health, holdings, prices,
look-through) and asset prices. The cutoff is a sampled block: the wallet's state "now" is that sample. Labels look
only after it: liquidated within (cutoff, cutoff + horizon].
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from chainrisk.credit.regime import MARKET_INPUTS, VOL_DAYS, MarketState, market_state
from chainrisk.errors import UserError
from chainrisk.units import DAY_S

#: Health factors above this are all "safe" (and no debt counts as this): keeps averages finite.
HF_CAP = 10.0
#: Window of the health-history features.
WINDOW_DAYS = 90
#: Health under which a repay counts as defensive (the wallet acted on a warning).
DEFENSIVE_HF = 1.25
#: Floor of a position's annualised volatility (a stablecoin against a stablecoin still moves a little), and the
#: distance to liquidation given to a wallet without debt and the most any gets, in 30-day standard deviations.
MIN_POSITION_VOL, SIGMAS_CAP = 0.01, 20.0
SQRT_MONTH = (30 / 365) ** 0.5
#: Days recorded for "never" (no repay, no liquidation): longer than any window the model bins on.
NEVER_DAYS = 3650.0

#: Feature -> (what it measures, direction: +1 if more of it means more risk, -1 if less). The scorecard keeps each
#: feature's points monotone in this direction (economics, not the data, decides it).
FEATURES: dict[str, tuple[str, int]] = {
    "hf_now": ("health factor now (worst market)", -1),
    "hf_min_90d": ("lowest health factor in 90 days", -1),
    "hf_twa_90d": ("time-weighted health factor over 90 days", -1),
    "below_1_1_90d": ("share of 90 days with health under 1.1", +1),
    "utilisation": ("debt / borrowing capacity now (collateral x LTV)", +1),
    "debt_usd": ("debt now (USD)", +1),
    "age_days": ("days since the first action on the protocols", -1),
    "protocols": ("protocols used", -1),
    "markets": ("markets used", -1),
    "borrows": ("borrows", +1),
    "repays": ("repays", -1),
    "borrow_usd": ("USD borrowed", +1),
    "repay_ratio": ("USD repaid / USD borrowed", -1),
    "days_since_repay": ("days since the last repay", +1),
    "defensive_repays_90d": ("repays under health 1.25 in 90 days", -1),
    "liquidations": ("liquidations suffered", +1),
    "liquidated_usd": ("USD of debt liquidated", +1),
    "days_since_liquidation": ("days since the last liquidation", -1),
    "collateral_vol": ("annualised volatility of the collateral", +1),
    "hf_sigmas": ("distance to liquidation in 30-day moves of the position (sigmas)", -1),
    "concentration": ("collateral concentration (HHI by base asset)", +1),
    "loop_leverage": ("loop leverage", +1),
    "chain_depth": ("deepest collateral chain", +1),
}
#: Feature -> the unit its value is stated in (reason codes and the dashboard say it beside every value).
UNITS: dict[str, str] = {
    "hf_now": "ratio",
    "hf_min_90d": "ratio",
    "hf_twa_90d": "ratio",
    "below_1_1_90d": "%",
    "utilisation": "%",
    "debt_usd": "USD",
    "age_days": "days",
    "protocols": "count",
    "markets": "count",
    "borrows": "count",
    "repays": "count",
    "borrow_usd": "USD",
    "repay_ratio": "%",
    "days_since_repay": "days",
    "defensive_repays_90d": "count",
    "liquidations": "count",
    "liquidated_usd": "USD",
    "days_since_liquidation": "days",
    "collateral_vol": "% a year",
    "hf_sigmas": "sigmas",
    "concentration": "ratio",
    "loop_leverage": "ratio",
    "chain_depth": "count",
}


def describe(feature: str) -> str:
    """What a feature or market-state input measures, in words (its name when unknown)."""
    if feature in FEATURES:
        return FEATURES[feature][0]
    return MARKET_INPUTS[feature][0] if feature in MARKET_INPUTS else feature


def unit_of(feature: str) -> str:
    return UNITS[feature] if feature in UNITS else MARKET_INPUTS[feature][1]


def value_text(feature: str, value: float | None) -> str:
    """A feature's value with its unit: "$4,961.59", "103.8 % a year", "12 days", "1.065 (ratio)", "3 (count)"."""
    if value is None or value != value:  # None or NaN: the wallet has no history for it
        return "no history"
    unit = unit_of(feature)
    if unit == "USD":
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    if unit.startswith("%"):
        return f"{100 * value:.1f} {unit}"
    if unit == "days":
        return f"never (counted as {NEVER_DAYS:,.0f} days)" if value >= NEVER_DAYS else f"{value:,.1f} days"
    if unit == "count":
        return f"{value:,.0f} ({unit})"
    if unit == "sigmas":
        return f"{value:.2f} sigmas"
    return f"{value:.3f} ({unit})"


@dataclass(frozen=True)
class History:
    """Everything features read, for one chain, loaded once (many cutoffs are cut from it)."""

    chain_id: int
    samples: pl.DataFrame  #: block_number, block_timestamp (sorted)
    wallet_health: pl.DataFrame  #: per wallet and sample: collateral/debt/borrowing power, worst HF, second HF
    holdings: pl.DataFrame  #: per wallet, sample, base asset and asset: collateral_usd, debt_usd
    prices: pl.DataFrame  #: asset, block_number, block_timestamp, price_usd, decimals
    lookthrough: pl.DataFrame  #: wallet, block_number, loop_leverage, max_depth
    events: pl.DataFrame  #: wallet, protocol, market_key, block_number, block_timestamp, kind, asset, usd


def _capped_hf(column: str = "health_factor") -> pl.Expr:
    return pl.col(column).fill_null(HF_CAP).clip(upper_bound=HF_CAP)


def history_from_frames(
    chain_id: int,
    samples: pl.DataFrame,
    health: pl.DataFrame,
    holdings: pl.DataFrame,
    prices: pl.DataFrame,
    lookthrough: pl.DataFrame,
    events: pl.DataFrame,
    block_times: pl.DataFrame,
) -> History:
    """The History of one chain from its stored rows, each read in a fixed order (see chainrisk.jobs.credit):
    `health` per wallet, market and sample (with capacity_usd and adjusted_collateral_usd), `holdings` per wallet,
    sample, base asset and asset, `events` the lending events (wallet, protocol, market_key, block_number, kind,
    asset, amount), `block_times` the timestamps of the blocks events were stored from."""
    if samples.is_empty():
        raise UserError(f"no credit history for chain {chain_id}; run `chainrisk credit history` first")
    ranked = health.with_columns(pl.when(pl.col("debt_usd") > 0).then(_capped_hf()).otherwise(HF_CAP).alias("hf")).sort(
        "wallet", "block_number", "hf"
    )
    wallet_health = ranked.group_by("wallet", "block_number", maintain_order=True).agg(
        pl.col("block_timestamp").first(),
        pl.col("collateral_usd").sum(),
        pl.col("debt_usd").sum(),
        pl.col("capacity_usd").sum(),
        pl.col("adjusted_collateral_usd").sum(),
        pl.col("hf").first().alias("worst_hf"),
        pl.col("hf").get(1, null_on_oob=True).fill_null(HF_CAP).alias("second_hf"),
        # The worst market's collateral at its liquidation threshold, and its debt: what advice moves.
        pl.col("adjusted_collateral_usd").first().alias("worst_adjusted_collateral"),
        pl.col("debt_usd").first().alias("worst_debt"),
        pl.col("collateral_usd").first().alias("worst_collateral"),
    )
    # Order-keeping sums over sorted reads: float totals come out bit-identical whatever the file's layout.
    held = holdings.group_by("wallet", "block_number", "base_asset", "asset", maintain_order=True).agg(
        pl.col("collateral_usd").sum(), pl.col("debt_usd").sum()
    )
    priced = priced_events(events, block_times, prices)
    return History(chain_id, samples, wallet_health, held, prices, lookthrough, priced)


def priced_events(events: pl.DataFrame, block_times: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """Borrows, repays, liquidations and supplies with their times and USD values (price of the asset at the
    latest sample at or before the event; the earliest sample's for events before any)."""
    schema = {
        "wallet": pl.Utf8,
        "protocol": pl.Utf8,
        "market_key": pl.Utf8,
        "block_number": pl.Int64,
        "kind": pl.Utf8,
        "asset": pl.Utf8,
        "amount": pl.Float64,
    }
    events = events.select(list(schema)).cast(schema)  # type: ignore[arg-type]
    events = events.join(block_times.select("block_number", "block_timestamp"), on="block_number", how="left")
    if events["block_timestamp"].null_count():
        raise UserError("event blocks without a timestamp; run `chainrisk credit history` again to record them")
    priced = events.sort("block_number").join_asof(
        prices.select("asset", "block_number", "price_usd", "decimals").sort("block_number"),
        on="block_number",
        by="asset",
        strategy="backward",
        check_sortedness=False,  # sorted by block above; polars cannot check it within groups
    )
    first_price = (
        prices.sort("block_number")
        .group_by("asset")
        .agg(pl.col("price_usd").first().alias("p0"), pl.col("decimals").first().alias("d0"))
    )
    return (
        priced.join(first_price, on="asset", how="left")
        .with_columns(
            (
                pl.col("amount")
                / (10.0 ** pl.coalesce("decimals", "d0").cast(pl.Float64))
                * pl.coalesce("price_usd", "p0")
            )
            .fill_null(0.0)
            .alias("usd")
        )
        .select("wallet", "protocol", "market_key", "block_number", "block_timestamp", "kind", "asset", "usd")
        .sort("wallet", "block_number", "kind", "market_key", "asset", "usd", nulls_last=True)
    )


def cutoff_sample(history: History, block: int | None) -> tuple[int, int]:
    """The sampled block at or before `block` (the latest sample when None), and its timestamp."""
    samples = history.samples
    if block is not None:
        samples = samples.filter(pl.col("block_number") <= block)
    if samples.is_empty():
        raise UserError(
            f"no credit history sample at or before block {block}; the first is block "
            f"{history.samples['block_number'][0]}"
        )
    row = samples.row(samples.height - 1)
    return int(row[0]), int(row[1])


def features(history: History, cutoff_block: int) -> pl.DataFrame:
    """One row per wallet with a position at the cutoff sample: the FEATURES columns plus the state advice moves
    (collateral_usd, debt_usd, capacity_usd, worst_*, second_hf, the history parts of the window features).
    `cutoff_block` must be a sampled block (see `cutoff_sample`)."""
    block, now = cutoff_sample(history, cutoff_block)
    if block != cutoff_block:
        raise ValueError(f"block {cutoff_block} is not a sampled block")
    start = now - WINDOW_DAYS * DAY_S
    health = history.wallet_health.filter(pl.col("block_number") <= block)
    current = health.filter(pl.col("block_number") == block).filter(
        (pl.col("collateral_usd") > 0) | (pl.col("debt_usd") > 0)
    )
    # Sample weights: the time until the next sample (the cutoff sample's: one grid step, the typical interval).
    samples = history.samples.filter(pl.col("block_number") <= block)
    times = samples["block_timestamp"]
    gaps = times.diff().drop_nulls()
    step = float(gaps.cast(pl.Float64).median() or DAY_S) if gaps.len() else float(DAY_S)  # type: ignore[arg-type]
    weights = samples.with_columns(
        (pl.col("block_timestamp").shift(-1) - pl.col("block_timestamp")).cast(pl.Float64).fill_null(step).alias("w")
    ).filter(pl.col("block_timestamp") > start)
    window = (
        weights.join(
            health.select("wallet", "block_number", "worst_hf", "debt_usd"),
            on="block_number",
            how="left",
            maintain_order="left_right",
        )
        .filter(pl.col("wallet").is_not_null())
        .rename({"worst_hf": "hf"})  # HF_CAP for a wallet without debt (load_history)
    )
    before = window.filter(pl.col("block_number") < block)
    # Wallets absent from a sample had no position then: safe for that time (HF_CAP), counted by the weights.
    total_w = float(weights["w"].sum())
    now_w = float(weights.filter(pl.col("block_number") == block)["w"].sum())
    hist = (
        before.sort("wallet", "block_number")
        .group_by("wallet", maintain_order=True)
        .agg(
            pl.col("hf").min().alias("hf_min_before"),
            ((pl.col("hf") - HF_CAP) * pl.col("w")).sum().alias("twa_excess_before"),
            (pl.col("w") * (pl.col("hf") < 1.1)).sum().alias("below_w_before"),
        )
    )
    frame = (
        current.select(
            "wallet",
            "collateral_usd",
            "debt_usd",
            "capacity_usd",
            "adjusted_collateral_usd",
            "worst_hf",
            "second_hf",
            "worst_adjusted_collateral",
            "worst_debt",
            "worst_collateral",
        )
        .join(hist, on="wallet", how="left")
        .with_columns(
            pl.col("hf_min_before").fill_null(HF_CAP),
            pl.col("twa_excess_before").fill_null(0.0),
            pl.col("below_w_before").fill_null(0.0),
            pl.lit(total_w).alias("window_w"),
            pl.lit(now_w).alias("now_w"),
        )
    )
    frame = frame.join(_event_features(history, block, now), on="wallet", how="left")
    frame = frame.join(_holding_features(history, block, now), on="wallet", how="left")
    look = history.lookthrough.filter(pl.col("block_number") == block).select(
        "wallet", "loop_leverage", pl.col("max_depth").alias("chain_depth")
    )
    frame = frame.join(look, on="wallet", how="left").with_columns(
        pl.col("loop_leverage").fill_null(1.0).clip(lower_bound=1.0),
        pl.col("chain_depth").fill_null(0).cast(pl.Float64),
        pl.col("collateral_vol").fill_null(0.0),
        pl.col("position_vol").fill_null(0.0),
        pl.col("concentration").fill_null(0.0),
        # A wallet whose position came without an event of its own (aTokens transferred to it) has no history on
        # the protocols yet: new, nothing borrowed, repaid or liquidated.
        *(
            pl.col(c).fill_null(0.0)
            for c in (
                "age_days",
                "protocols",
                "markets",
                "borrows",
                "repays",
                "borrow_usd",
                "liquidations",
                "liquidated_usd",
                "defensive_repays_90d",
            )
        ),
        pl.col("repay_ratio").fill_null(1.0),
        pl.col("days_since_repay").fill_null(NEVER_DAYS),
        pl.col("days_since_liquidation").fill_null(NEVER_DAYS),
    )
    market = market_at(history, block)
    return (
        with_now(frame)
        .with_columns(
            pl.lit(market.vol).alias("market_vol"),
            pl.lit(market.drawdown).alias("market_drawdown"),
            pl.lit(history.chain_id, pl.Int64).alias("chain_id"),
            pl.lit(block, pl.Int64).alias("as_of_block"),
            pl.lit(now, pl.Int64).alias("as_of_timestamp"),
        )
        .sort("wallet")
    )


def market_at(history: History, block: int) -> MarketState:
    """The market's state at sampled block `block`: its collateral markets' volatility and drawdown before it."""
    _, now = cutoff_sample(history, block)
    held = history.holdings.filter((pl.col("block_number") == block) & (pl.col("collateral_usd") > 0))
    return market_state(history.prices, held.select("asset", "collateral_usd"), block, now)


def with_now(frame: pl.DataFrame) -> pl.DataFrame:
    """The features that depend on the wallet's state now, from its state columns (advice changes those and calls
    this again): health now, the window features (history part + now), utilisation, debt."""
    hf_now = (
        pl.when(pl.col("debt_usd") > 0)
        .then(pl.min_horizontal(pl.col("worst_hf"), pl.col("second_hf")))
        .otherwise(HF_CAP)
        .clip(upper_bound=HF_CAP)
    )
    # Distance to liquidation in 30-day standard deviations of the position's value (a Merton distance to default):
    # the same health factor is nearer liquidation when the position's markets move more.
    sigmas = (
        pl.when(pl.col("debt_usd") > 0)
        .then(pl.col("hf_now").log() / (pl.col("position_vol").clip(lower_bound=MIN_POSITION_VOL) * SQRT_MONTH))
        .otherwise(SIGMAS_CAP)
        .clip(-SIGMAS_CAP, SIGMAS_CAP)
    )
    return (
        frame.with_columns(hf_now.alias("hf_now"))
        .with_columns(sigmas.alias("hf_sigmas"))
        .with_columns(
            pl.min_horizontal("hf_min_before", "hf_now").alias("hf_min_90d"),
            (
                HF_CAP
                + (pl.col("twa_excess_before") + (pl.col("hf_now") - HF_CAP) * pl.col("now_w")) / pl.col("window_w")
            ).alias("hf_twa_90d"),
            ((pl.col("below_w_before") + pl.col("now_w") * (pl.col("hf_now") < 1.1)) / pl.col("window_w")).alias(
                "below_1_1_90d"
            ),
            pl.when(pl.col("capacity_usd") > 0)
            .then(pl.col("debt_usd") / pl.col("capacity_usd"))
            .otherwise(pl.when(pl.col("debt_usd") > 0).then(2.0).otherwise(0.0))
            .clip(upper_bound=2.0)
            .alias("utilisation"),
        )
    )


def _event_features(history: History, block: int, now: int) -> pl.DataFrame:
    events = history.events.filter(pl.col("block_number") <= block)
    days = (now - pl.col("block_timestamp")).cast(pl.Float64) / DAY_S
    # Health at the latest sample before each repay: was the wallet under pressure when it repaid?
    health = (
        history.wallet_health.filter(pl.col("block_number") < block)
        .select("wallet", pl.col("block_number").alias("sample_block"), pl.col("worst_hf").alias("hf_before"))
        .sort("sample_block")
    )
    repays = (
        events.filter((pl.col("kind") == "repay") & (pl.col("block_timestamp") > now - WINDOW_DAYS * DAY_S))
        .sort("block_number")
        .join_asof(
            health,
            left_on="block_number",
            right_on="sample_block",
            by="wallet",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
    )
    defensive = repays.group_by("wallet", maintain_order=True).agg(
        (pl.col("hf_before") < DEFENSIVE_HF).sum().cast(pl.Float64).alias("defensive_repays_90d")
    )
    kind = pl.col("kind")
    per_wallet = events.group_by("wallet", maintain_order=True).agg(
        (days.max()).alias("age_days"),
        pl.col("protocol").n_unique().cast(pl.Float64).alias("protocols"),
        pl.col("market_key").n_unique().cast(pl.Float64).alias("markets"),
        (kind == "borrow").sum().cast(pl.Float64).alias("borrows"),
        (kind == "repay").sum().cast(pl.Float64).alias("repays"),
        pl.col("usd").filter(kind == "borrow").sum().alias("borrow_usd"),
        pl.col("usd").filter(kind == "repay").sum().alias("repay_usd"),
        days.filter(kind == "repay").min().alias("days_since_repay"),
        (kind == "liquidated").sum().cast(pl.Float64).alias("liquidations"),
        pl.col("usd").filter(kind == "liquidated").sum().alias("liquidated_usd"),
        days.filter(kind == "liquidated").min().alias("days_since_liquidation"),
    )
    return (
        per_wallet.join(defensive, on="wallet", how="left")
        .with_columns(
            pl.when(pl.col("borrow_usd") > 0)
            .then((pl.col("repay_usd") / pl.col("borrow_usd")).clip(upper_bound=2.0))
            .otherwise(1.0)
            .alias("repay_ratio"),
            pl.col("days_since_repay").fill_null(NEVER_DAYS),
            pl.col("days_since_liquidation").fill_null(NEVER_DAYS),
            pl.col("defensive_repays_90d").fill_null(0.0),
        )
        .drop("repay_usd")
    )


def _holding_features(history: History, block: int, now: int) -> pl.DataFrame:
    """Concentration (HHI of collateral by base asset), the collateral's annualised volatility (each asset's realised
    volatility over the window from its sampled prices, weighted by the wallet's USD in it) and the position's
    (`position_vol`: the realised volatility, over the VOL_DAYS before the cutoff, of the wallet's collateral against
    its debt, both as held now: what moves its health factor)."""
    held = history.holdings.filter(pl.col("block_number") == block)
    collateral = held.filter(pl.col("collateral_usd") > 0)
    prices = history.prices.filter(
        (pl.col("block_number") <= block) & (pl.col("block_timestamp") > now - WINDOW_DAYS * DAY_S)
    ).sort("asset", "block_number")
    returns = prices.with_columns(
        (pl.col("price_usd").log() - pl.col("price_usd").log().shift(1).over("asset")).alias("r"),
        (pl.col("block_timestamp") - pl.col("block_timestamp").shift(1).over("asset")).cast(pl.Float64).alias("dt"),
    ).filter(pl.col("r").is_not_null() & (pl.col("dt") > 0))
    vol = returns.group_by("asset", maintain_order=True).agg(
        ((pl.col("r") ** 2).sum() / pl.col("dt").sum() * 365 * DAY_S).sqrt().alias("vol")
    )
    by_base = collateral.group_by("wallet", "base_asset", maintain_order=True).agg(pl.col("collateral_usd").sum())
    totals = by_base.group_by("wallet", maintain_order=True).agg(pl.col("collateral_usd").sum().alias("total"))
    hhi = by_base.join(totals, on="wallet", maintain_order="left").with_columns(
        (pl.col("collateral_usd") / pl.col("total")).alias("s")
    )
    concentration = hhi.group_by("wallet", maintain_order=True).agg((pl.col("s") ** 2).sum().alias("concentration"))
    weighted = (
        collateral.join(vol, on="asset", how="left", maintain_order="left")
        .group_by("wallet", maintain_order=True)
        .agg(
            ((pl.col("vol").fill_null(0.0) * pl.col("collateral_usd")).sum() / pl.col("collateral_usd").sum()).alias(
                "collateral_vol"
            )
        )
    )
    # Each asset's net weight in the position (its share of the collateral less its share of the debt): the
    # position's log return is, to first order, the weighted sum of the assets' (a loop's collateral and debt in one
    # asset cancel out).
    sums = held.group_by("wallet", maintain_order=True).agg(
        pl.col("collateral_usd").sum().alias("c"), pl.col("debt_usd").sum().alias("d")
    )
    exposure = (
        held.join(sums, on="wallet", maintain_order="left")
        .with_columns(
            (
                pl.when(pl.col("c") > 0).then(pl.col("collateral_usd") / pl.col("c")).otherwise(0.0)
                - pl.when(pl.col("d") > 0).then(pl.col("debt_usd") / pl.col("d")).otherwise(0.0)
            ).alias("e")
        )
        .group_by("wallet", "asset", maintain_order=True)
        .agg(pl.col("e").sum())
    )
    recent = returns.filter(pl.col("block_timestamp") > now - VOL_DAYS * DAY_S)
    # The time the returns cover: each sampled step once (every asset is priced at the same sampled blocks).
    span = float(recent.group_by("block_number").agg(pl.col("dt").max()).sort("block_number")["dt"].sum())
    moves = (
        exposure.join(recent.select("asset", "block_number", "r"), on="asset")
        # Sums in one fixed order: float totals bit-identical however the rows were read.
        .sort("wallet", "block_number", "asset")
        .group_by("wallet", "block_number", maintain_order=True)
        .agg((pl.col("e") * pl.col("r")).sum().alias("x"))
        .group_by("wallet", maintain_order=True)
        .agg((pl.col("x") ** 2).sum().alias("ss"))
    )
    position = moves.select("wallet", (pl.col("ss") / max(span, 1.0) * 365 * DAY_S).sqrt().alias("position_vol"))
    return concentration.join(weighted, on="wallet", how="full", coalesce=True).join(
        position, on="wallet", how="full", coalesce=True
    )


def labels(history: History, cutoff_block: int, horizon_days: int) -> pl.DataFrame:
    """wallet -> liquidated (bool) within (cutoff, cutoff + horizon], for every wallet with a liquidation then."""
    _, now = cutoff_sample(history, cutoff_block)
    end = now + horizon_days * DAY_S
    hit = history.events.filter(
        (pl.col("kind") == "liquidated") & (pl.col("block_timestamp") > now) & (pl.col("block_timestamp") <= end)
    )
    return hit.select("wallet").unique().with_columns(pl.lit(True).alias("liquidated"))


def horizon_covered(history: History, cutoff_block: int, horizon_days: int) -> bool:
    """Whether the stored history reaches the end of the label window (otherwise the labels are incomplete)."""
    _, now = cutoff_sample(history, cutoff_block)
    return int(history.samples["block_timestamp"].max()) >= now + horizon_days * DAY_S  # type: ignore[arg-type]


def labelled(history: History, cutoff_block: int, horizon_days: int) -> pl.DataFrame:
    """Borrowers at the cutoff (debt > 0) with their features and label."""
    frame = features(history, cutoff_block).filter(pl.col("debt_usd") > 0)
    return frame.join(labels(history, cutoff_block, horizon_days), on="wallet", how="left").with_columns(
        pl.col("liquidated").fill_null(False)
    )
