"""Hostile and bad input: each case ends in one `chainrisk: error:` line naming the problem and the fix, a non-zero
exit, no traceback, no secret shown, and every file of a database that already holds data byte-identical."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from eth_utils.address import is_checksum_address, to_checksum_address

import chainrisk.errors
import chainrisk.rpc.client
from chainrisk.cli import main
from chainrisk.devnet.node import free_port
from chainrisk.jobs.lock import writer_lock
from chainrisk.store import published
from chainrisk.store.published import DATA, POINTER, current_copy, published_dir
from chainrisk.store.schema import SCHEMA_VERSION

#: prctl option that removes a capability from the bounding set (linux/prctl.h).
PR_CAPBSET_DROP = 24
#: A 32-hex API key as Infura puts it in the path, and a 64-hex one as Ankr does.
INFURA_KEY = "4f9c2e1d7b3a45c8a0e6d2b1c9f87e35"
ANKR_KEY = "9d3b" * 16


# -- the database every case runs against, and what "nothing changed" means --------------------------------------
def _tree(root: Path) -> dict[str, str]:
    """Every file (by SHA-256) and folder under `root`: the published copies, lock files and configs included."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    return found


def _copy_database(scored_db: Path, folder: Path) -> Path:
    """The session's scored database and its published copies, as a user's folder after earlier runs holds them
    (writing commands remove their lock file when they end, so none is left)."""
    folder.mkdir(parents=True)
    db = folder / scored_db.name
    shutil.copyfile(scored_db, db)
    shutil.copytree(published_dir(scored_db), published_dir(db))
    return db


def _tables(db: Path) -> dict[str, tuple[Any, ...]]:
    """Row count and a content hash of every table: equal when the stored data is equal."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {
            t: con.execute(f'SELECT count(*), sum(hash(t)) FROM (SELECT * FROM "{t}") t').fetchall()[0] for t in names
        }


# -- fake endpoints ------------------------------------------------------------------------------------------------
class _FakeNode(BaseHTTPRequestHandler):
    """Loopback HTTP server answering by path: /html a web page, /json JSON that is not JSON-RPC, /junk JSON-RPC
    envelopes whose results are not hex quantities."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path.startswith("/html"):
            self._send(b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
        elif self.path.startswith("/json"):
            self._send(json.dumps({"status": "ok", "message": "hello"}).encode(), "application/json")
        else:
            requests = json.loads(body)
            items = requests if isinstance(requests, list) else [requests]
            answer = [{"jsonrpc": "2.0", "id": r["id"], "result": "hello"} for r in items]
            self._send(json.dumps(answer).encode(), "application/json")

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def fake_node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeNode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retry waits (the retries still happen, just without sleeping); no secret or RPC from earlier tests or
    the environment."""
    fast_time = SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    fast_time.sleep = lambda _s: None
    monkeypatch.setattr(chainrisk.rpc.client, "time", fast_time)
    monkeypatch.setattr(chainrisk.errors, "_SECRETS", set())
    monkeypatch.delenv("ETH_RPC_URL", raising=False)


# -- the cases -----------------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    root: Path  #: everything under it is compared before and after
    db: Path  #: a copy of the scored devnet database
    devnet: dict[str, Any]
    fake_node: str
    monkeypatch: pytest.MonkeyPatch
    closed_port: int = field(default_factory=free_port)

    @property
    def rpc(self) -> list[str]:
        return ["--rpc-url", self.devnet["rpc_url"], "--db", str(self.db)]

    @property
    def aave(self) -> str:
        return str(self.devnet["aave_v3"]["pool_addresses_provider"])

    @property
    def morpho(self) -> str:
        return str(self.devnet["morpho_blue"]["morpho"])

    @property
    def morpho_index(self) -> list[str]:
        """`index` of the devnet's Morpho Blue with its protocol named (so nothing checks it as another protocol)."""
        return ["index", "--protocol", "morpho-blue", "--address", self.morpho]

    def toml(self, body: str, *, market: bool = True, rpc_url: str | None = None) -> str:
        """A config file naming the copied database, the RPC (the devnet's by default), by default the devnet's
        Aave market, and `body`."""
        path = self.root / "chainrisk.toml"
        head = f'db = "{self.db}"\nrpc_url = "{rpc_url or self.devnet["rpc_url"]}"\n'
        markets = f'[[markets]]\nprotocol = "aave-v3"\naddress = "{self.aave}"\n' if market else ""
        path.write_text(head + body + "\n" + markets)
        return str(path)

    def file(self, name: str, content: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def foreign_db(self) -> Path:
        """A DuckDB file of another program's, with a `positions` table of its own."""
        path = self.root / "other.duckdb"
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE positions (id INTEGER, note VARCHAR)")
        return path

    def devnet_state(self) -> Path:
        """A state folder whose devnet manifest is the session devnet's (what `--devnet` reads)."""
        folder = self.root / "state"
        (folder / "devnet").mkdir(parents=True)
        (folder / "devnet" / "manifest.json").write_text(json.dumps(self.devnet))
        return folder

    def stopped_devnet_state(self) -> Path:
        """A state folder whose devnet manifest names a process that is gone (a devnet stopped)."""
        folder = self.root / "stopped"
        (folder / "devnet").mkdir(parents=True)
        (folder / "devnet" / "manifest.json").write_text(json.dumps({**self.devnet, "pid": 2**22 + 1}))
        return folder

    def newer_schema_db(self) -> Path:
        db = self.root / "future.duckdb"
        shutil.copyfile(self.db, db)
        with duckdb.connect(str(db)) as con:
            con.execute("UPDATE schema_version SET version = ?", [SCHEMA_VERSION + 1])
        return db


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Ctx], list[str]]
    expect: tuple[str, ...]  #: fragments the error line must hold: the problem, and the fix where it is given
    code: int = 2
    secret: str | None = None  #: must appear nowhere: stdout, stderr, log records
    env: Callable[[Ctx], dict[str, str]] | None = None  #: environment variables set for the case


