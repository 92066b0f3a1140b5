"""`chainrisk risk stress|var|optimise|cascade|contagion`: the risk models over the latest positions, written to
DuckDB tables.

Each command reads every indexed source's latest snapshot (the positions `chainrisk score` scores), runs one model,
and writes its result tables plus one `risk_runs` row in a single transaction under the writer lock, then publishes.
A failure before the commit leaves the file as it was. Tables are documented in README ("Risk models").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from chainrisk.assets import NATIVE_ETH
from chainrisk.chains.contagion import MAX_ROUNDS as MAX_CONTAGION_ROUNDS
from chainrisk.chains.contagion import contagion
from chainrisk.chains.graph import LINK_SCHEMA, links_from_frame
from chainrisk.chains.lookthrough import vault_holdings
from chainrisk.chains.moves import AssetGraph
from chainrisk.errors import UserError
from chainrisk.protocols.adapter import adapters
from chainrisk.risk.advice import AdviceSettings, ParameterRules, advice_summary, advise
from chainrisk.risk.calibration import CalibrationError, Method, calibrate, resolve_series
from chainrisk.risk.cascade import DepthCurve, cascade
from chainrisk.risk.distance import MAX_DROP, liquidation_distance
from chainrisk.risk.optimise import distinct_symbols, optimise_wallet, threshold_sensitivity
from chainrisk.risk.replay import WINDOWS, Window, replay, worst_points
from chainrisk.risk.var import build_book, historical_backtest, loss_odds, revalue, risk_table, simulate_multipliers
from chainrisk.scoring.snapshot import rated
from chainrisk.store.db import Store
from chainrisk.store.schema.risk import NOTES_SEPARATOR
from chainrisk.terminal import terminal_progress
from chainrisk.units import MARKET_KEY, PER_MARKET

Tick = Callable[[int, int], None]


@dataclass(frozen=True)
class RiskSettings:
    """The `[risk]` table of chainrisk.toml."""

    series: dict[str, str] = field(default_factory=dict)  #: market symbol -> price series (calibration data)
    depth_usd_at_2pct: dict[str, float] = field(default_factory=dict)  #: symbol -> USD sold for a 2 % move
    depth_shape: str = "sqrt"  #: "sqrt" or "linear"
    oracle_lag_hours: int = AdviceSettings.oracle_lag_hours  #: parameter advice: hours the oracle trails the market
    liquidation_delay_hours: int = AdviceSettings.liquidation_delay_hours  #: hours liquidators take to act
    max_change_bps: int = AdviceSettings.max_change_bps  #: most a parameter moves in one proposal
    #: the price history's folder (None: chainrisk.risk.calibration.prices_folder's default)
    prices: Path | None = None

    def advice(self) -> AdviceSettings:
        """The parameter advice's settings from this table."""
        return AdviceSettings(
            oracle_lag_hours=self.oracle_lag_hours,
            liquidation_delay_hours=self.liquidation_delay_hours,
            max_change_bps=self.max_change_bps,
            depth_usd_at_2pct=self.depth_usd_at_2pct,
            depth_shape=self.depth_shape,
            series=self.series,
            prices_dir=self.prices,
            rules=parameter_rules(),
        )


def parameter_rules() -> dict[str, ParameterRules]:
    """What each protocol lets parameter advice propose, as its adapter says."""
    return {
        name: ParameterRules(
            adapter.parameter_changes,
            adapter.bonus_of_threshold if adapter.parameter_changes == PER_MARKET else None,
            adapter.collateral_cap,
            adapter.ltv_below_threshold,
            adapter.bonus_is_penalty,
            adapter.threshold_within_bonus,
        )
        for name, adapter in adapters().items()
    }


@dataclass(frozen=True)
class RiskReport:
    run_id: int
    kind: str
    seconds: float
    lines: list[str]  #: what the user reads


@contextmanager
def progress_bar(label: str) -> Iterator[Tick]:
    """The index job's progress bar (on a terminal only) for one task; yields tick(done, total)."""
    with terminal_progress() as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick


