"""Steady-state runs of two checkouts side by side: the same chain, the same changes, each checkout's `chainrisk run
--devnet` on its own database, alternately, so that both meet the same machine load.

The chain is benchmarks/scale.py's (`--accounts` Aave borrowers, `--morpho-markets` markets holding
`--morpho-positions` borrowers, written into chain state). Each checkout (`--baseline`, `--candidate`: folders of a
chainrisk source tree, put first on PYTHONPATH of the runs) makes its own first run, then before each of `--runs`
steady steps `--changed` wallets borrow more in a block five chain minutes later and both checkouts run, the order
swapped every step. Per run: wall seconds of the process, the run's own figure, its phases as the run records them
(`runs.summary`: each market's index, the score, the look-through; the rest is publishing and the process's start),
peak memory and the score book's size. The ratio is the candidate's wall time over the baseline's. Both databases are
then checked against the contracts (scale.py's --verify). Figures to benchmarks/results/steady-ab-ACCOUNTS.json, or
`--output`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
import scale  # the benchmark beside this one: its chain, its run, its check against the contracts

from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.node import free_port, stop_process
from chainrisk.devnet.prices import parse_start


def _phases(db: Path) -> dict[str, Any]:
    """The last run's phases as it recorded them: index (every market), score, chains, and the rest of its time."""
    with duckdb.connect(str(db), read_only=True) as con:
        raw = con.execute("SELECT summary FROM runs ORDER BY run_id DESC LIMIT 1").fetchall()[0][0]
    summary = json.loads(raw)
    # The index phase's wall time where the run records it (its markets read side by side), else its markets' sum.
    index = float(summary.get("index_seconds") or sum(float(r["seconds"]) for r in summary["indexed"]))
    score = float(summary["score"]["seconds"]) if summary["score"] else 0.0
    chains = sum(float(c["seconds"]) for c in summary["chains"])
    total = float(summary["line"].split(" in ", 1)[1].split(" s", 1)[0])
    return {
        "index_s": round(index, 1),
        "score_s": round(score, 1),
        "chains_s": round(chains, 1),
        "rest_s": round(total - index - score - chains, 1),
        "score_path": summary["score"]["path"] if summary["score"] else None,
    }


def _run(tree: Path, db: Path, state: Path) -> dict[str, Any]:
    # `python -m` puts the working folder first on sys.path, before PYTHONPATH: the run starts in its tree.
    os.environ["PYTHONPATH"] = str(tree)
    os.chdir(tree)
    run = scale._run(db, state)
    return {**run, **_phases(db), **scale._sizes_mib(db)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="a chainrisk checkout (the code before)")
    parser.add_argument("--candidate", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--accounts", type=int, default=40_000)
    parser.add_argument("--morpho-markets", type=int, default=200)
    parser.add_argument("--morpho-positions", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verify", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--adaptive-irm", action="store_true", help="Morpho markets under the AdaptiveCurveIrm stand-in (scale.py's)"
    )
    parser.add_argument("--output", type=Path, help="results file (default results/steady-ab-ACCOUNTS.json)")
    args = parser.parse_args()
    output = args.output.resolve() if args.output else None  # the runs change the working folder
    trees = {"baseline": args.baseline.resolve(), "candidate": args.candidate.resolve()}
    for tree in trees.values():
        if not (tree / "chainrisk" / "__init__.py").is_file():
            raise SystemExit(f"{tree} is not a chainrisk checkout")
    for name in trees:  # each tree's own package must be the one its runs import
        os.environ["PYTHONPATH"] = str(trees[name])
        found = subprocess.run(
            [sys.executable, "-c", "import chainrisk; print(chainrisk.__file__)"],
            cwd=trees[name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not found.startswith(str(trees[name])):
            raise SystemExit(f"runs of {name} would import {found}, not {trees[name]}")
    rng = random.Random(args.seed)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP")) as folder:
        state = Path(folder)
        options = DevnetOptions(
            50, 1, args.seed, free_port(), parse_start("2022-05-01"), 24, anvil_args=("--prune-history", "256")
        )
        manifest = build_devnet(options, state / "devnet", detach=False)
        pid = int(manifest["pid"])
        try:
            loaded = scale._load(manifest, args, rng)
            dbs = {name: state / name / "scale.duckdb" for name in trees}
            for name, tree in trees.items():
                dbs[name].parent.mkdir()
                first = _run(tree, dbs[name], state)
                print(f"{name} first run: {first['summary']}", flush=True)
                runs[name].append(first)
            for step in range(args.runs):
                loaded["sender"].timestamp += scale.RUN_EVERY_S - 12
                scale._change(manifest, loaded, args.changed, rng)
                order = list(trees) if step % 2 == 0 else list(reversed(trees))
                for name in order:
                    run = _run(trees[name], dbs[name], state)
                    print(f"{name} steady run {step + 1}: {run['seconds']} s; {run['summary']}", flush=True)
                    runs[name].append(run)
            verified = {name: scale._verify(dbs[name], manifest, loaded, rng, args.verify) for name in trees}
        finally:
            stop_process(pid)
    steady = {name: [r["seconds"] for r in found[1:]] for name, found in runs.items()}
    result = {
        "command": (
            f"python benchmarks/steady_ab.py --baseline {args.baseline} --accounts {args.accounts} --morpho-markets "
            f"{args.morpho_markets} --morpho-positions {args.morpho_positions} --changed {args.changed} --runs "
            f"{args.runs} --verify {args.verify} --seed {args.seed}"
        ),
        "trees": {name: str(tree) for name, tree in trees.items()},
        "runs": runs,
        "steady_wall_s": steady,
        "steady_ratio_candidate_over_baseline": [
            round(c / b, 3) for b, c in zip(steady["baseline"], steady["candidate"], strict=True)
        ],
        "median_steady_ratio": round(
            statistics.median(c / b for b, c in zip(steady["baseline"], steady["candidate"], strict=True)), 3
        ),
        "verified_against_contracts": verified,
        "load_average_at_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = output or scale.RESULTS / f"steady-ab-{args.accounts}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("steady_wall_s", "steady_ratio_candidate_over_baseline")}, indent=2))
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
