"""Collateral optimisation: the cheapest actions restoring a health factor (a HiGHS LP); threshold sensitivity.

Health is linear in the action amounts: with c_i the collateral values and d_j the debt values (base currency),
HF >= target  <=>  sum_i c_i LT_i - target * sum_j d_j >= 0, for Aave's weighted average threshold (unfloored) and
for the per-position rule (Morpho's LLTV) alike. Each action moves that sum by a fixed amount per unit of value:

- add collateral i from the wallet's balance:   +LT_i
- repay debt j from the wallet's balance:       +target
- swap collateral i into collateral k:          (1 - slippage) LT_k - LT_i

and costs `ActionCosts` USD per USD moved (default 1 for every action: the plan moving the fewest dollars wins;
set `swap` to the slippage to count only what a swap loses). The LP's continuous optimum is rounded up to token base
units, then checked against the health engine's exact integer health factor: Aave floors the average threshold to
whole bps and every value to a base unit, so the binding action is searched over its integer amounts for the
smallest one that reaches the target (other chosen actions held); where that action has no room left, the LP is
solved again asking for a little more health (`_MARGINS`), so a plan may cost up to about 2e-4 more than the LP's
continuous optimum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from chainrisk.chains.moves import AssetGraph
from chainrisk.scoring.health import stress, threshold_of_wad, value_positions, wad_of_threshold, wallet_health
from chainrisk.units import BPS, MARKET_KEY, WAD

#: One market at one snapshot block.
SNAPSHOT_KEY = [*MARKET_KEY, "block_number"]
#: Extra health (as a share of target x debt) asked of the LP when rounding and Aave's floored average threshold
#: (at most 1 bps of it, about 1.3e-4 relative) leave its plan short and the binding action has no room left.
_MARGINS = (0.0, 1e-6, 1e-5, 1e-4, 2e-4, 5e-4, 1e-3)
#: Amounts scored per engine pass while searching the binding action's smallest sufficient amount.
_SEARCH_POINTS = 32


@dataclass(frozen=True)
class ActionCosts:
    """USD of cost per USD moved, by action type."""

    add: float = 1.0  #: collateral supplied from the wallet's balance
    repay: float = 1.0  #: debt repaid from the wallet's balance
    swap: float = 1.0  #: collateral sold (and its proceeds supplied as another collateral)


@dataclass(frozen=True)
class Action:
    """One step of a plan; amounts are exact token base units."""

    kind: str  #: "add", "repay" or "swap"
    symbol: str  #: the asset supplied, repaid, or (swap) the collateral sold
    amount: int  #: base units of `symbol`
    amount_usd: float  #: value moved at the snapshot's oracle price
    cost_usd: float  #: amount_usd times the action type's cost
    into: str | None = None  #: swap: the collateral bought
    received: int = 0  #: swap: base units of `into` received after slippage


@dataclass(frozen=True)
class Plan:
    """The cheapest set of actions found for one wallet, or why none exists."""

    wallet: str
    target: float
    feasible: bool
    reason: str  #: one line: what the plan does, or why the target is out of reach
    health_before: float | None  #: engine HF now (None: no debt)
    health_after: float | None  #: engine HF with the plan applied (exact integers)
    cost_usd: float
    actions: tuple[Action, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Asset:
    symbol: str
    price: int
    unit: int  #: price is per `unit` base units
    threshold: float  #: as a fraction (per-position: LLTV at wad precision)
    usd_per_base: float
    collateral: int  #: the wallet's current collateral (base units)
    debt: int
    can_supply: bool  #: supplying it would count as collateral

    def value(self, amount: int) -> int:
        return amount * self.price // self.unit

    def units_for(self, value: float) -> int:
        """Smallest token amount worth at least `value` base-currency units (before the floor)."""
        return int(np.ceil(value * self.unit / self.price)) if value > 0 else 0


@dataclass(frozen=True)
class _Candidate:
    kind: str
    symbol: str
    into: str | None
    effect: float  #: change of sum(c LT) - target sum(d) per base-currency unit moved
    cost: float  #: USD per base-currency unit moved


def _single_market(positions: pl.DataFrame) -> None:
    if positions.select(SNAPSHOT_KEY).unique().height > 1:
        raise ValueError("positions must hold one market at one block")


def distinct_symbols(positions: pl.DataFrame) -> pl.DataFrame:
    """One market's rows with no symbol shared by two assets: such a symbol (ERC-20 lets any token call itself USDC)
    becomes `SYMBOL@<asset address>` on its rows. The optimiser keys a market's assets by symbol (plans, balances,
    `swap_into` and the actions it returns name them so), and two assets under one name would be moved as one."""
    shared = _shared_symbols(positions)
    if shared.is_empty():
        return positions
    relabelled = pl.when(pl.col("symbol").is_in(shared.implode())).then(pl.col("symbol") + "@" + pl.col("asset"))
    return positions.with_columns(relabelled.otherwise(pl.col("symbol")).alias("symbol"))


def _shared_symbols(positions: pl.DataFrame) -> pl.Series:
    """The symbols two or more of the rows' assets carry."""
    assets = positions.group_by("symbol").agg(pl.col("asset").n_unique().alias("assets"))
    return assets.filter(pl.col("assets") > 1)["symbol"]