def read(db: Path, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    """A query on the main file opened read-only: models run before anything is opened for writing, so a model
    that fails (an unmapped symbol, a window without data) leaves every byte of the file as it was."""
    with Store(db, read_only=True) as store:
        return store.query(sql, params)


def latest_positions(db: Path) -> pl.DataFrame:
    """The latest snapshot's positions the models can value: without the borrowers the adapters left out of
    `wallet_health` (the protocol's own figures cannot rate them: an oracle that reverts, or values past what its maths
    or a HUGEINT hold; data_quality says which), as the score leaves them out (scoring.snapshot.rated)."""
    with Store(db, read_only=True) as store:
        positions = store.latest_positions()
        contract = store.latest_wallet_health()
    if positions.is_empty():
        raise UserError(f"{db} holds no positions; run `chainrisk index` (or `chainrisk run`) first")
    return rated(positions, contract)


def latest_links(db: Path) -> pl.DataFrame:
    """The stored asset graph of each chain's latest block (asset_links rows; none in a file from before it)."""
    try:
        return read(
            db,
            "SELECT * FROM asset_links WHERE (chain_id, block_number) IN "
            "(SELECT (chain_id, max(block_number)) FROM asset_links GROUP BY chain_id) ORDER BY chain_id, asset",
        )
    except duckdb.Error:  # a file from before the chains tables (opened read-only, so nothing creates them)
        return pl.DataFrame(schema=LINK_SCHEMA)


def stored_graph(db: Path) -> AssetGraph:
    """The stored asset graph (every chain's latest), by symbol: how the models move wrapped assets with their base."""
    return AssetGraph.from_frame(latest_links(db))


def with_graph_series(db: Path, settings: RiskSettings) -> RiskSettings:
    """The price series every wrapper of the stored asset graph moves with (an aToken with its underlying, a USDC
    vault's shares with USDC, wstETH with stETH), beside the config's [risk] series, which win: what a run records as
    its series. A base without a series of its own is left for the model to report."""
    graph = stored_graph(db)
    found: dict[str, str] = {}
    for wrapper in sorted(graph.underlying):
        try:
            found |= resolve_series([wrapper], settings.series, graph=graph, prices_dir=settings.prices)
        except CalibrationError:
            continue
    return replace(settings, series={**found, **settings.series})


def with_price_series(
    positions: pl.DataFrame, settings: RiskSettings, graph: AssetGraph
) -> tuple[pl.DataFrame, list[str]]:
    """The positions the price-series models (VaR, advice, replays) can move, and a note on the rest: a wallet's
    market is left out when it holds collateral or debt in a token whose symbol maps to no price series (a
    permissionless market's long-tail token, or one without symbol()), as are that token's other rows. One such
    market no longer stops the run; a book left with nothing refuses in one line, naming the first such symbol, as
    does a [risk] series entry of the config that names no series."""
    symbols = sorted(set(positions["symbol"].drop_nulls().to_list()))
    missing = []
    first: CalibrationError | None = None
    for symbol in symbols:
        try:
            resolve_series([symbol], settings.series, graph=graph, prices_dir=settings.prices)
        except CalibrationError as exc:
            if symbol in settings.series or graph.base(symbol) in settings.series:
                raise _model_error(exc) from None  # the config's own mapping names no series: a typo to fix
            missing.append(symbol)
            first = first or exc
    if first is None:
        return positions, []
    held = (pl.col("collateral_amount") > 0) | (pl.col("debt_amount") > 0)
    wallet_market = [*MARKET_KEY, "wallet"]
    hit = positions.filter(pl.col("symbol").is_in(missing) & held).select(wallet_market).unique()
    kept = positions.join(hit, on=wallet_market, how="anti").filter(~pl.col("symbol").is_in(missing))
    if kept.filter(pl.col("debt_amount") > 0).is_empty():
        raise _model_error(first)
    borrowers = hit.join(
        positions.filter(pl.col("debt_amount") > 0).select(wallet_market).unique(), on=wallet_market, how="semi"
    )
    if borrowers.is_empty():  # only suppliers and debt-free collateral: nothing the models value is left out
        return kept, []
    debt = positions.join(borrowers, on=wallet_market, how="semi")["debt_usd"]
    priced = f" ({_usd(float(debt.sum()))} of debt where priced)" if debt.is_not_null().any() else ""
    named = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return kept, [
        f"left out {borrowers.height} borrowing wallet-market(s) in {hit.select(MARKET_KEY).unique().height} "
        f"market(s){priced}: they hold {named}, which no price series moves (map such symbols in the [risk] series "
        "table of chainrisk.toml)"
    ]


def _model_error(exc: Exception) -> UserError:
    return UserError(str(exc).splitlines()[0])


def _write(
    db: Path,
    kind: str,
    positions: pl.DataFrame,
    params: Mapping[str, Any],
    tables: Mapping[str, pl.DataFrame],
    started: float,
    notes: Sequence[str] = (),
) -> int:
    """One risk_runs row and the result tables under a fresh run_id, in one transaction; then publishes."""
    borrowers = positions.filter(pl.col("debt_amount").cast(pl.Float64) > 0).select("protocol", "market", "wallet")
    run = pl.DataFrame(
        {
            "kind": [kind],
            "started_at": [datetime.fromtimestamp(started, UTC)],
            "seconds": [time.time() - started],
            "block_number": [int(positions["block_number"].max())],  # type: ignore[arg-type]
            "wallets": [borrowers.unique().height],
            "params": [json.dumps(params, default=str)],
            "notes": [NOTES_SEPARATOR.join(notes) or None],
        }
    )
    with Store(db) as store:
        run_id = store.append_run("risk_runs", run, tables)
        store.publish()
    return run_id


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def run_stress(
    db: Path, windows: Sequence[Window], step_hours: int = 1, settings: RiskSettings = RiskSettings()
) -> RiskReport:
    """Historical replays of `windows` on today's positions: stress_replay_steps / _prices / _wallets."""
    started = time.time()
    graph = stored_graph(db)
    positions, notes = with_price_series(latest_positions(db), settings, graph)
    steps, prices, wallets, lines = [], [], [], []
    for win in windows:
        with progress_bar(f"replay {win.name}") as tick:
            try:
                result = replay(
                    positions, win, step_hours, settings.series, settings.prices, progress=tick, graph=graph
                )
            except CalibrationError as exc:
                raise _model_error(exc) from None
        label = pl.lit(win.name).alias("window_name")
        steps.append(result.steps.with_columns(label))
        prices.append(result.path.frame.with_columns(label))
        wallets.append(result.wallets.with_columns(label))
        notes += [f"{win.name}: {n}" for n in result.path.notes]
        total = worst_points(result.steps).filter(pl.col("scope") == "total")
        ever = result.wallets.filter(pl.col("first_liquidatable_step").is_not_null()).height
        if total.is_empty():  # no position has a USD price (a market indexed without a USD oracle)
            lines.append(f"{win.name}: {ever} of {result.wallets.height} borrowers liquidatable at some step; no USD")
            continue
        worst = total.filter(pl.col("worst_by") == "bad_debt_usd").row(0, named=True)
        peak = total.filter(pl.col("worst_by") == "liquidatable_debt_usd").row(0, named=True)
        lines.append(
            f"{win.name} ({win.start:%Y-%m-%d}..{win.end:%Y-%m-%d}, {result.path.steps} steps of {step_hours} h): "
            f"{ever} of {result.wallets.height} borrowers liquidatable at some step; worst bad debt "
            f"{_usd(worst['bad_debt_usd'])} at {worst['time']:%Y-%m-%d %H:%M}; most liquidatable debt "
            f"{_usd(peak['liquidatable_debt_usd'])} at {peak['time']:%Y-%m-%d %H:%M}"
        )
    series = with_graph_series(db, settings).series
    params = {"windows": [w.name for w in windows], "step_hours": step_hours, "series": series}
    tables = {
        "stress_replay_steps": pl.concat(steps),
        "stress_replay_prices": pl.concat(prices),
        "stress_replay_wallets": pl.concat(wallets),
    }
    run_id = _write(db, "stress", positions, params, tables, started, notes)
    return RiskReport(run_id, "stress", time.time() - started, lines + notes)


def run_var(
    db: Path,
    scenarios: int = 10_000,
    seed: int = 0,
    horizons: Sequence[int] = (24, 168),
    confidences: Sequence[float] = (0.95, 0.99),
    method: Method = "ewma",
    calibration_window: tuple[str | None, str | None] = (None, None),
    backtest: tuple[str, str] | None = None,
    backtest_scenarios: int = 2_000,
    settings: RiskSettings = RiskSettings(),
) -> RiskReport:
    """Monte-Carlo VaR / ES (var_results, var_calibration), parameter advice backtested through every named window
    (parameter_suggestions, parameter_advice, parameter_backtest) and, with `backtest`, the Kupiec backtest of the
    24 h 99 % liquidation VaR over that window (var_backtest[_summary])."""
    started = time.time()
    graph = stored_graph(db)
    positions, notes = with_price_series(latest_positions(db), settings, graph)
    lines: list[str] = []
    symbols = sorted(set(positions["symbol"].to_list()))
    results, calibrations, odds = [], [], []
    with progress_bar("VaR horizons") as tick:
        for k, horizon in enumerate(horizons):
            try:
                calibration = calibrate(
                    symbols,
                    *calibration_window,
                    horizon,
                    method,
                    settings.series,
                    prices_dir=settings.prices,
                    graph=graph,
                )
                book = build_book(positions, calibration.symbols, calibration.assets)
            except (CalibrationError, ValueError) as exc:
                raise _model_error(exc) from None
            multipliers = simulate_multipliers(calibration, scenarios, seed * 1_000_003 + horizon)
            losses = revalue(book, multipliers)
            results.append(risk_table(losses, horizon, confidences))
            odds.append(loss_odds(losses, horizon))
            calibrations.append(
                pl.DataFrame(
                    {
                        "horizon_hours": horizon,
                        "series": list(calibration.assets),
                        "volatility": calibration.vols,
                        "asset_dof": calibration.asset_dof,
                        "joint_dof": calibration.dof,
                        "method": method,
                        "observations": calibration.observations,
                        "window_start": calibration.window[0],
                        "window_end": calibration.window[1],
                    }
                )
            )
            tick(k + 1, len(horizons))
    with progress_bar("parameter advice") as tick:
        try:
            advice = advise(positions, list(WINDOWS.values()), settings.advice(), graph)
        except (CalibrationError, ValueError) as exc:
            raise _model_error(exc) from None
        tick(1, 1)
    var = pl.concat(results)
    tables: dict[str, pl.DataFrame] = {
        "var_results": var,
        "var_calibration": pl.concat(calibrations),
        "var_odds": pl.concat(odds),
        "parameter_suggestions": advice.suggestions,
        "parameter_advice": advice.advice,
        "parameter_backtest": advice.backtest,
    }
    total = var.filter(pl.col("scope") == "total")
    lines += var_lines(total, tables["var_odds"].filter(pl.col("scope") == "total"), scenarios, seed)
    if backtest is not None:
        horizon, confidence = min(horizons), max(confidences)
        with progress_bar("VaR backtest") as tick:
            try:
                series, kupiec = historical_backtest(
                    positions,
                    backtest[0],
                    backtest[1],
                    horizon,
                    confidence,
                    "liquidatable_debt_usd",
                    scenarios=backtest_scenarios,
                    seed=seed,
                    method=method,
                    overrides=settings.series,
                    graph=graph,
                    prices_dir=settings.prices,
                )
            except (CalibrationError, ValueError) as exc:
                raise _model_error(exc) from None
            tick(1, 1)
        tables["var_backtest"] = series.with_columns(
            pl.lit("liquidatable_debt_usd").alias("metric"),
            pl.lit(horizon, pl.Int64).alias("horizon_hours"),
            pl.lit(confidence).alias("confidence"),
        )
        tables["var_backtest_summary"] = pl.DataFrame(
            {
                "metric": ["liquidatable_debt_usd"],
                "horizon_hours": [horizon],
                "confidence": [confidence],
                "observations": [kupiec.observations],
                "exceedances": [kupiec.exceedances],
                "expected_rate": [kupiec.expected_rate],
                "observed_rate": [kupiec.observed_rate],
                "lr_statistic": [kupiec.lr_statistic],
                "p_value": [kupiec.p_value],
            }
        )
        lines.append(
            f"backtest {backtest[0]}..{backtest[1]} ({horizon} h {confidence:.0%} liquidation VaR): "
            f"{kupiec.exceedances} exceedance(s) in {kupiec.observations} periods (expected "
            f"{kupiec.expected_rate * kupiec.observations:.1f}); Kupiec LR {kupiec.lr_statistic:.2f}, "
            f"p = {kupiec.p_value:.3f}"
        )
    lines += advice_summary(advice, market_names(db), settings.advice())
    params = {
        "scenarios": scenarios,
        "seed": seed,
        "horizons": list(horizons),
        "confidences": list(confidences),
        "method": method,
        "calibration_window": list(calibration_window),
        "backtest": backtest,
        "series": with_graph_series(db, settings).series,
        "oracle_lag_hours": settings.oracle_lag_hours,
        "liquidation_delay_hours": settings.liquidation_delay_hours,
        "max_change_bps": settings.max_change_bps,
        "windows": list(WINDOWS),
    }
    notes += advice.notes
    run_id = _write(db, "var", positions, params, tables, started, notes)
    return RiskReport(run_id, "var", time.time() - started, lines + notes)


def market_names(db: Path) -> dict[tuple[str, int, str], str]:
    """(protocol, chain_id, market) -> 'Morpho Blue wstETH/DAI': the adapter's label and the market's own name."""
    with Store(db, read_only=True) as store:
        markets = store.latest_markets()
    labels = {name: adapter.label for name, adapter in adapters().items()}
    return {
        (p, c, m): f"{labels.get(p, p)} {name or m[:10]}"
        for p, c, m, name in markets.select("protocol", "chain_id", "market", "name").iter_rows()
    }


def var_lines(total: pl.DataFrame, odds: pl.DataFrame, scenarios: int, seed: int) -> list[str]:
    """The whole book's VaR / ES per measure, how often a scenario loses anything at all, and in plain words whether
    the book is safe at the shortest horizon and highest confidence (a VaR of $0 with an ES above it reads as a
    contradiction without the share of scenarios that lose)."""
    lines = []
    for metric in ("bad_debt_usd", "liquidatable_debt_usd"):
        name = metric.removesuffix("_usd").replace("_", " ")
        figures = ", ".join(
            f"{h} h {c:.0%}: VaR {_usd(v)} / ES {_usd(e)}"
            for h, c, v, e in total.filter(pl.col("metric") == metric)
            .select("horizon_hours", "confidence", "var_usd", "es_usd")
            .iter_rows()
        )
        chances = ", ".join(
            f"{round(p * n):,} of {n:,} {h} h scenarios"
            for h, p, n in odds.filter(pl.col("metric") == metric)
            .select("horizon_hours", "loss_probability", "scenarios")
            .iter_rows()
        )
        lines.append(f"{name} ({scenarios:,} scenarios, seed {seed}): {figures}; any {name} in {chances}")
    bad = total.filter(pl.col("metric") == "bad_debt_usd").sort(
        "horizon_hours", pl.col("confidence"), descending=[False, True]
    )
    if bad.height:
        row = bad.row(0, named=True)
        h, c = row["horizon_hours"], row["confidence"]
        chance = odds.filter((pl.col("metric") == "bad_debt_usd") & (pl.col("horizon_hours") == h))
        share = float(chance["loss_probability"][0]) if chance.height else 0.0
        if row["var_usd"] <= 0:
            lines.append(
                f"verdict: safe at {c:.0%} over {h} h - bad debt in only {share:.2%} of scenarios (fewer than the "
                f"{1 - c:.0%} the VaR leaves out), so the VaR is $0; the worst {1 - c:.0%} average "
                f"{_usd(row['es_usd'])} (ES)"
            )
        else:
            lines.append(
                f"verdict: at risk at {c:.0%} over {h} h - bad debt in {share:.2%} of scenarios, above "
                f"{_usd(row['var_usd'])} in {1 - c:.0%} of them (ES {_usd(row['es_usd'])})"
            )
    return lines


@dataclass(frozen=True)
class ChainBalances:
    """What `chain_balances` read: the node's chain and each wallet's balance of every asset of its markets there."""

    chain_id: int
    by_wallet: dict[str, dict[str, int]]  #: wallet -> asset address -> balance (token units; native ETH: wei)
    #: assets whose balanceOf reverted or answered no uint256 (an odd token): counted as holding none
    unreadable: tuple[str, ...] = ()

    def of_market(self, wallet: str, rows: pl.DataFrame) -> dict[str, int]:
        """The wallet's balances by the symbols of one market's `rows` (what optimise_wallet takes): each symbol the
        market's own asset's, never another token of the same symbol elsewhere."""
        held = self.by_wallet.get(wallet, {})
        return {symbol: held.get(asset, 0) for symbol, asset in rows.select("symbol", "asset").unique().iter_rows()}


def chain_balances(rpc_url: str, positions: pl.DataFrame, wallets: Sequence[str]) -> ChainBalances:
    """ERC-20 balances of each wallet in every asset of the positions on the node's chain (native ETH: its ether
    balance), at that chain's positions' block, by asset address: two tokens of one symbol (a DAI in each of two
    markets) are two balances. A token whose balanceOf reverts or answers no uint256 is counted as held by no one
    (a plan may not spend it) and named in `unreadable`, never stopping the plans."""
    from chainrisk.abi import DecodingError, eth_call, load_abi
    from chainrisk.rpc import RpcClient

    erc20 = load_abi("erc20", "IERC20Detailed")
    with RpcClient(rpc_url) as rpc:
        chain_id = int(rpc.call("eth_chainId"), 16)
        here = positions.filter(pl.col("chain_id") == chain_id)
        if here.is_empty():
            return ChainBalances(chain_id, {})
        assets = sorted(set(here["asset"].to_list()))
        block = hex(int(here["block_number"].max()))  # type: ignore[arg-type]
        calls = [
            ("eth_getBalance", [w, block]) if a == NATIVE_ETH else eth_call(a, erc20, "balanceOf", w, block=block)
            for w in wallets
            for a in assets
        ]
        raw = rpc.batch_each(calls)
    unreadable: set[str] = set()

    def balance(asset: str, answer: Any) -> int:
        if asset == NATIVE_ETH:
            return int(answer, 16)
        try:
            if answer is not None:  # None: a revert
                return int(erc20.decode("balanceOf", answer)[0])
        except DecodingError:  # "0x" (no code) or a short answer
            pass
        unreadable.add(asset)
        return 0

    values = iter(raw)
    by_wallet = {wallet: {a: balance(a, next(values)) for a in assets} for wallet in wallets}
    return ChainBalances(chain_id, by_wallet, tuple(sorted(unreadable)))


#: "Unlimited" balances: each asset worth this many times the wallet's debt (its own debt in full for repayments).
AMPLE_MULTIPLE = 10


def ample_balances(rows: pl.DataFrame, wallet: str) -> dict[str, int]:
    """Balances with which funding is never the limit, sized to the wallet: huge numbers would only hurt the LP's
    conditioning, and no plan needs more than AMPLE_MULTIPLE times the debt in any one asset."""
    own = rows.filter(pl.col("wallet") == wallet)
    debt_usd = float(own["debt_usd"].fill_null(0.0).sum()) or 1.0
    out: dict[str, int] = {}
    for symbol, decimals, price_usd in rows.select("symbol", "decimals", "price_usd").unique("symbol").iter_rows():
        owed = int(own.filter(pl.col("symbol") == symbol)["debt_amount"].cast(pl.Float64).sum())
        worth = int(AMPLE_MULTIPLE * debt_usd / price_usd * 10**decimals) if price_usd else 0
        out[symbol] = max(owed + 1, worth)
    return out


def _tokens(amount: int, decimals: int | None) -> float | None:
    """Whole tokens of a raw `amount`; None for a token without decimals() (its raw amount stays exact)."""
    return None if decimals is None else amount / 10**decimals


def run_optimise(
    db: Path,
    target: float = 1.2,
    below: float = 1.1,
    limit: int = 200,
    swap_into: Sequence[str] = (),
    rpc_urls: Sequence[str] = (),
    shifts_bps: Sequence[int] = (-100, -50, 50, 100),
) -> RiskReport:
    """Cheapest plans to `target` for the weakest `limit` wallets under `below` (optimise_plans / _actions), and
    each market's threshold sensitivity (threshold_sensitivity). Balances come from the chain each of `rpc_urls`
    serves; a wallet on a chain without one is assumed able to fund any top-up or repayment."""
    if target <= 1 or below <= 0:
        raise UserError(f"--target {target} must be above 1 and --below {below} positive")
    started = time.time()
    positions = latest_positions(db)
    held_symbols = set(positions.get_column("symbol").drop_nulls().to_list())  # latest_positions: never empty
    if unknown := sorted(set(swap_into) - held_symbols):
        raise UserError(
            f"--swap-into {unknown[0]}: no market of the latest snapshot holds it; give one of "
            f"{', '.join(sorted(held_symbols)[:12])}"
        )
    health = read(
        db,
        "SELECT r.protocol, r.chain_id, r.market, r.wallet, r.health_factor FROM wallet_risk r "
        "JOIN scored_markets s USING (protocol, chain_id, market, block_number) WHERE r.health_factor < ? "
        "ORDER BY r.health_factor, r.wallet LIMIT ?",
        [below, limit],
    )
    if health.is_empty() and not read(db, "SELECT 1 FROM scored_markets LIMIT 1").height:
        raise UserError(f"{db} has no scores yet; run `chainrisk score` (or `chainrisk run`) first")
    wallets = sorted(set(health["wallet"].to_list()))
    balances: dict[int, ChainBalances] = {}
    for url in rpc_urls if wallets else ():
        read_ = chain_balances(url, positions, wallets)
        if read_.chain_id in balances:
            from chainrisk.rpc import mask_url

            raise UserError(f"--rpc-url {mask_url(url)} serves chain {read_.chain_id}, as an earlier one does")
        balances[read_.chain_id] = read_
    plans, actions = [], []
    elsewhere = 0  # plans on a chain no node was given for: balances assumed ample
    # Each market's rows and token decimals once, not per wallet.
    markets = {
        key: distinct_symbols(rows)
        for key, rows in positions.partition_by("protocol", "chain_id", "market", as_dict=True).items()
    }
    decimals_of = {
        key: dict(rows.select("symbol", "decimals").unique("symbol").iter_rows()) for key, rows in markets.items()
    }
    with progress_bar("optimise") as tick:
        for k, (protocol, chain_id, market, wallet, _) in enumerate(health.iter_rows()):
            rows, decimals = markets[(protocol, chain_id, market)], decimals_of[(protocol, chain_id, market)]
            if chain_id in balances:
                held = balances[chain_id].of_market(wallet, rows)
            else:
                # No node of this chain: funding is assumed never to be the limit.
                elsewhere += bool(rpc_urls)
                held = ample_balances(rows, wallet)
            plan = optimise_wallet(rows, wallet, held, target, swap_into=swap_into)
            plans.append(
                {
                    "protocol": protocol,
                    "chain_id": chain_id,
                    "market": market,
                    "wallet": wallet,
                    "target_health": target,
                    "health_before": plan.health_before,
                    "health_after": plan.health_after,
                    "feasible": plan.feasible,
                    "cost_usd": plan.cost_usd,
                    "actions": len(plan.actions),
                    "reason": plan.reason,
                }
            )
            for seq, a in enumerate(plan.actions):
                actions.append(
                    {
                        "protocol": protocol,
                        "chain_id": chain_id,
                        "market": market,
                        "wallet": wallet,
                        "seq": seq,
                        "kind": a.kind,
                        "symbol": a.symbol,
                        "amount": a.amount,
                        "amount_tokens": _tokens(a.amount, decimals[a.symbol]),
                        "amount_usd": a.amount_usd,
                        "cost_usd": a.cost_usd,
                        "into_symbol": a.into,
                        "received": a.received,
                        "received_tokens": _tokens(a.received, decimals[a.into]) if a.into else None,
                    }
                )
            tick(k + 1, health.height)
    plan_frame = pl.DataFrame(plans, schema=_PLAN_SCHEMA)
    action_frame = pl.DataFrame(actions, schema=_ACTION_SCHEMA)
    graph = stored_graph(db)
    distance = liquidation_distance(positions, graph)
    drops = distance.select(*MARKET_KEY, "symbol", "sensitivity_drop")
    levels = {(p, c, m, s): d for p, c, m, s, d in drops.iter_rows()}
    sensitivity = threshold_sensitivity(positions, shifts_bps, levels, graph)
    tables = {
        "optimise_plans": plan_frame,
        "optimise_actions": action_frame,
        "threshold_sensitivity": sensitivity,
        "liquidation_distance": distance,
    }
    feasible = plan_frame.filter(pl.col("feasible") & (pl.col("actions") > 0))
    source = "on-chain balances" if rpc_urls else "any top-up or repayment assumed fundable"
    if balances:
        source += f" of chain {', '.join(str(c) for c in sorted(balances))}"
    if elsewhere:
        source += f" ({elsewhere} plan(s) on other chains: assumed fundable)"
    unreadable = sum(len(b.unreadable) for b in balances.values())
    if unreadable:
        source += f"; {unreadable} token(s) answered no balance: counted as none held"
    infeasible = plan_frame.filter(~pl.col("feasible")).height
    lines = [
        f"{health.height} wallets under health {below}: {feasible.height} plans to reach {target} "
        f"(total cost {_usd(float(feasible['cost_usd'].sum()))}), {infeasible} infeasible; {source}",
        *distance_lines(distance, sensitivity, market_names(db)),
    ]
    params = {
        "target": target,
        "below": below,
        "limit": limit,
        "swap_into": list(swap_into),
        "balances": "chain" if balances is not None else "unlimited",
        "shifts_bps": list(shifts_bps),
    }
    run_id = _write(db, "optimise", positions, params, tables, started)
    return RiskReport(run_id, "optimise", time.time() - started, lines)


def distance_lines(
    distance: pl.DataFrame, sensitivity: pl.DataFrame, names: Mapping[tuple[str, int, str], str]
) -> list[str]:
    """In words: how far each collateral's base may fall before its first holder is liquidated (the nearest market),
    which are safe past the deepest fall, and what the widest threshold shift does where liquidations start."""
    if distance.is_empty():
        return ["no borrower holds collateral: nothing to liquidate"]
    nearest = distance.filter(pl.col("first_drop").is_not_null()).sort("first_drop").unique("symbol", keep="first")
    parts = [
        f"{r['symbol']} -{r['first_drop']:.1%} ({names.get((r['protocol'], r['chain_id'], r['market']), r['market'])})"
        for r in nearest.sort("first_drop").iter_rows(named=True)
    ]
    safe = sorted(set(distance["symbol"].to_list()) - set(nearest["symbol"].to_list()))
    already = int(distance["liquidatable_now"].sum())
    lines = [
        "first liquidation as each collateral's base falls: "
        + (", ".join(parts) or "none")
        + (f"; safe past -{MAX_DROP:.0%}: {', '.join(safe)}" if safe else "")
        + (f" (not counting {already:,} holding(s) liquidatable already)" if already else "")
    ]
    if sensitivity.is_empty():
        return lines
    widest = [int(sensitivity["shift_bps"].min()), int(sensitivity["shift_bps"].max())]  # type: ignore[arg-type]
    read = sensitivity.filter(pl.col("shift_bps").is_in(widest)).join(
        distance.select(*MARKET_KEY, "symbol", "sensitivity_drop"), on=[*MARKET_KEY, "symbol"]
    )
    effects = []
    for (symbol,), rows in read.filter(pl.col("sensitivity_drop") > 0).group_by("symbol", maintain_order=True):
        drops = "/".join(f"-{d:.0%}" for d in sorted(set(rows["sensitivity_drop"].to_list())))
        moved = []
        for shift in widest:
            at = rows.filter(pl.col("shift_bps") == shift)
            wallets = int(at["liquidatable_wallets_change"].sum())
            usd = abs(float(at["liquidatable_collateral_usd_change"].sum()))
            verb = "no change" if not wallets else f"{'adds' if wallets > 0 else 'spares'} {abs(wallets)} ({_usd(usd)})"
            moved.append(f"{shift:+d} bps {verb}")
        effects.append(f"{symbol} at {drops}: {', '.join(moved)}")
    if effects:
        lines.append(
            "threshold sensitivity where liquidations start (positions, their collateral): " + "; ".join(effects)
        )
    return lines


_PLAN_SCHEMA = {
    "protocol": pl.Utf8,
    "chain_id": pl.Int64,
    "market": pl.Utf8,
    "wallet": pl.Utf8,
    "target_health": pl.Float64,
    "health_before": pl.Float64,
    "health_after": pl.Float64,
    "feasible": pl.Boolean,
    "cost_usd": pl.Float64,
    "actions": pl.Int64,
    "reason": pl.Utf8,
}
_ACTION_SCHEMA = {
    "protocol": pl.Utf8,
    "chain_id": pl.Int64,
    "market": pl.Utf8,
    "wallet": pl.Utf8,
    "seq": pl.Int64,
    "kind": pl.Utf8,
    "symbol": pl.Utf8,
    "amount": pl.Int128,
    "amount_tokens": pl.Float64,
    "amount_usd": pl.Float64,
    "cost_usd": pl.Float64,
    "into_symbol": pl.Utf8,
    "received": pl.Int128,
    "received_tokens": pl.Float64,
}


def parse_shock(items: Sequence[str]) -> dict[str, float]:
    """SYMBOL=-30% (a percentage) or SYMBOL=0.7x (a price multiplier) -> price multipliers. A bare number is refused:
    WETH=-30 could mean -30 % or -3,000 %."""
    shock: dict[str, float] = {}
    for item in items:
        symbol, sep, text = item.partition("=")
        text = text.strip()
        try:
            if not sep or not symbol:
                raise ValueError
            if text.endswith("x"):
                multiplier = float(text[:-1])
            elif text.endswith("%"):
                multiplier = 1 + float(text[:-1]) / 100
            else:
                float(text)
                raise UserError(
                    f"--shock {item!r}: say the unit: {symbol}={text}% for a percentage move, or {symbol}=0.7x for a "
                    "price multiplier"
                )
        except ValueError:
            raise UserError(
                f"--shock {item!r}: write SYMBOL=-30% (a percentage) or SYMBOL=0.7x (a multiplier)"
            ) from None
        if not 0 < multiplier < 100:
            raise UserError(
                f"--shock {item!r} gives price multiplier {multiplier:g}; it must be above 0 and below 100 (a move "
                "between -100 % and +9,900 %)"
            )
        shock[symbol] = multiplier
    if not shock:
        raise UserError("give at least one --shock SYMBOL=-30%")
    return shock


def run_cascade(
    db: Path, shock: Mapping[str, float], settings: RiskSettings = RiskSettings(), max_rounds: int = 50
) -> RiskReport:
    """The liquidation cascade from `shock` through per-asset depth curves (cascade_rounds, cascade_prices)."""
    started = time.time()
    positions = latest_positions(db)
    graph = stored_graph(db)
    held = sorted(graph.nodes(positions["symbol"].drop_nulls().to_list()))
    unknown = sorted(set(shock) - set(held))
    if unknown:
        raise UserError(f"--shock names {unknown[0]!r}, which no position holds; known: {', '.join(held)}")
    try:
        depths = {s: DepthCurve(d, settings.depth_shape) for s, d in settings.depth_usd_at_2pct.items()}
        result = cascade(positions, shock, depths, max_rounds=max_rounds, graph=graph)
    except ValueError as exc:
        raise _model_error(exc) from None
    rounds = result.rounds.with_columns(pl.lit(result.amplification, pl.Float64).alias("amplification"))
    # Round 0: the shock alone, as it reached every wrapper through the graph (what the page shows as the shock).
    before_sales = result.shocked.select(
        pl.lit(0, pl.Int64).alias("round"),
        "symbol",
        pl.lit(0.0).alias("cumulative_sold_usd"),
        pl.lit(0.0).alias("impact"),
        "multiplier",
    )
    tables = {
        "cascade_rounds": rounds,
        "cascade_prices": pl.concat([before_sales, result.prices], how="vertical_relaxed"),
    }
    first, last = rounds.row(0, named=True), rounds.row(-1, named=True)
    amplification = f"{result.amplification:.3f}x" if result.amplification is not None else "n/a (nobody liquidated)"
    lines = [
        f"shock {', '.join(f'{s} x{m:g}' for s, m in shock.items())}: round 1 liquidates "
        f"{first['new_liquidatable_wallets']} wallets ({_usd(first['liquidated_debt_usd'])} of debt); after "
        f"{rounds.height} round{'s' if rounds.height != 1 else ''} {last['liquidatable_wallets']} wallets, "
        f"{_usd(last['cumulative_liquidated_debt_usd'])} - amplification {amplification}"
        f"{'' if result.converged else ' (not converged)'}"
    ]
    params = {
        "shock": dict(shock),
        "depth_usd_at_2pct": settings.depth_usd_at_2pct,
        "depth_shape": settings.depth_shape,
        "max_rounds": max_rounds,
    }
    run_id = _write(db, "cascade", positions, params, tables, started)
    return RiskReport(run_id, "cascade", time.time() - started, lines)


def bad_debt_rules(positions: pl.DataFrame, markets: pl.DataFrame) -> pl.DataFrame:
    """protocol, market, bad_debt_rule, reserves_amount, supply_amount of every market of `positions`: as its adapter
    described it in `markets` (contagion reads a redistributing market's supply_amount: Liquity's Stability Pool),
    else (a file indexed before markets were recorded) the protocol's own rule without reserves or supply."""
    found = adapters()
    amounts = [pl.col("reserves_amount").cast(pl.Float64), pl.col("supply_amount").cast(pl.Float64)]
    described = markets.select("protocol", "market", "bad_debt_rule", *amounts)
    rest = positions.select("protocol", "market").unique().join(described, on=["protocol", "market"], how="anti")
    fallback = rest.with_columns(
        pl.col("protocol")
        .replace_strict({p: a.bad_debt for p, a in found.items()}, default="unbacked")
        .alias("bad_debt_rule"),
        pl.lit(None, pl.Float64).alias("reserves_amount"),
        pl.lit(None, pl.Float64).alias("supply_amount"),
    )
    return pl.concat([described, fallback]).sort("protocol", "market")


def run_contagion(db: Path, shock: Mapping[str, float], max_rounds: int = MAX_CONTAGION_ROUNDS) -> RiskReport:
    """A base-asset shock through the stored asset graph and socialised bad debt, round by round (contagion_rounds,
    contagion_wallets, contagion_prices, contagion_markets); needs `chainrisk chains` (or a run) first."""
    started = time.time()
    positions = latest_positions(db)
    stored = latest_links(db)
    with Store(db, read_only=True) as store:
        markets = store.latest_markets()
    chains = sorted(set(positions["chain_id"].to_list()))
    parts: dict[str, list[pl.DataFrame]] = {t: [] for t in ("rounds", "wallets", "assets", "markets")}
    notes, lines = [], []
    for chain_id in chains:
        book = positions.filter(pl.col("chain_id") == chain_id)
        mine = stored.filter(pl.col("chain_id") == chain_id)
        links = links_from_frame(mine)
        if mine.is_empty():
            notes.append(f"chain {chain_id}: no asset graph stored (run `chainrisk chains`); wrappers held at face")
        elif int(mine["block_number"][0]) != int(book["block_number"].max()):  # type: ignore[arg-type]
            notes.append(f"chain {chain_id}: asset graph of block {mine['block_number'][0]}, positions newer")
        known = set(book["symbol"].drop_nulls().to_list()) | {k.underlying.symbol for k in links.values()}
        unknown = sorted(set(shock) - known)
        if unknown:
            raise UserError(
                f"--shock names {unknown[0]!r}, which no position or wrapper rests on; known: "
                f"{', '.join(sorted(known))}"
            )
        rules = bad_debt_rules(book, markets)
        result = contagion(book, links, shock, vault_holdings(book, links), rules, max_rounds=max_rounds)
        for name in parts:
            frame: pl.DataFrame = getattr(result, name)
            parts[name].append(frame if name == "wallets" else frame.with_columns(pl.lit(chain_id).alias("chain_id")))
        notes.extend(f"chain {chain_id}: {note}" for note in result.notes)
        if not result.settled:
            notes.append(f"chain {chain_id}: not settled after {max_rounds} rounds")
    rounds = pl.concat(parts["rounds"])
    wallets = pl.concat(parts["wallets"])
    tables = {
        "contagion_rounds": rounds.drop("chain_id"),
        "contagion_wallets": wallets,
        "contagion_prices": pl.concat(parts["assets"]).drop("chain_id"),
        "contagion_markets": pl.concat(parts["markets"]).drop("chain_id"),
    }
    by_channel = wallets.group_by("channel").agg(pl.len()).sort("channel")
    active = rounds.filter(pl.col("new_liquidatable_wallets") > 0)["round"].n_unique()
    debt, bad = _usd(float(wallets["debt_usd"].sum())), _usd(float(wallets["bad_debt_usd"].sum()))
    lines.append(
        f"shock {', '.join(f'{s} x{m:g}' for s, m in shock.items())}: {wallets.height} wallet-markets liquidatable "
        f"in {active} round(s) ({debt} of debt, {bad} bad debt); by channel: "
        + (", ".join(f"{c} {n}" for c, n in by_channel.iter_rows()) or "none")
    )
    for r in rounds.filter(pl.col("new_liquidatable_wallets") > 0).iter_rows(named=True):
        debt, bad = _usd(r["new_liquidatable_debt_usd"]), _usd(r["new_bad_debt_usd"])
        lines.append(
            f"  round {r['round']} {r['protocol']}: {r['new_liquidatable_wallets']} new, {debt} debt, {bad} bad"
        )
    params = {"shock": dict(shock), "max_rounds": max_rounds}
    run_id = _write(db, "contagion", positions, params, tables, started, notes)
    return RiskReport(run_id, "contagion", time.time() - started, lines + notes)
