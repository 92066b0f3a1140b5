"""The dashboard's data-quality note: the markets whose latest snapshot met odd contracts that left something unknown
(data_quality, at each indexed source's latest snapshot, named as stg_market_labels names them)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from chainrisk.dashboard.data import missing_relations, query
from chainrisk.dashboard.ui import PROTOCOL_NAMES

#: Markets listed in the note at most; how many there are in all is said.
NOTE_LIMIT = 50


def markets_with_unknowns(db: Path) -> pl.DataFrame:
    """One row per market with unknowns at its source's latest snapshot: its label, the kinds of problem met and
    what they left unknown."""
    if missing_relations(db, ("data_quality", "stg_market_labels")):
        return pl.DataFrame()  # a file from before data_quality: nothing recorded, nothing to say
    return query(
        db,
        """
        WITH latest AS (
            SELECT q.* FROM data_quality q JOIN sync_state s
              ON q.protocol = s.protocol AND q.chain_id = s.chain_id AND q.source = s.market
             AND q.block_number = s.snapshot_block
            WHERE q.unknown IS NOT NULL
        )
        SELECT q.protocol, q.chain_id, q.market, coalesce(any_value(l.market_label), q.market) AS market_label,
               string_agg(DISTINCT q.kind, ', ' ORDER BY q.kind) AS problems,
               string_agg(DISTINCT q.unknown, '; ' ORDER BY q.unknown) AS unknown
        FROM latest q LEFT JOIN stg_market_labels l
          ON q.protocol = l.protocol AND q.chain_id = l.chain_id AND q.market = l.market
        GROUP BY q.protocol, q.chain_id, q.market
        ORDER BY q.protocol, q.chain_id, market_label
        """,
    )


def render_note(db: Path) -> None:
    """A short warning naming the markets with unknowns (nothing when there are none)."""
    found = markets_with_unknowns(db)
    if found.is_empty():
        return
    st.warning(
        f"Data quality: {found.height} market(s) met odd contracts (a token without decimals(), an oracle that "
        "reverts, ...): their USD figures, or the health of some wallets, are unknown and left out of the totals."
    )
    with st.expander("Markets with unknowns"):
        lines = [
            f"- {PROTOCOL_NAMES.get(r['protocol'], r['protocol'])} · {r['market_label']} (chain {r['chain_id']}): "
            f"`{'`, `'.join(str(r['problems']).split(', '))}`; unknown: {r['unknown']}"
            for r in found.head(NOTE_LIMIT).iter_rows(named=True)
        ]
        if found.height > NOTE_LIMIT:
            lines.append(f"- ... and {found.height - NOTE_LIMIT} more (SELECT * FROM data_quality)")
        st.markdown("\n".join(lines))
