"""Read access for the dashboard: cached, parameterised queries on the published read-only copy of the database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl
import polars.selectors as cs
import streamlit as st

from chainrisk.errors import UserError
from chainrisk.store.published import connect_reader, reader_path

#: Seconds a result is reused. A new publish changes the reader path, which is part of every cache key, so fresh
#: scores show at once; the TTL only bounds memory and picks up a main file rewritten without publishing.
CACHE_SECONDS = 300


class NoData(Exception):
    """Nothing to show yet and what to run to fix it: pages show it as a note (st.info), not as an error."""


def database_location() -> Path:
    """CHAINRISK_DB, else chainrisk.duckdb in the working directory."""
    return Path(os.environ.get("CHAINRISK_DB", "chainrisk.duckdb"))


def reader(db: Path) -> str:
    """The file readers open now (the published snapshot): the cache key of every query on `db`."""
    try:
        return str(reader_path(db))
    except UserError as exc:
        hint = "" if db.is_file() else " (or `make demo`), or point CHAINRISK_DB at one"
        raise NoData(f"Nothing to show yet: {exc}{hint}.") from None


@st.cache_data(ttl=CACHE_SECONDS, max_entries=512, show_spinner=False)
def _cached_query(db: str, reader_file: str, sql: str, params: tuple[Any, ...]) -> pl.DataFrame:
    """`reader_file` is only the cache key. The connection is closed at once rather than kept in
    st.cache_resource: a connection held per session would keep pruned copies alive on disk."""
    con = connect_reader(Path(db))
    try:
        frame = pl.from_arrow(con.sql(sql, params=list(params)).to_arrow_table())
    finally:
        con.close()
    assert isinstance(frame, pl.DataFrame)
    # DuckDB hands TIMESTAMPTZ over in the session's zone; the dashboard shows every time in UTC.
    return frame.with_columns(cs.datetime(time_zone="*").dt.convert_time_zone("UTC"))


def query(db: Path, sql: str, *params: Any) -> pl.DataFrame:
    """A query's whole result as a polars frame (cached per published snapshot); `params` bind the `?`s."""
    reader_file = reader(db)
    try:
        return _cached_query(str(db), reader_file, sql, tuple(params))
    except UserError as exc:
        if reader_file == str(db):
            # The first run is still writing the only file there is: nothing to show yet, not an error.
            raise NoData(
                f"{db} is being written by a chainrisk job and has no published snapshot yet; "
                "this page shows it as soon as the job finishes (reload)."
            ) from None
        raise exc


def missing_relations(db: Path, names: tuple[str, ...]) -> list[str]:
    """Which of the tables or views `names` the database lacks."""
    present = query(db, "SELECT table_name FROM information_schema.tables WHERE table_name = ANY(?)", list(names))
    found = set(present["table_name"].to_list())
    return [name for name in names if name not in found]


def has_column(db: Path, table: str, column: str) -> bool:
    """Whether `table` has `column` (a snapshot published before the schema gained it has not)."""
    found = query(
        db,
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
        table,
        column,
    )
    return bool(found["n"][0])


def require(db: Path, *names: str) -> None:
    """Raises NoData naming what to run when the database lacks any of `names` (a file from an older chainrisk)."""
    missing = missing_relations(db, names)
    if missing:
        raise NoData(
            f"This database has no {', '.join(missing)} yet (it was written by an older chainrisk or never scored): "
            "run `chainrisk score` again to install the views this page reads."
        )
