"""`chainrisk risk stress|var|optimise|cascade`: tables written equal the models, runs reproduce from a seed, plans
reach their target on the engine, and bad input is one line with every file left as it was."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from chainrisk.cli import main
from chainrisk.jobs.risk import RiskSettings, with_graph_series
from chainrisk.risk.calibration import calibrate
from chainrisk.risk.optimise import Action, apply_plan
from chainrisk.risk.parameters import suggest_parameters
from chainrisk.risk.replay import WINDOWS, replay
from chainrisk.risk.var import monte_carlo_var
from chainrisk.scoring.health import stress
from chainrisk.store.db import LATEST_POSITIONS, Store
from chainrisk.store.published import connect_reader


@pytest.fixture()
def db(scored_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "risk.duckdb"
    shutil.copyfile(scored_db, copy)
    # The empty lock file any earlier writing command leaves beside the database.
    return copy


def _rows(db: Path, sql: str) -> pl.DataFrame:
    with Store(db, read_only=True) as store:
        return store.query(sql)


def _positions(db: Path) -> pl.DataFrame:
    return _rows(db, LATEST_POSITIONS)


def _graph_series(db: Path) -> dict[str, str]:
    series = with_graph_series(db, RiskSettings()).series
    assert {"aDevWETH": "WETH", "cvUSDC": "USDC", "wstETH": "stETH"}.items() <= series.items()
    return series


def test_stress_writes_the_replay(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "stress", "--db", str(db), "--window", "luna-2022", "--step-hours", "12"]) == 0
    out = capsys.readouterr().out
    assert "luna-2022 (2022-05-05..2022-05-19, 29 steps of 12 h)" in out and "risk run 1 (stress)" in out
    # Wrapped collateral (aWETH, cvUSDC) moves with its base, as the command maps it from the stored asset graph.
    expected = replay(_positions(db), WINDOWS["luna-2022"], 12, _graph_series(db))
    steps = _rows(db, "SELECT * FROM stress_replay_steps WHERE run_id = 1 ORDER BY scope, protocol, market, step")
    assert steps.height == expected.steps.height
    ours = steps.select("scope", "protocol", "market", "step", "liquidatable_wallets", "bad_debt_usd")
    theirs = expected.steps.select("scope", "protocol", "market", "step", "liquidatable_wallets", "bad_debt_usd")
    assert ours.sort(ours.columns[:4]).equals(theirs.sort(theirs.columns[:4]))
    assert _rows(db, "SELECT count(*) AS n FROM stress_replay_wallets")["n"][0] == expected.wallets.height
    run = _rows(db, "SELECT * FROM risk_runs").row(0, named=True)
    assert run["kind"] == "stress" and run["block_number"] == int(_positions(db)["block_number"][0])
    # Readers see it: the command published.
    with connect_reader(db) as con:
        assert con.execute("SELECT count(*) FROM stress_replay_prices").fetchall()[0][0] > 0


def test_user_window_by_dates(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["risk", "stress", "--db", str(db), "--start", "2022-01-20", "--end", "2022-01-24", "--name", "jan"]
    assert main([*args, "--step-hours", "6"]) == 0
    assert "jan (2022-01-20..2022-01-24, 17 steps of 6 h)" in capsys.readouterr().out
    assert _rows(db, "SELECT DISTINCT window_name FROM stress_replay_steps")["window_name"].to_list() == ["jan"]


def test_var_is_reproducible_from_a_seed_and_equals_the_model(db: Path) -> None:
    args = ["risk", "var", "--db", str(db), "--scenarios", "3000", "--horizons", "24,168", "--seed", "7"]
    assert main(args) == 0 and main(args) == 0 and main([*args[:-1], "8"]) == 0
    columns = "scope, protocol, market, metric, horizon_hours, confidence, var_usd, es_usd, mean_usd"
    order = "ORDER BY scope, protocol, market, metric, horizon_hours, confidence"
    first, second, other = (
        _rows(db, f"SELECT {columns} FROM var_results WHERE run_id = {k} {order}") for k in (1, 2, 3)
    )
    assert first.equals(second) and not first.equals(other)
    model = monte_carlo_var(_positions(db), horizons=(24, 168), scenarios=3000, seed=7, overrides=_graph_series(db))
    assert model.sort(first.columns[:6]).select(first.columns).equals(first)
    assert first.filter(pl.col("horizon_hours") == 168)["es_usd"].sum() > 0
    suggestions = _rows(db, "SELECT * FROM parameter_suggestions WHERE run_id = 1")
    assert suggestions.height > 0 and (suggestions["suggested_ltv_bps"] <= suggestions["suggested_lt_bps"]).all()


def test_var_backtest_reports_kupiec(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["risk", "var", "--db", str(db), "--scenarios", "500", "--horizons", "24", "--backtest-scenarios", "300"]
    assert main([*args, "--backtest", "2022-05-01..2022-07-01"]) == 0
    assert "Kupiec LR" in capsys.readouterr().out
    summary = _rows(db, "SELECT * FROM var_backtest_summary").row(0, named=True)
    series = _rows(db, "SELECT * FROM var_backtest")
    assert summary["observations"] == series.height >= 59
    assert summary["exceedances"] == int(series["exceedance"].sum())


def test_parameter_suggestion_formula() -> None:
    """LT = floor(1e4 q / bonus) and LTV = floor(LT q), q the 1 % quantile of collateral over debt value."""
    rows = pl.DataFrame(
        {
            "protocol": ["p", "p"],
            "chain_id": [1, 1],
            "market": ["m", "m"],
            "wallet": ["a", "a"],
            "symbol": ["WETH", "USDC"],
            "collateral_amount": [10, 0],
            "debt_amount": [0, 5],
            "collateral_usd": [100.0, 0.0],
            "debt_usd": [0.0, 50.0],
            "liquidation_threshold_bps": [8250, 0],
            "ltv_bps": [8000, 0],
            "liquidation_bonus_bps": [10500, 10000],
        }
    )
    calibration = calibrate(["WETH", "USDC"], "2022-01-01", "2022-12-31", 24, "sample")
    weth, usdc = calibration.assets.index("WETH"), calibration.assets.index("USDC")
    multipliers = np.ones((1000, len(calibration.assets)))
    multipliers[:, weth] = np.linspace(0.6, 1.2, 1000)
    multipliers[:, usdc] = 1.01
    out = suggest_parameters(rows, calibration, multipliers, 0.99).row(0, named=True)
    q = float(np.quantile(np.linspace(0.6, 1.2, 1000) / 1.01, 0.01))
    assert out["tail_move"] == pytest.approx(q - 1)
    assert out["suggested_lt_bps"] == int(np.floor(1e4 * q / 1.05))
    assert out["suggested_ltv_bps"] == int(np.floor(out["suggested_lt_bps"] * q))
    assert out["lt_change_bps"] == out["suggested_lt_bps"] - 8250
    # The same debt valued at par by its protocol (dai in the Vat): the debt's series no longer moves the ratio.
    at_par = suggest_parameters(rows.with_columns(price_fixed=pl.Series([False, True])), calibration, multipliers)
    q_par = float(np.quantile(np.linspace(0.6, 1.2, 1000), 0.01))
    assert at_par.row(0, named=True)["suggested_lt_bps"] == int(np.floor(1e4 * q_par / 1.05)) != out["suggested_lt_bps"]


def test_optimise_plans_reach_the_target_on_the_engine(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "optimise", "--db", str(db), "--below", "1.15", "--target", "1.25", "--limit", "12"]) == 0
    assert "plans to reach 1.25" in capsys.readouterr().out
    plans = _rows(db, "SELECT * FROM optimise_plans")
    actions = _rows(db, "SELECT * FROM optimise_actions ORDER BY wallet, seq")
    positions = _positions(db)
    assert 0 < plans.height <= 12 and plans["feasible"].all()
    for plan in plans.iter_rows(named=True):
        rows = positions.filter((pl.col("protocol") == plan["protocol"]) & (pl.col("market") == plan["market"]))
        own = actions.filter((pl.col("wallet") == plan["wallet"]) & (pl.col("market") == plan["market"]))
        steps = [
            Action(
                a["kind"],
                a["symbol"],
                int(a["amount"]),
                a["amount_usd"],
                a["cost_usd"],
                a["into_symbol"],
                int(a["received"] or 0),
            )
            for a in own.iter_rows(named=True)
        ]
        after = stress(apply_plan(rows, plan["wallet"], steps), pl.DataFrame({"symbol": [], "multiplier": []}))
        hf = after.filter(pl.col("wallet") == plan["wallet"])["health_factor"][0]
        assert hf >= 1.25 and hf == pytest.approx(plan["health_after"], rel=1e-12)
        assert plan["cost_usd"] == pytest.approx(sum(a.cost_usd for a in steps))
    assert _rows(db, "SELECT count(*) AS n FROM threshold_sensitivity WHERE shift_bps = 100")["n"][0] > 0


def test_cascade_rounds(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = db.parent / "chainrisk.toml"
    # Depth so thin that liquidation sales move prices: the cascade must go beyond its first round.
    config.write_text('[risk]\ndepth_usd_at_2pct = { WETH = 2000.0, wstETH = 2000.0 }\ndepth_shape = "linear"\n')
    assert main(["risk", "cascade", "--db", str(db), "--shock", "WETH=-25%", "--config", str(config)]) == 0
    assert "amplification" in capsys.readouterr().out
    rounds = _rows(db, "SELECT * FROM cascade_rounds ORDER BY round")
    assert rounds.height >= 2 and rounds["amplification"][0] > 1
    assert rounds["cumulative_liquidated_debt_usd"].is_sorted()


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("args", "config", "message"),
    [
        (["stress", "--window", "nope"], None, "unknown window 'nope'"),
        (["stress", "--start", "2022-02-01", "--end", "2022-01-01"], None, "before it starts"),
        (["stress", "--start", "2024-01-01", "--end", "2024-02-01"], None, "outside them"),
        (["cascade", "--shock", "WETH"], None, "write SYMBOL=-30%"),
        (["cascade", "--shock", "WETH=-120%"], None, "must be above 0"),
        (["cascade", "--shock", "WETH=-30"], None, "say the unit: WETH=-30% for a percentage move"),
        (["cascade", "--shock", "DOGE=-10%"], None, "which no position holds"),
        (["cascade"], None, "give at least one --shock"),
        (["var", "--backtest", "2022-01-01"], None, "write START..END"),
        (["var", "--calibration-start", "2023-02-20"], None, "complete 24 h returns"),
        (["var"], '[risk]\nseries = { WETH = "NOPE" }\n', "maps to 'NOPE'"),
        (["stress"], '[risk]\nseries = { WETH = "NOPE" }\n', "maps to 'NOPE'"),
        (["var"], "[risk]\ncolour = 1\n", "unknown key 'colour'"),
        (["cascade", "--shock", "WETH=-1%"], "[risk]\ndepth_usd_at_2pct = { WETH = -5 }\n", "positive USD"),
        (["cascade", "--shock", "WETH=-1%"], '[risk]\ndepth_shape = "cubic"\n', "sqrt"),
        (["var"], "[risk\n", "not valid TOML"),
        (["optimise", "--target", "0.9"], None, "must be above 1"),
        (["contagion", "--shock", "DOGE=-10%"], None, "which no position or wrapper rests on"),
        (["contagion", "--shock", "stETH"], None, "write SYMBOL=-30%"),
        (["contagion"], None, "give at least one --shock"),
        (["var", "--prices", "nowhere"], None, "--prices: nowhere is not a folder of <SERIES>_usd.csv price files"),
        (["stress"], '[risk]\nprices = "nowhere"\n', "[risk] prices: "),
        (["stress"], "[risk]\nprices = 5\n", "[risk] prices must be a folder path"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    db: Path, args: list[str], config: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = []
    if config is not None:
        path = db.parent / "bad.toml"
        path.write_text(config)
        extra = ["--config", str(path)]
    before = _tree(db.parent)
    code = main(["risk", args[0], "--db", str(db), *args[1:], *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("chainrisk: error: ") and message in err, err
    assert _tree(db.parent) == before


def test_the_price_history_comes_from_prices_the_config_or_the_environment(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installation not beside ../shared names its price history: --prices, [risk] prices (relative to the config)
    or CHAINRISK_PRICES_DIR; the same files give the same replay, and none found is one line naming the three."""
    from chainrisk.risk.calibration import prices_folder

    history = tmp_path / "history"
    shutil.copytree(prices_folder(), history)
    args = ["risk", "stress", "--db", str(db), "--window", "luna-2022", "--step-hours", "24"]
    monkeypatch.setenv("CHAINRISK_PRICES_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no price history in" in err and "--prices, [risk] prices" in err, err
    config = tmp_path / "chainrisk.toml"
    config.write_text('[risk]\nprices = "history"\n')
    outputs = []
    for extra in (["--prices", str(history)], ["--config", str(config)]):
        assert main([*args, *extra]) == 0
        outputs.append(capsys.readouterr().out.splitlines()[0])
    monkeypatch.setenv("CHAINRISK_PRICES_DIR", str(history))
    assert main(args) == 0
    outputs.append(capsys.readouterr().out.splitlines()[0])
    assert len(set(outputs)) == 1 and outputs[0].startswith("luna-2022 (2022-05-05..2022-05-19, 15 steps of 24 h)")


def test_no_database_and_no_positions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "var", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no database" in capsys.readouterr().err
    empty = tmp_path / "empty.duckdb"
    Store(empty).close()
    assert main(["risk", "stress", "--db", str(empty)]) == 2
    assert "holds no positions" in capsys.readouterr().err


def test_var_writes_backtested_parameter_advice(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "var", "--db", str(db), "--scenarios", "1000", "--horizons", "24"]) == 0
    out = capsys.readouterr().out
    assert "parameter advice (LT: the 99.9% 2 h move" in out and "every proposal at once, whole book" in out
    assert "verdict: " in out and " of 1,000 24 h scenarios" in out
    suggestions = _rows(db, "SELECT * FROM parameter_suggestions WHERE run_id = 1")
    advice = _rows(db, "SELECT * FROM parameter_advice WHERE run_id = 1")
    backtest = _rows(db, "SELECT * FROM parameter_backtest WHERE run_id = 1")
    key = ["protocol", "chain_id", "market", "symbol"]
    assert suggestions.select(key).sort(key).equals(advice.select(key).sort(key))
    assert (suggestions["suggested_ltv_bps"] <= suggestions["suggested_lt_bps"]).all()
    # A governance step is at most 300 bps; a Morpho market's other LLTV is another market's, at once, and one its
    # Morpho has enabled (a market there uses it).
    morpho = pl.col("protocol") == "morpho-blue"
    assert (suggestions.filter(~morpho)["lt_change_bps"].abs() <= 300).all()
    in_use = set(
        _rows(db, "SELECT DISTINCT liquidation_threshold_bps FROM positions WHERE protocol = 'morpho-blue'")[
            "liquidation_threshold_bps"
        ]
    )
    assert set(suggestions.filter(morpho)["suggested_lt_bps"]) <= in_use
    assert (advice["reasons"].str.len_chars() > 100).all()
    assert set(backtest["window_name"]) == set(WINDOWS)
    raised = suggestions.filter(pl.col("lt_change_bps") > 0).select(key)
    windows = backtest.join(raised, on=key).pivot(on="variant", index=[*key, "window_name"], values="bad_debt_usd")
    assert (windows["proposed"] <= windows["current"] + 1.0).all()  # no raise adds bad debt in any window
    # Wrapped collateral (the aToken on Morpho) is advised on its base's moves.
    wrapped = suggestions.filter(pl.col("symbol").str.starts_with("a")).row(0, named=True)
    weth = suggestions.filter((pl.col("symbol") == "WETH") & (pl.col("protocol") == wrapped["protocol"])).row(
        0, named=True
    )
    assert wrapped["series"] == "WETH" and wrapped["tail_move"] == pytest.approx(weth["tail_move"], abs=0.01)
    odds = _rows(db, "SELECT * FROM var_odds WHERE run_id = 1 AND scope = 'total'")
    assert odds.height == 3 and odds["loss_probability"].is_between(0, 1).all()