def _by_kinship(positions: pl.DataFrame, wallet: str) -> pl.DataFrame:
    """The market's rows, the wallet's own first, then other wallets' of its e-mode category (e-mode changes a
    reserve's parameters per wallet), then the rest, each in the book's order: the first row of an asset is where its
    parameters for this wallet come from, the same row every run."""
    is_own = pl.col("wallet") == wallet
    same_category = pl.lit(True)
    if "emode_category" in positions.columns:
        mine = positions.filter(is_own)["emode_category"].fill_null(0)
        category = int(mine[0]) if mine.len() else 0
        same_category = pl.col("emode_category").fill_null(0) == category
    return (
        positions.with_columns(is_own.alias("_own"), same_category.alias("_same"))
        .sort("_own", "_same", descending=True, maintain_order=True)
        .drop("_own", "_same")
    )


@dataclass(frozen=True)
class _Book:
    """One wallet's rows of a market, and the row each asset's parameters come from should the wallet take it up
    (the first of its asset in `_by_kinship` order): what every plan tried for that wallet starts from."""

    schema: pl.Schema
    own: tuple[dict[str, Any], ...]
    templates: dict[str, dict[str, Any]]


def _book(positions: pl.DataFrame, wallet: str) -> _Book:
    kin = _by_kinship(positions, wallet)
    templates = kin.unique("symbol", keep="first", maintain_order=True).to_dicts()
    return _Book(
        positions.schema,
        tuple(positions.filter(pl.col("wallet") == wallet).to_dicts()),
        {row["symbol"]: row for row in templates},
    )


def _applied(book: _Book, wallet: str, actions: Sequence[Action]) -> list[dict[str, Any]]:
    """The wallet's rows after `actions`, as `apply_plan` gives them (new dicts: the book is left as it was)."""
    collateral_delta: dict[str, int] = {}
    debt_delta: dict[str, int] = {}
    for action in actions:
        if action.kind == "add":
            collateral_delta[action.symbol] = collateral_delta.get(action.symbol, 0) + action.amount
        elif action.kind == "repay":
            debt_delta[action.symbol] = debt_delta.get(action.symbol, 0) - action.amount
        elif action.kind == "swap" and action.into is not None:
            collateral_delta[action.symbol] = collateral_delta.get(action.symbol, 0) - action.amount
            collateral_delta[action.into] = collateral_delta.get(action.into, 0) + action.received
        else:
            raise ValueError(f"unknown action {action.kind}")
    rows = [dict(row) for row in book.own]
    held = {row["symbol"] for row in rows}
    for symbol in sorted((set(collateral_delta) | set(debt_delta)) - held):
        template = book.templates.get(symbol)
        if template is None:
            raise ValueError(f"no row of the market holds the parameters of {symbol}")
        fresh = template | {"wallet": wallet, "collateral_amount": 0, "debt_amount": 0}
        rows.append(fresh | ({"supplied_amount": 0} if "supplied_amount" in fresh else {}))
    names = book.schema
    for row in rows:
        symbol = row["symbol"]
        if symbol not in collateral_delta and symbol not in debt_delta:
            continue
        row["collateral_amount"] = int(row["collateral_amount"]) + collateral_delta.get(symbol, 0)
        row["debt_amount"] = int(row["debt_amount"]) + debt_delta.get(symbol, 0)
        if "supplied_amount" in names:
            row["supplied_amount"] = int(row["supplied_amount"] or 0) + collateral_delta.get(symbol, 0)
        if "used_as_collateral" in names:
            row["used_as_collateral"] = row["collateral_amount"] > 0
        # Python integers: Morpho's 1e36 price scale overflows 128 bits in the product.
        unit = int(row["price_scale"]) if row.get("price_scale") is not None else 10 ** int(row["decimals"])
        if "collateral_base" in names:
            row["collateral_base"] = row["collateral_amount"] * int(row["price"]) // unit
        if "debt_base" in names:
            row["debt_base"] = row["debt_amount"] * int(row["price"]) // unit
    return rows


