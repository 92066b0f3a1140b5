"""Borrow rate curves on the Markets page: the rate a pool's interest rate model charges at every utilization, by the
protocol's own formula on the model's stored parameters (exact integers, turned to percent a year only to draw), with
the pool's point now and, where governance changed the model, the curve before its latest change (dashed).

* Aave V3: the reserve's interest rate strategy's curve (maths.variable_borrow_rate, ray a year);
* Compound V3: the Comet's borrow rate model (maths.borrow_rate, per second, 1e18 = 100 %);
* Morpho Blue under an AdaptiveCurveIrm: the curve at the market's rate at target (irm.curve_rate, per second, WAD),
  which moves with time while utilization is off its 90 % target; no governance changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from chainrisk.dashboard.data import missing_relations, query
from chainrisk.dashboard.governance import CHANGES
from chainrisk.protocols.aave_v3.maths import variable_borrow_rate
from chainrisk.protocols.compound_v3.maths import RateModel, borrow_rate
from chainrisk.protocols.morpho_blue.irm import YEAR, curve_rate
from chainrisk.units import RAY, WAD

#: Utilization points of a drawn curve, percent (each model's kink added to them).
POINTS = tuple(range(101))
#: The Aave curve's settings (raw_aave_v3_reserves' columns, ray), in variable_borrow_rate's order.
AAVE_CURVE = ("optimal_usage_ratio", "base_variable_borrow_rate", "variable_rate_slope1", "variable_rate_slope2")
#: The Comet borrow rate model's settings (raw_compound_v3_markets' columns, 1e18 = 100 %).
COMET_CURVE = ("borrow_kink", "borrow_base", "borrow_slope_low", "borrow_slope_high")
COLUMNS = {"curve": pl.String, "utilization_pct": pl.Float64, "borrow_apr_pct": pl.Float64}


def known(row: dict[str, Any], columns: Sequence[str]) -> dict[str, int] | None:
    """`row`'s `columns` as exact integers (the reader gives HUGEINT as int or Decimal); None where one is unknown."""
    if any(row.get(c) is None for c in columns):
        return None
    return {c: int(row[c]) for c in columns}


def _previous(
    db: Path, protocol: str, row: dict[str, Any], item: str, columns: Sequence[str]
) -> tuple[str, dict[str, int]]:
    """The settings among `columns` governance changed at its latest change of any of them (mart_parameter_changes),
    with their old values, and when ('' and {} where none did)."""
    if missing_relations(db, (CHANGES,)):
        return "", {}
    changes = query(
        db,
        f"""
        SELECT parameter, old_value, changed_by_time FROM {CHANGES}
        WHERE protocol = ? AND change = 'changed' AND chain_id = ? AND market = ? AND item = ?
          AND list_contains(?, parameter)
        QUALIFY changed_by_block = max(changed_by_block) OVER ()
        """,
        protocol,
        int(row["chain_id"]),
        row["market"],
        item,
        list(columns),
    )
    if changes.is_empty():
        return "", {}
    when = changes["changed_by_time"][0]
    label = f"before {when:%Y-%m-%d %H:%M} UTC" if when is not None else "before"
    return label, {r["parameter"]: int(r["old_value"]) for r in changes.iter_rows(named=True)}


def _points(curves: dict[str, Callable[[float], float]], kinks: Sequence[float]) -> pl.DataFrame:
    """Each curve (a function of utilization in percent to an APR in percent) at POINTS and the kinks; empty (with
    the columns) for none."""
    utilizations = sorted({*map(float, POINTS), *(k for k in kinks if 0 <= k <= 100)})
    rows = [(name, u, rate(u)) for name, rate in curves.items() for u in utilizations]
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


def _governed(
    db: Path, protocol: str, pool: dict[str, Any], item: str, columns: Sequence[str]
) -> dict[str, dict[str, int]]:
    """A pool's model settings `columns`: "now", and where governance changed some of them the settings before its
    latest change ("before <time>"); none where one is unknown."""
    now = known(pool, columns)
    if now is None:
        return {}
    label, old = _previous(db, protocol, pool, item, columns)
    return {"now": now, label: now | old} if old else {"now": now}


