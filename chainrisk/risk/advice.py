"""Risk-parameter advice a steward can act on: liquidation threshold, LTV, liquidation bonus and a collateral cap per
market and collateral, each with its reasons and a backtest of today's book through the historical crashes.

Per market and collateral c (outside e-mode), with its current threshold LT, LTV and bonus b:

1. The moves that matter are those before liquidators can act: the oracle's lag plus the liquidators' delay, H hours.
   q_H is a quantile of c's value against its borrowers' debt over H hours, from every non-overlapping H-hour move of
   the real hourly prices of 2021-2023 (crashes included): the rare one (`confidence`, 99.9 %) for the threshold, the
   ordinary one (`ordinary_confidence`, 99 %) for the LTV; q_lag the ordinary move over the oracle's lag alone.
2. Concentration: the `top_wallets` largest holders of c in the market are liquidated together in a crash; selling
   their collateral through c's depth (its own `depth_usd_at_2pct`, else its base's: an aToken or vault share is
   redeemed and sold as its base) slips by s.
3. Bonus: a liquidator must cover the oracle's lag and the slippage: b >= 1 / ((1 - s) q_lag). A lower bonus is raised
   to that (rounded up to 25 bps); a bonus above it is kept (lowering it is a question of liquidators' costs this
   model does not price).
4. Threshold ceiling: a position exactly at LT must still cover its debt and the bonus after the rare H-hour move and
   the slippage: LT <= q_H (1 - s) / b; Aave's PoolConfigurator (configureReserveAsCollateral) also requires
   percentMul(LT, bonus) <= 100 % (Comet's only a factor up to 1). LTV ceiling: a position opened at the LTV stays
   above LT after the ordinary H-hour move: LTV <= LT q_H(ordinary).
5. Proposals move in 50-bps steps, at most `max_change_bps` per update (Chaos Labs bounds each Aave proposal to
   +-3 %, hence the default of 300). A threshold above its ceiling is lowered (and the positions that lowering makes
   liquidatable at today's prices are counted); one below its ceiling is raised only if the backtest shows the raise
   adds no bad debt in any window: the largest such step is proposed, or none. An LTV moves towards its ceiling (a
   raise only where its threshold is not being lowered). Where LTV equals LT (one LLTV), LTV follows LT.
6. Cap (after Chaos Labs' Aave V3 supply-cap method): the collateral a large-cap (15 %) or other (35 %) drop of c's
   base makes liquidatable must be sellable within the bonus; room = min(sellable / that amount, 2) times today's
   collateral.
7. Backtest (`chainrisk.risk.liquidations`): today's book of the market through each historical window, hourly, with
   the current and the proposed parameters: liquidations, liquidated debt and bad debt of each.

Every proposal carries its reasons in words; `reasons` joins them.

What a protocol lets change (`ParameterRules`, from its adapter): governance sets each parameter of Aave V3, Compound V3
and Maker/Sky (the above); Morpho Blue fixes a market's LLTV when the market is created and derives its liquidation
incentive from it (Morpho.liquidate), so a different threshold is a different market, at an LLTV governance has
enabled (a market of the same deployment uses it: createMarket requires isLltvEnabled), and the bonus is never proposed
on its own: every threshold tried is backtested with the incentive the protocol gives it; Maker's chop is the Vow's
penalty, not a keeper's cut (`bonus_is_penalty`), so it is never moved and the threshold's ceiling does not divide by
it; Liquity V1 has no governance (its MCR and liquidation reward are constants), so nothing is proposed and the figures
are for information. Only Aave V3 and Compound V3 cap a collateral's supply; elsewhere the cap's figure says how much
collateral the depth absorbs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.risk.calibration import Method, calibrate, load_price_panel, log_returns
from chainrisk.risk.cascade import REFERENCE_IMPACT, DepthCurve, depth_curves
from chainrisk.risk.liquidations import PathOutcome, liquidate_along
from chainrisk.risk.parameters import SUGGESTION_SCHEMA, suggest_parameters
from chainrisk.risk.replay import Window, price_path
from chainrisk.risk.var import Book, build_book
from chainrisk.scoring.groups import DEFAULT_GROUPS
from chainrisk.scoring.health import stress, wad_of_threshold
from chainrisk.units import BPS, GOVERNED, IMMUTABLE, MARKET_KEY, PER_MARKET, WAD

#: Proposals move in half-percent steps, as stewards' proposals do.
GRID_BPS = 50
#: A raise is safe when no window's bad debt grows by more than this (USD): float noise, not risk.
BAD_DEBT_TOLERANCE_USD = 1.0
#: Chaos Labs' "extreme drop" of a collateral's price for its supply-cap method: large caps and stablecoins 15 %,
#: anything else 35 % (their medium caps; a small cap would want 50 %, which a lower depth expresses here).
EXTREME_DROP = {"ETH": 0.15, "BTC": 0.15, "USD": 0.15}
OTHER_EXTREME_DROP = 0.35
#: Chaos Labs' cap method never more than doubles a cap in one step.
MAX_CAP_MULTIPLE = 2.0


@dataclass(frozen=True)
class ParameterRules:
    """What a protocol lets change of a collateral's parameters (its adapter says; `AdviceSettings.rules`)."""

    changes: str = GOVERNED  #: GOVERNED, PER_MARKET or IMMUTABLE
    #: The bonus the protocol gives a threshold (bps to bps), where it derives one from the other (PER_MARKET).
    bonus_of_threshold: Callable[[int], int] | None = None
    collateral_cap: bool = True  #: whether governance can cap the collateral's supply
    #: whether the LTV must stay strictly under the threshold (Comet: borrowCollateralFactor below liquidateCollateral-
    #: Factor)
    ltv_below_threshold: bool = False
    #: whether the bonus is a penalty the protocol keeps (Maker's chop), so that no liquidator needs it and a
    #: liquidation recovers the whole value towards the debt
    bonus_is_penalty: bool = False
    #: whether the threshold times the bonus may not exceed 100 % (Aave's PoolConfigurator; not Comet's)
    threshold_within_bonus: bool = True


