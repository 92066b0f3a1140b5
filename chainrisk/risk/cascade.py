"""Liquidation cascades: seized collateral sold through per-asset depth curves moves prices, iterated to a fixed point.

Round 1 applies the shock; every liquidatable wallet is liquidated as the engine describes it (close factor, bonus,
collateral seized pro rata across its collateral assets, since the engine does not know which one a liquidator
picks). Liquidators sell what they seize; selling `sold` USD of an asset moves its price by the asset's depth curve,
impact = 2 % x (sold / depth_usd_at_2pct) (linear) or 2 % x sqrt(sold / depth_usd_at_2pct) (square root, the
default: the empirical square-root law of market impact), capped at 99 %. Prices after round r are
shock x (1 - impact(cumulative seized tokens valued at the post-shock price)), which can make more wallets
liquidatable in round r + 1. Each wallet is liquidated once, in the round it first becomes liquidatable and at that
round's prices (a liquidation usually raises the wallet's HF, so it is not counted again). Seized amounts only grow,
so prices only fall and the rounds stop at a fixed point: a round that liquidates nobody new (or `max_rounds`).

Wrapped collateral follows the asset graph (chainrisk.chains.moves): an aToken, vault share or LST moves with its
base times its own shock, and what liquidators seize of it is redeemed and sold into its base's depth (or its own,
when a depth is configured for the wrapper's symbol).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.scoring.groups import DEFAULT_GROUPS
from chainrisk.scoring.health import WALLET_KEY, prepare, reprice, wallet_health

#: The reference move of a depth curve: depth_usd_at_2pct buys (or sells) a 2 % price move.
REFERENCE_IMPACT = 0.02
#: No sale takes a price below 1 % of where it stood.
MAX_IMPACT = 0.99
#: Each position's USD price per whole token after the shock alone, before any sale: what its seized tokens are sold
#: for in the depth curves.
REFERENCE = "_reference_usd"


@dataclass(frozen=True)
class DepthCurve:
    """How far selling moves one asset's price."""

    depth_usd_at_2pct: float  #: USD that can be sold for a 2 % price drop
    shape: str = "sqrt"  #: "sqrt" (square-root impact law) or "linear"

    def impact(self, sold_usd: float) -> float:
        """Fractional price drop after selling `sold_usd`."""
        if sold_usd <= 0:
            return 0.0
        ratio = sold_usd / self.depth_usd_at_2pct
        if self.shape == "linear":
            move = REFERENCE_IMPACT * ratio
        elif self.shape == "sqrt":
            move = REFERENCE_IMPACT * math.sqrt(ratio)
        else:
            raise ValueError(f"unknown depth curve shape {self.shape!r}; use 'sqrt' or 'linear'")
        return min(move, MAX_IMPACT)


#: Order-of-magnitude on-chain (DEX aggregate) USD depth within 2 % by asset class, where liquidators sell.
#: Overridden per symbol by the caller (`depth_curves(..., overrides=...)`).
DEFAULT_DEPTH_USD_AT_2PCT: dict[str, float] = {"ETH": 25e6, "BTC": 10e6, "USD": 50e6}
#: Any asset outside those classes (LINK, governance tokens): thin books.
LONG_TAIL_DEPTH_USD_AT_2PCT = 1e6


def depth_curves(
    symbols: list[str],
    overrides: Mapping[str, DepthCurve] | None = None,
    shape: str = "sqrt",
    groups: Mapping[str, str] | None = None,
) -> dict[str, DepthCurve]:
    """A depth curve per symbol: the override if given, else its asset class's default depth."""
    classes = DEFAULT_GROUPS if groups is None else groups
    curves = {}
    for symbol in symbols:
        if overrides is not None and symbol in overrides:
            curves[symbol] = overrides[symbol]
        else:
            depth = DEFAULT_DEPTH_USD_AT_2PCT.get(classes.get(symbol, symbol), LONG_TAIL_DEPTH_USD_AT_2PCT)
            curves[symbol] = DepthCurve(depth, shape)
    return curves


@dataclass(frozen=True)
class CascadeResult:
    """What the cascade did, round by round."""

    #: per round: round, liquidatable_wallets, new_liquidatable_wallets, liquidated_debt_usd (new this round),
    #: cumulative_liquidated_debt_usd, collateral_sold_usd (new this round, at the post-shock prices)
    rounds: pl.DataFrame
    #: per round and asset (every held symbol and every base the graph names): round, symbol, cumulative_sold_usd
    #: (sold into this symbol's market), impact, multiplier (of the snapshot price)
    prices: pl.DataFrame
    #: per asset: the shock alone before any sale (symbol, multiplier), carried through the asset graph to wrappers
    shocked: pl.DataFrame
    #: final cumulative liquidated debt over the first round's (None: the shock liquidates nobody)
    amplification: float | None
    #: a round found no new liquidatable wallet before `max_rounds`
    converged: bool
    #: wallet health at the fixed point's prices
    health: pl.DataFrame


