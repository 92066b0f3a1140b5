"""Aave V2 liquidations: both schemas of the real file on one USD scale, features without look-ahead, labels."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from chainrisk.credit.aave_v2 import FEATURES, liquidation_features, load_liquidations, sanity_table
from chainrisk.errors import UserError
from chainrisk.units import DAY_S

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LIQUIDATIONS = DATA / "aave_v2" / "liquidations.csv"
PRICES = DATA / "prices" / "hourly_usd"


def ts(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def real() -> pl.DataFrame:
    return load_liquidations(LIQUIDATIONS, PRICES)


def test_real_file_has_the_rows_the_data_readme_states(real: pl.DataFrame) -> None:
    assert real.height == 11_497
    assert real["user"].n_unique() == 3_206
    assert dict(real.group_by("pool").len().iter_rows()) == {"main": 11_384, "amm": 113}
    # The schema is told per row from its columns; it must agree with the README's boundary (data row 6,231).
    schema1 = real.filter(pl.col("schema") == 1)["row"]
    assert (schema1.len(), schema1.min(), schema1.max()) == (6_231, 1, 6_231)
    assert real.filter(pl.col("schema") == 2)["liquidator"].null_count() == 0
    assert datetime.fromtimestamp(real["timestamp"].min(), UTC).date().isoformat() == "2020-12-17"  # type: ignore[arg-type]
    assert datetime.fromtimestamp(real["timestamp"].max(), UTC).date().isoformat() == "2022-04-03"  # type: ignore[arg-type]
    assert real["timestamp"].is_sorted()
    usd = real.select("debt_repaid_usd", "collateral_seized_usd")
    assert usd.null_count().sum_horizontal().item() == 0
    assert usd.select(pl.all().min()).min_horizontal().item() > 0


def test_both_schemas_value_usd_on_one_scale(real: pl.DataFrame) -> None:
    by_schema = real.group_by("schema").agg(
        pl.col("debt_repaid_usd").median().alias("median_debt"),
        # Collateral seized over debt repaid is the liquidation bonus (5-15 % on Aave V2) when both sides are valued
        # right; a decimals slip on either side would move it by powers of ten.
        (pl.col("collateral_seized_usd") / pl.col("debt_repaid_usd")).is_between(1.0, 1.2).mean().alias("bonus_like"),
    )
    medians = dict(zip(by_schema["schema"].to_list(), by_schema["median_debt"].to_list(), strict=True))
    assert 0.1 < medians[1] / medians[2] < 10
    assert 1_000 < medians[1] < 20_000 and 1_000 < medians[2] < 20_000
    assert by_schema["bonus_like"].min() > 0.9  # type: ignore[operator]
    # Schema 2 states USD amounts of its own (not used, see load_liquidations): ours agree on almost every row.
    stated = pl.read_csv(
        LIQUIDATIONS, columns=["amountUSDPrincipal"], schema_overrides={"amountUSDPrincipal": pl.Float64}
    )["amountUSDPrincipal"].slice(6_231)
    ours = real.filter(pl.col("schema") == 2).sort("row")["debt_repaid_usd"]
    assert ((ours / stated - 1).abs() < 0.05).mean() > 0.95  # type: ignore[operator]


def test_hand_checked_rows(real: pl.DataFrame) -> None:
    rows = {r["row"]: r for r in real.filter(pl.col("row").is_in([1, 3_914, 6_232])).iter_rows(named=True)}
    # Data row 1 (schema 1, 2021-07-12 21:18 UTC): 63917 raw GUSD (2 decimals) repaid at 446377218623049 wei per
    # GUSD, 330855192754556269 raw WETH (18 decimals) seized; the last WETH quote before it is $2032.029794380959.
    weth = 2032.029794380959
    assert rows[1]["debt_repaid_usd"] == pytest.approx(639.17 * 446377218623049e-18 * weth, rel=1e-12)
    assert rows[1]["collateral_seized_usd"] == pytest.approx(0.330855192754556269 * weth, rel=1e-12)
    assert rows[1]["debt_repaid_usd"] == pytest.approx(579.76, abs=0.01)
    assert (rows[1]["user"], rows[1]["debt_symbol"], rows[1]["collateral_symbol"], rows[1]["pool"]) == (
        "0x3424b949dbc5d2d2654cb6fc622c4d723b2e8fb4",
        "GUSD",
        "WETH",
        "main",
    )
    # Data row 3,914 (2020-12-17, before the WETH series starts): ETH/USD from the row's oracle, 1e18 / USDT's
    # 1511000000000000 wei; 74305 raw WBTC (8 decimals) at 3.455255673262864e19 wei per WBTC.
    eth_usd = 1e18 / 1511000000000000
    assert rows[3_914]["debt_repaid_usd"] == pytest.approx(74305e-8 * 34.55255673262864 * eth_usd, rel=1e-12)
    assert rows[3_914]["collateral_seized_usd"] == pytest.approx(17.805688961227928811 * 0.00151401 * eth_usd)
    # Data row 6,232 (schema 2, 2022-02-03 11:29 UTC): 2598.419589 USDC at 0.000383415072341305 ETH, 1.046086896423974
    # WETH seized; last WETH quote $2597.405375619751. The file states $2595.28 repaid (its own USD price).
    weth = 2597.405375619751
    assert rows[6_232]["debt_repaid_usd"] == pytest.approx(2598.419589 * 0.000383415072341305 * weth, rel=1e-12)
    assert rows[6_232]["collateral_seized_usd"] == pytest.approx(1.046086896423974 * weth, rel=1e-12)
    assert rows[6_232]["debt_repaid_usd"] == pytest.approx(2595.2780785654436, rel=0.01)
    assert rows[6_232]["liquidator"] == "0xd911560979b78821d7b045c79e36e9cbfc2f6c6f"


@pytest.mark.parametrize("cutoff", [ts(2021, 1, 1), ts(2021, 5, 19), ts(2021, 7, 28), ts(2022, 1, 24)])
def test_features_use_no_row_after_the_cutoff(real: pl.DataFrame, cutoff: int) -> None:
    features = liquidation_features(real, cutoff).drop("label")
    assert features.height > 0
    truncated = liquidation_features(real.filter(pl.col("timestamp") <= cutoff), cutoff).drop("label")
    assert_frame_equal(features, truncated)
    # Rewriting every later row (amounts, symbols, more rows for the same wallets) changes no feature.
    later = pl.col("timestamp") > cutoff
    rewritten = pl.concat([real, real.filter(later)]).with_columns(
        pl.when(later).then(pl.col("debt_repaid_usd") * 1_000).otherwise(pl.col("debt_repaid_usd")),
        pl.when(later).then(pl.lit("ZZZ")).otherwise(pl.col("collateral_symbol")).alias("collateral_symbol"),
    )
    assert_frame_equal(liquidation_features(rewritten, cutoff).drop("label"), features)
    # Moving the cutoff up to just before the next liquidation changes only the ages, by exactly the move.
    following = real.filter(later)["timestamp"].min()
    assert isinstance(following, int)
    moved = liquidation_features(real, following - 1).drop("label")
    shift = (following - 1 - cutoff) / DAY_S
    ages = ["days_since_liquidation", "days_since_first_liquidation"]
    assert_frame_equal(moved.drop(ages), features.drop(ages))
    assert_frame_equal(moved.select(ages), features.select(pl.col(ages) + shift))
    # A liquidation at the cutoff itself is history, not future.
    at = liquidation_features(real, following)
    assert at.height >= features.height
    assert at.filter(pl.col("days_since_liquidation") == 0).height > 0


def synthetic() -> pl.DataFrame:
    rows = [
        # user, timestamp, collateral, debt, debt repaid USD
        ("0xa", 1_000, "WETH", "USDC", 100.0),
        ("0xa", 5_000, "WBTC", "USDC", 300.0),
        ("0xa", 10_000 + 1, "WETH", "DAI", 50.0),  # right after the cutoff
        ("0xb", 10_000, "WETH", "DAI", 40.0),  # at the cutoff: history
        ("0xb", 10_000 + 30 * DAY_S, "WETH", "DAI", 40.0),  # the window's last second: counts
        ("0xc", 9_000, "LINK", "USDT", 70.0),
        ("0xc", 10_000 + 30 * DAY_S + 1, "LINK", "USDT", 70.0),  # one second past the window
        ("0xd", 20_000, "WETH", "USDC", 10.0),  # first liquidated after the cutoff: not in the table
        ("0xe", 2_000, "WETH", "USDC", 25.0),
        ("0xe", 2_000, "WETH", "USDC", 25.0),  # same block, second call
    ]
    return pl.DataFrame(
        rows, schema=["user", "timestamp", "collateral_symbol", "debt_symbol", "debt_repaid_usd"], orient="row"
    )


def test_labels_and_features_on_a_small_frame() -> None:
    got = liquidation_features(synthetic(), 10_000)
    expected = pl.DataFrame(
        {
            "user": ["0xa", "0xb", "0xc", "0xe"],
            "liquidations": [2, 1, 1, 2],
            "liquidation_days": [1, 1, 1, 1],
            "liquidated_usd": [400.0, 40.0, 70.0, 50.0],
            "largest_liquidation_usd": [300.0, 40.0, 70.0, 25.0],
            "days_since_liquidation": [5_000 / DAY_S, 0.0, 1_000 / DAY_S, 8_000 / DAY_S],
            "days_since_first_liquidation": [9_000 / DAY_S, 0.0, 1_000 / DAY_S, 8_000 / DAY_S],
            "distinct_collateral": [2, 1, 1, 1],
            "distinct_debt": [1, 1, 1, 1],
            "label": [True, True, False, False],
        }
    )
    assert_frame_equal(got, expected)
    assert list(got.columns) == ["user", *FEATURES, "label"]
    # A horizon of one day ends before 0xb's second liquidation.
    assert liquidation_features(synthetic(), 10_000, horizon_days=1)["label"].to_list() == [True, False, False, False]
    # Days count UTC calendar days: 0xa's three calls fall on one day, 0xb's and 0xc's two on two.
    later = liquidation_features(synthetic(), 10_000 + 40 * DAY_S)
    assert dict(zip(later["user"], later["liquidation_days"], strict=True)) == {
        "0xa": 1,
        "0xb": 2,
        "0xc": 2,
        "0xd": 1,
        "0xe": 1,
    }
    assert later["label"].to_list() == [False] * 5
    assert liquidation_features(synthetic(), 999).height == 0


def test_sanity_table_stacks_cutoffs_and_refuses_censored_ones(real: pl.DataFrame) -> None:
    cutoffs = [ts(2021, 5, 1), ts(2021, 6, 1)]
    table = sanity_table(real, cutoffs)
    assert table.columns == ["cutoff", "user", *FEATURES, "label"]
    for cutoff in cutoffs:
        assert_frame_equal(table.filter(pl.col("cutoff") == cutoff).drop("cutoff"), liquidation_features(real, cutoff))
    # May 2021's crash liquidated many wallets again within 30 days of 1 May.
    may = table.filter(pl.col("cutoff") == cutoffs[0])
    assert may["label"].mean() > 0.3  # type: ignore[operator]
    with pytest.raises(UserError, match="runs past the last liquidation"):
        sanity_table(real, [ts(2022, 3, 10)])
    with pytest.raises(UserError, match="no cutoffs"):
        sanity_table(real, [])


def copy_of_real(folder: Path, edit: str | None = None, lines: int = 5) -> Path:
    """The real file's header and first `lines` data rows (schema 1) plus tokens.csv, `edit` applied to the text."""
    head = LIQUIDATIONS.read_text().splitlines()[: lines + 1]
    text = "\n".join(head) + "\n"
    if edit is not None:
        old, new = edit.split("->")
        assert old in text
        text = text.replace(old, new, 1)
    path = folder / "liquidations.csv"
    path.write_text(text)
    shutil.copy(LIQUIDATIONS.parent / "tokens.csv", folder / "tokens.csv")
    return path


