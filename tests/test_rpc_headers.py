"""[rpc_headers]: HTTP headers sent to an RPC host (a node behind an authenticating proxy, a provider that takes its key
as a header), each value read from the environment variable the config names, never shown in an error line."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pytest

from chainrisk.cli import main
from chainrisk.rpc import RpcSettings
from tests.rpcproxy import CountingProxy

TOKEN = "Bearer s3cr3t-n0de-t0ken"


def test_headers_go_to_their_host_alone() -> None:
    settings = RpcSettings(
        headers=(("node.example.com", "Authorization", "Bearer a"), ("127.0.0.1:8545", "X-Api-Key", "k"))
    )
    assert settings.headers_for("https://node.example.com/rpc") == {"Authorization": "Bearer a"}
    assert settings.headers_for("https://user:pw@NODE.example.com:8443/") == {"Authorization": "Bearer a"}
    assert settings.headers_for("http://127.0.0.1:8545") == {"X-Api-Key": "k"}
    assert settings.headers_for("http://127.0.0.1:8546") == {}  # another port of that host
    assert settings.headers_for("https://node.example.com.evil.io/") == {}


def _config(tmp_path: Path, url: str, provider: str) -> Path:
    config = tmp_path / "chainrisk.toml"
    config.write_text(
        f'db = "{tmp_path / "chainrisk.duckdb"}"\nrpc_url = "{url}"\n'
        f'[rpc_headers."{urlsplit(url).netloc}"]\nAuthorization = "TEST_NODE_AUTH"\n'
        f'[[markets]]\nprotocol = "aave-v3"\naddress = "{provider}"\n'
    )
    return config


def test_a_node_behind_an_authenticating_proxy(
    devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request carries the header (the proxy refuses none), and the market is indexed; with a wrong value the run
    stops in one line saying the credentials were refused, the value nowhere in what it prints."""
    provider = devnet["aave_v3"]["pool_addresses_provider"]
    with CountingProxy(devnet["rpc_url"], require={"Authorization": TOKEN}) as proxy:
        config = _config(tmp_path, proxy.url, provider)
        monkeypatch.setenv("TEST_NODE_AUTH", "Bearer wrong-t0ken")
        assert main(["index", "--config", str(config)]) == 2
        printed = capsys.readouterr()
        lines = printed.err.strip().splitlines()
        assert len(lines) == 1 and "refused the credentials (HTTP 401)" in lines[0] and "[rpc_headers]" in lines[0]
        assert "wrong-t0ken" not in printed.err + printed.out and proxy.refused > 0
        assert not (tmp_path / "chainrisk.duckdb").exists() or _wallets(tmp_path) == 0
        refused = proxy.refused
        monkeypatch.setenv("TEST_NODE_AUTH", TOKEN)
        assert main(["index", "--config", str(config)]) == 0
        assert proxy.refused == refused and proxy.requests > refused
    assert _wallets(tmp_path) > 100
    assert TOKEN not in capsys.readouterr().out


def _wallets(folder: Path) -> int:
    with duckdb.connect(str(folder / "chainrisk.duckdb"), read_only=True) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "wallet_health" not in tables:
            return 0
        (count,) = con.execute("SELECT count(*) FROM wallet_health").fetchone() or (0,)
    return int(count)


def test_every_command_reading_a_node_sends_the_headers(
    devnet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`chains --config` looks through every chain of the config and `risk optimise --config --rpc-url` reads the
    wallets' balances, both with the config's headers; with a wrong value each stops in one line that does not show
    it. Two nodes of one chain are refused."""
    provider = devnet["aave_v3"]["pool_addresses_provider"]
    db = tmp_path / "chainrisk.duckdb"
    with CountingProxy(devnet["rpc_url"], require={"Authorization": TOKEN}) as proxy:
        config = _config(tmp_path, proxy.url, provider)
        monkeypatch.setenv("TEST_NODE_AUTH", TOKEN)
        assert main(["run", "--config", str(config)]) == 0
        capsys.readouterr()
        commands = (
            ["chains", "--config", str(config)],
            ["risk", "optimise", "--db", str(db), "--config", str(config), "--rpc-url", proxy.url, "--below", "3"],
        )
        for args in commands:
            before = proxy.requests
            assert main(args) == 0, capsys.readouterr().err
            assert proxy.requests > before and proxy.refused == 0
        out = capsys.readouterr().out
        assert "wrote asset_links" in out and f"on-chain balances of chain {devnet['chain_id']}" in out
        monkeypatch.setenv("TEST_NODE_AUTH", "Bearer wrong-t0ken")
        for args in commands:
            assert main(args) == 2
            printed = capsys.readouterr()
            lines = printed.err.strip().splitlines()
            assert len(lines) == 1 and "refused the credentials (HTTP 401)" in lines[0], printed.err
            assert "wrong-t0ken" not in printed.err + printed.out
        twice = [*commands[1], "--rpc-url", devnet["rpc_url"]]
        monkeypatch.setenv("TEST_NODE_AUTH", TOKEN)
        assert main(twice) == 2
        assert f"serves chain {devnet['chain_id']}, as an earlier one does" in capsys.readouterr().err