def aave_curves(db: Path, reserve: dict[str, Any]) -> pl.DataFrame:
    """A reserve's variable borrow APR (%) at each utilization: "now", and where governance changed its curve the
    curve before its latest change ("before <time>"). Empty where the curve is unknown."""
    settings = _governed(db, "aave-v3", reserve, reserve["asset"], AAVE_CURVE)

    def rate(values: dict[str, int]) -> Callable[[float], float]:
        curve = (values[AAVE_CURVE[0]], values[AAVE_CURVE[1]], values[AAVE_CURVE[2]], values[AAVE_CURVE[3]])
        return lambda u: variable_borrow_rate(curve, min(RAY, round(u / 100 * RAY))) / RAY * 100

    return _points({k: rate(v) for k, v in settings.items()}, [v[AAVE_CURVE[0]] / RAY * 100 for v in settings.values()])


def comet_curves(db: Path, comet: dict[str, Any]) -> pl.DataFrame:
    """A Comet's borrow APR (%) at each utilization (Comet.getBorrowRate x a year): "now", and where governance changed
    its borrow rate model (an upgrade) the model before its latest change. Empty where the model is unknown."""
    settings = _governed(db, "compound-v3", comet, comet["market"], COMET_CURVE)

    def rate(values: dict[str, int]) -> Callable[[float], float]:
        model = RateModel(0, 0, 0, 0, **values)  # the supply side unread: the curve is the borrow rate
        return lambda u: borrow_rate(model, min(WAD, round(u / 100 * WAD))) * YEAR / WAD * 100

    return _points({k: rate(v) for k, v in settings.items()}, [v["borrow_kink"] / WAD * 100 for v in settings.values()])


def _morpho_apr(target: int, utilization_pct: float) -> float:
    return curve_rate(target, min(WAD, round(utilization_pct / 100 * WAD))) * YEAR / WAD * 100


def morpho_curve(market: dict[str, Any]) -> pl.DataFrame:
    """A Morpho market's borrow APR (%) at each utilization under its AdaptiveCurveIrm, at its rate at target adapted
    to the snapshot (`rate_at_target_now`); empty for another IRM."""
    if market.get("rate_at_target_now") is None:
        return pl.DataFrame(schema=COLUMNS)
    target = int(market["rate_at_target_now"])
    return _points({"now": lambda u: _morpho_apr(target, u)}, [90.0])


def chart(curves: pl.DataFrame, utilization_pct: float | None, apr_pct: float | None) -> alt.LayerChart | alt.Chart:
    """The curves (dashed: any but "now") and the pool's point now."""
    line: alt.Chart = (
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("utilization_pct:Q", title="utilization (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("borrow_apr_pct:Q", title="borrow APR (%)"),
            # A legend only beside a curve before a change, under the chart so its date is not cut.
            strokeDash=alt.StrokeDash(
                "curve:N",
                title=None,
                sort="descending",
                legend=alt.Legend(orient="bottom", labelLimit=0) if curves["curve"].n_unique() > 1 else None,
            ),
            tooltip=[
                "curve",
                alt.Tooltip("utilization_pct:Q", title="utilization (%)", format=".1f"),
                alt.Tooltip("borrow_apr_pct:Q", title="APR (%)", format=".2f"),
            ],
        )
    )
    if utilization_pct is None or apr_pct is None:
        return line
    here = pl.DataFrame(
        {"utilization_pct": [utilization_pct], "borrow_apr_pct": [apr_pct]},
        schema={"utilization_pct": pl.Float64, "borrow_apr_pct": pl.Float64},
    )
    point: alt.Chart = (
        alt.Chart(here)
        .mark_point(filled=True, size=80, color="#d62728")
        .encode(
            x="utilization_pct:Q",
            y="borrow_apr_pct:Q",
            tooltip=[
                alt.Tooltip("utilization_pct:Q", title="utilization now (%)", format=".2f"),
                alt.Tooltip("borrow_apr_pct:Q", title="APR now (%)", format=".2f"),
            ],
        )
    )
    return alt.LayerChart(layer=[line, point])


def show(
    pools: pl.DataFrame,
    key: str,
    label: str,
    curves_of: Callable[[dict[str, Any]], pl.DataFrame],
    now: tuple[str, str],
    caption: Callable[[dict[str, Any]], str],
) -> None:
    """A selectbox of `pools` (rows with a `name`) and the chosen one's curves, its point now at columns `now`
    (utilization %, APR %), and `caption` of it."""
    if pools.is_empty():
        return
    names = pools["name"].to_list()
    chosen = st.selectbox(label, names, key=key)
    pool = pools.row(names.index(chosen) if chosen in names else 0, named=True)
    curves = curves_of(pool)
    if curves.is_empty():
        return
    st.altair_chart(chart(curves, pool[now[0]], pool[now[1]]), width="stretch")
    st.caption(caption(pool))