def _hostile_sql(sql: str, *expect: str) -> Case:
    return Case(f"sql: {sql}", lambda c: ["sql", sql, "--db", str(c.db)], ("query refused", *expect))


CASES = [
    # Addresses: the shape is checked before anything is contacted; EIP-55 letter case is not enforced.
    Case(
        "address not hex",
        lambda c: ["index", "--address", "0x" + "zz" * 20, *c.rpc],
        ("--address", "is not a 20-byte hex address", "give 0x followed by 40 hex digits"),
    ),
    Case(
        "address too short",
        lambda c: ["index", "--address", "0x1234", *c.rpc],
        ("'0x1234' is not a 20-byte hex address", "40 hex digits"),
    ),
    Case(
        "address without 0x",
        lambda c: ["index", "--address", c.aave[2:], *c.rpc],
        ("is not a 20-byte hex address", "give 0x followed by"),
    ),
    Case(
        "usd oracle not an address",
        lambda c: ["index", "--protocol", "morpho-blue", "--address", c.morpho, "--usd-oracle", "oracle", *c.rpc],
        ("--usd-oracle: 'oracle' is not a 20-byte hex address",),
    ),
    # Names.
    Case(
        "unknown preset",
        lambda c: ["index", "--market", "aave-v3-mars", *c.rpc],
        ("unknown market 'aave-v3-mars'", "did you mean aave-v3-", "`chainrisk presets` lists all"),
    ),
    Case(
        "unknown protocol",
        lambda c: ["index", "--protocol", "compound-v9", "--address", c.aave, *c.rpc],
        ("unknown protocol 'compound-v9'", "known: aave-v3, ", "morpho-blue"),
    ),
    Case(
        "unknown preset in the config",
        lambda c: ["index", "--config", c.toml('[[markets]]\npreset = "nope"')],
        ("unknown market 'nope'", "`chainrisk presets` lists all"),
    ),
    # The chain and the contract behind an address.
    Case(
        "wrong chain id",
        lambda c: [
            "index",
            "--config",
            c.toml(f'[[markets]]\nprotocol = "aave-v3"\naddress = "{c.aave}"\nchain_id = 1', market=False),
        ],
        ("the RPC serves chain 31337", "on chain 1"),
    ),
    Case(
        "mainnet preset on the devnet",
        lambda c: ["index", "--market", "aave-v3-ethereum", *c.rpc],
        ("the RPC serves chain 31337", "on chain 1"),
    ),
    Case(
        "wallet (no contract)",
        lambda c: ["index", "--address", c.devnet["wallets"][0], *c.rpc],
        ("no contract at", "check --address and --rpc-url"),
    ),
    Case(
        "morpho address as aave-v3",
        lambda c: ["index", "--address", c.morpho, *c.rpc],
        ("is not an Aave V3 PoolAddressesProvider",),
    ),
    Case(
        "aave address as morpho-blue",
        lambda c: ["index", "--protocol", "morpho-blue", "--address", c.aave, *c.rpc],
        ("is not a Morpho Blue singleton",),
    ),
    Case(
        "erc-20 token as aave-v3",
        lambda c: ["index", "--address", c.devnet["tokens"]["USDC"], *c.rpc],
        ("is not an Aave V3 PoolAddressesProvider",),
    ),
    Case(
        "erc-20 token as usd oracle",
        lambda c: [*c.morpho_index, "--usd-oracle", c.devnet["tokens"]["USDC"], *c.rpc],
        ("does not answer BASE_CURRENCY_UNIT", "must be an AaveOracle-compatible contract"),
    ),
    # Config files.
    Case(
        "malformed toml",
        lambda c: ["index", "--config", str(c.file("bad.toml", b"[[markets]\nprotocol = aave"))],
        ("is not valid TOML", "line 1", "fix that line"),
    ),
    Case(
        "config not text",
        lambda c: ["run", "--config", str(c.file("bin.toml", b"\xff\xfe\x00garbage\x81"))],
        ("is not a UTF-8 text file", "give --config a chainrisk.toml"),
    ),
    Case(
        "config missing",
        lambda c: ["run", "--config", str(c.root / "missing.toml")],
        ("no config file at", "check the --config path"),
    ),
    Case(
        "unknown top-level key",
        lambda c: ["index", "--config", c.toml('rpc = "http://x"')],
        ("unknown key 'rpc'", "known: aggregate_calls, alerts, chains, confirmations, db", "rpc_headers"),
    ),
    Case(
        "unknown market key",
        lambda c: ["run", "--config", c.toml(f'[[markets]]\nprotocol = "aave-v3"\nadress = "{c.aave}"', market=False)],
        ("unknown key 'adress'", "known: address"),
    ),
    Case(
        "wrong type: confirmations",
        lambda c: ["index", "--config", c.toml('confirmations = "twelve"')],
        ("confirmations must be a non-negative integer", "'twelve'"),
    ),
    Case(
        "out of range: parallel_markets",
        lambda c: ["run", "--config", c.toml("parallel_markets = 0")],
        ("parallel_markets must be a whole number from 1 to 64", "not 0"),
    ),
    Case(
        "out of range: aggregate_calls",
        lambda c: ["run", "--config", c.toml("aggregate_calls = 1")],
        ("aggregate_calls must be 0 (off) or a whole number from 2 to 1000", "not 1"),
    ),
    Case(
        "rpc_headers: the secret in the file",
        lambda c: ["run", "--config", c.toml('[rpc_headers."127.0.0.1"]\nAuthorization = "Bearer s3cr3t-t0ken"')],
        ("Authorization must name the environment variable holding its value", "never the value itself"),
        secret="s3cr3t-t0ken",
    ),
    Case(
        "rpc_headers: a URL, not a host",
        lambda c: ["index", "--config", c.toml('[rpc_headers."https://node.example.com/rpc"]\nX-Key = "NODE_KEY"')],
        ("must be an RPC host (host or host:port, no scheme or path)",),
    ),
    Case(
        "rpc_headers: the variable not set",
        lambda c: ["run", "--config", c.toml('[rpc_headers."127.0.0.1"]\nAuthorization = "CHAINRISK_UNSET_NODE_AUTH"')],
        ("the environment variable CHAINRISK_UNSET_NODE_AUTH is not set", "export it"),
    ),
    Case(
        "out of range: --aggregate-calls",
        lambda c: ["index", "--config", c.toml(""), "--aggregate-calls", "5000"],
        ("--aggregate-calls: aggregate_calls must be 0 (off) or a whole number from 2 to 1000", "not 5000"),
    ),
    Case(
        "wrong type: db",
        lambda c: ["run", "--config", str(c.file("db.toml", b'db = 5\n[[markets]]\npreset = "spark-ethereum"\n'))],
        ("db must be a file path in quotes", "not 5"),
    ),
    Case(
        "wrong type: chain_id",
        lambda c: [
            "index",
            "--config",
            c.toml(f'[[markets]]\nprotocol = "aave-v3"\naddress = "{c.aave}"\nchain_id = "31337"', market=False),
        ],
        ("chain_id must be a non-negative integer",),
    ),
    Case(
        "wrong type: markets",
        lambda c: ["index", "--config", c.toml('markets = "aave"', market=False)],
        ("markets must be [[markets]] tables", "not 'aave'"),
    ),
    Case(
        "empty markets",
        lambda c: ["run", "--config", c.toml("markets = []", market=False)],
        ("add at least one [[markets]] table",),
    ),
    # Block ranges.
    Case(
        "negative from-block",
        lambda c: ["index", "--address", c.aave, "--from-block", "-5", *c.rpc],
        ("argument --from-block", "-5 is below 0", "give a block number"),
    ),
    Case(
        "from-block not a number",
        lambda c: ["index", "--address", c.aave, "--from-block", "1e9x", *c.rpc],
        ("argument --from-block", "is not a whole number", "chainrisk index --help"),
    ),
    Case(
        "reversed range",
        lambda c: ["index", "--address", c.aave, "--from-block", "90", "--to-block", "10", *c.rpc],
        ("--from-block 90 is after --to-block 10", "swap them"),
    ),
    Case(
        "to-block beyond head",
        lambda c: ["index", "--address", c.aave, "--to-block", "1000000000", *c.rpc],
        ("--to-block 1000000000 is beyond the chain head",),
    ),
    # Before stop 71: "the database is already indexed to block 999999999, after --to-block ..." (a new file left
    # behind), and "the RPC refused eth_getCode: hex string without 0x prefix".
    Case(
        "from-block beyond head",
        lambda c: ["index", "--address", c.aave, "--from-block", "1000000000", *c.rpc],
        ("--from-block 1000000000 is after the block to index to", "or less"),
    ),
    Case(
        "more confirmations than blocks",
        lambda c: ["index", "--address", c.aave, "--confirmations", "1000000000", *c.rpc],
        ("1000000000 confirmations are more than the chain's", "give --confirmations"),
    ),
    Case(
        "negative confirmations",
        lambda c: ["index", "--address", c.aave, "--confirmations", "-1", *c.rpc],
        ("argument --confirmations", "below 0"),
    ),
    # Endpoints.
    Case("no rpc at all", lambda c: ["index", "--address", c.aave, "--db", str(c.db)], ("no RPC", "pass --rpc-url")),
    Case(
        "unreachable rpc",
        lambda c: ["index", "--address", c.aave, "--db", str(c.db), "--rpc-url", f"http://127.0.0.1:{c.closed_port}"],
        ("cannot reach RPC", "check the URL"),
    ),
    Case(
        "rpc answers html",
        lambda c: ["index", "--address", c.aave, "--db", str(c.db), "--rpc-url", f"{c.fake_node}/html"],
        ("RPC", "/html"),
    ),
    Case(
        "rpc answers json, not json-rpc",
        lambda c: ["index", "--address", c.aave, "--db", str(c.db), "--rpc-url", f"{c.fake_node}/json"],
        ("RPC", "/json"),
    ),
    Case(
        "rpc answers junk results",
        lambda c: ["index", "--address", c.aave, "--db", str(c.db), "--rpc-url", f"{c.fake_node}/junk"],
        ("does not answer like an Ethereum JSON-RPC node",),
    ),
    Case(
        "rpc not http",
        lambda c: ["index", "--address", c.aave, "--db", str(c.db), "--rpc-url", "wss://node/x"],
        ("is not an http(s) URL", "give one like https://"),
    ),
    # Credentials in RPC URLs: never shown back, whichever way the URL came in.
    Case(
        "password in url",
        lambda c: [
            "index",
            "--address",
            c.aave,
            "--db",
            str(c.db),
            "--rpc-url",
            f"http://alice:pw-Hx81qq@127.0.0.1:{c.closed_port}/",
        ],
        ("cannot reach RPC", "127.0.0.1"),
        secret="pw-Hx81qq",
    ),
    Case(
        "infura key in path",
        lambda c: [
            "index",
            "--address",
            c.aave,
            "--db",
            str(c.db),
            "--rpc-url",
            f"http://127.0.0.1:{c.closed_port}/v3/{INFURA_KEY}",
        ],
        ("cannot reach RPC",),
        secret=INFURA_KEY,
    ),
    Case(
        "apikey in query",
        lambda c: [
            "index",
            "--address",
            c.aave,
            "--db",
            str(c.db),
            "--rpc-url",
            f"{c.fake_node}/html?apikey=Zk7-queryKey",
        ],
        ("RPC",),
        secret="Zk7-queryKey",
    ),
    Case(
        "key in path from the config",
        lambda c: ["index", "--config", c.toml("", rpc_url=f"http://127.0.0.1:{c.closed_port}/eth/{ANKR_KEY}")],
        ("cannot reach RPC",),
        secret=ANKR_KEY,
    ),
    Case(
        "malformed url with password in ETH_RPC_URL",
        lambda c: ["index", "--address", c.aave, "--db", str(c.db)],
        ("is malformed", "check --rpc-url"),
        secret="hunter2-Qa9",
        env=lambda c: {"ETH_RPC_URL": "http://bob:hunter2-Qa9@127.0.0.1:notaport/"},
    ),
    # SQL that tries to write, or to read files.
    _hostile_sql("COPY positions TO '/tmp/chainrisk-stolen.csv'", "one SELECT"),
    _hostile_sql("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not allowed"),
    _hostile_sql("SELECT * FROM '/etc/passwd'", "looks like a file"),
    _hostile_sql("ATTACH '/tmp/chainrisk-other.duckdb' AS other", "ATTACH"),
    _hostile_sql("SELECT 1; DROP TABLE positions", "2 statements"),
    _hostile_sql("INSTALL httpfs", "one SELECT"),
    # Database files.
    Case(
        "newer schema",
        lambda c: ["score", "--db", str(c.newer_schema_db())],
        ("written by a newer chainrisk", f"schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}", "upgrade"),
    ),
    Case(
        "database named like the history schema",
        lambda c: [*c.morpho_index, "--rpc-url", c.devnet["rpc_url"], "--db", str(c.root / "History.db")],
        ("History.db: a database file named History.* hides", "`history` schema", "rename the file"),
    ),
    Case(
        "random bytes as database",
        lambda c: ["score", "--db", str(c.file("noise.duckdb", os.urandom(4096)))],
        ("is not a DuckDB database", "give --db a chainrisk database"),
    ),
    Case(
        "text file as database",
        lambda c: [
            "index",
            "--address",
            c.aave,
            "--rpc-url",
            c.devnet["rpc_url"],
            "--db",
            str(c.file("notes.txt", b"remember the milk\n" * 50)),
        ],
        ("is not a DuckDB database",),
    ),
    Case(
        "text file for readers",
        lambda c: ["sql", "SELECT 1", "--db", str(c.file("notes.txt", b"milk\n"))],
        ("is not a DuckDB database",),
    ),
    Case("folder as database", lambda c: ["score", "--db", str(c.root)], ("is a folder", "give a database file")),
    Case(
        "database in a missing folder (score)",
        lambda c: ["score", "--db", str(c.root / "nope" / "x.duckdb")],
        ("no database at", "fix --db"),
    ),
    Case(
        "database in a missing folder (index)",
        lambda c: [
            "index",
            "--address",
            c.aave,
            "--rpc-url",
            c.devnet["rpc_url"],
            "--db",
            str(c.root / "nope" / "deeper" / "x.duckdb"),
        ],
        ("does not exist", "create it"),
    ),
    # Jobs and readers.
    Case(
        "every garbage",
        lambda c: ["watch", "--config", c.toml(""), "--every", "soon"],
        ("--every 'soon'", "give a duration like 30s"),
    ),
    Case(
        "max-runs zero",
        lambda c: ["watch", "--config", c.toml(""), "--max-runs", "0"],
        ("argument --max-runs", "below 1"),
    ),
    Case("run with nothing to run", lambda c: ["run", "--db", str(c.db)], ("give --config FILE",)),
    Case(
        "run --devnet without a devnet",
        lambda c: ["run", "--devnet", "--db", str(c.db)],
        ("no devnet manifest", "chainrisk devnet up"),
        env=lambda c: {"CHAINRISK_STATE_DIR": str(c.root)},
    ),
    Case(
        "devnet govern without a devnet",
        lambda c: ["devnet", "govern"],
        ("no devnet manifest", "chainrisk devnet up"),
        env=lambda c: {"CHAINRISK_STATE_DIR": str(c.root)},
    ),
    Case(
        "devnet govern on a stopped devnet",
        lambda c: ["devnet", "govern"],
        ("the devnet is not running", "chainrisk devnet up"),
        env=lambda c: {"CHAINRISK_STATE_DIR": str(c.stopped_devnet_state())},
    ),
    Case(
        "devnet has no such protocol",
        lambda c: ["index", "--devnet", "--protocol", "compound-v3", "--db", str(c.db)],
        ("the devnet has no 'compound-v3' market", "give --protocol aave-v3, morpho-blue"),
        env=lambda c: {"CHAINRISK_STATE_DIR": str(c.devnet_state())},
    ),
    Case(
        "unknown view",
        lambda c: ["query", "mart_everything", "--db", str(c.db)],
        ("unknown query 'mart_everything'", "known: mart_"),
    ),
    Case(
        "export into a file",
        lambda c: ["export", "--db", str(c.db), "--out", str(c.file("lake.txt", b"x"))],
        ("is a file", "give a folder"),
    ),
    Case(
        "export into a non-empty folder",
        lambda c: ["export", "--db", str(c.db), "--out", str(c.file("other/keep.txt", b"mine").parent)],
        ("not empty", "pass --overwrite"),
    ),
    # Outputs over the database's own files: before, `sql --out` replaced the database with a CSV and
    # `export --overwrite` into its folder deleted it and its published snapshots.
    Case(
        "export rebuilding the database's own folder",
        lambda c: ["export", "--db", str(c.db), "--to", str(c.db.parent), "--overwrite"],
        ("holds the database", "a folder of its own"),
    ),
    Case(
        "export into the published snapshots",
        lambda c: ["export", "--db", str(c.db), "--to", f"{c.db}.published", "--overwrite"],
        ("is part of the database", ".published"),
    ),
    Case(
        "sql written over the database",
        lambda c: ["sql", "--db", str(c.db), "--out", str(c.db), "SELECT 1"],
        ("is the database itself", "a file of its own"),
    ),
    Case(
        "a named view written over the database's WAL",
        lambda c: ["query", "mart_market_summary", "--db", str(c.db), "--out", f"{c.db}.wal"],
        ("is part of the database", "its "),
    ),
    Case(
        "sql written to a folder",
        lambda c: ["sql", "--db", str(c.db), "--out", str(c.db.parent), "SELECT 1"],
        ("is a folder", "give a file name"),
    ),
    Case(
        "another program's DuckDB file",
        lambda c: ["score", "--db", str(c.foreign_db())],
        ("chainrisk did not make", "no schema_version"),
    ),
    Case("unknown command", lambda c: ["reindex", "--db", str(c.db)], ("invalid choice: 'reindex'", "--help")),
    # Numbers no model or clock can take, and bytes that are not text (stop 71: each was a traceback, an overflow after
    # the first run, or accepted and answered with nonsense).
    Case(
        "a query that is not UTF-8",
        lambda c: ["sql", "--db", str(c.db), "SELECT \udcff"],
        ("argument 4 (SELECT \\xff) is not UTF-8 text", "in UTF-8"),
    ),
    Case(
        "a query timeout of inf",
        lambda c: ["sql", "--db", str(c.db), "--timeout", "inf", "SELECT 1"],
        ("argument --timeout: inf is out of range", "at most 86400"),
    ),
    Case(
        "more rows than any answer",
        lambda c: ["sql", "--db", str(c.db), "--max-rows", "99999999999999999999999", "SELECT 1"],
        ("argument --max-rows", "1 to 1,000,000,000 rows"),
    ),
    Case("watch every inf", lambda c: ["watch", "--every", "inf", *c.rpc], ("--every 'inf'", "at most 365 days")),
    Case(
        "an optimisation target of nan",
        lambda c: ["risk", "optimise", "--db", str(c.db), "--target", "nan"],
        ("argument --target: nan is out of range", "a health factor"),
    ),
    Case(
        "a PD ceiling of 0",
        lambda c: ["credit", "--db", str(c.db), "--target-pd", "0"],
        ("argument --target-pd: 0 is out of range", "above 0 and below 1"),
    ),
    Case(
        "a devnet manifest that is not JSON",
        lambda c: ["devnet", "status", "--state-dir", str(c.file("broken/manifest.json", b"{not json").parent)],
        ("is not a devnet manifest (JSONDecodeError)", "devnet up --replace"),
    ),
    Case(
        "a devnet manifest without its node",
        lambda c: ["devnet", "status", "--state-dir", str(c.file("partial/manifest.json", b'{"rpc_url": "x"}').parent)],
        ("is not a devnet manifest (no chain_id, pid)", "devnet up --replace"),
    ),
    Case(
        "a price history of another shape",
        lambda c: [
            "risk",
            "stress",
            "--db",
            str(c.db),
            "--window",
            "may-2021",
            "--prices",
            str(c.file("prices/WETH_usd.csv", b"a,b\n1,2\n").parent),
        ],
        ("cannot read the price history", "needs the columns timestamp (ms) and USD_price"),
    ),
    Case(
        "a calibration day that is not in the calendar",
        lambda c: ["risk", "var", "--db", str(c.db), "--calibration-start", "2022-02-30"],
        ("--calibration-start '2022-02-30' is not a date", "day is out of range for month"),
    ),
    Case(
        "a reversed backtest",
        lambda c: ["risk", "var", "--db", str(c.db), "--backtest", "2022-06-01..2022-01-01"],
        ("--backtest start 2022-06-01 is not before its end 2022-01-01", "swap them"),
    ),
    Case(
        "a shock past any price",
        lambda c: ["risk", "cascade", "--db", str(c.db), "--shock", "WETH=1e308%"],
        ("price multiplier 1e+306", "between -100 % and +9,900 %"),
    ),
    Case(
        "a swap into an asset no market holds",
        lambda c: ["risk", "optimise", "--db", str(c.db), "--swap-into", "NOPE"],
        ("--swap-into NOPE: no market of the latest snapshot holds it", "give one of"),
    ),
    Case(
        "more scenarios than memory",
        lambda c: ["risk", "var", "--db", str(c.db), "--scenarios", "1000000000000"],
        ("argument --scenarios", "1 to 1,000,000 scenarios"),
    ),
]


