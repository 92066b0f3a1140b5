"""What finding governance's parameter changes in a year of raw versions costs `mart_parameter_changes` (and so the
Markets page's "Risk parameters governance changed" and the `parameter_changed` alert, every run).

A scratch chainrisk database holds one Aave V3 market with `--reserves` reserves snapshotted `--snapshots` times (a
year of five-minute runs by default), each snapshot a new version of every reserve (its price moved), and each
reserve's LTV and threshold moved every `--change-every` snapshots (its supply cap at twice that). Timed, best of
`--repeat` (`--baseline-repeat` for the baseline), side by side in the same run: the generated
stg_aave_v3_parameter_changes (each version's settings compared whole with the version before, only the versions
whose settings moved taken apart into parameters) against the plain way, every version's every setting unpivoted into
rows and each compared with its own previous value (a window over versions x settings rows). Both must give the same
changes, checked before the ratio is reported; mart_parameter_changes (the stacked view of every protocol, with the
snapshot times and labels) is timed too. Figures go to benchmarks/results/parameter_changes.json.

    python benchmarks/parameter_changes.py [--snapshots 105120] [--reserves 30] [--change-every 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
from comet_absorb_factors import row_defaults

from chainrisk.protocols.aave_v3.adapter import SETTINGS
from chainrisk.store.db import Store
from chainrisk.store.views import install_views, query_sql

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "parameter_changes.json"
TABLE = "raw_aave_v3_reserves"
#: The reserves' settings (the adapter's own list), as both sides compare them.
PARAMETERS = [s.column for s in SETTINGS[0].settings]
COLUMNS = "item, parameter, block_number, old_value, new_value"


def build(db: Path, snapshots: int, reserves: int, change_every: int) -> None:
    with Store(db) as store:
        con = store.con
        install_views(con)
        con.execute(
            "INSERT INTO snapshot_blocks SELECT 'aave-v3', 1, '0xprovider', 1000 + 25 * i, '0x', 1700000000 + 300 * i "
            f"FROM range({snapshots}) t(i)"
        )
        step = f"(i // {change_every})"
        version = row_defaults(
            con,
            TABLE,
            {
                "chain_id": "1",
                "market": "'0xprovider'",
                "block_number": "1000 + 25 * i",
                "asset": "'0xasset' || a",
                "symbol": "'T' || a",
                "reserve_id": "a::INTEGER",
                "configuration": "'0'",
                "ltv": f"(7000 + 10 * ({step} % 5))::INTEGER",
                "liquidation_threshold": f"(7500 + 10 * ({step} % 5))::INTEGER",
                "liquidation_bonus": "10500",
                "decimals": "18",
                "active": "true",
                "supply_cap": f"(1000000 + ({step} // 2))::BIGINT",
                "price": "(100000000 + i)::HUGEINT",
            },
        )
        con.execute(
            f"INSERT INTO history.{TABLE} SELECT {version}, "
            f"CASE WHEN i < {snapshots - 1} THEN 1000 + 25 * (i + 1) END FROM range({snapshots}) t(i), "
            f"range({reserves}) s(a)"
        )
        last = f"range({snapshots - 1}, {snapshots}) t(i), range({reserves}) s(a)"
        con.execute(f"INSERT INTO {TABLE} SELECT {version} FROM {last}")


def baseline_sql() -> str:
    """Every version's every setting a row of its own, each compared with its previous value."""
    columns = ", ".join(PARAMETERS)
    return f"""
        WITH long AS (
            SELECT asset AS item, block_number, parameter, value
            FROM (SELECT asset, block_number, {", ".join(f"{p}::VARCHAR AS {p}" for p in PARAMETERS)}
                  FROM history.{TABLE})
            UNPIVOT INCLUDE NULLS (value FOR parameter IN ({columns}))
        ),
        steps AS (
            SELECT *, lag(value) OVER (PARTITION BY item, parameter ORDER BY block_number) AS old_value,
                   row_number() OVER (PARTITION BY item, parameter ORDER BY block_number) AS n
            FROM long
        )
        SELECT item, parameter, block_number, old_value, value AS new_value
        FROM steps WHERE n > 1 AND old_value IS DISTINCT FROM value
    """


def timed(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> tuple[list[float], list[Any]]:
    times, rows = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = con.execute(f"SELECT {COLUMNS} FROM ({sql}) ORDER BY ALL").fetchall()
        times.append(time.perf_counter() - started)
    return times, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=105_120, help="snapshots of the market (a year at 5 minutes)")
    parser.add_argument("--reserves", type=int, default=30)
    parser.add_argument("--change-every", type=int, default=10_000, help="snapshots between two changes of a reserve")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-repeat", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "aave.duckdb"
        started = time.perf_counter()
        build(db, args.snapshots, args.reserves, args.change_every)
        built = time.perf_counter() - started
        con = duckdb.connect(str(db), read_only=True)
        versions = con.execute(f"SELECT count(*) FROM history.{TABLE}").fetchone()
        view = f"SELECT * FROM ({query_sql('stg_aave_v3_parameter_changes')}) WHERE change = 'changed'"
        ours, rows = timed(con, view, args.repeat)
        theirs, baseline_rows = timed(con, baseline_sql(), args.baseline_repeat)
        if rows != baseline_rows:
            raise SystemExit(f"the two disagree: {len(rows)} changes against {len(baseline_rows)}")
        mart = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            con.execute(f"SELECT count(*) FROM ({query_sql('mart_parameter_changes')})").fetchall()
            mart.append(time.perf_counter() - started)
    result = {
        "command": "python benchmarks/parameter_changes.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "output"),
        "versions": versions[0] if versions else None,
        "settings_per_version": len(PARAMETERS),
        "changes": len(rows),
        "build_seconds": round(built, 1),
        "view_seconds": [round(t, 3) for t in ours],
        "mart_seconds": [round(t, 3) for t in mart],
        "baseline_seconds": [round(t, 3) for t in theirs],
        "ratio_best": round(min(ours) / min(theirs), 4),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