@dataclass(frozen=True)
class AdviceSettings:
    """How the advice is made; every field has a `[risk]` key in chainrisk.toml (see chainrisk.config)."""

    oracle_lag_hours: int = 1  #: hours the oracle trails the market (a Chainlink heartbeat)
    liquidation_delay_hours: int = 1  #: hours liquidators take to act once a position is liquidatable
    max_change_bps: int = 300  #: most a parameter moves in one proposal
    #: Quantile of the tail moves a threshold must survive: a 2-hour move seen once in a thousand (every 83 days)
    confidence: float = 0.999
    #: Quantile of the ordinary moves a position opened at the LTV must survive (the LT-LTV gap protects borrowers)
    #: and a liquidator must cover with the bonus
    ordinary_confidence: float = 0.99
    top_wallets: int = 3  #: largest holders liquidated together (concentration)
    depth_usd_at_2pct: Mapping[str, float] = field(default_factory=dict)  #: symbol -> USD sold for a 2 % move
    depth_shape: str = "sqrt"
    series: Mapping[str, str] = field(default_factory=dict)  #: symbol -> price series overrides
    prices_dir: Path | None = None  #: the price history's folder (chainrisk.risk.calibration.prices_folder)
    method: Method = "sample"
    #: protocol -> what it lets change (a protocol not named: GOVERNED, with a collateral cap)
    rules: Mapping[str, ParameterRules] = field(default_factory=dict)

    @property
    def horizon_hours(self) -> int:
        """Hours a tail move has before liquidators act: the oracle's lag and their delay."""
        return max(self.oracle_lag_hours + self.liquidation_delay_hours, 1)


@dataclass(frozen=True)
class Advice:
    """The advice: `suggestions` (parameter_suggestions), `advice` (parameter_advice: the rest of each row, with its
    reasons) and `backtest` (parameter_backtest: each row's and the whole book's windows, current and proposed)."""

    suggestions: pl.DataFrame
    advice: pl.DataFrame
    backtest: pl.DataFrame
    notes: list[str]


def _grid_down(bps: float) -> int:
    return math.floor(bps / GRID_BPS + 1e-9) * GRID_BPS


