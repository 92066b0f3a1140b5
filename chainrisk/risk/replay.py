"""Historical stress replays: real price paths from the calibration data applied, step by step, to today's positions.

A replay takes a window of the hourly price panel (`chainrisk.risk.calibration.load_price_panel`: cleaned, bad
prints dropped), maps every market symbol to its series (`resolve_series`, user overrides first), and at each
step multiplies the snapshot's oracle prices by the series' move since the window's start, floor(price x
multiplier) as an oracle update would. The health engine (`chainrisk.scoring.health`, exact integers) then
gives every wallet's health at that step. Positions are held as they are: nobody tops up, repays or gets
liquidated along the path, so each step answers "if prices moved like this from today, what could be liquidated
and what would be bad debt"; `chainrisk.risk.cascade` is the model with liquidations feeding back into prices.

Wrapped assets (aTokens, vault shares, LSTs) follow the series of the base the asset graph names for them
(`chainrisk.chains.moves`), their exchange rate held at the snapshot's. A series without quotes at the window's
start (stETH before June 2021, see calibration's cleaning) falls back to `SERIES_FALLBACK` with a note in the
result; inside the window the last quote is carried forward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.risk.calibration import DATA_END, DATA_START, CalibrationError, load_price_panel, resolve_series
from chainrisk.risk.var import run_starts
from chainrisk.scoring.health import prepare, reprice, wallet_health
from chainrisk.units import MARKET_KEY


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime  #: UTC, inclusive
    end: datetime  #: UTC, inclusive (the last step is at or before it)
    description: str


def _utc(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


#: Named windows of the 2021-2023 data. Dates bracket each event with a few calm days before it.
WINDOWS: dict[str, Window] = {
    w.name: w
    for w in (
        Window("may-2021", _utc(2021, 5, 10), _utc(2021, 5, 25), "May 2021 crash: China mining ban, 19 May sell-off"),
        Window("luna-2022", _utc(2022, 5, 5), _utc(2022, 5, 19), "UST depeg and LUNA collapse, May 2022"),
        Window("steth-2022", _utc(2022, 6, 6), _utc(2022, 6, 21), "stETH discount, Celsius and 3AC, June 2022"),
        Window("ftx-2022", _utc(2022, 11, 5), _utc(2022, 11, 15), "FTX collapse, November 2022"),
    )
}
#: Series used when a mapped series has no quote at a window's start: stETH traded near par with ETH before
#: its CoinGecko quotes become usable (calibration.STETH_START).
SERIES_FALLBACK: dict[str, str] = {"stETH": "WETH"}
WALLET = [*MARKET_KEY, "wallet"]
#: Per step and scope: what the path's prices would make liquidatable, and the bad debt left.
STEP_SUMS = ("liquidatable_debt_usd", "seizable_collateral_usd", "bad_debt_usd", "debt_usd", "collateral_usd")


def parse_date(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CalibrationError(f"{what} {text!r} is not a date like 2022-05-05 (or 2022-05-05T12:00): {exc}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def window(name: str | None = None, start: str | None = None, end: str | None = None) -> Window:
    """A named window, or a user's own by dates (named `name` or `start..end`)."""
    if start is None and end is None:
        if name in WINDOWS:
            return WINDOWS[name]
        raise CalibrationError(f"unknown window {name!r}; known: {', '.join(WINDOWS)} (or give --start and --end)")
    if start is None or end is None:
        raise CalibrationError("a window by dates needs both a start and an end")
    begin, finish = parse_date(start, "start"), parse_date(end, "end")
    if finish <= begin:
        raise CalibrationError(f"the window ends ({end}) before it starts ({start})")
    if begin < DATA_START or finish > DATA_END:
        raise CalibrationError(
            f"the price data cover {DATA_START:%Y-%m-%d} to {DATA_END:%Y-%m-%d}; {start}..{end} is outside them"
        )
    return Window(name or f"{start}..{end}", begin, finish, "user window")


@dataclass(frozen=True)
class PricePath:
    """Multipliers per step and market symbol (`frame`: step, time, symbol, series, multiplier)."""

    frame: pl.DataFrame
    series: dict[str, str]  #: symbol -> the series actually used
    notes: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.frame["step"].n_unique()

    def at(self, step: int) -> pl.DataFrame:
        """(symbol, multiplier) at one step, as `stress()` takes them."""
        return self.frame.filter(pl.col("step") == step).select("symbol", "multiplier")


