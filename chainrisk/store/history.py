"""The bucketed health history: folds health samples into their buckets (wallet_health_buckets, keyed by the number
wallet_health_keys gives each protocol, chain, market and wallet; readers read the view wallet_health_history over
the two) and downsamples hourly buckets older than the hourly window to days. Reads and writes both tables, SQL on a
connection the caller holds a transaction on."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from chainrisk.errors import UserError
from chainrisk.store import ledger
from chainrisk.store.exact import registered
from chainrisk.store.parquet import literal, quote, write_exact
from chainrisk.store.schema.history import DECODE, ENCODE, market_buckets
from chainrisk.units import DAY_S

log = logging.getLogger("chainrisk.store")

HOUR_S = 3600
#: [storage] hot_days by default: finished days older than three days before the newest sample's are cold.
DEFAULT_HOT_DAYS = 3
#: Columns a health sample carries (a wallet_risk row has them all; a credit sample lacks health_factor_wad).
SAMPLE_COLUMNS = (
    *("protocol", "chain_id", "market", "wallet", "block_number", "block_timestamp"),
    *("health_factor", "health_factor_wad", "collateral_usd", "debt_usd", "borrowing_power_usd", "bad_debt_usd"),
    *("liquidation_threshold_bps", "ltv_bps", "liquidatable"),
)
#: The last sample's figures a bucket keeps.
LAST_COLUMNS = SAMPLE_COLUMNS[6:]
#: A bucket's key as readers see it (the view wallet_health_history).
KEY = ("protocol", "chain_id", "market", "wallet", "bucket_start")
#: What wallet_health_keys numbers.
HEALTH_KEY = KEY[:-1]
#: A bucket's key as stored (wallet_health_buckets; its chain_id is the key's).
BUCKET_KEY = ("key_id", "bucket_start")
#: The table the buckets are stored in, as the ledger and the publisher name it (its writers keep its ledger).
BUCKETS = "main.wallet_health_buckets"
#: wallet_health_keys' columns that wallet_health_buckets does not repeat.
KEY_ONLY = ("protocol", "market", "wallet")


@dataclass(frozen=True)
class HistorySettings:
    """`[storage]` of the config: how fine the health history is kept."""

    hourly_days: int = 90  #: buckets of an hour this many days back from the newest sample, of a day beyond
    #: Finished days older than this many days before the newest sample's leave the database for immutable Parquet
    #: files (evict_days), None: kept in the database. Fewer than hourly_days (a window of 1 or 2 days: None).
    hot_days: int | None = DEFAULT_HOT_DAYS

    def __post_init__(self) -> None:
        if self.hourly_days < 1:
            raise UserError(f"[storage] hourly_days must be at least 1, not {self.hourly_days}")
        if self.hot_days is not None and self.hot_days >= self.hourly_days and self.hourly_days <= DEFAULT_HOT_DAYS:
            object.__setattr__(self, "hot_days", None)  # a short hourly window keeps its few days in the database
        if self.hot_days is not None and not 1 <= self.hot_days < self.hourly_days:
            raise UserError(
                f"[storage] hot_days must be at least 1 and fewer than hourly_days ({self.hourly_days}), "
                f"not {self.hot_days}"
            )

    @property
    def hourly_seconds(self) -> int:
        return self.hourly_days * DAY_S


def parse_storage(raw: object, where: str) -> HistorySettings:
    """The config's `[storage]` table, checked (missing: the defaults)."""
    if raw is None:
        return HistorySettings()
    if not isinstance(raw, dict):
        raise UserError(f"{where}: [storage] must be a table, e.g. [storage] then hourly_days = 90")
    unknown = sorted(set(raw) - {"hourly_days", "hot_days"})
    if unknown:
        raise UserError(f"{where}: [storage] has unknown key {unknown[0]!r} (known: hourly_days, hot_days)")
    days = raw.get("hourly_days", HistorySettings.hourly_days)
    if not isinstance(days, int) or isinstance(days, bool):
        raise UserError(f"{where}: [storage] hourly_days must be a whole number of days, not {days!r}")
    hot = raw.get("hot_days", HistorySettings.hot_days)
    if hot is not None and (not isinstance(hot, int) or isinstance(hot, bool)):
        raise UserError(f"{where}: [storage] hot_days must be a whole number of days, not {hot!r}")
    return HistorySettings(hourly_days=days, hot_days=hot)


