"""chainrisk dashboard: `streamlit run app.py`. The pages live in chainrisk.dashboard (registry: its pages module)."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="chainrisk", layout="wide")

try:
    from chainrisk.dashboard.pages import render

    render()
except Exception as exc:  # the dashboard never shows a traceback
    st.error(f"Something went wrong while drawing the dashboard: {type(exc).__name__}: {str(exc)[:300]}")