def apply_plan(positions: pl.DataFrame, wallet: str, actions: Sequence[Action]) -> pl.DataFrame:
    """The wallet's rows after `actions` (new rows for assets it did not hold, copied from the market's rows),
    with the exact base values recomputed where amounts changed."""
    _single_market(positions)
    return pl.DataFrame(_applied(_book(positions, wallet), wallet, actions), schema=positions.schema)


def _assets(book: _Book) -> dict[str, _Asset]:
    """Every asset of the market with the wallet's amounts; parameters from the wallet's own rows where it has them,
    else from the nearest other row of the same asset (_by_kinship)."""
    names = book.schema
    held = {row["symbol"] for row in book.own}
    # One base currency per market: a token without a USD price of its own (no decimals(), a reverting feed) is
    # costed at the rate another token of the market gives.
    market_rate = next(
        (r for r in (_usd_per_base(row, names) for row in book.templates.values()) if r is not None), None
    )
    assets: dict[str, _Asset] = {}
    for symbol, row in book.templates.items():
        own = symbol in held
        unit = int(row["price_scale"]) if row.get("price_scale") is not None else 10 ** int(row["decimals"])
        per_position = row.get("health_rule") == "per-position"
        if per_position and row.get("liquidation_threshold_wad") is not None:
            threshold = int(row["liquidation_threshold_wad"]) / WAD
        else:
            threshold = int(row["liquidation_threshold_bps"]) / BPS
        usd_per_base = _usd_per_base(row, names) or market_rate
        if usd_per_base is None:
            raise _Unpriced(f"no USD price for {symbol} nor any token of the market: plans cannot be costed")
        collateral = int(row["collateral_amount"]) if own else 0
        supplied = int(row.get("supplied_amount") or collateral) if own else 0
        # Supplying more of an asset whose collateral use is switched off adds nothing; a first supply enables it
        # (Aave: when its LTV is not zero).
        enabled = collateral > 0 or (supplied == 0 and int(row["ltv_bps"]) > 0)
        assets[symbol] = _Asset(
            symbol=symbol,
            price=int(row["price"]),
            unit=unit,
            threshold=threshold,
            usd_per_base=usd_per_base,
            collateral=collateral,
            debt=int(row["debt_amount"]) if own else 0,
            can_supply=threshold > 0 and enabled,
        )
    return assets


class _Unpriced(ValueError):
    """A market none of whose tokens has a USD price: a plan's costs cannot be compared."""


def _usd_per_base(row: Mapping[str, Any], names: pl.Schema) -> float | None:
    """USD per unit of the market's base currency from one row, or None where the row has no USD price."""
    if "base_currency_usd" in names and row["base_currency_usd"] is not None:
        return float(row["base_currency_usd"])
    if row.get("price_usd") is None or not row["price_usd"] or not int(row["price"]):
        return None
    per = round(int(row["price"]) / float(row["price_usd"]))
    return 1.0 / per if per else None


def _engine_health(rows: pl.DataFrame) -> float | None:
    health = stress(rows)
    value = health["health_factor"][0] if health.height else None
    return float(value) if value is not None else None


