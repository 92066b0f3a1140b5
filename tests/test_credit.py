"""Credit scores on the session devnet: history equal to the contracts at past blocks, no look-ahead, labels from the
chain's liquidation logs, the commands end to end, advice that the chain confirms, one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from eth_utils.crypto import keccak
from polars.testing import assert_frame_equal

from chainrisk.abi import eth_call, load_abi
from chainrisk.config import devnet_config
from chainrisk.credit.features import FEATURES, features, labels
from chainrisk.credit.regime import MARKET_INPUTS, REGIMES
from chainrisk.credit.scorecard import BANDS, Scorecard, band_of
from chainrisk.devnet.node import BlockBuilder
from chainrisk.jobs import credit
from chainrisk.jobs.credit import load_history
from chainrisk.jobs.credit_history import backfill
from chainrisk.rpc import RpcClient
from chainrisk.store.db import Store
from chainrisk.store.schema.credit import HISTORY_TABLES
from chainrisk.store.views import install_views
from chainrisk.units import WAD
from tests.chainops import MINTABLE, POOL, aave_health, block_timestamp, sandbox

HALF_DAY = 43_200
#: The session devnet is 14 days long: short windows and horizons stand in for the 30-day ones.
HORIZON_DAYS, MIN_HISTORY_DAYS, EVERY_DAYS = 2, 2, 1
MORPHO = load_abi("morpho-blue", "IMorpho")
ORACLE = load_abi("morpho-blue", "IOracle")
IRM = load_abi("morpho-blue", "IIrm")


@pytest.fixture(scope="module")
def credit_db(scored_db: Path, devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scored session database with its credit history sampled every 12 hours."""
    db: Path = tmp_path_factory.mktemp("credit") / "chainrisk.duckdb"
    shutil.copy(scored_db, db)
    report = backfill(devnet_config(devnet, db), devnet["rpc_url"], every_s=HALF_DAY)
    assert report.added == report.total >= 25
    return db


