"""Time-accrued raw columns (Adapter.accrued_columns) on a bare Store: a snapshot whose state is unchanged opens no
version when the protocol's maths carries the stored version to what the snapshot read, opens one when it does not,
and raw_as_of gives each snapshot back as written, for amounts of every size (polars builds DECIMAL columns from
mixed small and large ints only through Int128)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.protocols.frames import EXACT
from chainrisk.protocols.morpho_blue.accrual import accrue
from chainrisk.protocols.morpho_blue.adapter import ADAPTER
from chainrisk.store.db import Store

MORPHO = "0x" + "ab" * 20
MARKETS = "raw_morpho_blue_markets"
T0, HOUR = 1_700_000_000, 3600


def _market(market_id: str, supply: int, borrow: int, rate_at_target: int | None = None) -> dict[str, Any]:
    return {
        "market_id": market_id,
        "loan_token": "0x" + "01" * 20,
        "collateral_token": "0x" + "02" * 20,
        "oracle": "0x" + "03" * 20,
        "irm": "0x" + "04" * 20,
        "lltv": 860 * 10**15,
        "total_supply_assets": supply,
        "total_supply_shares": supply * 10**6,
        "total_borrow_assets": borrow,
        "total_borrow_shares": borrow * 10**6,
        "last_update": T0,
        "fee": 10**17,
        "borrow_rate": 1_585_489_599,  # ~5 % a year, per second (WAD)
        "rate_at_target": rate_at_target,
    }


def _frame(block: int, timestamp: int, tamper: int = 0, adaptive: bool = False) -> pl.DataFrame:
    """The two markets as a snapshot at `timestamp` reads them: one of small amounts, one past 2^64; with `adaptive`,
    under an AdaptiveCurveIrm (its rate at target stored; utilization 69 % and 80 %, off its 90 % target, so its
    borrowRateView moves with time)."""
    target = 2_000_000_000 if adaptive else None  # ~6.3 % a year at target, per second (WAD)
    state = pl.DataFrame(
        [
            _market("0x" + "11" * 32, 1_009_895_190_269, 700_000_000_000, target),
            _market("0x" + "22" * 32, 5 * 10**24, 4 * 10**24, target),
        ],
        schema_overrides={"rate_at_target": EXACT},
    )
    accrued = accrue(MARKETS, state, timestamp)  # the rate under an AdaptiveCurveIrm: irm.py's, tested on vectors
    accrued[0]["accrued_total_borrow_assets"] += tamper  # another deployment's maths
    if adaptive:
        accrued[1]["borrow_rate"] += tamper  # another IRM answering rateAtTarget
    rows = [{**s, **a} for s, a in zip(state.to_dicts(), accrued, strict=True)]
    exact = [c for c in rows[0] if isinstance(rows[0][c], int) and c != "last_update"] + ["rate_at_target"]
    frame = pl.DataFrame(rows, schema_overrides={c: EXACT for c in exact})
    return frame.with_columns(
        pl.lit(31337, pl.Int64).alias("chain_id"),
        pl.lit(MORPHO).alias("market"),
        pl.lit(block, pl.Int64).alias("block_number"),
    )


def _write(store: Store, block: int, timestamp: int, tamper: int = 0, adaptive: bool = False) -> pl.DataFrame:
    store.ensure_tables(ADAPTER.ddl)
    frame = _frame(block, timestamp, tamper, adaptive)
    store.write_snapshot("morpho-blue", 31337, MORPHO, block, f"0x{block:x}", timestamp, {MARKETS: frame})
    return frame


def _versions(store: Store) -> int:
    return int(store.query(f"SELECT count(*) AS n FROM history.{MARKETS}")["n"][0])


def _same(got: pl.DataFrame, written: pl.DataFrame) -> None:
    columns = written.columns
    assert_frame_equal(got.select(columns).sort("market_id"), written.sort("market_id"), check_dtypes=False)


@pytest.mark.parametrize(
    ("adaptive", "tamper", "versions", "moved"),
    [
        # Interest alone: one version per market, each snapshot back as written.
        (False, 0, 2, "accrued_total_borrow_assets"),
        # The small market's accrual disagreeing by one unit (another deployment's maths): stored as read.
        (False, 1, 3, "accrued_total_borrow_assets"),
        # An AdaptiveCurveIrm's rate moving with time: carried, no version.
        (True, 0, 2, "borrow_rate"),
        # Both markets disagreeing by one unit (totals; another IRM answering rateAtTarget): both stored as read.
        (True, 1, 4, "borrow_rate"),
    ],
)
def test_time_alone_opens_no_version_where_the_maths_reproduces_the_read(
    tmp_path: Path, adaptive: bool, tamper: int, versions: int, moved: str
) -> None:
    with Store(tmp_path / "a.duckdb") as store:
        first = _write(store, 100, T0 + HOUR, adaptive=adaptive)
        second = _write(store, 400, T0 + 2 * HOUR, tamper=tamper, adaptive=adaptive)
        assert first[moved].to_list() != second[moved].to_list(), f"{moved} moved with time"
        assert _versions(store) == versions
        _same(store.raw_as_of(MARKETS, 31337, MORPHO, 100), first)
        _same(store.raw_as_of(MARKETS, 31337, MORPHO, 400), second)
