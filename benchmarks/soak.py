"""Soak: `chainrisk watch --every 1s` for `--seconds` (default ten minutes) on a fresh devnet whose prices move
every 0.5-2.5 s, with `--readers` threads reading the published database (one through the SQL console) the whole
time. Reports reads, reader errors, runs, snapshots and lost snapshots (an `ok` run's block missing from the scores)
to benchmarks/results/soak.json. tests/test_soak.py runs the same harness for one minute in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chainrisk.devnet.build import DevnetOptions, build_devnet  # noqa: E402
from chainrisk.devnet.extras import BASE_PROTOCOLS  # noqa: E402
from chainrisk.devnet.node import stop_process  # noqa: E402
from tests.soak import soak  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "soak.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--wallets", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chainrisk-soak-") as folder:
        options = DevnetOptions.demo(args.wallets, args.seed, days=10, protocols=BASE_PROTOCOLS)
        manifest = build_devnet(options, Path(folder) / "devnet", detach=False)
        try:
            report = soak(manifest, Path(folder) / "soak", args.seconds, readers=args.readers, seed=args.seed)
        finally:
            stop_process(int(manifest["pid"]))
    result = {"command": "python benchmarks/soak.py " + " ".join(sys.argv[1:]), **report.as_dict()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if report.reader_errors or report.lost_snapshots or report.watch_exit != 0:
        raise SystemExit("soak found problems (see above)")


if __name__ == "__main__":
    main()
