"""A node without eth_call state overrides: the lenses (Aave's accounts, Liquity's troves, Maker's vaults and CDPs) are
left unanswered, and every account is read by plain eth_calls of the getters each lens calls. What is stored equals an
index through the lenses, on a node that refuses the override (geth's error for a third parameter) and on one that
drops it (the lens's address then has no code and answers "0x"). On the devnet, Maker and Liquity are our labelled
stand-ins (README "The devnet"); the adapters call only the public getters the real contracts have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.config import devnet_config
from chainrisk.jobs.index import index_market
from chainrisk.protocols.lens import LENS_UNANSWERED
from chainrisk.protocols.maker.snapshot import read_cdps
from chainrisk.rpc import FAULT_KINDS, RpcClient, RpcError
from tests.rpcproxy import CountingProxy

#: The protocols whose snapshots read accounts through a lens.
LENSED = ("aave-v3", "liquity-v1", "maker")
#: Maker's OSM prices are read under an override of their own (the reader whitelisted in the pip). Without it an ilk's
#: price is the one the Vat's spot implies (method vat-spot) and the price the OSM makes current next is unknown: these
#: columns differ by design. Everything else, the vaults themselves and every health figure, must not.
PRICE_COLUMNS = {
    "raw_maker_ilks": (
        "price_method",
        "price",
        "price_next",
        "price_next_has",
        "next_price_at",
        "spot_at_price",
        "spot_next",
        "price_next_usd",
    ),
    "raw_maker_urns": ("safe_at_next_price",),
    "positions": ("price",),
}


@pytest.fixture(scope="module")
def through_lenses(full_devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The full devnet's lensed markets indexed directly, at one block."""
    with RpcClient(full_devnet["rpc_url"]) as rpc:
        head = rpc.head()
    db = tmp_path_factory.mktemp("lenses") / "direct.duckdb"
    for market in devnet_config(full_devnet, db).markets:
        if market.protocol in LENSED:
            report = index_market(
                market.protocol, full_devnet["rpc_url"], market.address, db, options=market.options, to_block=head
            )
            assert LENS_UNANSWERED not in report.faults_absorbed
    return db, head


