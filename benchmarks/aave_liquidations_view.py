"""What the treasury's fee costs `stg_aave_v3_liquidations` (and so mart_liquidations and the Liquidations page) on
a mainnet-sized event table.

A DuckDB database (in memory) holds `--transfers` aToken transfers, each in a transaction of its own, and `--calls`
liquidations, each a transaction holding its fee's transfer to the treasury and its LiquidationCall, as the pool logs
them. Timed, best of `--repeat`, side by side in the same run: the view as it is (the fee matched in the raw events
table, in the call's block); the naive way, the same view with the fee matched through stg_aave_v3_events (every
transfer valued and joined to its token first); and the view with no transfer to match (the fee's join against an
empty table: about what the view cost before it had the fee). The naive variant's rows are checked equal to the view's,
the last's equal but for the fees (0). Figures go to benchmarks/results/aave_liquidations_view.json.

    python benchmarks/aave_liquidations_view.py [--transfers 20000000] [--calls 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb

from chainrisk.protocols.aave_v3.adapter import DDL
from chainrisk.store.views import query_sql

RESULTS = Path(__file__).resolve().parent / "results" / "aave_liquidations_view.json"
#: The fee's join as the view writes it, and as the naive variant would.
RAW_JOIN = "JOIN raw_aave_v3_events AS t"
FEE_COLUMNS = ("protocol_fee_collateral", "protocol_fee_collateral_tokens")


def build(transfers: int, calls: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(DDL)
    con.execute(
        "INSERT INTO raw_aave_v3_reserves BY NAME SELECT 1 AS chain_id, '0xm' AS market, 1 AS block_number, "
        "'0xasset' || i AS asset, 'T' || i AS symbol, i AS reserve_id, '0' AS configuration, 18 AS decimals "
        "FROM range(30) t(i)"
    )
    con.execute(
        "INSERT INTO raw_aave_v3_events BY NAME SELECT 1 AS chain_id, '0xm' AS market, 1000000000 + i AS block_number, "
        "'0xb' AS block_hash, '0xtx' || i AS tx_hash, 0 AS log_index, '0xatoken' AS contract, "
        "'ATokenTransfer' AS event, "
        "'0xasset' || (i % 30) AS reserve, '0xw' || (i % 200000) AS wallet, '0xs' || (i % 100000) AS counterparty, "
        f"i::HUGEINT AS amount FROM range({transfers}) t(i)"
    )
    con.execute(
        "INSERT INTO raw_aave_v3_events BY NAME SELECT 1 AS chain_id, '0xm' AS market, i AS block_number, "
        "'0xb' AS block_hash, '0xliq' || i AS tx_hash, 1 AS log_index, '0xatoken' AS contract, "
        "'ATokenTransfer' AS event, "
        "'0xasset' || (i % 30) AS reserve, '0xtreasury' AS wallet, '0xw' || i AS counterparty, "
        f"(7 + i)::HUGEINT AS amount FROM range({calls}) t(i)"
    )
    con.execute(
        "INSERT INTO raw_aave_v3_events BY NAME SELECT 1 AS chain_id, '0xm' AS market, i AS block_number, "
        "'0xb' AS block_hash, '0xliq' || i AS tx_hash, 2 AS log_index, '0xpool' AS contract, "
        "'LiquidationCall' AS event, "
        "'0xasset' || (i % 30) AS reserve, '0xw' || i AS wallet, '0xkeeper' AS counterparty, 100::HUGEINT AS amount, "
        "90::HUGEINT AS amount2, '0xasset' || ((i + 1) % 30) AS debt_asset, false AS flag "
        f"FROM range({calls}) t(i)"
    )
    return con


def timed(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> tuple[float, list[tuple[object, ...]]]:
    best, rows = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = con.execute(f"SELECT * FROM ({sql}) ORDER BY block_number, log_index").fetchall()
        best = min(best, time.perf_counter() - started)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=20_000_000)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    con = build(args.transfers, args.calls)
    view = query_sql("stg_aave_v3_liquidations")
    assert view.count(RAW_JOIN) == 1, "the view's fee join changed: update the naive variant"
    naive = view.replace(RAW_JOIN, "JOIN stg_aave_v3_events AS t").replace("t.reserve = c.asset", "t.asset = c.asset")
    nothing = view.replace(RAW_JOIN, "JOIN (SELECT * FROM raw_aave_v3_events WHERE false) AS t")
    columns = [d[0] for d in con.execute(f"SELECT * FROM ({view}) LIMIT 0").description]
    fee = columns.index("protocol_fee_collateral")
    ours, rows = timed(con, view, args.repeat)
    naive_s, naive_rows = timed(con, naive, args.repeat)
    assert naive_rows == rows, "the naive variant's rows differ"
    without_s, without_rows = timed(con, nothing, args.repeat)
    assert len(rows) == args.calls and all(r[fee] == 7 + i for i, r in enumerate(rows))
    unfeed = [tuple(v for k, v in enumerate(r) if columns[k] not in FEE_COLUMNS) for r in rows]
    assert [tuple(v for k, v in enumerate(r) if columns[k] not in FEE_COLUMNS) for r in without_rows] == unfeed
    assert all(r[fee] == 0 for r in without_rows)
    result = {
        "transfers": args.transfers,
        "calls": args.calls,
        "seconds_best": {"view": round(ours, 4), "naive": round(naive_s, 4), "without_fee": round(without_s, 4)},
        "naive_over_view": round(naive_s / ours, 1),
        "view_over_without_fee": round(ours / without_s, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
