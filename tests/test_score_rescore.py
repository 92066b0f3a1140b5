"""`chainrisk score` (and so `chainrisk run`) rescores only the wallets whose positions changed when no price moved
since the last score, and its tables then equal a full score's; it says which way it went."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.jobs import score as score_job
from chainrisk.jobs.run import RunReport
from chainrisk.jobs.score import ScoreReport, book_dir, score
from chainrisk.scoring.incremental import ScoredBook
from chainrisk.store.db import LATEST_POSITIONS

#: Each score table's key, rows compared in this order (a rescore stores them in another).
TABLES = {
    "wallet_risk": ["protocol", "chain_id", "market", "wallet"],
    "position_risk": ["protocol", "chain_id", "market", "wallet", "asset"],
    "liquidation_curve": ["chain_id", "market", "axis_kind", "axis", "drop"],
    "wallet_portfolio": ["chain_id", "wallet"],
    "scored_markets": ["protocol", "chain_id", "market"],
}
#: Whether the latest snapshot's rows are those of its sources' snapshot blocks (as LATEST_POSITIONS joins them).
_LATEST = (
    "EXISTS (SELECT 1 FROM sync_state s WHERE s.protocol = t.protocol AND s.chain_id = t.chain_id "
    "AND s.market = t.source AND s.snapshot_block = t.block_number)"
)


def _query(db: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _execute(db: Path, *statements: str) -> None:
    with duckdb.connect(str(db)) as con:
        for statement in statements:
            con.execute(statement)


def _tables(db: Path) -> dict[str, pl.DataFrame]:
    found = {}
    for table, key in TABLES.items():
        frame = _query(db, f"SELECT * FROM {table}")
        frame = frame.drop("scored_at", strict=False)
        # Sorted by key, then by every column (rows the key leaves tied come in any order).
        found[table] = frame.sort([*key, *(c for c in frame.columns if c not in key)])
    return found


def _full_score(db: Path, folder: Path) -> tuple[ScoreReport, dict[str, pl.DataFrame]]:
    """`db` scored in full: a copy of it without the kept engine book."""
    folder.mkdir()
    copy = folder / db.name
    shutil.copyfile(db, copy)
    report = score(copy, publish=False)
    assert not report.rescored, report.path
    return report, _tables(copy)


def _assert_same_tables(ours: dict[str, pl.DataFrame], full: dict[str, pl.DataFrame]) -> None:
    for table in ("wallet_risk", "position_risk", "wallet_portfolio", "scored_markets"):
        assert_frame_equal(ours[table], full[table], check_exact=True)
    # The curve's wallet counts exactly; its USD sums were added in another order (the changed wallets' parts taken
    # off and added back), so to float rounding.
    assert_frame_equal(ours["liquidation_curve"], full["liquidation_curve"], rel_tol=1e-9, abs_tol=1e-6)


@pytest.fixture()
def db(scored_db: Path, tmp_path: Path) -> Path:
    """A copy of the session's scored database, scored once more so that its engine book is kept beside it."""
    copy = tmp_path / "own" / scored_db.name
    copy.parent.mkdir()
    shutil.copyfile(scored_db, copy)
    first = score(copy, publish=False)
    assert not first.rescored and first.path == "full score (no previous score to start from)"
    assert (book_dir(copy) / "manifest.json").is_file()
    return copy


def _borrowers(db: Path, count: int) -> pl.DataFrame:
    """`count` wallets with debt in the latest snapshot, from every protocol indexed."""
    positions = _query(db, LATEST_POSITIONS)
    borrowers = positions.filter(pl.col("debt_amount") > 0).select("protocol", "chain_id", "market", "wallet").unique()
    picked = borrowers.sort(pl.all()).group_by("protocol", maintain_order=True).head(count)
    assert picked.height >= count
    return picked


def test_unchanged_snapshot_rescores_nothing(db: Path, tmp_path: Path) -> None:
    before = _tables(db)
    report = score(db, publish=False)
    assert report.rescored and report.path.startswith("rescored 0 changed of "), report.path
    _assert_same_tables(_tables(db), before)
    assert "wallets scored (rescored 0 changed of " in RunReport(run_id=1, status="ok", score=report).summary()