def price_path(
    symbols: list[str],
    win: Window,
    step_hours: int = 1,
    overrides: Mapping[str, str] | None = None,
    prices_dir: Path | None = None,
    graph: AssetGraph | None = None,
) -> PricePath:
    """Each symbol's price relative to the window's start, every `step_hours` from start to end; a wrapper of the
    asset `graph` moves with its base's series (its exchange rate held)."""
    if step_hours < 1:
        raise CalibrationError(f"step_hours={step_hours} must be at least 1")
    panel = load_price_panel(prices_dir)
    available = [c for c in panel.columns if c != "time"]
    mapping = resolve_series(symbols, overrides, available, graph)
    times = pl.datetime_range(win.start, win.end, f"{step_hours}h", time_zone="UTC", eager=True).alias("time")
    span = panel.filter((pl.col("time") >= win.start) & (pl.col("time") <= win.end))
    notes: list[str] = []
    used: dict[str, str] = {}
    for symbol, series in sorted(mapping.items()):
        column = span[series]
        if column.len() == 0 or column[0] is None:
            fallback = SERIES_FALLBACK.get(series)
            if fallback is None or span[fallback].len() == 0 or span[fallback][0] is None:
                raise CalibrationError(
                    f"series {series} (for {symbol}) has no price at {win.start:%Y-%m-%d %H:%M}; pick a later window"
                )
            notes.append(f"{symbol}: {series} has no quotes at the window's start; {fallback} used instead")
            series = fallback
        used[symbol] = series
    wanted = sorted(set(used.values()))
    grid = (
        pl.DataFrame({"time": times})
        .join(span.select("time", *wanted), on="time", how="left")
        .with_columns(pl.col(wanted).fill_null(strategy="forward"))
    )
    moves = grid.with_row_index("step").select(
        pl.col("step").cast(pl.Int64), "time", *((pl.col(s) - pl.col(s).first()).exp().alias(s) for s in wanted)
    )
    symbols_frame = pl.DataFrame({"symbol": list(used), "series": list(used.values())})
    frame = (
        moves.unpivot(index=["step", "time"], variable_name="series", value_name="multiplier")
        .join(symbols_frame, on="series")
        .select("step", "time", "symbol", "series", "multiplier")
        .sort("step", "symbol")
    )
    return PricePath(frame, used, notes)


@dataclass(frozen=True)
class ReplayResult:
    window: Window
    step_hours: int
    path: PricePath
    steps: pl.DataFrame  #: per step and scope (market, protocol, total): liquidatable wallets and the USD sums
    wallets: pl.DataFrame  #: per borrowing wallet and market: health at the start, minimum along the path, first step
    #: liquidatable, and worst bad debt


def _market_sums(health: pl.DataFrame, step: int) -> pl.DataFrame:
    """Per market sums of one step's health (rows sorted by market): numpy's reduceat over contiguous runs, so the
    float sums add in one fixed order and a rerun gives bit-identical figures."""
    keys = health.select(MARKET_KEY)
    starts = run_starts(keys)
    sums: dict[str, Any] = {
        c: np.add.reduceat(health[c].cast(pl.Float64).fill_null(0.0).to_numpy(), starts) if len(starts) else []
        for c in ("liquidatable", *STEP_SUMS)
    }
    return keys[starts].with_columns(
        pl.Series("wallets", np.diff(np.r_[starts, health.height]), dtype=pl.Int64),
        pl.Series("liquidatable_wallets", sums.pop("liquidatable"), dtype=pl.Float64).cast(pl.Int64),
        *(pl.Series(c, v, dtype=pl.Float64) for c, v in sums.items()),
        pl.lit(step, pl.Int64).alias("step"),
    )


