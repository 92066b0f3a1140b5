"""Liquidations along a real price path: what today's book would have cost a protocol with given parameters.

Unlike the replays (`chainrisk.risk.replay`, positions held, nobody liquidated), this backtest lets liquidators act,
the way they do on chain, so that a liquidation threshold, a bonus and market depth change the bad debt:

- the oracle lags the market by `oracle_lag_hours` (the protocol sees the price of that many steps before);
- a position whose health at the oracle's prices falls below 1 is liquidated `delay_hours` later (liquidators'
  reaction, gas, a congested chain) if it is still below 1 then; a position that recovers in between is not;
- a liquidation repays the close factor of the debt (all of it below `full_close_below`), at most what the collateral
  recovers (with the bonus, or the protocol's own recovery), and seizes collateral pro rata across the wallet's
  collateral assets at oracle prices, the repaid debt times the bonus and at most all of it;
- the liquidator sells what it seized at market prices, less the slippage of that step's total sales of each asset
  through its depth curve (`chainrisk.risk.cascade.DepthCurve`); it liquidates only when the sale covers the debt it
  repays at market prices (bonus x market / oracle x (1 - slippage) >= 1), else the position waits for a later step.
  Where the protocol sells the collateral itself (its recovery above 1 / bonus: Maker's Clipper, whose chop is the
  Vow's penalty; Comet's absorb and store front) nobody's profit gates the liquidation: it goes ahead, the sale raises
  the recovery's share of the market's price less slippage, and the debt that leaves unpaid is bad debt;
- a liquidation that takes the last of the collateral and leaves debt books that debt as bad debt; at the window's
  end a position still open whose debt exceeds its collateral at market prices counts its shortfall as bad debt.

Held, as in the replays: liquidation sales do not move the path (history already carries the market's reaction;
`chainrisk.risk.cascade` is the model for feedback), nobody tops up or repays, exchange rates stay at the snapshot's.
Health uses the engine's linear terms (`chainrisk.risk.var.build_book`): Aave's floored average threshold and
base-unit floors are left out (under 1 bps), which a backtest of parameters moved in 25-bps steps does not notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chainrisk.risk.cascade import DepthCurve
from chainrisk.risk.var import Book
from chainrisk.units import BPS


@dataclass(frozen=True)
class PathOutcome:
    """What liquidators did along one price path."""

    liquidations: int  #: liquidation calls made
    liquidated_debt_usd: float  #: debt they repaid (USD at the oracle's prices then)
    bad_debt_usd: float  #: debt left without collateral (realised) plus open positions' shortfall at the end
    skipped: int  #: steps at which a due liquidation was skipped because selling the collateral would not cover it
    liquidated_wallets: int  #: positions liquidated at least once


def liquidate_along(
    book: Book,
    path: np.ndarray,
    venues: Mapping[str, str],
    curves: Mapping[str, DepthCurve],
    oracle_lag_hours: int = 1,
    delay_hours: int = 1,
) -> PathOutcome:
    """Runs the liquidations of `book` along `path` (steps x book.assets price multipliers from the snapshot, one
    step an hour); `venues` names the market each asset's seized collateral is sold in (its own or its base's) and
    `curves` the depth of each venue."""
    steps = path.shape[0]
    wallets = book.debt.shape[0]
    if steps == 0 or wallets == 0:
        return PathOutcome(0, 0.0, 0.0, 0, 0)
    names = list(book.assets)
    venue_names = sorted({venues.get(a, a) for a in names})
    # asset -> venue as a 0/1 matrix, so a step's sales per venue are one product.
    to_venue = np.zeros((len(names), len(venue_names)))
    for i, asset in enumerate(names):
        to_venue[i, venue_names.index(venues.get(asset, asset))] = 1.0
    weighted = book.weighted / BPS
    fixed_adjusted = book.fixed_weighted / BPS
    # The protocol sells the collateral itself where it recovers more of it than a liquidator's bonus leaves.
    auctioned = np.zeros(wallets, dtype=bool)
    if book.own_recovery:
        auctioned = book.recovered.sum(axis=1) + book.fixed_recovered > (
            book.recoverable.sum(axis=1) + book.fixed_recoverable
        ) * (1.0 + 1e-9)
    collateral_left = np.ones(wallets)
    debt_left = np.ones(wallets)
    due = np.full(wallets, -1)
    closed = np.zeros(wallets, dtype=bool)
    touched = np.zeros(wallets, dtype=bool)
    liquidations = skipped = 0
    repaid_total = bad_total = 0.0
    for t in range(steps):
        oracle = path[max(t - oracle_lag_hours, 0)]
        market = path[t]
        # Positions whose price the protocol fixes (dai at par in the Vat) are the same at every step.
        debt = (book.debt @ oracle + book.fixed_debt) * debt_left
        adjusted = (weighted @ oracle + fixed_adjusted) * collateral_left
        live = ~closed & (debt > 0)
        below = live & (adjusted < debt)
        due[below & (due < 0)] = t + delay_hours
        # Prices came back before liquidators did: nothing is due any more.
        due[~below] = -1
        act = below & (t >= due)
        if not act.any():
            continue
        recoverable = (book.recoverable @ oracle + book.fixed_recoverable) * collateral_left
        recovered = (
            (book.recovered @ oracle + book.fixed_recovered) * collateral_left if book.own_recovery else recoverable
        )
        held = (book.collateral @ oracle + book.fixed_collateral) * collateral_left
        factor = np.where(book.closes_whole(adjusted, debt, held), 1.0, book.close_factor)
        repay = np.where(act, np.minimum(debt * factor, recovered), 0.0)
        share = np.minimum(np.divide(repay, recoverable, out=np.zeros(wallets), where=recoverable > 0), 1.0)
        # Seized collateral per asset at market prices, and the slippage of selling this step's total of it.
        seized = (share * collateral_left)[:, None] * book.collateral * market[None, :]
        sold = seized.sum(axis=0) @ to_venue
        slippage = np.array([curves[v].impact(float(usd)) for v, usd in zip(venue_names, sold, strict=True)])
        proceeds = seized @ (1.0 - to_venue @ slippage) + share * collateral_left * book.fixed_collateral
        debt_at_market = book.debt @ market + book.fixed_debt
        debt_at_oracle = book.debt @ oracle + book.fixed_debt
        cost = repay * np.divide(debt_at_market, debt_at_oracle, out=np.ones(wallets), where=debt_at_oracle > 0)
        done = act & ((proceeds >= cost) | auctioned)
        skipped += int((act & ~done).sum())
        if not done.any():
            continue
        liquidations += int(done.sum())
        touched |= done
        # An auction's proceeds, at the protocol's recovery of the market's price (Maker's Clipper all of it, Comet's
        # store front its discounted price), pay the debt (a penalty only after it); what they leave unpaid is bad debt.
        if auctioned.any():
            value = (book.collateral @ oracle + book.fixed_collateral) * collateral_left
            rate = np.divide(recovered, value, out=np.ones(wallets), where=value > 0)
            raised = proceeds * rate * np.divide(repay, cost, out=np.ones(wallets), where=cost > 0)
            repay = np.where(auctioned, np.minimum(repay, raised), repay)
        repaid_total += float(repay[done].sum())
        exhausted = done & (share >= 1.0 - 1e-12)
        bad_total += float((debt - repay)[exhausted].clip(min=0.0).sum())
        closed |= exhausted
        partial = done & ~exhausted
        collateral_left[partial] *= 1.0 - share[partial]
        debt_left[partial] *= 1.0 - np.divide(repay[partial], debt[partial])
    last = path[-1]
    open_debt = (book.debt @ last + book.fixed_debt) * debt_left
    open_collateral = (book.collateral @ last + book.fixed_collateral) * collateral_left
    shortfall = np.where(~closed, np.maximum(open_debt - open_collateral, 0.0), 0.0)
    return PathOutcome(liquidations, repaid_total, bad_total + float(shortfall.sum()), skipped, int(touched.sum()))