def _bucketed(sql_from: str, cutoff: str) -> str:
    """One-sample bucket rows for the samples `sql_from` yields: an hour, or a day when the hour ended before
    `cutoff` (a SQL expression of seconds)."""
    old = f"(block_timestamp // {HOUR_S}) * {HOUR_S} + {HOUR_S} <= {cutoff}"
    return f"""
SELECT protocol, chain_id, market, wallet,
    CASE WHEN {old} THEN (block_timestamp // {DAY_S}) * {DAY_S} ELSE (block_timestamp // {HOUR_S}) * {HOUR_S} END
        AS bucket_start,
    CASE WHEN {old} THEN {DAY_S} ELSE {HOUR_S} END AS bucket_seconds,
    1 AS samples, block_number AS first_block, block_timestamp AS first_timestamp, block_number AS last_block,
    block_timestamp AS last_timestamp, {", ".join(LAST_COLUMNS)},
    health_factor AS health_factor_min, block_number AS health_factor_min_block, health_factor AS health_factor_max,
    liquidatable::BIGINT AS liquidatable_samples
FROM ({sql_from})"""


def _folded(sql_from: str) -> str:
    """Bucket rows of `sql_from` sharing a key folded into one: sums of counts, first and last by block, extremes (the
    block of the minimum the earliest of the samples that reached it, whatever order the rows come in)."""
    last = ", ".join(f"arg_max_null({c}, last_block) AS {c}" for c in LAST_COLUMNS)
    return f"""
SELECT {", ".join(BUCKET_KEY)}, any_value(chain_id) AS chain_id, max(bucket_seconds) AS bucket_seconds,
    sum(samples) AS samples, min(first_block) AS first_block, arg_min(first_timestamp, first_block) AS first_timestamp,
    max(last_block) AS last_block, arg_max(last_timestamp, last_block) AS last_timestamp, {last},
    min(health_factor_min) AS health_factor_min,
    arg_min(health_factor_min_block, row(health_factor_min, health_factor_min_block)) AS health_factor_min_block,
    max(health_factor_max) AS health_factor_max, sum(liquidatable_samples) AS liquidatable_samples
FROM ({sql_from})
GROUP BY {", ".join(BUCKET_KEY)}"""


def _key_match(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in BUCKET_KEY)