def test_optimise_reads_sensitivity_where_liquidations_start(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "optimise", "--db", str(db), "--below", "1.05", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "first liquidation as each collateral's base falls: " in out
    distance = _rows(db, "SELECT * FROM liquidation_distance WHERE run_id = 1")
    assert distance.height > 0 and distance["first_drop"].drop_nulls().is_between(0, 0.9).all()
    changes = _rows(db, "SELECT * FROM threshold_sensitivity WHERE run_id = 1 AND shift_bps <> 0")
    assert (changes["liquidatable_wallets_change"] != 0).any()  # no longer a flat $0 line for every collateral


def test_cascade_moves_wrapped_collateral(db: Path) -> None:
    assert main(["risk", "cascade", "--db", str(db), "--shock", "WETH=-30%"]) == 0
    shocked = dict(_rows(db, "SELECT symbol, multiplier FROM cascade_prices WHERE round = 0").iter_rows())
    assert shocked["aDevWETH"] == pytest.approx(0.7) and shocked["WETH"] == pytest.approx(0.7)
    assert shocked["cvUSDC"] == 1.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[risk]\noracle_lag_hours = -1\n", "oracle_lag_hours must be a whole number from 0 to 48"),
        ("[risk]\nmax_change_bps = 2.5\n", "max_change_bps must be a whole number"),
    ],
)
def test_bad_advice_settings_are_one_line(
    db: Path, config: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = db.parent / "bad.toml"
    path.write_text(config)
    before = _tree(db.parent)
    assert main(["risk", "var", "--db", str(db), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert _tree(db.parent) == before