def _differing(left: Path, right: Path) -> dict[str, int]:
    """Per table of `left` (the raw tables, positions, wallet health, markets, data quality, sync state): rows that
    are not in both files, bookkeeping times and PRICE_COLUMNS left out."""
    found = {}
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"ATTACH '{right}' AS other (READ_ONLY)")
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' AND "
                "(table_name LIKE 'raw_%' OR table_name IN "
                "('positions', 'wallet_health', 'markets', 'data_quality', 'sync_state'))",
                [left.stem],
            ).fetchall()
        ]
        for table in tables:
            columns = [c for (c,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
            left_out = ("indexed_at", "updated_at", *PRICE_COLUMNS.get(table, ()))
            kept = ", ".join(f'"{c}"' for c in columns if c not in left_out)
            (differ,) = con.execute(
                f"SELECT count(*) FROM ((SELECT {kept} FROM main.{table} EXCEPT ALL SELECT {kept} FROM other.{table}) "
                f"UNION ALL (SELECT {kept} FROM other.{table} EXCEPT ALL SELECT {kept} FROM main.{table}))"
            ).fetchone() or (0,)
            found[table] = int(differ)
    return found


@pytest.mark.parametrize("overrides", ["refuse", "drop"])
def test_a_node_without_overrides_stores_what_the_lenses_read(
    full_devnet: dict[str, Any], through_lenses: tuple[Path, int], tmp_path: Path, overrides: str
) -> None:
    direct, head = through_lenses
    db = tmp_path / "plain.duckdb"
    protocols = set()
    overridden = []  # eth_calls with a state override the proxy saw, after each market
    with CountingProxy(full_devnet["rpc_url"], overrides=overrides) as proxy:
        for market in devnet_config(full_devnet, db).markets:
            if market.protocol not in LENSED:
                continue
            report = index_market(market.protocol, proxy.url, market.address, db, options=market.options, to_block=head)
            assert report.faults_absorbed.get(LENS_UNANSWERED, 0) > 0, market.name
            protocols.add(market.protocol)
            overridden.append(proxy.overridden)
    assert protocols == set(LENSED) and LENS_UNANSWERED in FAULT_KINDS
    # The first market finds the node runs no override (RpcClient.takes_overrides); the others send it none: no lens
    # call, no aggregate, no OSM peek.
    assert len(overridden) >= 4 and overridden[0] > 0 and len(set(overridden)) == 1, overridden
    differing = _differing(direct, db)
    assert len(differing) > 10 and not any(differing.values()), differing
    with duckdb.connect(str(db), read_only=True) as plain:
        plain.execute(f"ATTACH '{direct}' AS lensed (READ_ONLY)")
        # Only Maker's prices moved: every other position equals the lenses' to the price.
        (moved,) = plain.execute(
            "SELECT count(*) FROM (SELECT * FROM main.positions WHERE protocol <> 'maker' "
            "EXCEPT ALL SELECT * FROM lensed.positions WHERE protocol <> 'maker')"
        ).fetchone() or (1,)
        methods = plain.execute("SELECT DISTINCT price_method FROM raw_maker_ilks").fetchall()
        ahead = plain.execute("SELECT count(*), count(safe_at_next_price) FROM raw_maker_urns").fetchone()
    assert moved == 0 and methods == [("vat-spot",)], (moved, methods)
    assert ahead is not None and ahead[0] > 0 and ahead[1] == 0, ahead


def test_a_lensed_contract_without_code_is_refused_as_the_lens_call_was(full_devnet: dict[str, Any]) -> None:
    """A CDP manager with no code: the lens's call to it reverts, and the plain getters then answer "0x". That is a
    refusal, as the lens's was (the Maker adapter turns it into one line naming the manager), not a decoding error
    with a traceback."""
    nobody = "0x000000000000000000000000000000000000dEaD"
    with RpcClient(full_devnet["rpc_url"]) as rpc:
        head = rpc.head()
        with pytest.raises(RpcError, match=f"{nobody} does not answer urns"):
            read_cdps(rpc, nobody, [1, 2], head)
        assert rpc.faults_absorbed == {LENS_UNANSWERED: 1}


def test_a_lens_call_too_heavy_for_the_node_is_halved_not_read_getter_by_getter(
    full_devnet: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that runs the lens but not a call of more than 10 accounts (out of its eth_call gas or time, as whales
    with many reserves can be; here 32 accounts a call, halved down to 4): each such call is asked again in halves
    until it passes, none is read getter by getter, and the accounts equal one read with every call answered. That
    holds too where every call of the first batch is too heavy: the node is then asked whether it runs overrides at
    all (one call), and it does. A node without state overrides has the accounts read getter by getter after the
    first batch, and, remembered for its URL, the next read sends no lens call at all."""
    from chainrisk.protocols.aave_v3 import snapshot
    from chainrisk.rpc import client

    monkeypatch.setattr(client, "_OVERRIDES_REFUSED", {})
    monkeypatch.setattr(client, "_AGGREGATE_REFUSED", {})
    real_lens, real_getters = snapshot._lens_words, snapshot._accounts_by_getters
    asked: list[list[int]] = []
    by_getters: list[int] = []

    def capped(rpc: RpcClient, pool: str, chunks: list[list[str]], *more: Any) -> list[list[int] | None]:
        asked.append([len(c) for c in chunks])
        answers = real_lens(rpc, pool, chunks, *more)
        return [None if len(c) > 10 else a for c, a in zip(chunks, answers, strict=True)]

    def counted(rpc: RpcClient, pool: str, wallets: list[str], *more: Any) -> list[list[int]]:
        by_getters.append(len(wallets))
        return real_getters(rpc, pool, wallets, *more)

    # Two full calls and one of 5 the node answers: it runs the lens.
    wallets = sorted({str(w).lower() for w in full_devnet["wallets"]})[:69]
    assert len(wallets) == 69
    with RpcClient(full_devnet["rpc_url"]) as rpc:
        head = rpc.head()
        market = snapshot.discover(rpc, full_devnet["aave_v3"]["pool_addresses_provider"], head)
        reserves = snapshot.read_reserves(rpc, market, head)
        want = snapshot.read_accounts(rpc, market, reserves, wallets, {}, head)
        assert sum(bool(a.balances) for a in want) > 10
        monkeypatch.setattr(snapshot, "LENS_CHUNK", 32)
        monkeypatch.setattr(snapshot, "LENS_CHUNK_MIN", 4)
        monkeypatch.setattr(snapshot, "_lens_words", capped)
        monkeypatch.setattr(snapshot, "_accounts_by_getters", counted)
        assert snapshot.read_accounts(rpc, market, reserves, wallets, {}, head) == want
        assert asked == [[32, 32, 5], [16, 16, 16, 16], [8] * 8] and not by_getters, asked
        # Every call of the first batch too heavy: the node runs an override's code, so they are halved too (before,
        # all 64 accounts were read getter by getter).
        asked.clear()
        want_64 = [a for a in want if a.wallet in wallets[:64]]
        assert snapshot.read_accounts(rpc, market, reserves, wallets[:64], {}, head) == want_64
        assert asked == [[32, 32], [16, 16, 16, 16], [8] * 8] and not by_getters, asked
    # A node without state overrides: one lens batch and one probe, then getter by getter; the next read sends no
    # overridden call.
    with CountingProxy(full_devnet["rpc_url"], overrides="refuse") as proxy:
        for round_ in (1, 2):
            asked.clear()
            with RpcClient(proxy.url) as rpc:
                assert snapshot.read_accounts(rpc, market, reserves, wallets, {}, head) == want
                assert rpc.faults_absorbed[LENS_UNANSWERED] == 3
            assert asked == [[32, 32, 5]] and by_getters == [len(wallets)] * round_, (asked, by_getters)
            assert proxy.overridden == 3 + 1, proxy.overridden  # the first batch and the probe, once
            assert client._AGGREGATE_REFUSED.keys() == {proxy.url}  # no aggregate is sent to it either


def test_the_override_probe(full_devnet: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """RpcClient.takes_overrides: True on anvil (asked once per client), False on a node that refuses the third
    parameter or drops it, remembered for the URL (no second probe) and forgotten after RECHECK_BATCH_S."""
    from chainrisk.rpc import client

    monkeypatch.setattr(client, "_OVERRIDES_REFUSED", {})
    monkeypatch.setattr(client, "_AGGREGATE_REFUSED", {})
    with CountingProxy(full_devnet["rpc_url"]) as proxy, RpcClient(proxy.url) as rpc:
        assert rpc.takes_overrides() and rpc.takes_overrides() and not rpc.overrides_refused()
        assert proxy.overridden == 1
    for overrides in ("refuse", "drop"):
        with CountingProxy(full_devnet["rpc_url"], overrides=overrides) as proxy:
            with RpcClient(proxy.url) as rpc:
                assert not rpc.takes_overrides() and rpc.overrides_refused()
            with RpcClient(proxy.url) as rpc:
                assert not rpc.takes_overrides() and proxy.overridden == 1
                monkeypatch.setattr(client, "RECHECK_BATCH_S", 0.0)
                assert not rpc.overrides_refused() and not rpc.takes_overrides() and proxy.overridden == 2
                monkeypatch.setattr(client, "RECHECK_BATCH_S", 3600.0)