@pytest.fixture
def ctx(
    tmp_path: Path, scored_db: Path, devnet: dict[str, Any], fake_node: str, monkeypatch: pytest.MonkeyPatch
) -> Ctx:
    root = tmp_path / "user"
    return Ctx(root, _copy_database(scored_db, root), devnet, fake_node, monkeypatch)


def _one_error_line(err: str, prefix: str = "chainrisk: error: ") -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(
    case: Case, ctx: Ctx, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, value in (case.env(ctx) if case.env else {}).items():
        ctx.monkeypatch.setenv(name, value)
    argv = case.argv(ctx)
    before = _tree(ctx.root)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert code == case.code
    for fragment in case.expect:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    # In a real run every record at INFO and above reaches stderr too: none may add a line.
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("chainrisk")
    ] == []
    if case.secret:
        assert case.secret not in out + err + caplog.text
    assert _tree(ctx.root) == before


def test_busy_database_exits_75_and_changes_nothing(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree(ctx.root)
    with writer_lock(ctx.db, "run"):
        assert main(["score", "--db", str(ctx.db)]) == 75
        line = _one_error_line(capsys.readouterr().err, "chainrisk: busy: ")
    assert "being written by chainrisk run (pid" in line and "try again later" in line
    assert _tree(ctx.root) == before


def test_every_market_of_a_config_failing_changes_nothing(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    """Several markets, each wrong: a line per market (a config's markets fail independently), a summary line, and
    nothing stored or published."""
    config = ctx.toml(
        f'[[markets]]\nprotocol = "aave-v3"\naddress = "{ctx.morpho}"\n'
        f'[[markets]]\nprotocol = "morpho-blue"\naddress = "{ctx.aave}"',
        market=False,
    )
    before = _tree(ctx.root)
    assert main(["index", "--config", config]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 3 and all(x.startswith("chainrisk: error: ") for x in lines)
    assert "Aave V3 PoolAddressesProvider" in lines[0] and "Morpho Blue singleton" in lines[1]
    assert "all 2 markets failed" in lines[2]
    assert _tree(ctx.root) == before


def test_miscased_checksum_address_is_accepted(
    devnet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """EIP-55 letter case is a typo check some tools enforce; chainrisk takes any case and stores lowercase."""
    checksummed = to_checksum_address(devnet["morpho_blue"]["morpho"])
    miscased = checksummed[:2] + checksummed[2:].swapcase()
    assert miscased.lower() != miscased and not is_checksum_address(miscased)
    oracle = devnet["aave_v3"]["oracle"].upper().replace("0X", "0x")
    db = tmp_path / "miscased.duckdb"
    argv = [
        "index",
        "--protocol",
        "morpho-blue",
        "--address",
        miscased,
        "--usd-oracle",
        oracle,
        "--rpc-url",
        devnet["rpc_url"],
        "--db",
        str(db),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT market FROM sync_state").fetchall() == [(miscased.lower(),)]
    assert current_copy(db) is not None  # a successful index publishes


def test_secret_rpc_url_stays_out_of_the_runs_table(
    ctx: Ctx, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A failed scheduled run is recorded (the Runs page shows it) without the URL's credentials; nothing that
    was indexed or scored changes."""
    caplog.set_level(logging.DEBUG)
    secret, key = "s3cret-Pw77", "Kq-91-apikey"
    # The path key has a shape the URL mask does not know (Ankr's); the registered secrets hide it all the same.
    url = f"http://carol:{secret}@127.0.0.1:{ctx.closed_port}/eth/{ANKR_KEY}?apikey={key}"
    config = ctx.toml("", rpc_url=url)
    tables = _tables(ctx.db)
    assert main(["run", "--config", config]) == 2
    out, err = capsys.readouterr()
    assert "run 1 failed" in _one_error_line(err) and "cannot reach RPC" in err
    shown = out + err + caplog.text
    with duckdb.connect(str(ctx.db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("failed",)]
        shown += repr(con.execute("SELECT * FROM runs").fetchall())
    for hidden in (secret, ANKR_KEY, key, "carol"):
        assert hidden not in shown
    after = _tables(ctx.db)
    assert {t: v for t, v in after.items() if t != "runs"} == {t: v for t, v in tables.items() if t != "runs"}


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (f"https://mainnet.infura.io/v3/{INFURA_KEY}", INFURA_KEY),
        ("https://eth-mainnet.g.alchemy.com/v2/Ab3dE6gH9jK2mN5pQ8sT1vW4", "Ab3dE6gH9jK2mN5pQ8sT1vW4"),
        (f"https://rpc.ankr.com/eth/{ANKR_KEY}", ANKR_KEY),
        ("https://red-cool-sky.quiknode.pro/7f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6/", "7f1e2d3c4b5a6978"),
        ("https://lb.drpc.org/ogrpc?network=ethereum&dkey=AkDq-rpc-Secret", "AkDq-rpc-Secret"),
        ("https://user:pa%24%24word-9@node.example/rpc", "pa$$word-9"),
        ("https://node.example/rpc?token=tok_12345", "tok_12345"),
    ],
)
def test_rpc_credentials_are_hidden_in_errors_and_logs(url: str, secret: str) -> None:
    """The URL shapes providers hand out: the key is found, and neither an error nor a log record shows it."""
    from chainrisk.config import resolve_rpc_url
    from chainrisk.errors import RedactingFilter, UserError, one_line

    assert resolve_rpc_url(url) == url
    error = UserError(f"cannot reach RPC {url} (ConnectError)")
    assert secret not in str(error) and "***" in str(error)
    record = logging.LogRecord("chainrisk.run", logging.INFO, __file__, 1, "RPC %s", (url,), None)
    assert RedactingFilter().filter(record) and secret not in record.getMessage()
    assert secret not in one_line(f"first line\n{url}")
    assert "mainnet" in one_line("eth mainnet")  # ordinary words stay


def test_watch_logs_hide_credentials(scored_db: Path, tmp_path: Path) -> None:
    """The real `chainrisk watch` process: its log lines on stderr (start, failed run) never show the key."""
    db = _copy_database(scored_db, tmp_path / "watch")
    url = f"http://127.0.0.1:{free_port()}/eth/{ANKR_KEY}"
    config = tmp_path / "chainrisk.toml"
    config.write_text(
        f'db = "{db}"\nrpc_url = "{url}"\n[[markets]]\nprotocol = "aave-v3"\naddress = "{"0x" + "11" * 20}"\n'
    )
    done = _chainrisk_limited(["watch", "--config", str(config), "--every", "1s", "--max-runs", "1"])
    assert "chainrisk watch: every 1 s" in done.stderr and "cannot reach RPC" in done.stderr
    assert ANKR_KEY not in done.stderr + done.stdout and "Traceback" not in done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert ANKR_KEY not in repr(con.execute("SELECT * FROM runs").fetchall())


def test_database_held_by_another_program(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    """The file open for writing in another process (an analyst's DuckDB shell): one line, nothing changed."""
    hold = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(ctx.db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        before = _tree(ctx.root)
        assert main(["score", "--db", str(ctx.db)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"cannot open {ctx.db}" in line and "Conflicting lock" in line
    finally:
        holder.kill()
        holder.wait()
    assert _tree(ctx.root) == before


# -- full disk, read-only folders: the failures come from the operating system ---------------------------------
def _drop_root_powers() -> None:
    """Empties the capability bounding set, so a root child obeys file modes like any user after exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in range(64):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def _chainrisk_limited(
    args: list[str], *, max_file_bytes: int | None = None, obey_file_modes: bool = False
) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process, with a file-size limit and/or without root's powers."""

    def limit() -> None:
        if max_file_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
        if obey_file_modes and os.geteuid() == 0:
            _drop_root_powers()

    env = {k: v for k, v in os.environ.items() if k != "ETH_RPC_URL"}
    return subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit,
        env=env,
    )


def test_disk_full_during_a_database_write(ctx: Ctx) -> None:
    """RLIMIT_FSIZE makes DuckDB's write(2) fail the way a full disk does (the kernel says EFBIG instead of
    ENOSPC; DuckDB's failed commit and chainrisk's handling are the same): the score transaction cannot commit,
    the main file and the published copies stay byte-identical, and what the file holds is unchanged."""
    published_before = _tree(published_dir(ctx.db))
    main_before = hashlib.sha256(ctx.db.read_bytes()).hexdigest()
    tables = _tables(ctx.db)
    # 1 KiB: below the score's write-ahead log. Scoring an unchanged snapshot only re-stamps the latest tables in
    # place, a log small enough to commit under the earlier 200 KB (the checkpoint then failed on a committed score);
    # and since the analysts' views are left as they are while unchanged (stop 44), under the 4 KiB after it too.
    done = _chainrisk_limited(["score", "--db", str(ctx.db)], max_file_bytes=1_024)
    line = _one_error_line(done.stderr)
    assert done.returncode == 2
    assert "database write failed" in line and os.strerror(errno.EFBIG) in line and "free space" in line
    assert hashlib.sha256(ctx.db.read_bytes()).hexdigest() == main_before
    assert _tree(published_dir(ctx.db)) == published_before
    # A write-ahead log may stay behind: DuckDB replays only its committed part, so every table reads the same.
    assert _tables(ctx.db) == tables


def test_disk_full_during_export(ctx: Ctx, tmp_path: Path) -> None:
    """The Parquet writer fails part-way (RLIMIT_FSIZE, as above): no half export is left, nothing else changes."""
    before = _tree(ctx.root)
    out = tmp_path / "lake"
    # Small enough that the positions' Parquet file cannot be written (the export holds no raw event tables).
    done = _chainrisk_limited(["export", "--db", str(ctx.db), "--to", str(out)], max_file_bytes=16_000)
    line = _one_error_line(done.stderr)
    assert done.returncode == 2 and os.strerror(errno.EFBIG) in line
    assert not out.exists() and not list(tmp_path.glob(".lake.export-*"))
    assert _tree(ctx.root) == before


def test_disk_full_while_publishing(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC raised while publishing a score (after half a Parquet file is written, as a filling disk does): one
    line, and readers keep the last published snapshot, byte-identical."""
    folder = published_dir(ctx.db)
    before = _tree(folder)
    pointer = (folder / POINTER).read_text()
    write = published._write

    def write_until_full(con: Any, table: Any, where: str, target: Path) -> int:
        write(con, table, where, target)
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(published, "_write", write_until_full)  # what writes each published Parquet file
    assert main(["score", "--db", str(ctx.db)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert os.strerror(errno.ENOSPC) in line and "the disk is full: free space" in line
    assert (folder / POINTER).read_text() == pointer
    after = _tree(folder)
    assert {k: v for k, v in after.items() if k in before} == before
    # The half-written file is named by no manifest; the next publish deletes it.
    assert set(after) - set(before) and all(name.startswith(DATA) for name in set(after) - set(before))
    monkeypatch.undo()
    assert main(["sql", "SELECT count(*) AS n FROM positions", "--db", str(ctx.db), "--format", "csv"]) == 0


def test_read_only_folder(scored_db: Path, tmp_path: Path) -> None:
    """A database in a folder this user cannot write: one line naming the file and the fix. (Root ignores file
    modes, so a root test run drops root's capabilities in the child.)"""
    db = _copy_database(scored_db, tmp_path / "ro")
    for path in [*published_dir(db).iterdir(), db]:
        path.chmod(0o444)
    folders = (published_dir(db), db.parent)
    try:
        for folder in folders:
            folder.chmod(0o555)
        before = _tree(tmp_path)
        done = _chainrisk_limited(["score", "--db", str(db)], obey_file_modes=True)
        line = _one_error_line(done.stderr)
        assert done.returncode == 2
        assert os.strerror(errno.EACCES) in line and f"{db}.lock" in line and "make the folder writable" in line
        assert _tree(tmp_path) == before
    finally:
        for folder in folders:
            folder.chmod(0o755)