def _scoped(per_market: pl.DataFrame) -> pl.DataFrame:
    """Market rows plus one row per protocol and one total per step (chain_id null, market 'all')."""
    sums = [pl.col(c).sum() for c in ("liquidatable_wallets", "wallets", *STEP_SUMS)]
    # Sorted input and a kept order: each group's few market rows add up in the same order on every run.
    per_market = per_market.sort("step", *MARKET_KEY)
    protocol = (
        per_market.group_by("step", "protocol", maintain_order=True)
        .agg(*sums)
        .with_columns(pl.lit("all").alias("market"))
    )
    total = (
        per_market.group_by("step", maintain_order=True)
        .agg(*sums)
        .with_columns(pl.lit("all").alias(c) for c in ("protocol", "market"))
    )
    columns = ["scope", "step", "protocol", "chain_id", "market", "wallets", "liquidatable_wallets", *STEP_SUMS]
    return pl.concat(
        [
            per_market.with_columns(pl.lit("market").alias("scope")).select(columns),
            protocol.with_columns(pl.lit("protocol").alias("scope"), pl.lit(None, pl.Int64).alias("chain_id")).select(
                columns
            ),
            total.with_columns(pl.lit("total").alias("scope"), pl.lit(None, pl.Int64).alias("chain_id")).select(
                columns
            ),
        ]
    )


def replay(
    positions: pl.DataFrame | pl.LazyFrame,
    win: Window,
    step_hours: int = 1,
    overrides: Mapping[str, str] | None = None,
    prices_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    graph: AssetGraph | None = None,
) -> ReplayResult:
    """The window's price path applied to `positions`, one exact health pass per step; wrapped collateral moves
    with its base through the asset `graph`."""
    prepared = prepare(positions).collect()
    symbols = sorted(set(prepared["symbol"].to_list()))
    path = price_path(symbols, win, step_hours, overrides, prices_dir, graph)
    step_frames: list[pl.DataFrame] = []
    wallets: pl.DataFrame | None = None
    min_hf = first_liquidatable = worst_bad = None
    last_multipliers: pl.DataFrame | None = None
    health = pl.DataFrame()
    for step in range(path.steps):
        multipliers = path.at(step)
        # Carried-forward quotes repeat a step's prices; its health is then the one before.
        if last_multipliers is None or not multipliers.equals(last_multipliers):
            health = wallet_health(reprice(prepared, multipliers)).filter(pl.col("debt_usd") > 0).sort(WALLET).collect()
            last_multipliers = multipliers
        if wallets is None:
            wallets = health.select(*WALLET, "health_factor", "debt_usd")
            min_hf = health["health_factor"].to_numpy().copy()
            first_liquidatable = np.full(health.height, -1, dtype=np.int64)
            worst_bad = np.zeros(health.height)
        assert min_hf is not None and first_liquidatable is not None and worst_bad is not None
        hf = health["health_factor"].to_numpy()
        liquidatable = health["liquidatable"].to_numpy()
        np.fmin(min_hf, hf, out=min_hf)
        first_liquidatable[(first_liquidatable < 0) & liquidatable] = step
        np.maximum(worst_bad, health["bad_debt_usd"].to_numpy(), out=worst_bad)
        step_frames.append(_market_sums(health, step))
        if progress is not None:
            progress(step + 1, path.steps)
    times = path.frame.select("step", "time").unique("step")
    steps = _scoped(pl.concat(step_frames)).join(times, on="step").sort("scope", "protocol", "market", "step")
    if wallets is None:
        wallet_frame = pl.DataFrame(schema={c: pl.Utf8 for c in WALLET})
    else:
        first_step = pl.Series("first_liquidatable_step", first_liquidatable).replace(-1, None)
        wallet_frame = (
            wallets.rename({"health_factor": "health_factor_start", "debt_usd": "debt_usd_start"})
            .with_columns(pl.Series("min_health_factor", min_hf), first_step, pl.Series("max_bad_debt_usd", worst_bad))
            .join(
                times.rename({"step": "first_liquidatable_step", "time": "first_liquidatable_time"}),
                on="first_liquidatable_step",
                how="left",
            )
        )
    return ReplayResult(win, step_hours, path, steps, wallet_frame)


def worst_points(steps: pl.DataFrame) -> pl.DataFrame:
    """Per scope, the step with the most bad debt and the one with the most liquidatable debt (earliest on ties)."""
    out = []
    for metric in ("bad_debt_usd", "liquidatable_debt_usd"):
        out.append(
            steps.sort("step")
            .group_by("scope", "protocol", "chain_id", "market", maintain_order=True)
            .agg(pl.all().sort_by(metric, descending=True, maintain_order=True).first())
            .with_columns(pl.lit(metric).alias("worst_by"))
        )
    return pl.concat(out)