def _replace_buckets(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Folds the bucket rows of temp `table` (keyed by key_id) with the stored rows of the same keys and stores the
    result. The only writer of buckets: wallet_health_buckets has no index (chainrisk.store.schema.history says why),
    each key stays one row because its stored row is deleted and the folded one inserted in the caller's transaction.
    Neither the semi-join nor the delete reads a year of buckets: DuckDB pushes the incoming rows' bucket_start range
    into the scan as a filter, and buckets are appended in time order, so a run's fold reads the newest row group(s)
    (EXPLAIN ANALYZE at 24.35M buckets: 1 of 203 row groups scanned)."""
    stored = f"SELECT {DECODE} FROM wallet_health_buckets h SEMI JOIN {table} i USING ({', '.join(BUCKET_KEY)})"
    folded = _folded(f"SELECT * FROM {table} UNION ALL BY NAME {stored}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE merged_buckets AS {folded}")
    merged = f"SELECT h.* FROM wallet_health_buckets h SEMI JOIN merged_buckets m USING ({', '.join(BUCKET_KEY)})"
    ledger.subtract(con, BUCKETS, merged)
    con.execute(f"DELETE FROM wallet_health_buckets h USING merged_buckets m WHERE {_key_match('h', 'm')}")
    con.execute(f"INSERT INTO wallet_health_buckets BY NAME SELECT {ENCODE} FROM merged_buckets")
    ledger.add(con, BUCKETS, merged)
    con.execute("DROP TABLE merged_buckets")


def record_samples(
    con: duckdb.DuckDBPyConnection,
    samples: pl.DataFrame,
    settings: HistorySettings,
    cold_folder: Path | None = None,
    evict: bool = True,
) -> int:
    """Folds health samples (SAMPLE_COLUMNS; health_factor_wad and bad_debt_usd may be missing) into their buckets,
    then downsamples and clusters the days the newest sample left behind; returns how many samples were new. A sample
    of a block its bucket already starts or ends with (the same block scored again) changes nothing."""
    if samples.is_empty():
        return 0
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    frame = samples.with_columns(pl.lit(None).alias(c) for c in missing).select(SAMPLE_COLUMNS)
    added = 0
    with registered(con, "health_samples", frame):  # exact integers as HUGEINT (chainrisk.store.exact)
        chains = [int(r[0]) for r in con.execute("SELECT DISTINCT chain_id FROM health_samples").fetchall()]
        for chain_id in chains:
            stored_newest = _newest(con, chain_id)
            cutoff = _cutoff(con, chain_id, settings)
            rows = _bucketed(f"SELECT * FROM health_samples WHERE chain_id = {chain_id}", str(cutoff))
            _number_keys(con, chain_id)
            key = ", ".join(HEALTH_KEY)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE incoming_buckets AS "
                f"SELECT k.key_id, b.* EXCLUDE ({', '.join(KEY_ONLY)}) FROM ({rows}) b "
                f"JOIN wallet_health_keys k USING ({key})"
            )
            # The same block sampled again (a run on an unchanged head, a repeated backfill) is not a new sample.
            con.execute(
                f"DELETE FROM incoming_buckets i USING wallet_health_buckets h WHERE {_key_match('h', 'i')} "
                "AND (i.first_block = h.last_block - h.first_back OR i.first_block = h.last_block)"
            )
            # Samples of days already cold (a backfill) fold into those days' files; a normal run's are all recent.
            listed = cold_files(con, chain_id)
            present = con.execute(f"SELECT DISTINCT bucket_start // {DAY_S} * {DAY_S} FROM incoming_buckets").fetchall()
            backfilled = sorted({d for _, d, _ in listed} & {int(r[0]) for r in present})
            for day in backfilled:
                files = _day_files(_folder(cold_folder), listed, day)
                con.execute(
                    f"DELETE FROM incoming_buckets i USING read_parquet({files}) h WHERE {_key_match('h', 'i')} "
                    f"AND {_in_day('i.bucket_start', day)} "
                    "AND (i.first_block = h.last_block - h.first_back OR i.first_block = h.last_block)"
                )
            added += int(con.execute("SELECT count(*) FROM incoming_buckets").fetchall()[0][0])
            for day in backfilled:
                scope = _in_day("bucket_start", day)
                incoming = f"SELECT * FROM incoming_buckets WHERE {scope}"
                _fold_cold_day(con, _folder(cold_folder), chain_id, day, incoming, cutoff)
                con.execute(f"DELETE FROM incoming_buckets WHERE {scope}")
            _replace_buckets(con, "incoming_buckets")
            con.execute("DROP TABLE incoming_buckets")
            _downsample(con, chain_id, cutoff)
            # Cold days whose hours the window has left behind fold into days in their files (a day whose file is
            # missing waits until it is back: folded without it, its rows would be lost for good).
            due = {d for d in _hourly_cold_days(con, chain_id) if d + DAY_S <= cutoff and d not in backfilled}
            gone = {d for _, d, f in listed if d in due and not (_folder(cold_folder) / f).is_file()}
            hourly = sorted(due - gone)
            for day in hourly:
                _fold_cold_day(con, _folder(cold_folder), chain_id, day, _NO_ROWS, cutoff)
            evicted = evict_days(con, cold_folder, chain_id, settings) if cold_folder is not None and evict else 0
            merged = compact_months(con, cold_folder, chain_id, cutoff) if cold_folder is not None else 0
            if backfilled or hourly or evicted or merged:
                refresh_cold_view(con, _folder(cold_folder))
            if stored_newest is not None:
                _cluster_finished_days(con, chain_id, stored_newest, _newest(con, chain_id) or stored_newest)
    return added


def _number_keys(con: duckdb.DuckDBPyConnection, chain_id: int) -> None:
    """Gives each key of the chain's samples that wallet_health_keys lacks the next number, in the caller's
    transaction (the writer is the only one: a key stays one number without an index)."""
    key = ", ".join(HEALTH_KEY)
    con.execute(
        f"INSERT INTO wallet_health_keys SELECT (SELECT coalesce(max(key_id), 0) FROM wallet_health_keys) "
        f"+ row_number() OVER (ORDER BY {key}), {key} FROM (SELECT DISTINCT {key} FROM health_samples "
        f"WHERE chain_id = $1 EXCEPT SELECT {key} FROM wallet_health_keys WHERE chain_id = $1)",
        [chain_id],
    )


def _cutoff(con: duckdb.DuckDBPyConnection, chain_id: int, settings: HistorySettings) -> int:
    """Chain time before which buckets are days: the hourly window back from the newest sample (stored or new), down
    to the start of its day. Whole days fold at once, so the hour buckets are deleted once a day, not once an hour:
    a deletion makes the next publish drop and write again the published buckets of the folded days (the range the
    downsampling records, chainrisk.store.published), and the hourly window reaches between `hourly_days` and a day
    more."""
    row = con.execute(
        "SELECT greatest(coalesce((SELECT max(block_timestamp) FROM health_samples WHERE chain_id = $1), 0), "
        "coalesce((SELECT max(bucket_start + last_offset) FROM wallet_health_buckets WHERE chain_id = $1), 0))",
        [chain_id],
    ).fetchall()
    return (int(row[0][0]) - settings.hourly_seconds) // DAY_S * DAY_S


def _newest(con: duckdb.DuckDBPyConnection, chain_id: int) -> int | None:
    """Chain time of the chain's newest stored sample (None: none stored)."""
    newest = "SELECT max(bucket_start + last_offset) FROM wallet_health_buckets WHERE chain_id = ?"
    row = con.execute(newest, [chain_id]).fetchall()
    return None if row[0][0] is None else int(row[0][0])


def _cluster_finished_days(con: duckdb.DuckDBPyConnection, chain_id: int, before: int, after: int) -> None:
    """Rewrites the hour buckets of the days the newest sample left (from `before`'s day up to `after`'s) sorted by key
    (key_id), the same rows in another order. Runs append a run's buckets, one per key, so a DuckDB segment's dictionary
    never repeats a wallet and the address costs ~23 bytes a bucket past a few thousand keys; with a key's 24 hours
    together it repeats (on a 24.35M-bucket synthetic year: 76.5 -> 67.8 bytes a bucket, the wallet 22.8 -> 4.9, the
    times and blocks up from ~0 to ~9). Once a day, on the run that also downsamples; the rows' content is unchanged, so
    a publish finds the history's count and hash as they were and writes no more than it would have (and the ledger,
    chainrisk.store.ledger, stays as it is)."""
    first, last = before // DAY_S * DAY_S, after // DAY_S * DAY_S
    if last <= first:
        return
    scope = f"chain_id = {chain_id} AND bucket_seconds = {HOUR_S} AND bucket_start >= {first} AND bucket_start < {last}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE finished_hours AS SELECT * FROM wallet_health_buckets WHERE {scope}")
    if con.execute("SELECT count(*) FROM finished_hours").fetchall()[0][0]:
        con.execute(f"DELETE FROM wallet_health_buckets WHERE {scope}")
        con.execute(f"INSERT INTO wallet_health_buckets SELECT * FROM finished_hours ORDER BY {', '.join(BUCKET_KEY)}")
    con.execute("DROP TABLE finished_hours")


