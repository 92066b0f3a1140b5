"""What valuing each Comet absorb at the liquidation factor in force at its block costs `stg_compound_v3_liquidations`
(and so mart_liquidations and the Liquidations page) on a year of raw versions.

A scratch chainrisk database holds one Comet with `--assets` collaterals snapshotted `--snapshots` times (a year of
five-minute runs by default), each snapshot a new version of every asset (its price moved) and every asset's factor
cut every `--factor-every` snapshots, and `--absorbs` absorbs, each one account's AbsorbDebt and two AbsorbCollaterals,
spread over the year. Timed, best of `--repeat` (`--baseline-repeat` for the baseline), side by side in the same run:
the view as it is (the factors collapsed into runs before any absorb is matched) against the view as commit
`--baseline-ref` wrote it (ASOF joins of every absorb against every version and snapshot, which DuckDB plans as nested
loops when it expects few absorbs: it does here). Both give every absorb's credit, checked equal before the ratio is
reported. Figures go to benchmarks/results/comet_absorb_factors.json.

    python benchmarks/comet_absorb_factors.py [--snapshots 105120] [--assets 10] [--absorbs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from chainrisk.store.db import Store
from chainrisk.store.views import install_views, query_sql

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "comet_absorb_factors.json"
VIEW = "stg_compound_v3_liquidations"
VIEW_FILE = "chainrisk/protocols/compound_v3/queries/stg_compound_v3_liquidations.sql"
#: The view's figures compared between the two sides.
COLUMNS = "tx_hash, log_index, debt_repaid IS NOT NULL AS debt_row, credited_base, shortfall"


def row_defaults(con: duckdb.DuckDBPyConnection, table: str, given: dict[str, str]) -> str:
    """A SELECT list for every column of `table`: `given` where named, else a zero (or '0x0') of the column's type."""
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index",
        [table],
    ).fetchall()
    parts = []
    for name, kind in columns:
        value = given.get(name, "'0x0'" if kind == "VARCHAR" else ("false" if kind == "BOOLEAN" else f"0::{kind}"))
        parts.append(f"{value} AS {name}")
    return ", ".join(parts)


def build(db: Path, snapshots: int, assets: int, absorbs: int, factor_every: int) -> None:
    with Store(db) as store:
        con = store.con
        install_views(con)
        last = 1_000 + 25 * (snapshots - 1)
        market = row_defaults(
            con,
            "raw_compound_v3_markets",
            {
                "chain_id": "1",
                "market": "'0xcomet'",
                "block_number": str(last),
                "base_token": "'0xusdc'",
                "base_symbol": "'USDC'",
                "base_decimals": "6",
                "base_scale": "1000000",
                "base_price": "100000000",
                "base_currency_usd": "1e-8",
            },
        )
        con.execute(f"INSERT INTO raw_compound_v3_markets SELECT {market}")
        con.execute(
            "INSERT INTO snapshot_blocks SELECT 'compound-v3', 1, '0xcomet', 1000 + 25 * i, '0x', i "
            f"FROM range({snapshots}) t(i)"
        )
        version = row_defaults(
            con,
            "raw_compound_v3_assets",
            {
                "chain_id": "1",
                "market": "'0xcomet'",
                "block_number": "1000 + 25 * i",
                "asset_offset": "a::INTEGER",
                "asset": "'0xasset' || a",
                "symbol": "'T' || a",
                "decimals": "18",
                "price": "(100000000 + i)::HUGEINT",
                "scale": "1000000000000000000",
                "liquidation_factor": f"(950000000000000000 - (i // {factor_every}) * 10000000000000000)::HUGEINT",
            },
        )
        con.execute(
            f"INSERT INTO history.raw_compound_v3_assets SELECT {version}, "
            f"CASE WHEN i < {snapshots - 1} THEN 1000 + 25 * (i + 1) END FROM range({snapshots}) t(i), "
            f"range({assets}) s(a)"
        )
        con.execute(
            f"INSERT INTO raw_compound_v3_assets SELECT {version} FROM range({snapshots - 1}, {snapshots}) "
            f"t(i), range({assets}) s(a)"
        )
        # Each absorb: AbsorbDebt (basePaidOut 1,000 USDC, usdValue at $1) then two AbsorbCollaterals; blocks between
        # snapshots, so each one's factor is known unless a cut falls between the snapshots around it.
        event = row_defaults(
            con,
            "raw_compound_v3_events",
            {
                "chain_id": "1",
                "market": "'0xcomet'",
                "block_number": f"1000 + 25 * ((k * {snapshots - 2}) // {absorbs}) + 7",
                "block_hash": "'0xb'",
                "tx_hash": "'0xtx' || k",
                "log_index": "part",
                "event": "CASE WHEN part = 0 THEN 'AbsorbDebt' ELSE 'AbsorbCollateral' END",
                "wallet": "'0xw' || k",
                "counterparty": "'0xkeeper'",
                "asset": f"CASE WHEN part > 0 THEN '0xasset' || ((k + part) % {assets}) END",
                "amount": "CASE WHEN part = 0 THEN 1000000000 ELSE 1000000000000000000 END::HUGEINT",
                "value": "CASE WHEN part = 0 THEN 100000000000 ELSE 60000000000 END::HUGEINT",
            },
        )
        con.execute(f"INSERT INTO raw_compound_v3_events SELECT {event} FROM range({absorbs}) t(k), range(3) p(part)")


