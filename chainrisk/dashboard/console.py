"""SQL console page: read-only SQL over the published database, with the views analysts can use and examples."""

from __future__ import annotations

import streamlit as st

from chainrisk.dashboard.data import database_location, reader
from chainrisk.errors import UserError
from chainrisk.store.console import run_console_query
from chainrisk.store.views import list_queries

#: Example queries offered in the console, by title.
EXAMPLES = {
    "Weakest borrowers": """SELECT wallet, worst_health_factor, debt_usd, protocols_text, worst_market_label
FROM mart_wallet_portfolio
WHERE worst_health_factor IS NOT NULL
ORDER BY worst_health_factor
LIMIT 20""",
    "Markets": "SELECT * FROM mart_market_summary ORDER BY debt_usd DESC",
    "Exposure by asset": """SELECT protocol, symbol, supplied_usd, collateral_usd, debt_usd, borrowers
FROM mart_exposure_by_asset
ORDER BY debt_usd DESC""",
    "Debt concentration": """SELECT protocol, market_label, borrowers, debt_usd, top1_share, top10_share, hhi
FROM mart_concentration
ORDER BY hhi DESC NULLS LAST""",
    "Collateral at risk as all non-stable prices drop": """SELECT chain_id, drop_pct, liquidatable_collateral_usd,
       liquidatable_debt_usd, bad_debt_usd, liquidatable_wallets
FROM mart_liquidation_curve
WHERE market = 'all' AND axis_kind = 'all_crypto'
ORDER BY chain_id, drop_pct""",
    "Positions within 10 % of liquidation": """SELECT protocol, market_label, wallet, symbol, health_factor,
       liquidated_when_price, liquidation_price_usd, liquidation_price_change_pct
FROM mart_at_risk_positions
WHERE abs(liquidation_price_change_pct) < 10
ORDER BY health_factor""",
}
SQL_KEY, RESULT_KEY = "console_sql", "console_result"


def _use_example() -> None:
    st.session_state[SQL_KEY] = EXAMPLES[st.session_state["console_example"]]


def render() -> None:
    db = database_location()
    reader(db)  # no database: the note on what to run, before any widget
    if SQL_KEY not in st.session_state:
        st.session_state[SQL_KEY] = next(iter(EXAMPLES.values()))
    left, right = st.columns([3, 2])
    with left:
        st.selectbox("Example", list(EXAMPLES), key="console_example", on_change=_use_example)
        sql = st.text_area("SQL: one SELECT (or EXPLAIN SELECT), read-only", key=SQL_KEY, height=220)
        if st.button("Run", type="primary", key="console_run"):
            try:
                with st.spinner("Running ..."):
                    st.session_state[RESULT_KEY] = (sql, run_console_query(db, sql))
            except UserError as exc:
                st.session_state.pop(RESULT_KEY, None)
                st.error(str(exc).splitlines()[0] if str(exc) else "the query failed")
        if RESULT_KEY in st.session_state:
            ran, result = st.session_state[RESULT_KEY]
            note = f"{result.frame.height:,} rows in {result.seconds:.2f} s"
            if result.truncated:
                note += f" (truncated: only the first {result.frame.height:,} rows are kept; add a LIMIT or aggregate)"
            if ran != sql:
                note += " · edited since it ran; press Run again"
            st.caption(note)
            st.dataframe(result.frame, hide_index=True, key="console_table", placeholder="NULL")
            st.download_button("Download as CSV", result.frame.write_csv(), "query.csv", "text/csv")
    with right:
        st.markdown("**Views**")
        st.caption("`mart_*`: what people read; `stg_*`: one cleaned layer over the tables the jobs write.")
        queries = sorted(list_queries(), key=lambda q: (q.layer != "mart", q.name))
        # A list, not a table: the descriptions wrap in the narrow column instead of scrolling sideways.
        with st.container(height=560, key="console_views"):
            st.markdown("\n".join(f"- `{q.name}`: {q.description}" for q in queries))
