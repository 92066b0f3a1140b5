"""Storage growth of unchanged runs (issue 22): on the running devnet (`chainrisk devnet up --wallets 300`), one
`chainrisk run --devnet`, then `--runs` more each after one empty block (an `evm_mine` RPC call); after each run the
bytes of the database (with its WAL; how much of it is free blocks), of the published files readers are served and
of the score book. The baseline is another checkout of chainrisk (`--baseline-ref`, default main) run on the same
chain state side by side (anvil's evm_snapshot / evm_revert put the chain back between the two). Figures go to
benchmarks/results/storage.json, which the README quotes; with `--advance-seconds 3600` (each empty block an hour
later: interest moves every index, and every run opens new health buckets) to storage_every_3600s.json.

    python benchmarks/storage.py [--runs 5] [--baseline-ref main] [--state-dir DIR] [--advance-seconds 3600]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chainrisk.devnet.manifest import read_manifest  # noqa: E402
from chainrisk.rpc import RpcClient  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "storage.json"


def _publish_figures(db: Path) -> dict[str, Any]:
    """What the run's publish wrote and how long it took (from the manifest of the snapshot it published; the
    baseline's full copies have none: their publish writes the whole file)."""
    folder = db.with_name(db.name + ".published")
    pointer = folder / "CURRENT"
    manifest = (folder / pointer.read_text().strip()).with_suffix(".json") if pointer.is_file() else None
    if manifest is None or not manifest.is_file():
        copy = folder / pointer.read_text().strip() if pointer.is_file() else None
        return {"publish_bytes_written": copy.stat().st_size if copy and copy.is_file() else None}
    written = json.loads(manifest.read_text())
    return {
        "publish_bytes_written": written["written"]["bytes"],
        "publish_files_written": written["written"]["files"],
        "publish_seconds": written.get("seconds"),
    }


def _bytes(db: Path) -> dict[str, int]:
    """Bytes on disk: the database with its WAL (and how much of it is free blocks DuckDB reuses at the next
    checkpoint), the published folder, and the score book (`<db>.scorebook/`, where the code keeps one)."""
    import duckdb

    wal = db.with_name(db.name + ".wal")
    published = db.with_name(db.name + ".published")
    book = db.with_name(db.name + ".scorebook")
    files = [p for p in published.rglob("*") if p.is_file()] if published.is_dir() else []
    database = (db.stat().st_size if db.exists() else 0) + (wal.stat().st_size if wal.exists() else 0)
    with duckdb.connect(str(db), read_only=True) as con:
        free, used, size = con.execute(
            "SELECT free_blocks, used_blocks, block_size FROM pragma_database_size()"
        ).fetchall()[0]
        holding = 0  # tables with data in blocks: DuckDB gives each its own, so each holds at least one whole block
        for schema, table in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
            name = f"'{schema}.{table}'"
            holding += bool(
                con.execute(f"SELECT count(*) FROM pragma_storage_info({name}) WHERE block_id >= 0").fetchall()[0][0]
            )
    return {
        "database": database,
        "database_free_blocks": int(free) * int(size),
        "database_used_blocks": int(used),
        "database_block_size": int(size),
        "database_tables_holding_blocks": holding,
        "published": sum(p.stat().st_size for p in files),
        "score_book": sum(p.stat().st_size for p in book.rglob("*") if p.is_file()) if book.is_dir() else 0,
    }


def _checkout(ref: str, into: Path) -> Path:
    """The tree of `ref` (git archive), importable with PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _series(
    code: Path, db: Path, rpc: RpcClient, runs: int, env: dict[str, str], advance_s: int
) -> list[dict[str, Any]]:
    cli = "from chainrisk.cli import main; raise SystemExit(main())"
    command = [sys.executable, "-c", cli, "run", "--devnet", "--db", str(db)]
    db.parent.mkdir(parents=True, exist_ok=True)
    figures = []
    for run in range(runs + 1):
        if run:
            if advance_s:
                rpc.call("evm_increaseTime", [advance_s])
            rpc.call("evm_mine")
        started = time.perf_counter()
        done = subprocess.run(command, env={**env, "PYTHONPATH": str(code)}, cwd=code, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"run {run} failed ({code}): {done.stderr.strip()[-2000:]}")
        sizes = _bytes(db)
        block = int(rpc.call("eth_blockNumber"), 16)
        figures.append(
            {
                "run": run,
                "block": block,
                "seconds": round(time.perf_counter() - started, 2),
                **sizes,
                "total": sizes["database"] + sizes["published"] + sizes["score_book"],
                "in_use": sizes["database"] - sizes["database_free_blocks"] + sizes["published"] + sizes["score_book"],
                **_publish_figures(db),
            }
        )
        print(
            f"  run {run}: database {sizes['database']:,} B ({sizes['database_free_blocks']:,} B of it free blocks), "
            f"published {sizes['published']:,} B, score book {sizes['score_book']:,} B",
            flush=True,
        )
    return figures


def _publish_options(db: Path, previous_block: int) -> dict[str, Any]:
    """What publishing the last run costs, side by side: the full copy readers get today, a Parquet export of every
    table, and a Parquet export of what the run changed (the latest-only tables whole, the history rows it added or
    closed, the events after `previous_block`): the measure of a publisher that grows with the new data."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="chainrisk-publish-") as folder:
        out = Path(folder)
        started = time.perf_counter()
        shutil.copyfile(db, out / "copy.duckdb")
        copy_s = time.perf_counter() - started
        con = duckdb.connect(str(out / "copy.duckdb"), read_only=True)
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        last = con.execute("SELECT max(block_number) FROM snapshot_blocks").fetchall()[0][0]
        changed = {
            "history": f"block_number = {last} OR valid_to_block = {last}",
            "wallet_health_buckets": f"last_block = {last}",
            "events": f"block_number > {previous_block}",
            "snapshot_blocks": f"block_number = {last}",
        }
        sizes = {"all": 0, "changed": 0}
        seconds = {"all": 0.0, "changed": 0.0}
        for schema, table in tables:
            kind = "history" if schema == "history" else table if table in changed else None
            if table.startswith("raw_") and table.endswith("_events"):
                kind = "events"
            for which, where in (("all", "true"), ("changed", changed[kind] if kind else "true")):
                target = out / f"{which}-{schema}-{table}.parquet"
                started = time.perf_counter()
                con.execute(f"COPY (SELECT * FROM {schema}.{table} WHERE {where}) TO '{target}' (FORMAT parquet)")
                seconds[which] += time.perf_counter() - started
                sizes[which] += target.stat().st_size
        con.close()
    return {
        "full_copy": {"bytes": db.stat().st_size, "seconds": round(copy_s, 3)},
        "parquet_all_tables": {"bytes": sizes["all"], "seconds": round(seconds["all"], 3)},
        "parquet_changed_only": {"bytes": sizes["changed"], "seconds": round(seconds["changed"], 3)},
    }


