"""Risk models page: the latest `chainrisk risk stress|var|optimise|cascade` run of each kind, for risk stewards.

One module per section (replay, var with its parameters, optimise, cascade), each reading risk_runs' result tables
keyed by its run_id; `runs` picks the runs and names them. This module only lays out the tabs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from chainrisk.dashboard.data import database_location
from chainrisk.dashboard.risk import cascade, optimise, replay, var
from chainrisk.dashboard.risk.optimise import tokens_text
from chainrisk.dashboard.risk.replay import WALLETS_SHOWN
from chainrisk.dashboard.risk.runs import KINDS, latest_runs, no_run_hint, run_caption

__all__ = ["KINDS", "WALLETS_SHOWN", "no_run_hint", "render", "tokens_text"]

#: Each kind's section of the page, in tab order.
SECTIONS: dict[str, Callable[[Path, Mapping[str, Any]], None]] = {
    "stress": replay.section,
    "var": var.section,
    "optimise": optimise.section,
    "cascade": cascade.section,
}


def render() -> None:
    db = database_location()
    with st.spinner("Reading the latest risk runs ..."):
        runs = latest_runs(db)
    if not runs:
        st.info(no_run_hint(db))
        return
    st.caption(
        "The latest run of each risk model (`chainrisk risk stress|var|optimise|cascade`), on the positions of the "
        "block it names. Amounts are in USD at the snapshot's oracle prices unless a column says token units."
    )
    tabs = st.tabs(["Historical replays", "VaR / ES", "Optimisation", "Cascade"])
    for tab, kind in zip(tabs, KINDS, strict=True):
        with tab:
            run = runs.get(kind)
            if run is None:
                st.info(no_run_hint(db, kind))
                continue
            st.caption(run_caption(run))
            SECTIONS[kind](db, run)