def _downsample(con: duckdb.DuckDBPyConnection, chain_id: int, cutoff: int) -> None:
    """Folds the chain's hourly buckets that ended before `cutoff` into buckets of their day. The constant bound on
    bucket_start (implied by the others) lets DuckDB skip the hourly window's row groups by their min/max: without
    it, looking for nothing to fold read every hour bucket, 2-5 s of a run's fold at 24M buckets."""
    old = (
        f"chain_id = {chain_id} AND bucket_start < {cutoff} AND bucket_seconds < {DAY_S} "
        f"AND bucket_start + bucket_seconds <= {cutoff}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE day_rows AS SELECT * REPLACE ((bucket_start // {DAY_S}) * {DAY_S} "
        f"AS bucket_start, {DAY_S} AS bucket_seconds) FROM (SELECT {DECODE} FROM wallet_health_buckets WHERE {old})"
    )
    low = con.execute("SELECT min(bucket_start) FROM day_rows").fetchall()[0][0]
    if low is not None:
        ledger.subtract(con, BUCKETS, f"SELECT * FROM wallet_health_buckets WHERE {old}")
        con.execute(f"DELETE FROM wallet_health_buckets WHERE {old}")
        _replace_buckets(con, "day_rows")
        # Every row from the first folded day to the cutoff was deleted or is new: a publish replaces that range.
        ledger.record_deletion(con, BUCKETS, int(low), cutoff)
    con.execute("DROP TABLE day_rows")