def _growth(figures: list[dict[str, Any]], key: str) -> list[float]:
    return [round(100 * (b[key] - a[key]) / a[key], 2) for a, b in pairwise(figures)]


def _mean_growth(figures: list[dict[str, Any]], key: str) -> float | None:
    """Compound growth per run from the first of `figures` to the last, in %."""
    if len(figures) < 2:
        return None
    ratio: float = float(figures[-1][key]) / float(figures[0][key])
    return round((math.pow(ratio, 1 / (len(figures) - 1)) - 1) * 100, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs after the first, each after one empty block")
    parser.add_argument("--baseline-ref", default="main", help="git ref of the baseline (empty: no baseline)")
    parser.add_argument("--state-dir", help="CHAINRISK_STATE_DIR of the running devnet")
    parser.add_argument("--only", choices=("baseline", "current"), help="measure one side only")
    parser.add_argument("--output", help="results file name in benchmarks/results (default storage.json)")
    parser.add_argument(
        "--advance-seconds", type=int, default=0, help="chain time each empty block moves on (3600: a run an hour)"
    )
    args = parser.parse_args()
    env = dict(os.environ)
    if args.state_dir:
        env["CHAINRISK_STATE_DIR"] = args.state_dir
        os.environ["CHAINRISK_STATE_DIR"] = args.state_dir
    manifest = read_manifest()
    result: dict[str, Any] = {
        "command": "python benchmarks/storage.py " + " ".join(sys.argv[1:]),
        "wallets": manifest.get("wallets"),
        "runs_after_first": args.runs,
    }
    with tempfile.TemporaryDirectory(prefix="chainrisk-storage-") as folder, RpcClient(manifest["rpc_url"]) as rpc:
        variants = {"current": ROOT}
        if args.baseline_ref:
            variants = {"baseline": _checkout(args.baseline_ref, Path(folder) / "baseline"), **variants}
        for name, code in variants.items():
            if args.only and name != args.only:
                continue
            snapshot = rpc.call("evm_snapshot")
            print(f"{name} ({code}):", flush=True)
            db = Path(folder) / name / "chainrisk.duckdb"
            figures = _series(code, db, rpc, args.runs, env, args.advance_seconds)
            rpc.call("evm_revert", [snapshot])
            result[name] = {
                "runs": figures,
                "growth_pct_total": _growth(figures, "total"),
                "growth_pct_database": _growth(figures, "database"),
                "growth_pct_in_use": _growth(figures, "in_use"),
                # The trend once the first rewrite has sized DuckDB's free list: run 1 to the last, per run.
                "mean_growth_pct_per_run_after_the_first": _mean_growth(figures[1:], "total"),
            }
            if name == "current":
                result["publish_options"] = _publish_options(db, figures[-2]["block"])
                print(f"publishing the last run: {result['publish_options']}")
    for name in ("baseline", "current"):
        if name in result:
            runs = result[name]["runs"]
            print(
                f"{name}: first run {runs[0]['total']:,} B (database {runs[0]['database']:,} B + published "
                f"{runs[0]['published']:,} B + score book {runs[0]['score_book']:,} B); after each unchanged run "
                f"{result[name]['growth_pct_total']} % (database alone {result[name]['growth_pct_database']} %; "
                f"bytes in use, free blocks left out: {result[name]['growth_pct_in_use']} %)"
            )
    if args.only and not args.output:
        previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() and not args.advance_seconds else {}
        result = {**previous, **result}
    results = RESULTS.with_name(f"storage_every_{args.advance_seconds}s.json") if args.advance_seconds else RESULTS
    if args.output:
        results = RESULTS.with_name(args.output)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
