"""chainrisk: exact, cross-protocol risk analysis of on-chain lending positions."""

import sys as _sys

__version__ = "0.1.0"

# httpx's package imports its command-line tool (httpx._main: rich, pygments, click) whenever they are installed, as
# they are beside streamlit: ~80 ms of every chainrisk process's start for a tool chainrisk never runs. A None entry
# makes that import fail, and httpx then defines its `main` as a stub (httpx/__init__.py); nothing else changes.
_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