def _pct(bps: float) -> str:
    return f"{bps / 100:.2f} %"


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def with_collateral_parameters(
    positions: pl.DataFrame, key: tuple[str, int, str], symbol: str, lt_bps: int, ltv_bps: int, bonus_bps: int
) -> pl.DataFrame:
    """Positions with `symbol`'s threshold, LTV and bonus replaced in one market (outside e-mode, where the category's
    own parameters apply); the exact wad columns follow for the rules that read them."""
    protocol, chain_id, market = key
    hit = (pl.col("protocol") == protocol) & (pl.col("chain_id") == chain_id) & (pl.col("market") == market)
    hit = hit & (pl.col("symbol") == symbol) & (pl.col("liquidation_threshold_bps") > 0)
    if "emode_category" in positions.columns:
        hit = hit & (pl.col("emode_category").fill_null(0) == 0)
    values = {"liquidation_threshold_bps": lt_bps, "ltv_bps": ltv_bps, "liquidation_bonus_bps": bonus_bps}
    changes = [
        pl.when(hit).then(pl.lit(value, positions.schema[column])).otherwise(pl.col(column)).alias(column)
        for column, value in values.items()
    ]
    for column, value in (("liquidation_threshold_wad", lt_bps), ("liquidation_bonus_wad", bonus_bps)):
        if column in positions.columns:
            exact = pl.col(column)
            wad: pl.Expr = pl.lit(value * (WAD // BPS), pl.Int128)
            if column == "liquidation_threshold_wad":  # a collateral ratio, where the rule holds one (Liquity's MCR)
                wad = wad_of_threshold(wad, positions.columns)
            wad = wad.cast(positions.schema[column])
            changes.append(pl.when(hit & exact.is_not_null()).then(wad).otherwise(exact).alias(column))
    if {"liquidation_recovery_wad", "liquidation_bonus_wad"} <= set(positions.columns):
        changes.append(_recovery_at_bonus(hit, bonus_bps, positions.schema["liquidation_recovery_wad"]))
    return positions.with_columns(changes)


def _recovery_at_bonus(hit: pl.Expr, bonus_bps: int, dtype: pl.DataType) -> pl.Expr:
    """A protocol's own recovery at a new bonus, keeping the share of the bonus's discount it gives away: none for
    Maker (recovery 1 whatever chop is), storeFrontPriceFactor for Compound V3 (1 - sf x (1 - liquidationFactor), the
    bonus being 1 / liquidationFactor). A NULL recovery stays NULL: it is 1 / bonus, and follows the new bonus."""
    recovery = pl.col("liquidation_recovery_wad").cast(pl.Int128)
    bonus, new = pl.col("liquidation_bonus_wad").cast(pl.Int128), pl.lit(bonus_bps * (WAD // BPS), pl.Int128)
    # What the protocol gives away, WAD - recovery, scales with the bonus's discount 1 - 1 / bonus: times
    # (1 - 1 / new) / (1 - 1 / bonus) = (new - WAD) bonus / new / (bonus - WAD), in Int128 rounded half up (every
    # product under 1e37).
    scaled_new = ((new - WAD) * bonus + new // 2) // new
    given = ((WAD - recovery) * scaled_new + (bonus - WAD) // 2) // (bonus - WAD)
    changed = hit & recovery.is_not_null() & (bonus > WAD)
    return pl.when(changed).then((WAD - given).cast(dtype)).otherwise(recovery).alias("liquidation_recovery_wad")


def tail_moves(
    positions: pl.DataFrame, hours: int, confidence: float, settings: AdviceSettings, graph: AssetGraph | None
) -> pl.DataFrame:
    """Per market and collateral: the (1 - confidence) quantile of its value against its borrowers' debt over
    `hours`, from every non-overlapping `hours` move of the real prices (chainrisk.risk.parameters on empirical
    moves). The debt is that of the wallets holding the collateral, not the whole market's: WETH posted against WETH
    debt carries no price risk, against USDC all of it."""
    symbols = sorted(set(positions["symbol"].drop_nulls().to_list()))
    calibration = calibrate(
        symbols,
        horizon_hours=hours,
        method=settings.method,
        overrides=settings.series,
        prices_dir=settings.prices_dir,
        graph=graph,
    )
    panel = load_price_panel(settings.prices_dir)
    moves = np.exp(log_returns(panel, calibration.assets, hours).select(calibration.assets).to_numpy())
    posted = positions.filter(pl.col("collateral_amount").cast(pl.Float64) > 0).select(*MARKET_KEY, "symbol", "wallet")
    frames = []
    for (*_, symbol), holders in posted.group_by(*MARKET_KEY, "symbol"):
        rows = positions.join(holders.select(*MARKET_KEY, "wallet"), on=[*MARKET_KEY, "wallet"], how="semi")
        found = suggest_parameters(rows, calibration, moves, confidence).filter(pl.col("symbol") == symbol)
        frames.append(found)
    return (
        pl.concat(frames).sort(*MARKET_KEY, "symbol") if frames else suggest_parameters(positions, calibration, moves)
    )


@dataclass(frozen=True)
class _Paths:
    """Each window's hourly multipliers for every symbol of the book, in `symbols` order."""

    symbols: tuple[str, ...]
    windows: tuple[Window, ...]
    paths: tuple[np.ndarray, ...]


def window_paths(
    positions: pl.DataFrame, windows: Sequence[Window], settings: AdviceSettings, graph: AssetGraph | None
) -> tuple[_Paths, list[str]]:
    """The windows' real hourly price paths for every symbol the book holds (wrappers through their base)."""
    symbols = tuple(sorted(set(positions["symbol"].drop_nulls().to_list())))
    paths, notes = [], []
    for win in windows:
        path = price_path(list(symbols), win, 1, settings.series, settings.prices_dir, graph)
        notes += [f"{win.name}: {n}" for n in path.notes]
        wide = path.frame.pivot(on="symbol", index="step", values="multiplier").sort("step")
        paths.append(wide.select(symbols).to_numpy())
    return _Paths(symbols, tuple(windows), tuple(paths)), notes


def _venues(symbols: Sequence[str], settings: AdviceSettings, graph: AssetGraph) -> dict[str, str]:
    """Where each symbol's seized collateral is sold: its own market when its depth is configured, else its base's."""
    return {s: s if s in settings.depth_usd_at_2pct else graph.base(s) for s in symbols}


def _curves(venues: Mapping[str, str], settings: AdviceSettings) -> dict[str, DepthCurve]:
    configured = {s: DepthCurve(d, settings.depth_shape) for s, d in settings.depth_usd_at_2pct.items()}
    places = sorted(set(venues.values()))
    return {**depth_curves(places, shape=settings.depth_shape), **{s: c for s, c in configured.items() if s in places}}


def _sellable_within(curve: DepthCurve, slippage: float) -> float:
    """USD that can be sold before the price moves by `slippage` (the depth curve inverted)."""
    if slippage <= 0:
        return 0.0
    ratio = slippage / REFERENCE_IMPACT
    return curve.depth_usd_at_2pct * (ratio if curve.shape == "linear" else ratio**2)


def _book(positions: pl.DataFrame, symbols: Sequence[str]) -> Book:
    return build_book(positions, {s: s for s in symbols}, list(symbols))


def backtest_book(
    positions: pl.DataFrame,
    paths: _Paths,
    venues: Mapping[str, str],
    curves: Mapping[str, DepthCurve],
    settings: AdviceSettings,
) -> list[PathOutcome]:
    """Each window's liquidations and bad debt for `positions` (one book) along the windows' paths."""
    book = _book(positions, paths.symbols)
    return [
        liquidate_along(book, path, venues, curves, settings.oracle_lag_hours, settings.liquidation_delay_hours)
        for path in paths.paths
    ]


def _outcome_rows(
    key: tuple[str, int | None, str],
    symbol: str,
    variant: str,
    params: tuple[int, int, int],
    paths: _Paths,
    outcomes: Sequence[PathOutcome],
) -> list[dict[str, object]]:
    return [
        {
            "protocol": key[0],
            "chain_id": key[1],
            "market": key[2],
            "symbol": symbol,
            "window_name": win.name,
            "variant": variant,
            "lt_bps": params[0],
            "ltv_bps": params[1],
            "bonus_bps": params[2],
            "liquidations": o.liquidations,
            "liquidated_wallets": o.liquidated_wallets,
            "liquidated_debt_usd": o.liquidated_debt_usd,
            "bad_debt_usd": o.bad_debt_usd,
            "skipped": o.skipped,
        }
        for win, o in zip(paths.windows, outcomes, strict=True)
    ]


def _worse(proposed: Sequence[PathOutcome], current: Sequence[PathOutcome]) -> tuple[float, int]:
    """The largest growth of bad debt over the windows and the window index where it happens."""
    gaps = [p.bad_debt_usd - c.bad_debt_usd for p, c in zip(proposed, current, strict=True)]
    worst = int(np.argmax(gaps)) if gaps else 0
    return (gaps[worst] if gaps else 0.0), worst


def _extreme_drop(symbol: str, graph: AssetGraph) -> float:
    return EXTREME_DROP.get(DEFAULT_GROUPS.get(graph.base(symbol), ""), OTHER_EXTREME_DROP)


@dataclass(frozen=True)
class _Context:
    """What every row's advice shares: the settings, the graph, the windows' paths and where collateral is sold."""

    settings: AdviceSettings
    graph: AssetGraph
    paths: _Paths
    venues: Mapping[str, str]
    curves: Mapping[str, DepthCurve]
    #: (protocol, chain_id, deployment) -> the thresholds its markets use, ascending (see `thresholds_in_use`)
    in_use: Mapping[tuple[object, ...], tuple[int, ...]] = field(default_factory=dict)

    def backtest(self, positions: pl.DataFrame) -> list[PathOutcome]:
        return backtest_book(positions, self.paths, self.venues, self.curves, self.settings)


def _discount_share(market: pl.DataFrame, symbol: str) -> float:
    """The share of its bonus's discount (1 - 1 / bonus) a protocol passes to whoever buys the collateral: 1 where a
    liquidator repays for it (recovery 1 / bonus), storeFrontPriceFactor for Comet (which sells absorbed collateral at
    1 - storeFrontPriceFactor x (1 - liquidationFactor)), 0 where the bonus is a penalty the protocol keeps (Maker)."""
    if not {"liquidation_recovery_wad", "liquidation_bonus_wad"} <= set(market.columns):
        return 1.0
    rows = market.filter(
        (pl.col("symbol") == symbol)
        & pl.col("liquidation_recovery_wad").is_not_null()
        & (pl.col("liquidation_bonus_wad").cast(pl.Float64) > WAD)
    )
    if rows.is_empty():
        return 1.0
    recovery, bonus = (
        float(rows[c].cast(pl.Float64)[0]) / WAD for c in ("liquidation_recovery_wad", "liquidation_bonus_wad")
    )
    return min(max((1.0 - recovery) / (1.0 - 1.0 / bonus), 0.0), 1.0)


def _recovery(bonus_bps: float, share: float) -> float:
    """What selling all the collateral recovers towards the debt, per unit of its value, at a bonus."""
    return 1.0 - share * (1.0 - BPS / bonus_bps)


def _incentive(bonus_bps: float, share: float) -> float:
    """The buyer's price advantage at a bonus, in bps of the price (the bonus itself where the share is 1)."""
    return BPS / _recovery(bonus_bps, share)


def _bonus_for(incentive_bps: float, share: float) -> float:
    """The bonus (bps) whose buyers get `incentive_bps`: _incentive's inverse; beyond reach (the share passes on too
    little of any bonus), the largest bonus a bps grid holds, which the step cap then bounds."""
    needed = (1.0 - BPS / incentive_bps) / share if share > 0 else math.inf
    return BPS / (1.0 - needed) if needed < 1.0 else float(BPS * BPS)


def _buyers(bonus_bps: int, share: float) -> str:
    """Words for what buyers get of a bonus, where they get less than all of it."""
    if share >= 1.0:
        return ""
    buyers = _pct(_incentive(bonus_bps, share) - BPS)
    return f" (buyers get {buyers} at the store front, {_pct(share * BPS)} of its discount)"


def _deployment(market: pl.DataFrame) -> tuple[object, ...]:
    """(protocol, chain_id, the indexed contract) of a market's rows; the contract None where the frame has none."""
    first = market.row(0, named=True)
    return (first["protocol"], first["chain_id"], first.get("source"))


def thresholds_in_use(positions: pl.DataFrame) -> dict[tuple[object, ...], tuple[int, ...]]:
    """Per deployment (protocol, chain_id, indexed contract), the collateral thresholds its markets use, in bps. For
    Morpho Blue each is an LLTV governance has enabled: createMarket requires isLltvEnabled, and enableLltv is never
    undone, so a market may be created at any of them."""
    source = pl.col("source") if "source" in positions.columns else pl.lit(None, pl.Utf8)
    rows = positions.filter(pl.col("liquidation_threshold_bps") > 0).select(
        "protocol", "chain_id", source.alias("_source"), "liquidation_threshold_bps"
    )
    grouped = rows.group_by("protocol", "chain_id", "_source").agg(pl.col("liquidation_threshold_bps").unique().sort())
    return {(p, c, s): tuple(int(t) for t in ts) for p, c, s, ts in grouped.iter_rows()}


@dataclass(frozen=True)
class _Row:
    """One market and collateral: its figures and the advice for it."""

    key: tuple[str, int, str]
    symbol: str
    positions: pl.DataFrame  #: the market's rows
    current: tuple[int, int, int]  #: LT, LTV, bonus (bps)
    proposed: tuple[int, int, int]
    current_outcomes: list[PathOutcome]
    proposed_outcomes: list[PathOutcome]
    suggestion: dict[str, object]
    advice: dict[str, object]


def _concentration(market: pl.DataFrame, symbol: str, top: int, curve: DepthCurve) -> tuple[float, float]:
    """(USD collateral of the `top` largest holders of `symbol`, the slippage of selling it all at once)."""
    holders = (
        market.filter((pl.col("symbol") == symbol) & (pl.col("collateral_amount").cast(pl.Float64) > 0))
        .group_by("wallet")
        .agg(pl.col("collateral_usd").sum())
        .sort("collateral_usd", descending=True)
    )
    usd = float(holders.head(top)["collateral_usd"].sum())
    return usd, curve.impact(usd)


def _advise_row(
    ctx: _Context, tail: Mapping[str, object], market: pl.DataFrame, current_outcomes: list[PathOutcome]
) -> _Row:
    """The advice for one market and collateral (see the module docstring, steps 1 to 7)."""
    settings, graph = ctx.settings, ctx.graph
    key = (str(tail["protocol"]), int(str(tail["chain_id"])), str(tail["market"]))
    symbol = str(tail["symbol"])
    lt, ltv, bonus = (int(str(tail[c])) for c in ("current_lt_bps", "current_ltv_bps", "liquidation_bonus_bps"))
    horizon, level = settings.horizon_hours, f"{settings.confidence:.1%}"
    q = 1.0 + float(str(tail["tail_move"]))
    q_lag = min(1.0 + float(str(tail["lag_move"] or 0.0)), 1.0)
    q_ordinary = 1.0 + float(str(tail["ordinary_move"]))
    venue = ctx.venues.get(symbol, symbol)
    curve = ctx.curves[venue]
    top_usd, slippage = _concentration(market, symbol, settings.top_wallets, curve)
    largest = f"{slippage:.2%} slippage selling the {settings.top_wallets} largest positions ({_usd(top_usd)})"
    reasons: list[str] = []
    rules = settings.rules.get(key[0], ParameterRules())
    derived = rules.bonus_of_threshold if rules.changes == PER_MARKET else None
    threshold = "LLTV" if rules.changes == PER_MARKET else "LT"

    def backtest(lt_bps: int, ltv_bps: int, bonus_bps: int) -> tuple[pl.DataFrame, list[PathOutcome]]:
        variant = with_collateral_parameters(market, key, symbol, lt_bps, ltv_bps, bonus_bps)
        return variant, ctx.backtest(variant)

    def bonus_at(lt_bps: int) -> int:
        """The bonus a threshold is backtested with: the protocol's own for it where it derives one, else the
        proposed bonus (and today's where the threshold stays)."""
        return derived(lt_bps) if derived is not None and lt_bps != lt else new_bonus

    # Bonus: cover the oracle's lag and the slippage, with what the collateral's buyer gets of it.
    bonus_floor = BPS / ((1.0 - slippage) * q_lag)
    # A penalty the protocol keeps passes none of its discount to anyone: the sale recovers the whole value.
    share = 0.0 if rules.bonus_is_penalty else _discount_share(market, symbol)
    new_bonus = bonus
    lag = f"the {settings.ordinary_confidence:.0%} {settings.oracle_lag_hours} h oracle-lag move ({q_lag - 1:+.1%})"
    if rules.bonus_is_penalty:
        reasons.append(
            f"penalty {_pct(bonus - BPS)} kept: it is the protocol's penalty on the debt, not a keeper's cut (the "
            "auction's falling price pays keepers), so no lag or slippage sets it"
        )
    elif rules.changes != GOVERNED:
        source = "follows the market's LLTV" if derived is not None else "is the protocol's constant"
        covers = "covers" if bonus >= bonus_floor else "falls short of"
        reasons.append(f"bonus {_pct(bonus - BPS)} {source}: it {covers} {lag} and {largest}")
    elif _incentive(bonus, share) < bonus_floor:
        new_bonus = min(math.ceil(_bonus_for(bonus_floor, share) / 25.0) * 25, bonus + settings.max_change_bps)
        reasons.append(
            f"bonus {_pct(bonus - BPS)} -> {_pct(new_bonus - BPS)}{_buyers(new_bonus, share)}: "
            f"{'liquidators' if share >= 1.0 else 'buyers'} must cover {lag} and {largest}"
        )
    else:
        reasons.append(
            f"bonus {_pct(bonus - BPS)} kept{_buyers(bonus, share)}: it covers {lag} and {largest} into "
            f"{_usd(curve.depth_usd_at_2pct)} of {venue} depth per 2 %"
        )

    # Threshold: its ceiling; lowered at once, raised only as far as the backtest allows.
    covered = BPS * q * (1.0 - slippage)
    # Where a threshold is another market's (Morpho), the thresholds a market may be created at, highest first.
    enabled = sorted(set(ctx.in_use.get(_deployment(market), ())) | {lt}, reverse=True) if derived is not None else []
    if derived is None:
        # What a sale of all of it recovers towards the debt: 1 / bonus, the store front's price (Comet), or all of
        # it where the bonus is a penalty paid after the debt (Maker: the move and the slippage alone bound it).
        exact_ceiling = covered * _recovery(new_bonus, share)
        # Aave's PoolConfigurator rejects percentMul(LT, bonus) > 100 %: no step may stop above it (a penalty's
        # threshold may reach any ratio above the debt; Comet's Configurator asks only for a factor up to 1).
        within_bonus = rules.threshold_within_bonus and not rules.bonus_is_penalty
        valid = min(_grid_down(BPS * BPS / new_bonus), BPS) if within_bonus else BPS
        ceiling = min(_grid_down(exact_ceiling), valid)
        bonus_words = f"the {_pct(new_bonus - BPS)} bonus"
        if rules.bonus_is_penalty:
            bonus_words = "no bonus (a penalty is paid after the debt)"
        elif share < 1.0:
            bonus_words += f" (the store front sells at {_pct(_recovery(new_bonus, share) * BPS)} of the price)"
    else:
        # The incentive falls as the LLTV rises: the highest LLTV governance has enabled (one a market of the
        # deployment uses) whose own incentive the move leaves covered, and which still covers the oracle's lag and
        # the slippage (the bonus floor above).
        valid = BPS
        fits = (c for c in enabled if c * derived(c) <= covered * BPS and derived(c) >= bonus_floor)
        ceiling = next(fits, 0)
        exact_ceiling = float(ceiling)
        bonus_words = "the incentive each LLTV gives (at least the floor above)"
    why = (
        f"the {level} {horizon} h move of {symbol} against its borrowers' debt ({q - 1:+.1%}), {slippage:.2%} "
        f"slippage and {bonus_words} allow {_pct(exact_ceiling)}"
    )
    # Most a threshold is lowered in one proposal: a governance step, or anything for a new market (raises keep the
    # step either way: each is backtested).
    step = settings.max_change_bps if derived is None else BPS
    market_words = (
        " (a new market: a market's LLTV never changes; at an LLTV governance has enabled, one a market of this"
        " deployment uses)"
        if derived is not None
        else ""
    )
    new_lt, outcomes, newly = lt, current_outcomes, (0, 0.0)
    if rules.changes == IMMUTABLE:
        reasons.append(f"LT {_pct(lt)} cannot change (the protocol has no governance): {why}")
    elif derived is not None and ceiling == 0:
        lowest = _pct(enabled[-1])
        reasons.append(f"{threshold} {_pct(lt)} kept: {why}, and no enabled LLTV in use is that low (lowest {lowest})")
    elif lt > ceiling:
        new_lt = min(max(ceiling, lt - step), valid)
        variant, outcomes = backtest(new_lt, min(ltv, new_lt), bonus_at(new_lt))
        before = stress(market).filter(pl.col("liquidatable")).select("wallet")
        fresh = stress(variant).filter(pl.col("liquidatable")).join(before, on="wallet", how="anti")
        newly = (fresh.height, float(fresh["debt_usd"].sum()))
        steps = "" if new_lt == ceiling else f" (in steps of at most {settings.max_change_bps} bps)"
        if new_lt == valid < lt - step:
            steps = f" (at once: percentMul(LT, bonus) above 100 % is refused by Aave's PoolConfigurator){steps}"
        reasons.append(
            f"{threshold} {_pct(lt)} -> {_pct(new_lt)}{market_words}{steps}: {why}; lowering makes {newly[0]} "
            f"position(s) liquidatable at today's prices ({_usd(newly[1])} of debt)"
        )
    elif ceiling > lt:
        rejected: tuple[int, float, int] | None = None
        top = min(ceiling, lt + settings.max_change_bps)
        tried_in_turn = [c for c in enabled if lt < c <= top] if derived is not None else range(top, lt, -GRID_BPS)
        for candidate in tried_in_turn:
            _, tried = backtest(candidate, min(ltv, candidate), bonus_at(candidate))
            gap, where = _worse(tried, current_outcomes)
            if gap <= BAD_DEBT_TOLERANCE_USD:
                new_lt, outcomes = candidate, tried
                break
            rejected = rejected or (candidate, gap, where)
        if new_lt > lt:
            stepped = new_lt == lt + settings.max_change_bps
            limit = f"at most {settings.max_change_bps} bps per update" if stepped else ""
            if rejected is not None:
                limit = (
                    f"{_pct(rejected[0])} would add {_usd(rejected[1])} of bad debt in "
                    f"{ctx.paths.windows[rejected[2]].name}"
                )
            reasons.append(
                f"{threshold} {_pct(lt)} -> {_pct(new_lt)}{market_words}: {why}; the backtest adds no bad debt in "
                "any window" + (f" ({limit})" if limit else "")
            )
        elif rejected is not None:
            reasons.append(
                f"{threshold} {_pct(lt)} kept: {why}, but raising it to {_pct(rejected[0])} adds "
                f"{_usd(rejected[1])} of bad debt in {ctx.paths.windows[rejected[2]].name}"
            )
        else:  # no enabled LLTV between today's and the step's reach
            above = min(c for c in enabled if c > lt)
            reasons.append(
                f"{threshold} {_pct(lt)} kept: {why}, but the next enabled LLTV in use, {_pct(above)}, is more than "
                f"{settings.max_change_bps} bps up"
            )
    else:
        reasons.append(f"{threshold} {_pct(lt)} kept: {why}")
    new_bonus = bonus_at(new_lt)
    if new_bonus != bonus and new_lt == lt:
        _, outcomes = backtest(lt, ltv, new_bonus)

    # LTV: towards what a position opened at the limit survives; one LLTV moves with LT.
    # The highest LTV the protocol accepts (Comet refuses a borrow factor not below the liquidation one).
    ltv_limit = new_lt - GRID_BPS if rules.ltv_below_threshold else new_lt
    ltv_ceiling = _grid_down(new_lt * q_ordinary)
    survives = f"the {settings.ordinary_confidence:.0%} {horizon} h move ({q_ordinary - 1:+.1%})"
    if rules.changes == IMMUTABLE:
        new_ltv = ltv
        reasons.append(f"LTV {_pct(ltv)} cannot change either")
    elif ltv == 0 < lt:
        # Governance's switch for an asset being wound down: it still backs debt, but backs no new borrowing.
        new_ltv = 0
        reasons.append("LTV 0.00 % kept: borrowing against it is switched off, a decision no price move revisits")
    elif ltv == lt:
        new_ltv = new_lt
        reasons.append("one LLTV: LTV follows LT")
    elif ltv > min(ltv_ceiling, ltv_limit):
        new_ltv = min(max(ltv_ceiling, ltv - settings.max_change_bps), ltv_limit)
        reasons.append(
            f"LTV {_pct(ltv)} -> {_pct(new_ltv)}: a position opened at the limit must stay above the "
            f"threshold after {survives}"
        )
    elif ltv_ceiling > ltv and new_lt >= lt:
        new_ltv = min(ltv_ceiling, ltv + settings.max_change_bps, ltv_limit)
        reasons.append(
            f"LTV {_pct(ltv)} -> {_pct(new_ltv)}: a position opened at {_pct(new_ltv)} stays above "
            f"the {_pct(new_lt)} threshold after {survives}"
        )
    else:
        new_ltv = ltv
        reasons.append(f"LTV {_pct(ltv)} kept")

    # Cap: what an extreme drop makes liquidatable must be sellable within the bonus.
    drop = _extreme_drop(symbol, graph)
    moved = graph.multiplier_frame({graph.base(symbol): 1.0 - drop}, market["symbol"].drop_nulls().to_list())
    extreme = float(stress(market, moved).filter(pl.col("liquidatable"))["seizable_collateral_usd"].sum())
    sellable = _sellable_within(curve, new_bonus / BPS - 1.0)
    collateral_usd = float(str(tail["collateral_usd"]))
    multiple = MAX_CAP_MULTIPLE if extreme <= 0 else min(sellable / extreme, MAX_CAP_MULTIPLE)
    capped = "cap" if rules.collateral_cap else "no collateral cap in the protocol; the depth absorbs"
    reasons.append(
        f"{capped} {_usd(collateral_usd * multiple)} ({multiple:.2f}x today's {_usd(collateral_usd)}): a "
        f"{drop:.0%} drop of {graph.base(symbol)} makes {_usd(extreme)} liquidatable; {_usd(sellable)} "
        "sells within the bonus"
    )
    suggestion = {
        "protocol": key[0],
        "chain_id": key[1],
        "market": key[2],
        "symbol": symbol,
        "series": tail["series"],
        "collateral_usd": collateral_usd,
        "liquidation_bonus_bps": bonus,
        "current_lt_bps": lt,
        "current_ltv_bps": ltv,
        "tail_move": q - 1.0,
        "suggested_lt_bps": new_lt,
        "suggested_ltv_bps": new_ltv,
        "horizon_hours": horizon,
        "confidence": settings.confidence,
    }
    advice = {
        "protocol": key[0],
        "chain_id": key[1],
        "market": key[2],
        "symbol": symbol,
        "suggested_bonus_bps": new_bonus,
        "bonus_change_bps": new_bonus - bonus,
        "bonus_floor_bps": bonus_floor,
        "lt_ceiling_bps": ceiling,
        "ltv_ceiling_bps": ltv_ceiling,
        "lag_move": q_lag - 1.0,
        "ordinary_move": q_ordinary - 1.0,
        "ordinary_confidence": settings.ordinary_confidence,
        "venue": venue,
        "depth_usd_at_2pct": curve.depth_usd_at_2pct,
        "top_wallets": settings.top_wallets,
        "top_wallets_collateral_usd": top_usd,
        "concentration_slippage": slippage,
        "oracle_lag_hours": settings.oracle_lag_hours,
        "liquidation_delay_hours": settings.liquidation_delay_hours,
        "max_change_bps": settings.max_change_bps,
        "extreme_drop": drop,
        "extreme_liquidation_usd": extreme,
        "sellable_within_bonus_usd": sellable,
        "cap_multiple": multiple,
        "cap_usd": collateral_usd * multiple,
        "newly_liquidatable_wallets": newly[0],
        "newly_liquidatable_debt_usd": newly[1],
        "bad_debt_current_usd": sum(o.bad_debt_usd for o in current_outcomes),
        "bad_debt_proposed_usd": sum(o.bad_debt_usd for o in outcomes),
        "liquidated_debt_current_usd": sum(o.liquidated_debt_usd for o in current_outcomes),
        "liquidated_debt_proposed_usd": sum(o.liquidated_debt_usd for o in outcomes),
        "liquidations_current": sum(o.liquidations for o in current_outcomes),
        "liquidations_proposed": sum(o.liquidations for o in outcomes),
        "reasons": "; ".join(reasons),
    }
    return _Row(
        key,
        symbol,
        market,
        (lt, ltv, bonus),
        (new_lt, new_ltv, new_bonus),
        current_outcomes,
        outcomes,
        suggestion,
        advice,
    )


def advise(
    positions: pl.DataFrame,
    windows: Sequence[Window],
    settings: AdviceSettings = AdviceSettings(),
    graph: AssetGraph | None = None,
) -> Advice:
    """Parameter advice for every market and collateral of `positions` (see the module docstring)."""
    assets = graph or AssetGraph()
    tails = tail_moves(positions, settings.horizon_hours, settings.confidence, settings, assets)
    ordinary = tail_moves(positions, settings.horizon_hours, settings.ordinary_confidence, settings, assets)
    lags = (
        tail_moves(positions, settings.oracle_lag_hours, settings.ordinary_confidence, settings, assets)
        if settings.oracle_lag_hours > 0
        else tails.with_columns(pl.lit(0.0).alias("tail_move"))
    )
    tails = tails.join(
        lags.select(*MARKET_KEY, "symbol", pl.col("tail_move").alias("lag_move")),
        on=[*MARKET_KEY, "symbol"],
        how="left",
    ).join(
        ordinary.select(*MARKET_KEY, "symbol", pl.col("tail_move").alias("ordinary_move")), on=[*MARKET_KEY, "symbol"]
    )
    paths, notes = window_paths(positions, windows, settings, assets)
    venues = _venues(paths.symbols, settings, assets)
    ctx = _Context(settings, assets, paths, venues, _curves(venues, settings), thresholds_in_use(positions))
    markets = positions.partition_by(MARKET_KEY, as_dict=True)
    current: dict[tuple[object, ...], list[PathOutcome]] = {}
    rows: list[_Row] = []
    backtests: list[dict[str, object]] = []
    for tail in tails.iter_rows(named=True):
        key = (tail["protocol"], tail["chain_id"], tail["market"])
        if key not in current:
            current[key] = ctx.backtest(markets[key])
            backtests += _outcome_rows(key, "all", "current", (0, 0, 0), paths, current[key])
        row = _advise_row(ctx, tail, markets[key], current[key])
        rows.append(row)
        backtests += _outcome_rows(row.key, row.symbol, "current", row.current, paths, row.current_outcomes)
        backtests += _outcome_rows(row.key, row.symbol, "proposed", row.proposed, paths, row.proposed_outcomes)
    # Every proposal at once, every market together (their sales share the depth).
    joint = positions
    for row in rows:
        if row.proposed != row.current:  # a row kept keeps its exact parameters (a WAD threshold's fraction of a bps)
            joint = with_collateral_parameters(joint, row.key, row.symbol, *row.proposed)
    for variant, book in (("current", positions), ("proposed", joint)):
        backtests += _outcome_rows(("all", None, "all"), "all", variant, (0, 0, 0), paths, ctx.backtest(book))
    suggestions = pl.DataFrame([r.suggestion for r in rows], schema=SUGGESTION_SCHEMA).with_columns(
        (pl.col("suggested_lt_bps") - pl.col("current_lt_bps")).alias("lt_change_bps"),
        (pl.col("suggested_ltv_bps") - pl.col("current_ltv_bps")).alias("ltv_change_bps"),
    )
    return Advice(
        suggestions,
        pl.DataFrame([r.advice for r in rows], schema=ADVICE_SCHEMA),
        pl.DataFrame(backtests, schema=BACKTEST_SCHEMA),
        notes,
    )


def _change(name: str, now: int, then: int, offset: int = 0) -> str:
    if now == then:
        return f"{name} {_pct(now - offset)} kept"
    return f"{name} {_pct(now - offset)} -> {_pct(then - offset)} ({then - now:+d} bps)"


def advice_summary(
    advice: Advice, names: Mapping[tuple[str, int, str], str], settings: AdviceSettings = AdviceSettings()
) -> list[str]:
    """What `chainrisk risk var` prints: the method, one line per market and collateral (current -> proposed and its
    backtest) with its reasons under it, and the backtest of every proposal at once."""
    if advice.suggestions.is_empty():
        return ["parameter advice: no market has both collateral and debt with a price series"]
    windows = advice.backtest["window_name"].unique(maintain_order=True).to_list()
    lines = [
        f"parameter advice (LT: the {settings.confidence:.1%} {settings.horizon_hours} h move = "
        f"{settings.oracle_lag_hours} h oracle lag + {settings.liquidation_delay_hours} h to liquidate; LTV and bonus: "
        f"the {settings.ordinary_confidence:.0%} one; at most {settings.max_change_bps} bps a change; backtest: "
        f"today's book hourly through {', '.join(windows)}):"
    ]
    rows = advice.suggestions.join(advice.advice, on=[*MARKET_KEY, "symbol"])
    for row in rows.iter_rows(named=True):
        name = names.get((row["protocol"], row["chain_id"], row["market"]), str(row["market"])[:10])
        bonus = row["liquidation_bonus_bps"]
        rules = settings.rules.get(row["protocol"], ParameterRules())
        lt = _change("LT", row["current_lt_bps"], row["suggested_lt_bps"])
        ltv = _change("LTV", row["current_ltv_bps"], row["suggested_ltv_bps"])
        if rules.changes == IMMUTABLE:
            figures = f"immutable, nothing to propose: LT {_pct(row['current_lt_bps'])} · bonus {_pct(bonus - BPS)}"
        elif rules.changes == PER_MARKET:
            moved = row["suggested_lt_bps"] != row["current_lt_bps"]
            lltv = _change("LLTV", row["current_lt_bps"], row["suggested_lt_bps"]) + (
                " in a new market" if moved else ""
            )
            figures = f"{lltv} · {_change('incentive', bonus, row['suggested_bonus_bps'], BPS)}"
        else:
            kind = "penalty" if rules.bonus_is_penalty else "bonus"
            figures = f"{lt} · {ltv} · {_change(kind, bonus, row['suggested_bonus_bps'], BPS)}"
        cap = f"cap {_usd(row['cap_usd'])}" if rules.collateral_cap else f"depth absorbs {_usd(row['cap_usd'])}"
        lines.append(
            f"  {name} · {row['symbol']}: {figures} · {cap}; backtest "
            f"bad debt {_usd(row['bad_debt_current_usd'])} -> {_usd(row['bad_debt_proposed_usd'])}, liquidated "
            f"debt {_usd(row['liquidated_debt_current_usd'])} -> {_usd(row['liquidated_debt_proposed_usd'])}"
        )
        lines.append(f"      because {row['reasons']}")
    joint = advice.backtest.filter((pl.col("market") == "all") & (pl.col("symbol") == "all"))
    totals = {v: joint.filter(pl.col("variant") == v) for v in ("current", "proposed")}
    bad = {v: float(f["bad_debt_usd"].sum()) for v, f in totals.items()}
    repaid = {v: float(f["liquidated_debt_usd"].sum()) for v, f in totals.items()}
    lines.append(
        f"  every proposal at once, whole book: bad debt {_usd(bad['current'])} -> {_usd(bad['proposed'])}, "
        f"liquidated debt {_usd(repaid['current'])} -> {_usd(repaid['proposed'])} over the {len(windows)} windows"
    )
    return lines


ADVICE_SCHEMA = {
    "protocol": pl.Utf8,
    "chain_id": pl.Int64,
    "market": pl.Utf8,
    "symbol": pl.Utf8,
    "suggested_bonus_bps": pl.Int64,
    "bonus_change_bps": pl.Int64,
    "bonus_floor_bps": pl.Float64,
    "lt_ceiling_bps": pl.Int64,
    "ltv_ceiling_bps": pl.Int64,
    "lag_move": pl.Float64,
    "ordinary_move": pl.Float64,
    "ordinary_confidence": pl.Float64,
    "venue": pl.Utf8,
    "depth_usd_at_2pct": pl.Float64,
    "top_wallets": pl.Int64,
    "top_wallets_collateral_usd": pl.Float64,
    "concentration_slippage": pl.Float64,
    "oracle_lag_hours": pl.Int64,
    "liquidation_delay_hours": pl.Int64,
    "max_change_bps": pl.Int64,
    "extreme_drop": pl.Float64,
    "extreme_liquidation_usd": pl.Float64,
    "sellable_within_bonus_usd": pl.Float64,
    "cap_multiple": pl.Float64,
    "cap_usd": pl.Float64,
    "newly_liquidatable_wallets": pl.Int64,
    "newly_liquidatable_debt_usd": pl.Float64,
    "bad_debt_current_usd": pl.Float64,
    "bad_debt_proposed_usd": pl.Float64,
    "liquidated_debt_current_usd": pl.Float64,
    "liquidated_debt_proposed_usd": pl.Float64,
    "liquidations_current": pl.Int64,
    "liquidations_proposed": pl.Int64,
    "reasons": pl.Utf8,
}
BACKTEST_SCHEMA = {
    "protocol": pl.Utf8,
    "chain_id": pl.Int64,
    "market": pl.Utf8,
    "symbol": pl.Utf8,
    "window_name": pl.Utf8,
    "variant": pl.Utf8,
    "lt_bps": pl.Int64,
    "ltv_bps": pl.Int64,
    "bonus_bps": pl.Int64,
    "liquidations": pl.Int64,
    "liquidated_wallets": pl.Int64,
    "liquidated_debt_usd": pl.Float64,
    "bad_debt_usd": pl.Float64,
    "skipped": pl.Int64,
}
