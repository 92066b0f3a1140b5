"""What every chainrisk process pays before and around its work, for two checkouts side by side: the tests' devnet
built by each (its population's seconds, and whether both built the same chain), then `chainrisk run --devnet` of
each on its own database, alternately, one empty block before each pair (the order swapped every pair), and
`chainrisk --help`, alternately, then the COMMANDS (a score, a VaR with its backtest) of each, alternately.

The test suite starts chainrisk ~90 times and builds several devnets; a user's scheduled run starts it every few
minutes. The baseline is a git revision (`--baseline-ref`, extracted whole with `git archive`) or a folder; each side
runs with its tree first on PYTHONPATH and as its working folder, its bytecode compiled first (PYTHONDONTWRITEBYTECODE
may be set). Both sides share this checkout's node_modules, solc cache and price history. Figures to
benchmarks/results/process-start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chainrisk.devnet.node import free_port  # noqa: E402
from chainrisk.devnet.toolchain import shared_prices_dir  # noqa: E402
from chainrisk.rpc import RpcClient  # noqa: E402

#: The tests' session devnet (tests/conftest.py): Aave V3.0.2 and Morpho Blue, 700 wallets, 14 days from 2022-05-01.
DEVNET = ["--wallets", "700", "--days", "14", "--seed", "11", "--start", "2022-05-01", "--step-hours", "4"]
DEVNET += ["--protocols", "aave-v3,morpho-blue"]
#: Other commands timed alternately after the runs, each on the side's own database (`--db` appended): a score
#: (several Store opens, the views checked, a publish) and a VaR with its backtest (the risk commands' imports, the
#: Student-t fits of every backtest step).
COMMANDS = {
    "score": ["score"],
    "risk_var": ["risk", "var", "--scenarios", "500", "--horizons", "24", "--backtest", "2022-05-01..2022-05-14"],
}
#: Manifest keys that differ between two builds of one chain (where and when it runs).
LOCAL_KEYS = {"timings", "pid", "rpc_url", "port", "state_dir", "options", "log"}


def _tree(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _chainrisk(tree: Path, state: Path, *args: str) -> float:
    """Seconds of wall time of `python -m chainrisk.cli args` started in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CHAINRISK_STATE_DIR": str(state)}
    env["CHAINRISK_PRICES_DIR"] = str(shared_prices_dir())  # this checkout's: a baseline tree lies elsewhere
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", *args], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{tree}: chainrisk {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return seconds


def _build(tree: Path, state: Path) -> dict[str, Any]:
    """The tests' devnet built by `tree` (left running); its manifest."""
    port = free_port()
    seconds = _chainrisk(
        tree, state, "devnet", "up", *DEVNET, "--port", str(port), "--state-dir", str(state / "devnet")
    )
    manifest: dict[str, Any] = json.loads((state / "devnet" / "manifest.json").read_text())
    manifest["wall_s"] = round(seconds, 2)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", help="git revision of the baseline")
    parser.add_argument("--baseline", type=Path, help="or a folder holding the baseline's tree")
    parser.add_argument("--runs", type=int, default=8, help="runs of each side (default 8)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "process-start.json")
    args = parser.parse_args()
    if (args.baseline_ref is None) == (args.baseline is None):
        raise SystemExit("give --baseline-ref or --baseline")
    work = Path(tempfile.mkdtemp(prefix="process-start-"))
    baseline = args.baseline or _tree(args.baseline_ref, work / "baseline")
    trees = {"baseline": baseline.resolve(), "current": ROOT}
    beside = baseline.resolve().parent / "shared"  # the price history the risk models read beside a tree
    if not beside.exists():
        beside.symlink_to(shared_prices_dir().parents[2])
    solc = ROOT / ".chainrisk" / "solc"
    for name, tree in trees.items():
        if not (tree / "node_modules").exists():
            (tree / "node_modules").symlink_to(ROOT / "node_modules")
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "chainrisk")], check=True)
        state = work / name
        (state / "solc").parent.mkdir(parents=True, exist_ok=True)
        if solc.is_dir():
            shutil.copytree(solc, state / "solc")  # the compilations as this checkout has them: no solcjs timed
    builds = {}
    for name, tree in trees.items():
        builds[name] = _build(tree, work / name)
        if name == "baseline":
            _chainrisk(tree, work / name, "devnet", "down", "--state-dir", str(work / name / "devnet"))
    same = {k: v for k, v in builds["baseline"].items() if k not in LOCAL_KEYS | {"wall_s"}} == {
        k: v for k, v in builds["current"].items() if k not in LOCAL_KEYS | {"wall_s"}
    }
    # Both sides run against the current side's devnet (its manifest), each on its own database; the devnet is
    # stopped however the timing ends (a command that fails exits through SystemExit).
    state = work / "current"
    try:
        runs: dict[str, list[float]] = {name: [] for name in trees}
        helps: dict[str, list[float]] = {name: [] for name in trees}
        others: dict[str, dict[str, list[float]]] = {command: {name: [] for name in trees} for command in COMMANDS}
        for name, tree in trees.items():
            _chainrisk(tree, state, "run", "--devnet", "--db", str(work / f"{name}.duckdb"))  # first run, not timed
        with RpcClient(builds["current"]["rpc_url"]) as rpc:
            for step in range(args.runs):
                rpc.call("evm_mine")
                order = list(trees) if step % 2 == 0 else list(reversed(trees))
                for name in order:
                    runs[name].append(
                        _chainrisk(trees[name], state, "run", "--devnet", "--db", str(work / f"{name}.duckdb"))
                    )
                for name in order:
                    helps[name].append(_chainrisk(trees[name], state, "--help"))
                for command, words in COMMANDS.items():
                    for name in order:
                        database = str(work / f"{name}.duckdb")
                        others[command][name].append(_chainrisk(trees[name], state, *words, "--db", database))
    finally:
        _chainrisk(ROOT, state, "devnet", "down", "--state-dir", str(state / "devnet"))
    report = {
        "command": "python benchmarks/process_start.py " + " ".join(sys.argv[1:]),
        "devnet": " ".join(DEVNET),
        "same_chain": same,
        "build": {n: {"wall_s": b["wall_s"], **b["timings"]} for n, b in builds.items()},
        "run_s": {n: [round(x, 3) for x in v] for n, v in runs.items()},
        "help_s": {n: [round(x, 3) for x in v] for n, v in helps.items()},
        "run_mean_s": {n: round(statistics.mean(v), 3) for n, v in runs.items()},
        "help_mean_s": {n: round(statistics.mean(v), 3) for n, v in helps.items()},
        "run_ratio": round(statistics.mean(runs["current"]) / statistics.mean(runs["baseline"]), 3),
        "help_ratio": round(statistics.mean(helps["current"]) / statistics.mean(helps["baseline"]), 3),
        "commands": {
            command: {
                "words": COMMANDS[command],
                "s": {n: [round(x, 3) for x in v] for n, v in times.items()},
                "mean_s": {n: round(statistics.mean(v), 3) for n, v in times.items()},
                "ratio": round(statistics.mean(times["current"]) / statistics.mean(times["baseline"]), 3),
            }
            for command, times in others.items()
        },
        "population_ratio": round(
            builds["current"]["timings"]["population_s"] / builds["baseline"]["timings"]["population_s"], 3
        ),
        "load_average": os.getloadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_s") or "mean" in k}, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