def _seized(valued: pl.DataFrame, liquidated: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: USD of collateral seized from the `liquidated` wallets at these prices, pro rata to collateral,
    each position's tokens valued at its own price after the shock alone (`REFERENCE`): tokens of one symbol may be
    different contracts, or one contract priced by several markets' oracles (a Morpho market's own), so no one price
    per symbol values them."""
    shares = liquidated.filter(pl.col("collateral_usd") > 0).select(
        *WALLET_KEY, (pl.col("seizable_collateral_usd") / pl.col("collateral_usd")).alias("_share")
    )
    tokens = pl.col("collateral_usd_now") * pl.col("_share") / pl.col("price_usd_now")
    return (
        valued.join(shares, on=WALLET_KEY)
        .filter(pl.col("price_usd_now") > 0)
        .group_by("symbol")
        .agg((tokens * pl.col(REFERENCE).fill_null(0.0)).sum().alias("usd"))
    )


def cascade(
    positions: pl.DataFrame,
    shock: Mapping[str, float],
    depths: Mapping[str, DepthCurve] | None = None,
    *,
    max_rounds: int = 50,
    graph: AssetGraph | None = None,
) -> CascadeResult:
    """Runs the cascade from `shock` (symbol -> price multiplier; others 1) with `depths` per symbol (default:
    `depth_curves` of every symbol). A round liquidates the wallets that became liquidatable at the prices the
    previous rounds' sales left; the cascade has converged when a round finds none (`rounds` lists round 1 and
    every round that liquidated someone).

    `graph` moves wrapped collateral with its base (chainrisk.chains.moves): a WETH shock reaches aWETH, and seized
    wrappers are redeemed and sold as their base (into the base's depth) unless `depths` names the wrapper itself,
    which then trades in a market of its own. `shocked` is the shock alone, before any sale."""
    assets = graph or AssetGraph()
    prepared = prepare(positions).collect().lazy()
    held = sorted(set(positions["symbol"].to_list()))
    nodes = sorted(assets.nodes(held) | set(shock))
    own_markets = dict(depths or {})
    # Where a seized symbol is sold: its own market when its depth is given, else its base's.
    venue = {s: s if s in own_markets else assets.base(s) for s in nodes}
    curves = depth_curves(sorted(set(venue.values()))) | own_markets
    moves = {s: float(shock.get(s, 1.0)) for s in nodes}
    multipliers = assets.multipliers(moves, nodes)
    seized_usd = dict.fromkeys(held, 0.0)
    done = pl.DataFrame(schema={k: positions.schema[k] for k in WALLET_KEY})
    round_rows: list[dict[str, float | int]] = []
    shocked = pl.DataFrame(
        {"symbol": nodes, "multiplier": [multipliers[s] for s in nodes]},
        schema={"symbol": pl.Utf8, "multiplier": pl.Float64},
    )
    price_rows: list[dict[str, float | int | str]] = []
    cumulative_debt = 0.0
    converged = False
    health = pl.DataFrame()
    for number in range(1, max_rounds + 1):
        valued = reprice(prepared, assets.multiplier_frame(moves, held)).collect()
        if number == 1:
            # The shock alone's prices, carried on the book's rows (a reprice keeps their order) into every round.
            prepared = prepared.collect().with_columns(valued.get_column("price_usd_now").alias(REFERENCE)).lazy()
            valued = valued.with_columns(pl.col("price_usd_now").alias(REFERENCE))
        health = wallet_health(valued.lazy()).collect()
        fresh = health.filter(pl.col("liquidatable")).join(done, on=WALLET_KEY, how="anti", nulls_equal=True)
        if number > 1 and fresh.is_empty():
            converged = True
            break
        done = pl.concat([done, fresh.select(WALLET_KEY)])
        # Seized tokens are fixed when the wallet is liquidated; valued at the post-shock price they only grow, so
        # prices only fall from round to round.
        sold_now = 0.0
        for symbol, usd in _seized(valued, fresh).iter_rows():
            seized_usd[symbol] += usd
            sold_now += usd
        debt = float(fresh["liquidatable_debt_usd"].sum())
        cumulative_debt += debt
        round_rows.append(
            {
                "round": number,
                "liquidatable_wallets": done.height,
                "new_liquidatable_wallets": fresh.height,
                "liquidated_debt_usd": debt,
                "cumulative_liquidated_debt_usd": cumulative_debt,
                "collateral_sold_usd": sold_now,
            }
        )
        sold = dict.fromkeys(nodes, 0.0)
        for s in held:
            sold[venue[s]] += seized_usd[s]
        impact = {s: curves[s].impact(sold[s]) if s in curves else 0.0 for s in nodes}
        moves = {s: float(shock.get(s, 1.0)) * (1 - impact[s]) for s in nodes}
        multipliers = assets.multipliers(moves, nodes)
        for s in nodes:
            price_rows.append(
                {
                    "round": number,
                    "symbol": s,
                    "cumulative_sold_usd": sold[s],
                    "impact": impact[s],
                    "multiplier": multipliers[s],
                }
            )
    rounds = pl.DataFrame(round_rows)
    first = float(rounds["liquidated_debt_usd"][0])
    amplification = cumulative_debt / first if first > 0 else None
    return CascadeResult(rounds, pl.DataFrame(price_rows), shocked, amplification, converged, health)
