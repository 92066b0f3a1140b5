"""The wheel carries everything chainrisk reads at run time (abis/, queries/, each protocol's views and lenses): built,
installed into a fresh virtual environment, run from a folder outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed; the dependencies come from this test's environment through a
    .pth file (not its chainrisk: the editable install's finder lives in a .pth that a path added this way never
    runs)."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (folder / "dist").glob("chainrisk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "chainrisk/_data/abis/aave-v3/IPool.json" in names
    assert "chainrisk/_data/queries/mart_market_summary.sql" in names
    assert "chainrisk/protocols/aave_v3/queries/stg_aave_v3_events.sql" in names
    assert "chainrisk/protocols/aave_v3/contracts/AaveV3AccountsLens.bin-runtime" in names
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


def _chainrisk(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHAINRISK_HOME")}
    return subprocess.run(
        [str(venv / "bin" / "chainrisk"), *args], cwd=cwd, capture_output=True, text=True, env=environment, timeout=600
    )


def test_the_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import chainrisk; print(chainrisk.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(installed) in done.stdout and str(ROOT) not in done.stdout


def test_query_list_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    done = _chainrisk(installed, tmp_path, "query", "--list")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert {"mart_market_summary", "stg_market_labels", "stg_lending_events", "stg_aave_v3_events"} <= names


def test_index_and_score_the_devnet_from_the_wheel(installed: Path, devnet: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "wheel.duckdb"
    rpc = ["--rpc-url", devnet["rpc_url"], "--db", str(db)]
    done = _chainrisk(installed, tmp_path, "index", "--address", devnet["aave_v3"]["pool_addresses_provider"], *rpc)
    assert done.returncode == 0, done.stderr
    done = _chainrisk(installed, tmp_path, "score", "--db", str(db))
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        wallets = con.execute("SELECT count(*) FROM wallet_risk").fetchall()[0][0]
        views = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'mart_market_summary'").fetchall()
    assert wallets > 100 and views == [(1,)]