def _candidates(
    assets: dict[str, _Asset],
    balances: Mapping[str, int],
    target: float,
    swap_into: Sequence[str],
    slippage_bps: int,
    costs: ActionCosts,
) -> list[_Candidate]:
    out: list[_Candidate] = []
    keep = 1 - slippage_bps / BPS
    for symbol, asset in assets.items():
        if balances.get(symbol, 0) > 0 and asset.can_supply:
            out.append(_Candidate("add", symbol, None, asset.threshold, costs.add * asset.usd_per_base))
        if balances.get(symbol, 0) > 0 and asset.debt > 0:
            out.append(_Candidate("repay", symbol, None, target, costs.repay * asset.usd_per_base))
        if asset.collateral > 0:
            for into in swap_into:
                bought = assets.get(into)
                if into == symbol or bought is None or not bought.can_supply:
                    continue
                effect = keep * bought.threshold - asset.threshold
                if effect > 0:
                    out.append(_Candidate("swap", symbol, into, effect, costs.swap * asset.usd_per_base))
    return out


def _caps(assets: dict[str, _Asset], balances: Mapping[str, int], candidates: list[_Candidate]) -> list[float]:
    """Per candidate, the most base-currency value it can move on its own."""
    caps = []
    for c in candidates:
        asset = assets[c.symbol]
        if c.kind == "add":
            caps.append(float(asset.value(balances[c.symbol])))
        elif c.kind == "repay":
            caps.append(float(asset.value(min(balances[c.symbol], asset.debt))))
        else:
            caps.append(float(asset.value(asset.collateral)))
    return caps


def _solve(
    candidates: list[_Candidate], caps: list[float], deficit: float, debt: float
) -> tuple[np.ndarray | None, np.ndarray]:
    """Minimum-cost values moved (base currency) covering `deficit`, or None when out of reach; and the values
    moved by the plan that improves health the most. Variables are scaled by the debt so HiGHS sees numbers near 1."""
    # Imported here: scipy.optimize takes ~0.5 s to import, which every `risk` command and the dashboard's risk pages
    # paid at start though only `risk optimise` solves a program.
    from scipy.optimize import linprog

    n = len(candidates)
    if n == 0:
        return None, np.zeros(0)
    effect = np.array([c.effect for c in candidates])
    bounds = [(0.0, cap / debt) for cap in caps]
    # Add and repay of one asset draw on the same balance; swaps out of one asset on the same collateral.
    shared_rows: list[np.ndarray] = []
    shared_caps: list[float] = []
    for key in {(c.symbol, c.kind == "swap") for c in candidates}:
        members = [i for i, c in enumerate(candidates) if (c.symbol, c.kind == "swap") == key]
        if len(members) > 1:
            row = np.zeros(n)
            row[members] = 1.0
            shared_rows.append(row)
            shared_caps.append(max(caps[i] for i in members) / debt)
    best = linprog(
        -effect,
        A_ub=np.array(shared_rows) if shared_rows else None,
        b_ub=np.array(shared_caps) if shared_rows else None,
        bounds=bounds,
        method="highs",
    )
    most = np.asarray(best.x) if best.status == 0 else np.zeros(n)
    if float(effect @ most) < deficit / debt:
        return None, most * debt
    result = linprog(
        np.array([c.cost for c in candidates]) * debt,
        A_ub=np.vstack([-effect, *shared_rows]),
        b_ub=np.array([-deficit / debt, *shared_caps]),
        bounds=bounds,
        method="highs",
    )
    if result.status != 0:
        return None, most * debt
    return np.asarray(result.x) * debt, most * debt


def _to_action(c: _Candidate, amount: int, assets: dict[str, _Asset], slippage_bps: int, costs: ActionCosts) -> Action:
    asset = assets[c.symbol]
    usd = asset.value(amount) * asset.usd_per_base
    weight = {"add": costs.add, "repay": costs.repay, "swap": costs.swap}[c.kind]
    received = 0
    if c.into is not None:
        bought = assets[c.into]
        # The proceeds at oracle prices less slippage, floored to the bought token's base unit.
        received = (amount * asset.price * bought.unit * (BPS - slippage_bps)) // (asset.unit * bought.price * BPS)
    return Action(c.kind, c.symbol, amount, usd, usd * weight, c.into, received)