def _query(db: Path, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    with Store(db, read_only=True) as store:
        return store.query(sql, params)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainrisk.cli", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def test_sampled_health_equals_the_contracts_at_those_blocks(
    credit_db: Path, rpc: RpcClient, devnet: dict[str, Any]
) -> None:
    samples = _query(credit_db, "SELECT block_number FROM credit_samples WHERE wallets > 0 ORDER BY 1")["block_number"]
    pool = devnet["aave_v3"]["pool"]
    compared = 0
    for block in (samples[0], samples[len(samples) // 2], samples[-1]):
        tag = hex(block)
        aave = _query(
            credit_db,
            "SELECT wallet, health_factor FROM wallet_health_history WHERE protocol = 'aave-v3' "
            "AND last_block = ? AND debt_usd > 0",
            [block],
        )
        raw = rpc.batch([eth_call(pool, POOL, "getUserAccountData", w, block=tag) for w in aave["wallet"]])
        for (wallet, ours), item in zip(aave.iter_rows(), raw, strict=True):
            theirs = POOL.decode("getUserAccountData", item)[5]
            assert abs(ours - theirs / WAD) <= 1e-12 * theirs / WAD, (block, wallet)
            compared += 1
        morpho = _query(
            credit_db,
            "SELECT market, wallet, health_factor FROM wallet_health_history "
            "WHERE protocol = 'morpho-blue' AND last_block = ? AND debt_usd > 0",
            [block],
        )
        markets = {m["market_id"]: m for m in devnet["morpho_blue"]["markets"]}
        for market_id, wallet, ours in morpho.iter_rows():
            m = markets[market_id]
            _, shares, collateral = MORPHO.decode(
                "position",
                rpc.call(*eth_call(devnet["morpho_blue"]["morpho"], MORPHO, "position", market_id, wallet, block=tag)),
            )[0]
            state = MORPHO.decode(
                "market", rpc.call(*eth_call(devnet["morpho_blue"]["morpho"], MORPHO, "market", market_id, block=tag))
            )[0]
            price = ORACLE.decode("price", rpc.call(*eth_call(m["oracle"], ORACLE, "price", block=tag)))[0]
            # Morpho checks health after accruing interest to the block (MorphoBalancesLib.expectedMarketBalances):
            # the IRM's rate, MathLib.wTaylorCompounded over the time since the market's last update.
            params = (m["loan_token"], m["collateral_token"], m["oracle"], m["irm"], int(m["lltv"]))
            rate = IRM.decode(
                "borrowRateView", rpc.call(*eth_call(m["irm"], IRM, "borrowRateView", params, state, block=tag))
            )[0]
            elapsed = block_timestamp(rpc, block) - state[4]
            first = rate * elapsed
            second = first * first // (2 * WAD)
            third = second * first // (3 * WAD)
            total_borrow = state[2] + state[2] * (first + second + third) // WAD
            borrowed = -(-shares * (total_borrow + 1) // (state[3] + 10**6))  # SharesMathLib.toAssetsUp
            theirs = collateral * price // 10**36 * int(m["lltv"]) // WAD / borrowed
            assert abs(ours - theirs) <= 1e-9 * theirs, (block, market_id, wallet)
            compared += 1
    assert compared >= 300
    print(f"{compared} sampled health factors equal the contracts at their blocks")


def _truncated_copy(db: Path, block: int, folder: Path) -> Path:
    """The database as it would stand had nothing after `block` been stored (events and history cut there)."""
    copy = folder / f"cut-{block}.duckdb"
    shutil.copy(db, copy)
    with duckdb.connect(str(copy)) as con:
        for table in ("raw_aave_v3_events", "raw_morpho_blue_events", *HISTORY_TABLES):
            con.execute(f"DELETE FROM {table} WHERE block_number > ?", [block])
    return copy


def test_no_feature_reads_past_the_cutoff(credit_db: Path, tmp_path: Path) -> None:
    with Store(credit_db, read_only=True) as store:
        history = load_history(store, 31337)
    blocks = history.samples["block_number"].to_list()
    names = [*FEATURES, *MARKET_INPUTS]
    moved = 0
    for cutoff in (blocks[len(blocks) // 3], blocks[2 * len(blocks) // 3]):
        full = features(history, cutoff)
        assert full.select(names).null_count().sum_horizontal()[0] == 0, "every feature has a value"
        with Store(_truncated_copy(credit_db, cutoff, tmp_path), read_only=True) as store:
            cut = features(load_history(store, 31337), cutoff)
        # Equal to the last few bits: polars' threaded float sums add in varying order (the same input twice can
        # differ in the 16th digit); a leak past the cutoff moves features by far more.
        assert_frame_equal(full.select("wallet", *names), cut.select("wallet", *names), rel_tol=1e-12, abs_tol=1e-12)
        # Shifting the cutoff one sample later changes features (the test can see a leak) ...
        later = features(history, blocks[blocks.index(cutoff) + 1]).select("wallet", *names)
        joined = full.select("wallet", *names).join(later, on="wallet", suffix="_later")
        moved += sum(int((joined[n] != joined[f"{n}_later"]).sum()) for n in names)
        # ... but what happens after it only changes the label.
        assert labels(history, cutoff, 14).height >= labels(history, cutoff, 1).height
    assert moved > 0


def _liquidated_on_chain(rpc: RpcClient, devnet: dict[str, Any], start: int, end: int) -> set[str]:
    """Borrowers of every LiquidationCall / Liquidate log with a block timestamp in (start, end], from the node."""
    found = set()
    events = (
        (devnet["aave_v3"]["pool"], "LiquidationCall(address,address,address,uint256,uint256,address,bool)", 3),
        (
            devnet["morpho_blue"]["morpho"],
            "Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)",
            3,
        ),
    )
    for address, signature, topic in events:
        topic0 = "0x" + keccak(signature.encode()).hex()
        logs = rpc.call(
            "eth_getLogs", [{"address": address, "topics": [topic0], "fromBlock": "0x0", "toBlock": "latest"}]
        )
        times = {
            n: int(rpc.call("eth_getBlockByNumber", [n, False])["timestamp"], 16)
            for n in {log["blockNumber"] for log in logs}
        }
        found |= {"0x" + log["topics"][topic][-40:] for log in logs if start < times[log["blockNumber"]] <= end}
    return found


def test_labels_are_the_chains_liquidations(credit_db: Path, rpc: RpcClient, devnet: dict[str, Any]) -> None:
    with Store(credit_db, read_only=True) as store:
        history = load_history(store, 31337)
    total = 0
    for block, ts in history.samples.rows()[2:-4:4]:
        ours = set(labels(history, block, HORIZON_DAYS)["wallet"])
        assert ours == _liquidated_on_chain(rpc, devnet, ts, ts + HORIZON_DAYS * 86_400), block
        total += len(ours)
    assert total > 0


def test_liquidations_are_timed_and_priced_by_the_history(credit_db: Path, rpc: RpcClient) -> None:
    """Once `credit history` has sampled the chain, every liquidation of mart_liquidations has its block's time as the
    chain gives it and USD at the last price sample at or before its block."""
    with Store(credit_db) as store:
        install_views(store.con)
        rows = store.query("SELECT * FROM mart_liquidations ORDER BY block_number, log_index")
        samples = store.query("SELECT asset, block_number, price_usd FROM stg_asset_price_history")
    assert rows.height > 0 and set(rows["protocol"]) == {"aave-v3", "morpho-blue"}
    for block in rows["block_number"].unique().to_list():
        chain = int(rpc.call("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
        assert rows.filter(pl.col("block_number") == block)["block_timestamp"].to_list()[0] == chain, block
    for row in rows.iter_rows(named=True):
        assert row["price_source"] == "history"
        for side, amount in (("debt_asset", "debt_repaid"), ("collateral_asset", "collateral_seized")):
            earlier = samples.filter((pl.col("asset") == row[side]) & (pl.col("block_number") <= row["block_number"]))
            price = earlier.sort("block_number")["price_usd"][-1]
            assert row[f"{amount}_usd"] == pytest.approx(row[f"{amount}_tokens"] * price, rel=1e-12), (row, side)
        assert row["price_block"] <= row["block_number"]
        assert row["liquidator_gain_usd"] == pytest.approx(row["collateral_seized_usd"] - row["debt_repaid_usd"])


@pytest.fixture(scope="module")
def trained(credit_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("model") / "model.json"
    done = cli(
        "credit",
        "train",
        "--db",
        str(credit_db),
        "--out",
        str(model),
        "--horizon-days",
        str(HORIZON_DAYS),
        "--every-days",
        str(EVERY_DAYS),
        "--min-history-days",
        str(MIN_HISTORY_DAYS),
    )
    assert done.returncode == 0, done.stderr
    assert "trained sc-" in done.stdout and model.is_file()
    return model


def test_train_evaluate_and_score_write_consistent_tables(credit_db: Path, trained: Path) -> None:
    with Store(credit_db, read_only=True) as store:
        history = load_history(store, 31337)
    times = history.samples["block_timestamp"].to_list()
    at = datetime.fromtimestamp(times[-1] - (HORIZON_DAYS + 1) * 86_400, UTC).strftime("%Y-%m-%d")
    done = cli(
        "credit",
        "evaluate",
        "--db",
        str(credit_db),
        "--at",
        at,
        "--horizon-days",
        str(HORIZON_DAYS),
        "--every-days",
        str(EVERY_DAYS),
        "--min-history-days",
        str(MIN_HISTORY_DAYS),
    )
    assert done.returncode == 0, done.stderr
    for scorer in ("scorecard", "score", "current_hf", "min_hf_90d"):
        assert f"  {scorer} " in done.stdout
    metrics = _query(credit_db, "SELECT * FROM credit_evaluations")
    assert set(metrics["scorer"]) == {"scorecard", "score", "current_hf", "min_hf_90d"}
    assert metrics["wallets"].n_unique() == 1 and (metrics["auc"].drop_nulls().is_between(0, 1)).all()
    assert _query(credit_db, "SELECT sum(wallets) AS n FROM credit_calibration")["n"][0] == metrics["wallets"][0]
    # Calibration by regime: the market at the cutoff, named, and all its borrowers' mean PD against what happened.
    assert "  calibration by regime: " in done.stdout and "  calibration by band, liquidated vs " in done.stdout
    regimes = _query(credit_db, "SELECT * FROM credit_regimes")
    assert regimes.height == 1 and regimes["regime"][0] in {name for name, _, _ in REGIMES}
    assert regimes["wallets"][0] == metrics["wallets"][0] and regimes["liquidated"][0] == metrics["liquidated"][0]
    assert regimes["market_vol"][0] > 0 and 0 <= regimes["market_drawdown"][0] < 1

    done = cli("credit", "--db", str(credit_db), "--model", str(trained))
    assert done.returncode == 0, done.stderr
    model = Scorecard.load(trained)
    scores = _query(credit_db, "SELECT * FROM credit_scores WHERE model_version = ?", [model.version])
    latest = history.samples["block_number"][-1]
    expected = features(history, latest)
    assert set(scores["wallet"]) == set(expected["wallet"]) and (scores["as_of_block"] == latest).all()
    assert scores["score"].is_between(300, 850).all()
    assert all(band_of(s) == b for s, b in scores.select("score", "band").iter_rows())
    assert all(len(r) <= 3 for r in scores["reasons"])
    # Each wallet's feature points add up to its score.
    points = _query(
        credit_db,
        "SELECT wallet, sum(points) AS total FROM credit_features WHERE model_version = ? GROUP BY wallet",
        [model.version],
    )
    joined = scores.join(points, on="wallet")
    assert np.array_equal(np.clip(np.round(joined["total"].to_numpy()), 300, 850), joined["score"].to_numpy())
    # The suggested limit never exceeds what the protocols allow, and is the band's share of it: one share per band,
    # never lower for a better band.
    limited = scores.filter(pl.col("suggested_ltv").is_not_null() & (pl.col("protocol_ltv") > 0))
    assert (limited["suggested_ltv"] <= limited["protocol_ltv"] + 1e-12).all()
    shares = limited.group_by("band").agg(
        (pl.col("suggested_ltv") / pl.col("protocol_ltv")).min().alias("low"),
        (pl.col("suggested_ltv") / pl.col("protocol_ltv")).max().alias("high"),
    )
    by_band = {band: (low, high) for band, low, high in shares.iter_rows()}
    ordered = [by_band[name] for name, _ in BANDS if name in by_band]
    assert all(high - low < 1e-9 for low, high in ordered) and len(ordered) >= 2
    assert [low for low, _ in ordered] == sorted(low for low, _ in ordered)
    # Every reason states its value with a unit.
    texts = [t for row in scores["reason_text"] for t in row]
    assert texts and all(
        any(unit in t.split(" = ")[1] for unit in ("(ratio)", "(count)", " days", "$", " %", " sigmas")) for t in texts
    ), texts

    # As of an earlier block: the sample at or before it, and the rows of the latest one stay.
    older = history.samples["block_number"][len(times) // 2]
    done = cli("credit", "--db", str(credit_db), "--model", str(trained), "--as-of", str(older + 1))
    assert done.returncode == 0, done.stderr
    blocks = _query(
        credit_db, "SELECT DISTINCT as_of_block FROM credit_scores WHERE model_version = ?", [model.version]
    )["as_of_block"]
    assert set(blocks) == {latest, older}


def test_repay_advice_reaches_the_health_the_chain_computes(
    credit_db: Path, trained: Path, rpc: RpcClient, devnet: dict[str, Any]
) -> None:
    """The advice's modelled health after repaying equals the pool's getUserAccountData after doing it."""
    with Store(credit_db, read_only=True) as store:
        history = load_history(store, 31337)
    latest = history.samples["block_number"][-1]
    head = int(rpc.call("eth_blockNumber"), 16)
    if head != latest:
        pytest.skip("the devnet moved past the last sample")
    frame = features(history, latest)
    single = _query(
        credit_db,
        "SELECT wallet FROM wallet_health_history WHERE last_block = ? GROUP BY wallet "
        "HAVING count(*) = 1 AND any_value(protocol) = 'aave-v3'",
        [latest],
    )["wallet"]
    frame = frame.filter(pl.col("wallet").is_in(single.to_list()) & (pl.col("debt_usd") > 100) & (pl.col("hf_now") < 3))
    from chainrisk.credit.advice import _repay

    rows = frame.head(5)
    modelled = _repay(rows, 0.4 * rows["worst_debt"].to_numpy())["worst_hf"].to_numpy()
    reserves = devnet["aave_v3"]["reserves"]
    erc20 = load_abi("erc20", "IERC20Detailed")
    pool = devnet["aave_v3"]["pool"]
    with sandbox(rpc):
        builder = BlockBuilder(rpc, timestamp=block_timestamp(rpc, latest) + 12)
        for wallet in rows["wallet"]:
            debts = _query(
                credit_db,
                "SELECT asset, debt_amount FROM positions WHERE wallet = ? AND block_number = ? "
                "AND debt_amount > 0 AND protocol = 'aave-v3'",
                [wallet, latest],
            )
            for asset, amount in debts.iter_rows():
                units = int(amount) * 4 // 10
                symbol = next(s for s, r in reserves.items() if r["asset"].lower() == asset.lower())
                builder.call(wallet, MINTABLE, reserves[symbol]["asset"], "mint", units)  # open-mint test token
                builder.call(wallet, erc20, asset, "approve", pool, units)
                builder.call(wallet, POOL, pool, "repay", asset, units, 2, wallet)
        builder.mine(0)
        theirs = aave_health(rpc, devnet, rows["wallet"].to_list())
        for wallet, want in zip(rows["wallet"], modelled, strict=True):
            assert theirs[wallet][5] / WAD == pytest.approx(want, rel=2e-4), wallet


@pytest.fixture
def empty_db(tmp_path: Path, scored_db: Path) -> Iterator[Path]:
    db = tmp_path / "nohistory.duckdb"
    shutil.copy(scored_db, db)
    yield db


def test_bad_input_is_one_line(empty_db: Path, credit_db: Path, trained: Path, tmp_path: Path) -> None:
    cases = [
        (("credit", "--db", str(empty_db), "--model", str(trained)), "run `chainrisk credit history` first"),
        (("credit", "--db", str(tmp_path / "none.duckdb")), "no database at"),
        (("credit", "--db", str(credit_db), "--model", str(tmp_path / "none.json")), "no credit model"),
        (("credit", "--db", str(credit_db), "--model", str(trained), "--as-of", "3"), "no credit history sample"),
        (("credit", "--db", str(credit_db), "--model", str(trained), "--as-of", "May"), "neither a block number"),
        (("credit", "evaluate", "--db", str(credit_db), "--at", "2099-01-01"), "label window"),
        (
            ("credit", "train", "--db", str(credit_db), "--out", str(tmp_path / "m.json"), "--until", "1"),
            "no credit history sample",
        ),
    ]
    before = _query(credit_db, "SELECT count(*) AS n FROM credit_scores")["n"][0]
    for args, message in cases:
        done = cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert _query(credit_db, "SELECT count(*) AS n FROM credit_scores")["n"][0] == before


def test_history_resumes_where_it_stopped(credit_db: Path, devnet: dict[str, Any]) -> None:
    again = backfill(devnet_config(devnet, credit_db), devnet["rpc_url"], every_s=HALF_DAY)
    assert again.added == 0 and again.total > 0
    assert credit.read_history(credit_db).chain_id == 31337


def test_a_later_sample_in_the_same_bucket_keeps_the_credit_samples_health(credit_db: Path, tmp_path: Path) -> None:
    """A run's score in the hour of the newest `credit history` sample (or the other samples of a day, once hours
    fold into days) becomes its bucket's last sample. The credit features read each sample's bucket, so the scores
    are the same; before, they matched the bucket's last block alone and found no wallet at the newest sample
    ("no wallet holds a position valued in USD", the demo after one `chainrisk run`)."""
    model = Scorecard.load(credit.DEFAULT_MODEL)
    plain, extended = tmp_path / "plain.duckdb", tmp_path / "extended.duckdb"
    shutil.copy(credit_db, plain)
    shutil.copy(credit_db, extended)
    with duckdb.connect(str(extended)) as con:
        (newest,) = con.execute("SELECT max(block_number) FROM credit_samples").fetchone() or (None,)
        # One more sample a block later in each bucket that ends at the newest credit sample (its first block and
        # its minimum's block kept where they were: both are held back from the last block).
        moved = con.execute(
            "UPDATE wallet_health_buckets SET last_block = last_block + 1, samples = samples + 1, "
            "first_back = first_back + 1, min_back = min_back + 1 WHERE last_block = ?",
            [newest],
        ).fetchall()
    assert moved and moved[0][0] > 0
    reports = [credit.score_wallets(db, model) for db in (plain, extended)]
    assert reports[0].wallets > 0 and reports[1].wallets == reports[0].wallets
    assert reports[1].as_of_block == reports[0].as_of_block == newest
    scores = [_query(db, "SELECT wallet, score FROM credit_scores ORDER BY wallet") for db in (plain, extended)]
    assert_frame_equal(scores[0], scores[1])