def frame_of(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


# -- cold days: finished days kept as immutable Parquet files instead of in the database ------------------------------
#: The view over the cold days' files (the buckets' columns); wallet_health_history reads it with the table.
COLD_VIEW = "wallet_health_cold"


def cold_files(con: duckdb.DuckDBPyConnection, chain_id: int | None = None) -> list[tuple[int, int, str]]:
    """(chain_id, day, file name) of every cold file listed (of one chain), in order; the files lie in the cold folder
    (chainrisk.store.db.Store.cold_folder), named without it, so a database moved with its published folder still
    finds them."""
    where = "" if chain_id is None else f" WHERE chain_id = {int(chain_id)}"
    rows = con.execute(f"SELECT chain_id, day, file FROM cold_history_files{where} ORDER BY 1, 2, 3").fetchall()
    return [(int(c), int(d), str(f)) for c, d, f in rows]


def missing_cold_files(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """The listed cold files not in `folder` (a database restored without its published folder, a file deleted by
    hand): their days are unknown until they are back."""
    return _split(folder, cold_files(con))[1]


def _split(folder: Path, listed: list[tuple[int, int, str]]) -> tuple[list[Path], list[str]]:
    """The files of `listed` (cold_files rows), each once: the paths of those in `folder`, the names of those not."""
    present, missing = [], []
    for name in _distinct(listed):
        if (folder / name).is_file():
            present.append(folder / name)
        else:
            missing.append(name)
    return present, missing


def _distinct(listed: list[tuple[int, int, str]]) -> list[str]:
    """The files of `listed` (cold_files rows), each once: a month's file is listed for each of its days."""
    return list(dict.fromkeys(f for _, _, f in listed))


def _read_cold(con: duckdb.DuckDBPyConnection, paths: str) -> str:
    """A query of the cold files `paths` (a SQL list) as wallet_health_buckets rows: each column cast back to the
    table's type (a wide integer is written as DECIMAL(38,0) or text: chainrisk.store.parquet)."""
    casts = ", ".join(f"CAST({quote(c)} AS {t}) AS {quote(c)}" for c, t in ledger.column_types(con, BUCKETS))
    return f"SELECT {casts} FROM read_parquet({paths})"


def refresh_cold_view(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Makes wallet_health_cold read the listed files in `folder` (their columns cast to the table's types), in the
    caller's transaction; a listed file that is missing is left out (missing_cold_files: the history reads without
    its day, and with it again once it is back and the view refreshed)."""
    files = _split(folder, cold_files(con))[0]
    if not files:
        con.execute(f"CREATE OR REPLACE VIEW {COLD_VIEW} AS SELECT * FROM wallet_health_buckets WHERE false")
        return
    paths = "[" + ", ".join(literal(f) for f in files) + "]"
    con.execute(f"CREATE OR REPLACE VIEW {COLD_VIEW} AS {_read_cold(con, paths)}")


def _write_cold(con: duckdb.DuckDBPyConnection, folder: Path, chain_id: int, day: int, rows_sql: str) -> None:
    """Writes the stored-form bucket rows `rows_sql` of one chain's day to a new file in `folder` and lists it in place
    of the day's previous file. A day whose file is a month's (compact_months) is written with the month's other days,
    read from that file: a file holds exactly the days that list it."""
    listed = cold_files(con, chain_id)
    current = {f for _, d, f in listed if d == day}
    shared = sorted({d for _, d, f in listed if f in current and d != day})
    if shared:
        others = f"SELECT * FROM ({_read_cold(con, _paths(folder, sorted(current), day))}) WHERE {_in_days(shared)}"
        rows_sql = f"SELECT * FROM ({rows_sql}) UNION ALL BY NAME {others}"
    _write_days(con, folder, chain_id, [day, *shared], rows_sql)


def _write_days(con: duckdb.DuckDBPyConnection, folder: Path, chain_id: int, days: list[int], rows_sql: str) -> None:
    """Writes the stored-form bucket rows `rows_sql` of one chain's `days` to one new file in `folder` (sorted by key,
    so a key's buckets lie together; wide integers exact: chainrisk.store.parquet) and lists it for each of those days
    in place of their previous files (which stay on disk for readers of earlier snapshots; the publisher deletes files
    no kept snapshot names and cold_history_files no longer lists). Each day's count and content hash are its rows'
    as the table holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    first = min(days)
    named = [f for f in _distinct(cold_files(con, chain_id)) if f.startswith(f"{chain_id}-{first}-")]
    number = 1 + max([int(f.rsplit("-", 1)[1].split(".")[0]) for f in named] or [0])
    target = folder / f"{chain_id}-{first}-{number:06d}.parquet"
    pairs = ledger.column_types(con, BUCKETS)
    write_exact(con, pairs, f"({rows_sql})", target, order="key_id, bucket_start")
    written = f"({_read_cold(con, literal(target))})"
    listed = ", ".join(quote(c) for c, _ in pairs)
    per_day = con.execute(
        f"SELECT bucket_start // {DAY_S} * {DAY_S} AS day, count(*), coalesce(sum(hash({listed})::HUGEINT), 0), "
        f"bool_or(bucket_seconds < {DAY_S}) FROM {written} GROUP BY ALL ORDER BY 1"
    ).fetchall()
    con.execute(f"DELETE FROM cold_history_files WHERE chain_id = ? AND {_in_days(days, 'day')}", [chain_id])
    for day, count, digest, hourly in per_day:
        con.execute(
            "INSERT INTO cold_history_files VALUES (?, ?, ?, ?, ?::HUGEINT, ?)",
            [chain_id, int(day), target.name, int(count), str(digest), bool(hourly)],
        )
    con.execute(f"DELETE FROM cold_history_markets WHERE chain_id = ? AND {_in_days(days, 'day')}", [chain_id])
    _roll_up(con, written)


def _roll_up(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """The market sums (cold_history_markets) of the stored-form cold bucket rows of the query `rows`."""
    con.execute(
        f"INSERT INTO cold_history_markets BY NAME SELECT bucket_start // {DAY_S} * {DAY_S} AS day, * "
        f"FROM ({market_buckets(rows)})"
    )


def roll_up_cold_days(con: duckdb.DuckDBPyConnection, folder: Path) -> int:
    """Schema 18: the market sums of every listed cold day that has none (a file written before this version), from
    its file, in the caller's transaction; returns the files read. A listed file that is missing is left: its days get
    no sums (the history reads without them too) until a writer opens the database with it restored (ensure_cold_view).
    Also what a later open does for a file restored from a backup."""
    summed = {
        (int(c), int(d)) for c, d in con.execute("SELECT DISTINCT chain_id, day FROM cold_history_markets").fetchall()
    }
    wanted: dict[tuple[int, str], list[int]] = {}
    for chain_id, day, name in cold_files(con):
        if (chain_id, day) not in summed:
            wanted.setdefault((chain_id, name), []).append(day)
    read = 0
    for (chain_id, name), days in wanted.items():
        path = folder / name
        if path.is_file():
            scope = f"chain_id = {int(chain_id)} AND {_in_days(days)}"
            _roll_up(con, f"SELECT * FROM ({_read_cold(con, literal(path))}) WHERE {scope}")
            read += 1
    if read:
        log.info("chainrisk: summed the health history of %d cold file(s) per market (cold_history_markets)", read)
    return read


def _in_days(days: list[int], column: str = "bucket_start") -> str:
    """`column` (a chain time, s) within one of `days` (their starts)."""
    return f"{column} // {DAY_S} * {DAY_S} IN ({', '.join(str(int(d)) for d in days)})"


def _month_of(day: int) -> int:
    """The start of the UTC calendar month holding `day` (chain time, s)."""
    start = datetime.fromtimestamp(day, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp())


def _month_end(month: int) -> int:
    start = datetime.fromtimestamp(month, UTC)
    after = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return int(after.timestamp())


def compact_months(con: duckdb.DuckDBPyConnection, folder: Path, chain_id: int, cutoff: int) -> int:
    """Merges the cold day files of each calendar month that ended before `cutoff` (the start of the hourly window:
    its days hold day buckets only) into one file listed for each of its days, in the caller's transaction; returns
    the months merged. A reader's cost is per file and column read (the Wallet page's read of one wallet at a year of
    251,188 keys: 362 day files, 1.7 s), so the days leaving the hourly window are kept a month a file. A month with
    a missing file waits until it is back."""
    listed = cold_files(con, chain_id)
    hourly = set(_hourly_cold_days(con, chain_id))
    months: dict[int, list[tuple[int, str]]] = {}
    for _, day, name in listed:
        months.setdefault(_month_of(day), []).append((day, name))
    merged = 0
    for month, entries in sorted(months.items()):
        files = list(dict.fromkeys(f for _, f in entries))
        days = sorted({d for d, _ in entries})
        if _month_end(month) > cutoff or len(files) < 2 or hourly & set(days):
            continue
        if any(not (folder / f).is_file() for f in files):
            continue
        rows = f"SELECT * FROM ({_read_cold(con, _paths(folder, files, month))}) WHERE {_in_days(days)}"
        _write_days(con, folder, chain_id, days, rows)
        merged += 1
    return merged


def evict_days(con: duckdb.DuckDBPyConnection, folder: Path, chain_id: int, settings: HistorySettings) -> int:
    """Moves the chain's finished days older than `hot_days` before its newest sample's day out of
    wallet_health_buckets into cold files (one per day, in `folder`), in the caller's transaction; returns the days
    moved (the caller then points wallet_health_cold at them: refresh_cold_view). The publisher drops the published
    rows of those days (a recorded deletion) and reads the files instead."""
    newest = _newest(con, chain_id)
    if settings.hot_days is None or newest is None:
        return 0
    limit = (newest // DAY_S - settings.hot_days) * DAY_S
    days = [
        int(r[0])
        for r in con.execute(
            f"SELECT DISTINCT bucket_start // {DAY_S} * {DAY_S} FROM wallet_health_buckets WHERE chain_id = ? "
            "AND bucket_start < ? ORDER BY 1",
            [chain_id, limit],
        ).fetchall()
    ]
    cold = {d for _, d, _ in cold_files(con, chain_id)}
    for day in days:
        scope = f"chain_id = {int(chain_id)} AND {_in_day('bucket_start', day)}"
        hot = f"SELECT * FROM wallet_health_buckets WHERE {scope}"
        if day in cold:  # rows written into a day already cold: folded with the file's
            _fold_cold_day(con, folder, chain_id, day, f"SELECT {DECODE} FROM ({hot})")
        else:
            _write_cold(con, folder, chain_id, day, hot)
        ledger.subtract(con, BUCKETS, hot)
        con.execute(f"DELETE FROM wallet_health_buckets WHERE {scope}")
        ledger.record_deletion(con, BUCKETS, day, day + DAY_S)
    return len(days)


def forget_inexact_cold_figures(con: duckdb.DuckDBPyConnection, folder: Path) -> int:
    """Schema 13: the cold files schema 12 wrote hold health_factor_wad as a DOUBLE (DuckDB's Parquet writer turns a
    HUGEINT into one), so the exact figure is lost; each is written again with it NULL (unknown; health_factor, a float
    already, is unchanged) and listed in place of the old one, in the caller's transaction. Returns the files
    rewritten; a listed file that is missing is left as it is."""
    rewritten = 0
    days_of: dict[tuple[int, str], list[int]] = {}
    for chain_id, day, name in cold_files(con):
        days_of.setdefault((chain_id, name), []).append(day)
    if days_of:
        log.info(
            "chainrisk: schema 13: checking %d cold history file(s) in %s for inexact figures", len(days_of), folder
        )
    for (chain_id, name), days in days_of.items():
        path = folder / name
        if not path.is_file():
            continue
        stored = con.execute(
            f"SELECT type FROM parquet_schema({literal(path)}) WHERE name = 'health_factor_wad'"
        ).fetchall()
        if stored and str(stored[0][0]) in ("DOUBLE", "FLOAT"):
            rows = f"SELECT * REPLACE (NULL::HUGEINT AS health_factor_wad) FROM ({_read_cold(con, literal(path))})"
            _write_days(con, folder, chain_id, days, rows)
            rewritten += 1
    if rewritten:
        refresh_cold_view(con, folder)
        log.warning(
            "chainrisk: warning: schema 13: %d cold history file(s) held the exact health factor rounded to a double; "
            "written again with it unknown (NULL), health_factor kept",
            rewritten,
        )
    return rewritten


def _fold_cold_day(
    con: duckdb.DuckDBPyConnection, folder: Path, chain_id: int, day: int, incoming: str, cutoff: int | None = None
) -> None:
    """Rewrites a cold day's file with the decoded bucket rows `incoming` folded in (by key, as _replace_buckets
    folds), and its hours folded into the day when the day ended before `cutoff`."""
    listed = cold_files(con, chain_id)
    stored = (
        f"SELECT {DECODE} FROM ({_read_cold(con, _day_files(folder, listed, day))}) "
        f"WHERE {_in_day('bucket_start', day)}"
        if any(d == day for _, d, _ in listed)
        else None
    )
    rows = incoming if stored is None else f"SELECT * FROM ({incoming}) UNION ALL BY NAME {stored}"
    if cutoff is not None and day + DAY_S <= cutoff:
        rows = f"SELECT * REPLACE ({day} AS bucket_start, {DAY_S} AS bucket_seconds) FROM ({rows})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE cold_day AS SELECT {ENCODE} FROM ({_folded(rows)})")
    _write_cold(con, folder, chain_id, day, "SELECT * FROM cold_day")
    con.execute("DROP TABLE cold_day")


#: Decoded bucket rows: none (a cold day folded with nothing new).
_NO_ROWS = f"SELECT {DECODE} FROM wallet_health_buckets WHERE false"


def _folder(cold_folder: Path | None) -> Path:
    """The cold folder a write to a listed cold day needs (record_samples was given none)."""
    assert cold_folder is not None, "cold days are listed: record_samples needs their folder"
    return cold_folder


def _day_files(folder: Path, listed: list[tuple[int, int, str]], day: int) -> str:
    """A SQL list of the paths of `day`'s files among `listed` (cold_files of one chain): a month's file holds other
    days too, so readers keep the day's rows; refused when one is missing (a day rewritten without it would lose its
    rows for good)."""
    return _paths(folder, [f for _, d, f in listed if d == day], day)


def _paths(folder: Path, files: list[str], day: int) -> str:
    """A SQL list of `files` in `folder`, refused in one line when one is missing (`day`: the day being written)."""
    gone = [f for f in files if not (folder / f).is_file()]
    if gone:
        raise UserError(
            f"the health history's cold day {day_label(day)} cannot be written: its file {gone[0]} is missing from "
            f"{folder}; restore it (from the backup of the published folder) and retry"
        )
    return "[" + ", ".join(literal(folder / f) for f in files) + "]"


def day_label(day: int) -> str:
    """A day's start (chain time, s) as YYYY-MM-DD (UTC)."""
    return datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%d")


def _in_day(column: str, day: int) -> str:
    return f"{column} >= {int(day)} AND {column} < {int(day) + DAY_S}"


def _hourly_cold_days(con: duckdb.DuckDBPyConnection, chain_id: int) -> list[int]:
    """The chain's cold days whose files still hold hour buckets, from the listing (no file read)."""
    rows = con.execute("SELECT day FROM cold_history_files WHERE chain_id = ? AND hourly ORDER BY 1", [chain_id])
    return [int(r[0]) for r in rows.fetchall()]


def ensure_cold_view(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """Points wallet_health_cold at the listed files present in `folder` when it reads others (the database and its
    published folder were moved, a file went missing or came back), in the caller's transaction; nothing otherwise
    (no catalog change, nothing to checkpoint), then sums per market the days of a file that came back. Returns the
    listed files that are missing."""
    listed = cold_files(con)
    if not listed:
        return []
    present, missing = _split(folder, listed)
    sql = _cold_view_sql(con)
    if sql is None or set(re.findall(r"'([^']*\.parquet)'", sql)) != {str(p) for p in present}:
        refresh_cold_view(con, folder)
        roll_up_cold_days(con, folder)  # a file back from a backup: its days' market sums, which could not be made
    return missing


def cold_view_reads_missing(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """The missing listed cold files (missing_cold_files) that wallet_health_cold still reads: a writer has not
    opened the database since they went missing (a reader cannot change the view)."""
    missing = missing_cold_files(con, folder)
    sql = _cold_view_sql(con) if missing else None
    return [f for f in missing if sql is not None and f in sql]


def _cold_view_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """wallet_health_cold's definition (None: no such view)."""
    rows = con.execute(f"SELECT sql FROM duckdb_views() WHERE view_name = '{COLD_VIEW}'").fetchall()
    return str(rows[0][0]) if rows else None