def _unit_cap(c: _Candidate, assets: dict[str, _Asset], balances: Mapping[str, int], others: list[Action]) -> int:
    """Most base units this action may take given the amounts the other actions already draw."""
    asset = assets[c.symbol]
    if c.kind == "swap":
        used = sum(a.amount for a in others if a.kind == "swap" and a.symbol == c.symbol)
        return max(asset.collateral - used, 0)
    used = sum(a.amount for a in others if a.kind in ("add", "repay") and a.symbol == c.symbol)
    room = balances.get(c.symbol, 0) - used
    return max(min(room, asset.debt) if c.kind == "repay" else room, 0)


def optimise_wallet(
    positions: pl.DataFrame,
    wallet: str,
    balances: Mapping[str, int],
    target: float,
    *,
    swap_into: Sequence[str] = (),
    slippage_bps: int = 30,
    costs: ActionCosts = ActionCosts(),
) -> Plan:
    """The cheapest plan bringing `wallet` to health factor >= `target` in the one market `positions` holds.

    `positions` are rows of the positions contract for one market and block (other wallets' rows only lend their
    parameters to assets the wallet does not hold yet; a symbol two of its assets share is refused: see
    distinct_symbols); `balances` are the wallet's token holdings by symbol in base units; `swap_into` names the
    collateral assets a swap may buy (e.g. the market's stablecoins).
    """
    _single_market(positions)
    if not _shared_symbols(positions).is_empty():
        raise ValueError("two assets of the market share a symbol: pass the rows through distinct_symbols first")
    book = _book(positions, wallet)
    if not book.own:
        raise ValueError(f"wallet {wallet} holds no position in this market")
    before = _engine_health(pl.DataFrame(book.own, schema=book.schema))
    if before is None or before >= target:
        return Plan(wallet, target, True, "already at or above the target", before, before, 0.0)
    try:
        assets = _assets(book)
    except _Unpriced as exc:
        return Plan(wallet, target, False, str(exc), before, before, 0.0)
    debt = float(sum(a.value(a.debt) for a in assets.values()))
    weighted = sum(a.value(a.collateral) * a.threshold for a in assets.values())
    deficit = target * debt - weighted
    candidates = _candidates(assets, balances, target, swap_into, slippage_bps, costs)
    caps = _caps(assets, balances, candidates)
    moved, most = _solve(candidates, caps, deficit, debt)
    if moved is None:
        # Repaying lowers the debt; everything else raises the threshold-weighted collateral.
        repaid = sum(float(x) for c, x in zip(candidates, most, strict=True) if c.kind == "repay")
        raised = sum(c.effect * float(x) for c, x in zip(candidates, most, strict=True) if c.kind != "repay")
        best = (weighted + raised) / (debt - repaid) if debt > repaid else float("inf")
        return Plan(
            wallet,
            target,
            False,
            f"infeasible: the balances and collateral given reach health {best:.6f} at most, short of {target}",
            before,
            None,
            0.0,
        )
    for margin in _MARGINS:
        if margin > 0:
            moved, _ = _solve(candidates, caps, deficit + margin * target * debt, debt)
            if moved is None:
                break
        actions = _rounded_plan(book, wallet, candidates, moved, caps, assets, balances, target, slippage_bps, costs)
        if actions is not None:
            break
    else:
        actions = None
    if actions is None:
        return Plan(
            wallet,
            target,
            False,
            "infeasible: rounding to whole base units leaves the target unreached",
            before,
            None,
            0.0,
        )
    plan = tuple(a for a in actions if a.amount > 0)
    after = _engine_health(pl.DataFrame(_applied(book, wallet, plan), schema=book.schema))
    cost = sum(a.cost_usd for a in plan)
    summary = ", ".join(f"{a.kind} {a.symbol}" + (f" into {a.into}" if a.into else "") for a in plan)
    return Plan(wallet, target, True, summary, before, after, cost, plan)