def test_a_copy_of_the_first_rows_loads(tmp_path: Path, real: pl.DataFrame) -> None:
    small = load_liquidations(copy_of_real(tmp_path), PRICES)
    assert_frame_equal(small, real.filter(pl.col("row") <= 5).sort("timestamp", "row"))


def test_eth_usd_is_the_last_quote_before_the_liquidation(tmp_path: Path) -> None:
    """No later quote values a liquidation (features at a cutoff must not see prices after it), and a quote more than
    two hours old gives way to the row's own oracle."""
    first, second = 1626124715, 1619145033  # data rows 1 and 2
    quotes = [(first - 3_600, 1_000.0), (first + 60, 9_999.0), (second - 3 * 3_600, 5_555.0)]
    quotes += [(t - 1, 2_000.0) for t in (1621319875, 1614324006, 1621788289)]  # data rows 3 to 5
    prices = tmp_path / "prices"
    prices.mkdir()
    pl.DataFrame(
        {"symbol": "WETH", "timestamp": [t * 1000 for t, _ in quotes], "USD_price": [p for _, p in quotes]}
    ).sort("timestamp").write_csv(prices / "WETH_usd.csv")
    frame = load_liquidations(copy_of_real(tmp_path), prices)
    by_row = dict(zip(frame["row"], frame["collateral_seized_usd"], strict=True))
    assert by_row[1] == pytest.approx(0.330855192754556269 * 1_000.0, rel=1e-12)  # WETH collateral
    # Data row 2 seized 33825.732222059557759476 ENJ at 456800000000000 wei; USDT at 819170533251580 wei per dollar.
    assert by_row[2] == pytest.approx(33825.732222059557759476 * 456800e-9 * 1e18 / 819170533251580.0, rel=1e-12)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("1626124715->yesterday", "data row 1 has timestamp 'yesterday', not a number"),
        ("collateralAmount,->collateral,", "no column collateralAmount"),
        ("63917->639.17", "data row 1 lacks amountUSDPrincipal .* not raw token units"),
        (",GUSD,->,NOPE,", "has no decimals for NOPE"),
        (",0x3424b949dbc5d2d2654cb6fc622c4d723b2e8fb4,->,,", "data row 1 has no user"),
        (",446377218623049.0,->,,", "data row 1 has no ETH price for GUSD"),
    ],
)
def test_malformed_rows_are_one_line_user_errors(tmp_path: Path, edit: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        load_liquidations(copy_of_real(tmp_path, edit), PRICES)
    assert "\n" not in str(caught.value)


def test_missing_or_unreadable_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no liquidations file at"):
        load_liquidations(tmp_path / "absent.csv", PRICES)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage\x00\n\x80\x81")
    with pytest.raises(UserError, match="is not a readable CSV file"):
        load_liquidations(binary, PRICES)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match=r"empty\.csv is not a readable CSV file"):
        load_liquidations(empty, PRICES)
    header_only = copy_of_real(tmp_path, lines=0)
    with pytest.raises(UserError, match="holds no liquidations"):
        load_liquidations(header_only, PRICES)
    path = copy_of_real(tmp_path)
    with pytest.raises(UserError, match="no WETH price history"):
        load_liquidations(path, tmp_path)
    (tmp_path / "tokens.csv").unlink()
    with pytest.raises(UserError, match="no tokens file"):
        load_liquidations(path, PRICES)
