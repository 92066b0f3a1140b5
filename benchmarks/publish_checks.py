"""What a publish costs when one run adds an hour of health buckets to a long history (issue 22: publishing at a
cost that grows with the new data, not with the file).

For each size, a chainrisk database whose health history (wallet_health_buckets under wallet_health_keys) holds KEYS
wallet-market keys times BUCKETS hour buckets, figures varying, is published once (whole); then one run's worth of
buckets is added (one new hour bucket per key, as a five-minute run opening a new hour does, the buckets' ledger
kept as the writer keeps it) and published again with `chainrisk.store.published.publish_file`, timed. The baseline
side by side is the floor such a publish could cost: writing only the new rows to Parquet (`COPY ... WHERE
last_block > previous`). The ratio shows how far the publisher's checks put it above that floor as the history
grows: before the ledger (chainrisk.store.ledger) they counted and hashed the whole table, then the whole published
view.

With `--fold-baseline DIR` (a checkout of earlier chainrisk code, e.g. `git archive f0ee85b chainrisk | tar -x -C
DIR`), each size is also measured on the run that folds a day: the history's hour buckets span BUCKETS hours, the
hourly window is set so that one more run (every key sampled an hour later, through `record_samples`, as a run
writes it) folds the oldest day's 24 hours into one day bucket per key, and that run's publish is timed with this
code and with the earlier code side by side on copies of the same files (before ranges were recorded, a deletion
made the publish write the whole history).

The versions case (`--versions`): a raw snapshot table's history (history.<raw table>, chainrisk.store.versions)
of that many versions over VERSION_KEYS keys in 20 sources, every key's last version open, is published once
(whole); then one run snapshots one source of 10,000 keys, every value changed (record_versions closes 10,000
versions and opens 10,000, keeping the ledger as the writer does), and the publish is timed. The same is measured,
side by side, with another checkout's code (`--before DIR`, e.g. the main branch from `git archive` before the raw
versions' ledger, in a child process importing DIR's chainrisk), whose publisher hashed the whole table and the
whole published view for such a run.

    python benchmarks/publish_checks.py [--keys 10000] [--buckets 240 2435] [--fold-baseline DIR]
    python benchmarks/publish_checks.py --versions 2000000 20000000 --before /tmp/chainrisk-main
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
#: The chainrisk measured: this checkout's, or the one `--before` names (in the child process measuring it).
CODE = Path(os.environ.get("PUBLISH_CHECKS_CODE", ROOT))
sys.path.insert(0, str(CODE))
from chainrisk.store import ledger  # noqa: E402
from chainrisk.store.db import Store  # noqa: E402
from chainrisk.store.history import BUCKETS, SAMPLE_COLUMNS, HistorySettings, record_samples  # noqa: E402
from chainrisk.store.published import connect_reader, publish_file, read_manifest  # noqa: E402
from chainrisk.store.schema.history import ENCODE  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "publish_checks.json"


def _keys(keys: int) -> str:
    return f"""
        SELECT k::INTEGER + 1 AS key_id, 'aave-v3' AS protocol, 1::BIGINT AS chain_id, 'market-' || (k % 20) AS market,
            '0x' || md5(k::VARCHAR) || lpad(k::VARCHAR, 8, '0') AS wallet FROM range({keys}) t(k)"""


def _buckets(keys: int, first_hour: int, hours: int) -> str:
    """A SELECT of `hours` hour buckets for `keys` keys from hour `first_hour` on, in time order, every figure
    varying (a run's buckets share their blocks and times), as wallet_health_buckets stores them (ENCODE)."""
    return f"""
        SELECT {ENCODE} FROM (
        SELECT k::INTEGER + 1 AS key_id, 1::BIGINT AS chain_id, h * 3600 AS bucket_start,
            3600 AS bucket_seconds, 12::BIGINT AS samples, h * 300::BIGINT AS first_block,
            h * 3600::BIGINT AS first_timestamp, h * 300 + 299::BIGINT AS last_block,
            h * 3600 + 3300::BIGINT AS last_timestamp, hf AS health_factor,
            (hf * 1e18)::HUGEINT AS health_factor_wad, hf * 0.99 AS health_factor_min,
            h * 300 + 7::BIGINT AS health_factor_min_block, hf * 1.01 AS health_factor_max,
            1000 + hf * 997.3 AS collateral_usd, 700 + hf * 3.1 AS debt_usd, 800 + hf * 11.7 AS borrowing_power_usd,
            0.0 AS bad_debt_usd, 8000 AS liquidation_threshold_bps, 7500 AS ltv_bps, false AS liquidatable,
            0::BIGINT AS liquidatable_samples
        FROM (SELECT k, h, 1.05 + random() * 2 AS hf FROM range({keys}) t(k),
              range({first_hour}, {first_hour + hours}) u(h)) ORDER BY h, k)"""


def _measure(keys: int, buckets: int, folder: Path) -> dict[str, Any]:
    db = folder / f"history-{keys}x{buckets}.duckdb"
    with Store(db) as store:  # chainrisk's own schema, the buckets' ledger with it
        started = time.perf_counter()
        store.con.execute(f"INSERT INTO wallet_health_keys BY NAME {_keys(keys)}")
        store.con.execute(f"INSERT INTO wallet_health_buckets BY NAME {_buckets(keys, 0, buckets)}")
        ledger.rebuild(store.con, BUCKETS)  # as the runs that wrote them would have kept it
        built = time.perf_counter() - started
    started = time.perf_counter()
    publish_file(db)
    whole = time.perf_counter() - started
    with Store(db) as store:  # one run: an hour's new buckets, through the ledger as the writer keeps it
        con = store.con
        previous = int(con.execute("SELECT max(last_block) FROM wallet_health_buckets").fetchall()[0][0])
        new = f"SELECT * FROM wallet_health_buckets WHERE last_block > {previous}"
        con.execute(f"INSERT INTO wallet_health_buckets BY NAME {_buckets(keys, buckets, 1)}")
        ledger.add(con, BUCKETS, new)
    load = os.getloadavg()
    started = time.perf_counter()
    catalog = publish_file(db)
    publish_s = time.perf_counter() - started
    manifest = read_manifest(catalog) or {}
    with duckdb.connect(str(db), read_only=True) as con:
        floor_file = folder / "floor.parquet"
        started = time.perf_counter()
        con.execute(
            f"COPY (SELECT * REPLACE (health_factor_wad::DECIMAL(38,0) AS health_factor_wad) FROM "
            f"wallet_health_buckets WHERE last_block > {previous}) TO '{floor_file}' (FORMAT parquet, COMPRESSION zstd)"
        )
        floor_s = time.perf_counter() - started
    shutil.rmtree(db.with_name(db.name + ".published"), ignore_errors=True)
    db.unlink()
    entry = manifest.get("tables", {}).get(BUCKETS, {})
    return {
        "keys": keys,
        "buckets_stored": keys * (buckets + 1),
        "buckets_new": keys,
        "build_s": round(built, 2),
        "whole_publish_s": round(whole, 2),
        "publish_s": round(publish_s, 3),
        "publish_how": manifest.get("written", {}).get("tables"),
        "checked_by_ledger": bool(entry.get("checked_by_ledger")),
        "baseline_write_new_rows_only_s": round(floor_s, 3),
        "ratio_publish_to_baseline": round(publish_s / floor_s, 1),
        "load_average": [round(x, 2) for x in load],
    }


def _timed_publish(db: Path, code: Path | None) -> tuple[float, dict[str, Any]]:
    """Seconds `publish_file(db)` takes in its own process, with this code or the checkout `code`; the manifest."""
    script = (
        "import sys, time; from pathlib import Path; from chainrisk.store.published import publish_file; "
        "t = time.perf_counter(); publish_file(Path(sys.argv[1])); print(time.perf_counter() - t)"
    )
    code = code if code is not None else ROOT
    env = {**os.environ, "PYTHONPATH": str(code)}  # and run from there: `-c` puts the working directory first
    done = subprocess.run(
        # stdout only: a failing child's traceback (a checkout without abis/, say) reaches the terminal.
        [sys.executable, "-c", script, str(db)],
        env=env,
        cwd=code,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    folder = db.with_name(db.name + ".published")
    catalog = folder / (folder / "CURRENT").read_text().strip()
    return float(done.stdout.strip().splitlines()[-1]), read_manifest(catalog) or {}


def _measure_fold(keys: int, buckets: int, folder: Path, baseline: Path) -> dict[str, Any]:
    db = folder / f"fold-{keys}x{buckets}.duckdb"
    days = buckets // 24 - 1  # the next sample's window leaves exactly the oldest day behind
    with Store(db) as store:
        store.con.execute(f"INSERT INTO wallet_health_keys BY NAME {_keys(keys)}")
        store.con.execute(f"INSERT INTO wallet_health_buckets BY NAME {_buckets(keys, 0, buckets)}")
        ledger.rebuild(store.con, BUCKETS)
    publish_file(db)
    with Store(db) as store:  # the run: every key sampled in the next hour; its fold deletes the oldest day's hours
        block, hour = buckets * 300 + 5, buckets * 3600 + 60
        samples = store.con.sql(
            f"SELECT protocol, chain_id, market, wallet, {block}::BIGINT AS block_number, {hour}::BIGINT AS "
            "block_timestamp, 1.5 AS health_factor, (15 * 10::HUGEINT ** 17) AS health_factor_wad, "
            "1000.0 AS collateral_usd, 600.0 AS debt_usd, 800.0 AS borrowing_power_usd, 0.0 AS bad_debt_usd, "
            "8000 AS liquidation_threshold_bps, 7500 AS ltv_bps, false AS liquidatable FROM wallet_health_keys"
        ).pl()
        started = time.perf_counter()
        record_samples(store.con, samples.select(SAMPLE_COLUMNS), HistorySettings(hourly_days=days))
        run_s = time.perf_counter() - started
        folded = store.con.execute("SELECT count(*) FROM wallet_health_buckets WHERE bucket_seconds = 86400").fetchall()
    twin = folder / "baseline"
    shutil.rmtree(twin, ignore_errors=True)
    twin.mkdir()
    shutil.copyfile(db, twin / db.name)
    shutil.copytree(db.with_name(db.name + ".published"), twin / (db.name + ".published"))
    load = os.getloadavg()
    ours_s, manifest = _timed_publish(db, None)
    theirs_s, theirs = _timed_publish(twin / db.name, baseline)
    entry = manifest.get("tables", {}).get(BUCKETS, {})
    with connect_reader(db) as reader, duckdb.connect(str(db), read_only=True) as stored:
        check = "SELECT count(*), sum(hash(h)::HUGEINT) FROM wallet_health_history h"
        equal = reader.execute(check).fetchall() == stored.execute(check).fetchall()
    for path in (db, twin / db.name):
        shutil.rmtree(path.with_name(path.name + ".published"), ignore_errors=True)
        path.unlink()
    return {
        "keys": keys,
        "buckets_stored": keys * (buckets + 1) - 23 * keys,
        "day_buckets_after_fold": int(folded[0][0]),
        "fold_run_s": round(run_s, 2),
        "publish_s": round(ours_s, 3),
        "publish_how": manifest.get("written", {}).get("tables", {}).get(BUCKETS),
        "checked_by_ledger": bool(entry.get("checked_by_ledger")),
        "published_equal_to_table": equal,
        "baseline_publish_s": round(theirs_s, 3),
        "baseline_publish_how": theirs.get("written", {}).get("tables", {}).get(BUCKETS),
        "ratio_baseline_to_ours": round(theirs_s / ours_s, 1),
        "load_average": [round(x, 2) for x in load],
    }


#: Keys of the versions case: 20 sources of 10,000 keys (one run re-snapshots one source, all its values changed).
VERSION_KEYS = 200_000
SOURCE_KEYS = 10_000
RAW = "raw_bench_positions"
RAW_DDL = f"""CREATE TABLE IF NOT EXISTS {RAW} (chain_id BIGINT NOT NULL, market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL, block_number BIGINT NOT NULL, block_timestamp BIGINT NOT NULL,
    collateral HUGEINT NOT NULL, debt HUGEINT NOT NULL, note VARCHAR,
    PRIMARY KEY (chain_id, market, wallet, block_number))"""


def _versions(count: int) -> str:
    """A SELECT of about `count` versions over VERSION_KEYS keys, from 1 to 2 * count // VERSION_KEYS - 1 versions a
    key (a key's versions every 300 blocks, its last one open: the open versions are of every age, so a run closing
    some touches the whole table), in block order as the runs wrote them; amounts varying; no NULL (a NULL value made
    the main branch's view keep both versions of its key, so its publish rewrote the table whole: not what is
    measured here)."""
    most = 2 * count // VERSION_KEYS - 1
    return f"""
        SELECT 1::BIGINT AS chain_id, 'source-' || (k % 20) AS market, '0x' || lpad(k::VARCHAR, 40, '0') AS wallet,
            (v * 300 + k % 20)::BIGINT AS block_number, (1700000000 + block_number * 12)::BIGINT AS block_timestamp,
            (hash(k, v) % 1000000000000)::HUGEINT * 1000000000 AS collateral,
            (hash(v, k) % 1000000000000)::HUGEINT * 1000 AS debt, 'n' || (k % 5) AS note,
            if(v = n - 1, NULL, ((v + 1) * 300 + k % 20))::BIGINT AS valid_to_block
        FROM (SELECT k, 1 + (k // 20 * 7919) % {most} AS n FROM range({VERSION_KEYS}) t(k)),
            range({most}) u(v) WHERE v < n ORDER BY block_number, k"""


def _measure_versions(count: int, folder: Path) -> dict[str, Any]:
    from chainrisk.store.versions import ensure_history, record_versions

    db = folder / f"versions-{count}.duckdb"
    table = f"history.{RAW}"
    with Store(db) as store:
        started = time.perf_counter()
        store.ensure_tables(RAW_DDL)
        ensure_history(store.con, RAW)
        store.con.execute(f"INSERT INTO {table} BY NAME {_versions(count)}")
        store.con.execute(  # each source's latest snapshot, as the raw table holds it
            f"INSERT INTO {RAW} SELECT * EXCLUDE (valid_to_block) FROM {table} WHERE valid_to_block IS NULL"
        )
        ledger.rebuild(store.con, table)  # as the runs that wrote them would have kept it (the code that keeps one)
        built = time.perf_counter() - started
    started = time.perf_counter()
    publish_file(db)
    whole = time.perf_counter() - started
    with Store(db) as store:  # one run: source-0 snapshotted at a new block, every value changed
        con = store.con
        block = int(con.execute(f"SELECT max(block_number) FROM {table}").fetchall()[0][0]) + 300
        con.execute(
            f"CREATE TEMP TABLE incoming AS SELECT * REPLACE ({block}::BIGINT AS block_number, "
            f"(1700000000 + {block} * 12)::BIGINT AS block_timestamp, collateral + 1 AS collateral) FROM {RAW} "
            "WHERE market = 'source-0'"
        )
        con.execute("BEGIN")
        added = record_versions(con, RAW, 1, "source-0", block, "incoming")
        con.execute("COMMIT")
        stored = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    load = os.getloadavg()
    started = time.perf_counter()
    catalog = publish_file(db)
    publish_s = time.perf_counter() - started
    manifest = read_manifest(catalog) or {}
    shutil.rmtree(db.with_name(db.name + ".published"), ignore_errors=True)
    db.unlink()
    entry = manifest.get("tables", {}).get(table, {})
    import chainrisk

    return {
        "code": str(Path(chainrisk.__file__).resolve().parent.parent),
        "versions_stored": stored,
        "versions_closed": SOURCE_KEYS,
        "versions_added": added,
        "build_s": round(built, 2),
        "whole_publish_s": round(whole, 2),
        "publish_s": round(publish_s, 3),
        "publish_how": manifest.get("written", {}).get("tables", {}).get(table),
        "checked_by_ledger": bool(entry.get("checked_by_ledger")),
        "load_average": [round(x, 2) for x in load],
    }


def _versions_side_by_side(count: int, before: Path, folder: Path) -> dict[str, Any]:
    """The versions case with `before`'s code (a child process), then with this checkout's."""
    child = subprocess.run(
        [sys.executable, __file__, "--measure-versions", str(count)],
        env={**os.environ, "PUBLISH_CHECKS_CODE": str(before)},
        stdout=subprocess.PIPE,  # its traceback, if it fails, reaches the terminal
        text=True,
        check=True,
    )
    old = json.loads(child.stdout.strip().splitlines()[-1])
    new = _measure_versions(count, folder)
    return {
        **new,
        "before_code": old["code"],
        "before_publish_s": old["publish_s"],
        "before_publish_how": old["publish_how"],
        "before_load_average": old["load_average"],
        "publish_speedup": round(old["publish_s"] / new["publish_s"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--buckets", type=int, nargs="+", default=[240, 2435], help="hour buckets per key stored")
    parser.add_argument("--fold-baseline", help="earlier chainrisk code (a folder holding chainrisk/) for the fold")
    parser.add_argument("--versions", type=int, nargs="+", help="the versions case instead: versions stored")
    parser.add_argument("--before", type=Path, help="a checkout whose code the versions case also measures")
    parser.add_argument("--measure-versions", type=int, help=argparse.SUPPRESS)  # the child process of --before
    args = parser.parse_args()
    if args.measure_versions:
        with tempfile.TemporaryDirectory(prefix="chainrisk-publish-checks-") as folder:
            print(json.dumps(_measure_versions(args.measure_versions, Path(folder))))
        return
    command = "python benchmarks/publish_checks.py " + " ".join(sys.argv[1:])
    result: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="chainrisk-publish-checks-") as folder:
        if args.versions:
            if args.before is None:
                parser.error("--versions needs --before (the code it is compared with)")
            sizes = []
            for count in args.versions:
                figures = _versions_side_by_side(count, args.before, Path(folder))
                print(json.dumps(figures), flush=True)
                sizes.append(figures)
            result["versions"] = {"command": command, "before": "main f0ee85b (git archive)", "sizes": sizes}
        else:
            sizes, folds = [], []
            for buckets in args.buckets:
                figures = _measure(args.keys, buckets, Path(folder))
                print(json.dumps(figures), flush=True)
                sizes.append(figures)
                if args.fold_baseline:
                    fold = _measure_fold(args.keys, buckets, Path(folder), Path(args.fold_baseline))
                    print(json.dumps(fold), flush=True)
                    folds.append(fold)
            result.update(command=command, sizes=sizes)
            if folds:
                result["folds"] = folds
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