def _rounded_plan(
    book: _Book,
    wallet: str,
    candidates: list[_Candidate],
    moved: np.ndarray,
    caps: list[float],
    assets: dict[str, _Asset],
    balances: Mapping[str, int],
    target: float,
    slippage_bps: int,
    costs: ActionCosts,
) -> list[Action] | None:
    """The LP's values moved as token amounts, the binding action cut to its smallest amount reaching the target
    under the engine; None if no action left inside its bounds can make up what rounding lost."""
    chosen = [i for i in range(len(candidates)) if moved[i] > 0]
    actions: dict[int, Action] = {}
    for i in chosen:
        c = candidates[i]
        room = _unit_cap(c, assets, balances, list(actions.values()))
        # At its bound the LP means all of it; float round-off must not leave a few base units behind.
        at_bound = moved[i] >= caps[i] * (1 - 1e-12)
        units = room if at_bound else min(assets[c.symbol].units_for(float(moved[i])), room)
        actions[i] = _to_action(c, units, assets, slippage_bps, costs)
    # The binding action is one the LP left inside its bounds (one, unless a shared balance also binds).
    inside = [i for i in chosen if moved[i] < caps[i] * (1 - 1e-9)] or chosen[::-1]
    for i in inside:
        others = [a for j, a in actions.items() if j != i]
        found = _smallest_amount(book, wallet, candidates[i], assets, balances, others, target, slippage_bps, costs)
        if found is not None:
            actions[i] = found
            return [a for _, a in sorted(actions.items())]
    return None