def test_wallets_that_went_and_came_back_are_rescored_alone(db: Path, tmp_path: Path) -> None:
    gone = _borrowers(db, 2)
    wallets = gone.select(pl.format("('{}', {}, '{}', '{}')", "protocol", "chain_id", "market", "wallet")).to_series()
    match = f"(protocol, chain_id, market, wallet) IN ({', '.join(wallets)})"
    _execute(
        db,
        f"CREATE TABLE kept_positions AS SELECT * FROM positions t WHERE {match} AND {_LATEST}",
        f"CREATE TABLE kept_health AS SELECT * FROM wallet_health t WHERE {match} AND {_LATEST}",
        f"DELETE FROM positions t WHERE {match} AND {_LATEST}",
        f"DELETE FROM wallet_health t WHERE {match} AND {_LATEST}",
    )
    went = score(db, publish=False)
    assert went.rescored and went.path.startswith(f"rescored {gone.height} changed of "), went.path
    full_report, full = _full_score(db, tmp_path / "full-went")
    assert went.wallets == full_report.wallets and went.liquidatable == full_report.liquidatable
    _assert_same_tables(_tables(db), full)
    for table in TABLES:
        assert not _tables(db)[table].is_empty(), table

    _execute(
        db,
        "INSERT INTO positions SELECT * FROM kept_positions",
        "INSERT INTO wallet_health SELECT * FROM kept_health",
        "DROP TABLE kept_positions",
        "DROP TABLE kept_health",
    )
    came = score(db, publish=False)
    assert came.rescored and came.path.startswith(f"rescored {gone.height} changed of "), came.path
    _, full = _full_score(db, tmp_path / "full-came")
    _assert_same_tables(_tables(db), full)


def test_moved_prices_or_accrued_interest_score_in_full(db: Path, tmp_path: Path) -> None:
    # Interest accrued on every debt: every borrower's amounts change, though no price moved.
    _execute(db, f"UPDATE positions t SET debt_amount = debt_amount + 1 WHERE debt_amount > 0 AND {_LATEST}")
    accrued = score(db, publish=False)
    assert not accrued.rescored and accrued.path.startswith("full score (") and "wallets changed)" in accrued.path
    _, full = _full_score(db, tmp_path / "full-accrued")
    _assert_same_tables(_tables(db), full)

    symbol = _query(db, LATEST_POSITIONS)["symbol"].drop_nulls().sort()[0]
    _execute(db, f"UPDATE positions t SET price_usd = price_usd * 1.01 WHERE symbol = '{symbol}' AND {_LATEST}")
    moved = score(db, publish=False)
    assert not moved.rescored and moved.path == "full score (prices moved)", moved.path
    _, full = _full_score(db, tmp_path / "full-moved")
    _assert_same_tables(_tables(db), full)


def test_a_book_of_another_engine_or_half_written_is_not_used(db: Path) -> None:
    manifest = book_dir(db) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"engine": "', '"engine": "0'))
    assert score(db, publish=False).path == "full score (no previous score to start from)"
    manifest.unlink()
    assert score(db, publish=False).path == "full score (no previous score to start from)"
    assert score(db, publish=False).rescored


def test_a_book_that_cannot_be_kept_leaves_the_scores_stored(db: Path) -> None:
    shutil.rmtree(book_dir(db))
    book_dir(db).write_text("not a folder")
    report = score(db, publish=False)
    assert report.wallets > 0 and not report.rescored
    assert _tables(db)["wallet_risk"].height == report.wallets
    book_dir(db).unlink()
    assert score(db, publish=False).path == "full score (no previous score to start from)"
    assert score(db, publish=False).rescored


def test_a_full_score_after_so_many_rescores_in_a_row(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The curve's sums, updated by differences on each rescore, are summed afresh now and then."""
    monkeypatch.setattr(score_job, "RESCORES_BEFORE_FULL", 2)
    paths = [score(db, publish=False).path for _ in range(4)]
    assert [p.split(" ")[0] for p in paths] == ["rescored", "rescored", "full", "rescored"], paths
    assert paths[2] == "full score (2 rescores in a row: the curve summed afresh)"


def test_books_pause_after_scores_that_could_not_use_them(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interest accrued before every score: the book is written twice for nothing, then not kept for PAUSE_SCORES
    scores (its files removed), then kept again; a score it serves ends the pause."""
    monkeypatch.setattr(score_job, "PAUSE_SCORES", 2)
    kept = [f"{name}.arrow" for name in ScoredBook.__dataclass_fields__]

    def files() -> list[str]:
        return sorted(p.name for p in book_dir(db).glob("*.arrow"))

    paths = []
    for _ in range(2):
        _execute(db, f"UPDATE positions t SET debt_amount = debt_amount + 1 WHERE debt_amount > 0 AND {_LATEST}")
        paths.append(score(db, publish=False).path)
    assert all("wallets changed)" in p for p in paths), paths
    assert files() == []
    paused = score(db, publish=False)
    assert paused.path == "full score (engine book paused for 2 more scores: 2 in a row could not use it)"
    assert files() == [] and _tables(db)["wallet_risk"].height == paused.wallets
    assert score(db, publish=False).path.startswith("full score (engine book paused for 1 more scores")
    assert files() == sorted(kept)
    served = score(db, publish=False)
    assert served.rescored and served.path.startswith("rescored 0 changed of "), served.path
    assert files() == sorted(kept)
