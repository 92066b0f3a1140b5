"""Shared fixtures: one devnet (real Aave V3 and Morpho Blue bytecode on anvil) for the whole test session, and the
full devnet (every protocol `chainrisk devnet up` builds) for the tests that need all of them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chainrisk.devnet.build import DevnetOptions, build_devnet
from chainrisk.devnet.extras import ALL_PROTOCOLS, BASE_PROTOCOLS
from chainrisk.devnet.node import free_port, stop_process
from chainrisk.devnet.prices import parse_start
from chainrisk.rpc import RpcClient
from chainrisk.rpc import client as rpc_client
from tests.webhooks import Hooks

#: The command line runs writers at niceness 10 (CHAINRISK_NICE) so that readers go first. In the suite, commands run
#: as subprocesses beside the other worker's normal-priority processes, where niceness would starve them unevenly and
#: make the tests that kill a run part-way (timed from an earlier run) miss it; test_watch sets it back to check it.
os.environ["CHAINRISK_NICE"] = "0"

#: `make test` runs the suite on three workers (pytest-xdist; Makefile TEST_WORKERS). Each test file runs whole on one
#: worker (its module fixtures are built once), and files sharing an expensive session fixture share a worker, so the
#: session builds it once: the group each such file belongs to, named by that fixture.
SHARED_FIXTURE_GROUPS = {
    "full_devnet": (
        "tests/test_devnet_all.py",
        "tests/test_queries.py",
        "tests/test_parameter_changes.py",
        "tests/test_lens_fallback.py",
    ),
    "risk_db": ("tests/test_app.py", "tests/test_browser.py"),
}
GROUP_OF_FILE = {file: fixture for fixture, files in SHARED_FIXTURE_GROUPS.items() for file in files}
#: The longest groups start first, so the workers finish together; the rest follow in collection order.
SLOWEST_FIRST = (
    "risk_db",
    "full_devnet",
    "tests/test_soak.py",
    "tests/test_watch.py",
    "tests/test_credit.py",
    "tests/test_export_spark.py",
    "tests/test_index_aave.py",
    "tests/test_faults.py",
    "tests/test_aave36_devnet.py",
    "tests/test_reorg_crash.py",
    "tests/test_wheel.py",
)


def _group(nodeid: str) -> str:
    file = nodeid.split("::", 1)[0]
    return GROUP_OF_FILE.get(file, file)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work is handed out a group at a time (a file, or the files of one SHARED_FIXTURE_GROUPS entry)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest groups first; a file that uses a shared session fixture must be in that fixture's group (else two
    workers would each build it)."""
    for item in items:
        for fixture in SHARED_FIXTURE_GROUPS:
            if fixture in getattr(item, "fixturenames", ()) and _group(item.nodeid) != fixture:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the session fixture {fixture}: add its file to "
                    f"SHARED_FIXTURE_GROUPS[{fixture!r}] in tests/conftest.py"
                )
    rank = {group: index for index, group in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(_group(item.nodeid), len(rank)))


#: Small enough for CI, long enough to cross the May 2022 crash (ETH -30 % from 1 to 12 May), and enough
#: wallets for a couple of hundred Morpho positions.
TEST_WALLETS, TEST_DAYS, TEST_SEED, TEST_START, TEST_STEP_HOURS = 700, 14.0, 11, "2022-05-01", 4


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("devnet")
    options = DevnetOptions(
        wallets=TEST_WALLETS,
        days=TEST_DAYS,
        seed=TEST_SEED,
        port=free_port(),
        start=parse_start(TEST_START),
        step_hours=TEST_STEP_HOURS,
        protocols=BASE_PROTOCOLS,
    )
    manifest = build_devnet(options, folder, detach=False)
    manifest["state_dir"] = str(folder)
    yield manifest
    stop_process(int(manifest["pid"]))


#: The full devnet's main population: smaller than the session devnet's (the other protocols bring their own).
FULL_WALLETS, FULL_DAYS, FULL_SEED = 80, 6.0, 5


@pytest.fixture(scope="session")
def full_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every protocol on one chain, as `chainrisk devnet up` builds it by default. Its manifest's "state_dir" (what
    `devnet status --state-dir` takes) is a folder named devnet: CHAINRISK_STATE_DIR=<its parent> makes `--devnet`
    commands read it."""
    state: Path = tmp_path_factory.mktemp("full-devnet")
    options = DevnetOptions(
        wallets=FULL_WALLETS,
        days=FULL_DAYS,
        seed=FULL_SEED,
        port=free_port(),
        start=parse_start(TEST_START),
        step_hours=TEST_STEP_HOURS,
        protocols=ALL_PROTOCOLS,
    )
    manifest = build_devnet(options, state / "devnet", detach=False)
    manifest["state_dir"] = str(state / "devnet")
    yield manifest
    stop_process(int(manifest["pid"]))


@pytest.fixture(scope="session")
def full_db(full_devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`chainrisk run --devnet` (index, score, publish) into a new file, reading the full devnet's manifest."""
    from chainrisk.cli import main

    db: Path = tmp_path_factory.mktemp("full-run") / "chainrisk.duckdb"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHAINRISK_STATE_DIR", str(Path(full_devnet["state_dir"]).parent))
        assert main(["run", "--devnet", "--db", str(db)]) == 0
    return db


@pytest.fixture(scope="session")
def rpc(devnet: dict[str, Any]) -> Iterator[RpcClient]:
    with RpcClient(devnet["rpc_url"]) as client:
        yield client


@pytest.fixture(scope="session")
def scored_db(devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session devnet (Aave V3 and Morpho Blue) indexed, scored and looked through into a DuckDB file."""
    from chainrisk.config import devnet_config
    from chainrisk.jobs.chains import index_chains
    from chainrisk.jobs.index import index_market
    from chainrisk.jobs.score import score

    db: Path = tmp_path_factory.mktemp("scored") / "chainrisk.duckdb"
    for market in devnet_config(devnet, db).markets:
        index_market(market.protocol, devnet["rpc_url"], market.address, db, options=market.options, name=market.name)
    score(db)
    index_chains(devnet["rpc_url"], db)
    return db


@pytest.fixture(scope="session")
def risk_db(scored_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scored session database with every risk model run on it through the command line (published):
    the AppTest risk pages and the browser test read it (copy it before changing it)."""
    from tests.databases import with_risk_runs

    return with_risk_runs(scored_db, tmp_path_factory.mktemp("risk"))


@pytest.fixture()
def hooks() -> Iterator[Hooks]:
    """A local webhook receiver (tests/webhooks.py), stopped after the test."""
    receiver = Hooks()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, Any]]]:
    """Every HTTP exchange the process's clients make from now on: its calls (method, params), in order."""
    sent: list[list[tuple[str, Any]]] = []
    exchange = rpc_client.RpcClient._exchange

    def recorded(self: RpcClient, calls: Sequence[Any], pending: list[int]) -> dict[int, dict[str, Any]]:
        sent.append([(calls[i][0], list(calls[i][1])) for i in pending])
        return exchange(self, calls, pending)

    monkeypatch.setattr(rpc_client.RpcClient, "_exchange", recorded)
    return sent