def _smallest_amount(
    book: _Book,
    wallet: str,
    candidate: _Candidate,
    assets: dict[str, _Asset],
    balances: Mapping[str, int],
    others: list[Action],
    target: float,
    slippage_bps: int,
    costs: ActionCosts,
) -> Action | None:
    """The action with the fewest base units that, with `others`, gives engine HF >= target; None if even all of
    its room falls short. A k-ary search: each engine pass scores a batch of amounts as separate wallets, built from
    the wallet's `book` (a market's whole frame is neither filtered nor sorted again per amount tried)."""

    def reaches(amounts: list[int]) -> list[bool]:
        rows = []
        for k, amount in enumerate(amounts):
            action = _to_action(candidate, amount, assets, slippage_bps, costs)
            for row in _applied(book, wallet, [*others, action]):
                row["wallet"] = f"{wallet}#{k}"
                rows.append(row)
        health = wallet_health(value_positions(pl.DataFrame(rows, schema=book.schema))).collect()
        by_wallet = dict(zip(health["wallet"], health["health_factor"], strict=True))
        return [(h := by_wallet[f"{wallet}#{k}"]) is None or h >= target for k in range(len(amounts))]

    high = _unit_cap(candidate, assets, balances, others)
    at_zero, at_high = reaches([0, high])
    if not at_high:
        return None
    low = 0  # invariant: `high` reaches the target; amounts <= `low` that were tried do not (or low == 0)
    if at_zero:
        return _to_action(candidate, 0, assets, slippage_bps, costs)
    while high - low > 1:
        points = sorted({low + (high - low) * k // (_SEARCH_POINTS + 1) for k in range(1, _SEARCH_POINTS + 1)} - {low})
        verdicts = reaches(points)
        passing = [p for p, ok in zip(points, verdicts, strict=True) if ok]
        failing = [p for p, ok in zip(points, verdicts, strict=True) if not ok]
        new_high = min(passing, default=high)
        low = max((p for p in failing if p < new_high), default=low)
        high = new_high
    return _to_action(candidate, high, assets, slippage_bps, costs)


def with_threshold_shift(positions: pl.DataFrame, symbol: str, shift_bps: int) -> pl.DataFrame:
    """Positions with `symbol`'s liquidation threshold moved by `shift_bps` (within 0..100 %) where it is collateral."""
    hit = (pl.col("symbol") == symbol) & (pl.col("liquidation_threshold_bps") > 0)
    shifted = positions.with_columns(
        pl.when(hit)
        .then((pl.col("liquidation_threshold_bps") + shift_bps).clip(0, BPS))
        .otherwise(pl.col("liquidation_threshold_bps"))
        .alias("liquidation_threshold_bps")
    )
    if "liquidation_threshold_wad" in positions.columns:
        # The threshold moves, whatever the column holds it as (a collateral ratio moves the other way: Liquity's
        # MCR 1.1 is a 90.9 % threshold, and +100 bps of it an MCR of 1.088).
        wad = pl.col("liquidation_threshold_wad").cast(pl.Int128)
        moved = (threshold_of_wad(positions.columns) + shift_bps * (WAD // BPS)).clip(0, WAD)
        shifted = shifted.with_columns(
            pl.when(hit & (wad > 0))
            .then(wad_of_threshold(moved, positions.columns))
            .otherwise(wad)
            .alias("liquidation_threshold_wad")
        )
    return shifted


def threshold_sensitivity(
    positions: pl.DataFrame,
    shifts_bps: Sequence[int] = (-100, -50, 50, 100),
    levels: Mapping[tuple[str, int, str, str], float] | None = None,
    graph: AssetGraph | None = None,
) -> pl.DataFrame:
    """Per market, collateral asset and threshold shift (0 is the baseline): liquidatable wallets, their collateral
    and debt, the debt liquidators may repay, and bad debt (which depends on prices and bonuses only, so a
    threshold move leaves it unchanged at given prices), with each figure's change from the baseline.

    At the snapshot's prices a healthy book shows no change at all; `levels` ((protocol, chain_id, market, symbol)
    -> a fall of the symbol's base, e.g. 0.15 for -15 %, as `chainrisk.risk.distance` picks it) reads each market
    and collateral at those prices instead, every asset resting on that base moved with it through `graph`."""
    keys = list(MARKET_KEY)
    assets = graph or AssetGraph()
    symbols = sorted(set(positions.filter(pl.col("collateral_amount").cast(pl.Int128) > 0)["symbol"].to_list()))
    held = positions["symbol"].drop_nulls().unique().to_list()
    markets = positions.select(keys).unique().sort(keys).rows()
    frames: list[pl.DataFrame] = []

    def summary(frame: pl.DataFrame, symbol: str, shift: int, moves: pl.DataFrame | None) -> pl.DataFrame:
        health = stress(frame, moves)
        hit = pl.col("liquidatable")
        return health.group_by(keys).agg(
            pl.lit(symbol).alias("symbol"),
            pl.lit(shift).alias("shift_bps"),
            hit.sum().cast(pl.Int64).alias("liquidatable_wallets"),
            pl.when(hit).then(pl.col("collateral_usd")).otherwise(0.0).sum().alias("liquidatable_collateral_usd"),
            pl.when(hit).then(pl.col("debt_usd")).otherwise(0.0).sum().alias("liquidatable_wallet_debt_usd"),
            pl.col("liquidatable_debt_usd").sum(),
            pl.col("bad_debt_usd").sum(),
        )

    for symbol in symbols:
        # Markets read at the same fall share one engine pass per shift.
        by_level: dict[float, list[tuple[Any, ...]]] = {}
        for market in markets:
            by_level.setdefault((levels or {}).get((*market, symbol), 0.0), []).append(market)
        for level, members in sorted(by_level.items()):
            part = (
                positions
                if len(members) == len(markets)
                else positions.join(
                    pl.DataFrame(members, schema=positions.select(keys).schema, orient="row"), on=keys, how="semi"
                )
            )
            moves = assets.multiplier_frame({assets.base(symbol): 1.0 - level}, held) if level > 0 else None
            for shift in sorted({0, *shifts_bps}):
                frames.append(
                    summary(with_threshold_shift(part, symbol, shift) if shift else part, symbol, shift, moves)
                )
    if not frames:
        return pl.DataFrame()
    result = pl.concat(frames)
    metrics = [c for c in result.columns if c.endswith("_usd") or c == "liquidatable_wallets"]
    base = result.filter(pl.col("shift_bps") == 0).select(*keys, "symbol", *(pl.col(m).alias(f"_{m}") for m in metrics))
    return (
        result.join(base, on=[*keys, "symbol"])
        .with_columns((pl.col(m) - pl.col(f"_{m}")).alias(f"{m}_change") for m in metrics)
        .select(pl.exclude("^_.*$"))
        .sort([*keys, "symbol", "shift_bps"])
    )
