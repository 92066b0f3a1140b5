"""The dashboard's pages and the sidebar that picks one, kept in step with the `?page=` URL parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from chainrisk.dashboard import (
    chains,
    console,
    credit,
    devnet,
    liquidations,
    markets_page,
    overview,
    positions,
    risk,
    runs,
    wallet,
)
from chainrisk.dashboard.ui import run_guarded


@dataclass(frozen=True)
class Page:
    slug: str  #: the `?page=` value
    title: str  #: shown in the sidebar and as the heading
    render: Callable[[], None]  #: draws the page


#: In sidebar order; the first is the default. A new page is a module with a render() and one line here.
PAGES = (
    Page("overview", "Overview", overview.render),
    Page("markets", "Markets", markets_page.render),
    Page("positions", "At-risk positions", positions.render),
    Page("liquidations", "Liquidations", liquidations.render),
    Page("wallet", "Wallet", wallet.render),
    Page("risk", "Risk models", risk.render),
    Page("chains", "Collateral chains", chains.render),
    Page("credit", "Credit scores", credit.render),
    Page("sql", "SQL console", console.render),
    Page("runs", "Runs & alerts", runs.render),
    Page("devnet", "Devnet", devnet.render),
)
PAGE_KEY = "page"


def _page_from_url() -> str | None:
    """Before the first draw of a session, the radio starts at the page the URL names. Returns the URL's page name
    when no page has it (the radio then starts at the first page, and the caller says so)."""
    slugs = [p.slug for p in PAGES]
    if PAGE_KEY in st.session_state:
        return None
    wanted = st.query_params.get(PAGE_KEY, slugs[0])
    st.session_state[PAGE_KEY] = wanted if wanted in slugs else slugs[0]
    return None if wanted in slugs else wanted


def unknown_page_message(wanted: str) -> str:
    """One line naming the unknown page, every page there is, and what is shown instead."""
    known = ", ".join(p.slug for p in PAGES)
    return f"No page named {wanted!r}; pages: {known}. Showing the {PAGES[0].title} instead."


def render() -> None:
    """Sidebar navigation, then the chosen page, guarded so that a failure is one line, not a traceback."""
    by_slug = {p.slug: p for p in PAGES}
    unknown = _page_from_url()
    with st.sidebar:
        st.title("chainrisk")
        st.caption("Exact, cross-protocol risk for on-chain lending.")
        slug = st.radio("Page", list(by_slug), format_func=lambda s: by_slug[s].title, key=PAGE_KEY)
    st.query_params[PAGE_KEY] = slug
    page = by_slug[slug]
    st.title(page.title)
    if unknown is not None:
        st.warning(unknown_page_message(unknown))
    run_guarded(page.render)