def baseline_sql(ref: str) -> str:
    """query_sql(VIEW) with the view's body as commit `ref` wrote it."""
    ours = (ROOT / VIEW_FILE).read_text()
    theirs = subprocess.run(
        ["git", "show", f"{ref}:{VIEW_FILE}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    body = _body(ours)
    sql = query_sql(VIEW)
    if body not in sql:
        raise RuntimeError(f"{VIEW}'s body is not in its query_sql")
    return sql.replace(body, _body(theirs))


def _body(text: str) -> str:
    lines = text.splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip().rstrip(";").rstrip()


def timed(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> tuple[list[float], list[Any]]:
    times, rows = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = con.execute(f"SELECT {COLUMNS} FROM ({sql}) ORDER BY tx_hash, log_index").fetchall()
        times.append(time.perf_counter() - started)
    return times, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=105_120, help="snapshots of the Comet (a year at 5 minutes)")
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--absorbs", type=int, default=10_000)
    parser.add_argument("--factor-every", type=int, default=20_000, help="snapshots between two factor cuts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-repeat", type=int, default=1, help="reads of the baseline (minutes each at a year)")
    parser.add_argument("--baseline-ref", default="87ebcf5", help="the commit whose view is the baseline")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "comet.duckdb"
        started = time.perf_counter()
        build(db, args.snapshots, args.assets, args.absorbs, args.factor_every)
        built = time.perf_counter() - started
        con = duckdb.connect(str(db), read_only=True)
        versions = con.execute("SELECT count(*) FROM history.raw_compound_v3_assets").fetchone()
        ours, rows = timed(con, query_sql(VIEW), args.repeat)
        theirs, baseline_rows = timed(con, baseline_sql(args.baseline_ref), args.baseline_repeat)
        if rows != baseline_rows:
            raise SystemExit("the two views disagree")
        credited = sum(1 for r in rows if r[2] and r[3] is not None)
        unknown = sum(1 for r in rows if r[2] and r[3] is None)
    result = {
        "command": "python benchmarks/comet_absorb_factors.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "output"),
        "versions": versions[0] if versions else None,
        "absorbs": args.absorbs,
        "build_seconds": round(built, 1),
        "debt_rows_credited": credited,
        "debt_rows_unknown": unknown,
        "view_seconds": [round(t, 3) for t in ours],
        "baseline_seconds": [round(t, 3) for t in theirs],
        "ratio_best": round(min(ours) / min(theirs), 5),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
