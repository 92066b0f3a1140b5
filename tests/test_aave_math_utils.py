"""Cross-check of our Aave V3 account figures against Aave's own JS library, @aave/math-utils (the app's maths).

`tests/aave_math_utils.mjs` feeds the indexed raw rows (reserves, e-mode category, scaled balances, user
configuration) to `formatReserves` + `formatUserSummary` at the snapshot block's timestamp; for every wallet with
debt its collateral and debt (USD) must agree with `wallet_health` to 1e-9 relative, and so must its health factor
once both sides use the same definition of the average liquidation threshold:

* the contract (GenericLogic.calculateUserAccountData, Aave 3.0.2) floors the collateral-weighted average
  liquidation threshold to whole basis points (`avgLiquidationThreshold / totalCollateralInBaseCurrency`,
  integer division) before `percentMul` + `wadDiv`;
* the library (calculateUserReserveTotals) keeps that average unrounded (a BigNumber quotient to 20 decimals,
  which `valueToZDBigNumber` does not round) and returns HF = collateral * average / 1e4 / debt.

So the library's own `healthFactor` exceeds the contract's by the dropped fraction of a basis point, up to
1/average-threshold-in-bps (about 1.2e-4) for wallets with several collateral assets of different thresholds, and
is exact for the others. The quantity defined identically is the library's collateral and debt with its average
threshold floored to whole bps: that is compared at 1e-9, the floored threshold must equal ours exactly, and the
library's raw HF must exceed ours by exactly the unrounded/floored threshold ratio (to 1e-9).

The USD totals are compared as the library returns them: the contract floors each asset's value to base units
(1e-8 USD) where the library does not, a relative difference of at most (assets held) / (total in 1e-8 USD).
That bound is under 1e-9 for every position above about 10 USD; the few dust positions below it (a 3.65 USD
debt on the test devnet) are held to the bound itself, and the test requires them to stay rare.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chainrisk.devnet.toolchain import run_node_json
from chainrisk.jobs.index import index_aave_v3

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "aave_math_utils.mjs"
LIBRARY = ROOT / "node_modules" / "@aave" / "math-utils"
TOLERANCE = Fraction(1, 10**9)
WAD, BPS = 10**18, 10**4

JsonRow = dict[str, Any]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[JsonRow]:
    """Rows as dicts; integers (HUGEINTs included) as decimal strings, which JSON numbers in JS cannot hold."""
    cursor = con.execute(sql, params)
    columns = [column[0] for column in cursor.description]
    return [
        {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in zip(columns, row, strict=True)}
        for row in cursor.fetchall()
    ]


def math_utils_input(db: Path, repeat: int = 1) -> JsonRow:
    """The script's input for the snapshot in `db`: raw DuckDB rows, mapped to the library's shapes in the script."""
    with duckdb.connect(str(db), read_only=True) as con:
        block_row = con.execute("SELECT max(block_number) FROM wallet_health").fetchone()
        assert block_row is not None
        block: int = block_row[0]
        timestamp_row = con.execute(
            "SELECT DISTINCT block_timestamp FROM wallet_health WHERE block_number = ?", [block]
        ).fetchall()
        assert len(timestamp_row) == 1
        at = "WHERE block_number = ?"
        balances: dict[str, list[JsonRow]] = {}
        for row in _rows(con, f"SELECT * FROM raw_aave_v3_balances {at} ORDER BY wallet, asset", [block]):
            balances.setdefault(row["wallet"], []).append(row)
        accounts = _rows(con, f"SELECT * FROM raw_aave_v3_accounts {at} ORDER BY wallet", [block])
        return {
            "currentTimestamp": timestamp_row[0][0],
            "reserves": _rows(con, f"SELECT * FROM raw_aave_v3_reserves {at} ORDER BY reserve_id", [block]),
            "emodeCategories": _rows(con, f"SELECT * FROM raw_aave_v3_emode_categories {at}", [block]),
            "users": [
                {
                    "wallet": a["wallet"],
                    "emode": a["emode_category"],
                    "user_configuration": a["user_configuration"],
                    "userReserves": balances.get(a["wallet"], []),
                }
                for a in accounts
            ],
            "repeat": repeat,
        }


def run_math_utils(payload: JsonRow) -> JsonRow:
    """Runs the script on `payload`; a failing script fails the test with node's stderr."""
    assert shutil.which("node") is not None, "node is not installed"
    assert LIBRARY.is_dir(), f"{LIBRARY} is missing: run `npm ci` (make setup)"
    result: JsonRow = run_node_json(SCRIPT, payload)
    return result


def _relative(theirs: Fraction, ours: Fraction) -> Fraction:
    return abs(theirs / ours - 1)


def test_account_figures_match_aave_math_utils(
    devnet: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("math_utils")
    db = folder / "chainrisk.duckdb"
    index_aave_v3(devnet["rpc_url"], devnet["aave_v3"]["pool_addresses_provider"], db)
    payload = math_utils_input(db)
    result = run_math_utils(payload)
    library = {u["wallet"]: u for u in result["users"]}
    assert result["wallets"] == len(payload["users"]) and result["seconds"] > 0

    with duckdb.connect(str(db), read_only=True) as con:
        ours = con.execute(
            "SELECT h.wallet, h.health_factor_wad, h.collateral_usd, h.debt_usd, h.liquidation_threshold_bps, "
            "h.emode_category, h.total_collateral_base, h.total_debt_base, "
            "(SELECT count(*) FROM positions p WHERE p.wallet = h.wallet AND p.block_number = h.block_number "
            " AND p.protocol = h.protocol) AS assets "
            "FROM wallet_health h WHERE h.protocol = 'aave-v3' "
            "AND h.block_number = (SELECT max(block_number) FROM wallet_health) ORDER BY h.wallet"
        ).fetchall()
    assert {row[0] for row in ours} == set(library)

    worst = {"hf": Fraction(0), "hf_library_rescaled": Fraction(0), "collateral": Fraction(0), "debt": Fraction(0)}
    raw_gap = Fraction(0)  # the library's own HF against ours: the floor of the average threshold, not asserted
    compared = emode = dust = 0
    for wallet, hf_wad, collateral_usd, debt_usd, threshold_bps, category, collateral_base, debt_base, assets in ours:
        lib = library[wallet]
        if hf_wad is None:  # no debt: the library says so with HF -1
            assert lib["healthFactor"] == "-1" and Fraction(lib["totalBorrowsUSD"]) == 0, wallet
            continue
        compared += 1
        emode += category == 1
        hf = Fraction(int(hf_wad), WAD)
        collateral = Fraction(lib["totalCollateralMarketReferenceCurrency"])
        debt = Fraction(lib["totalBorrowsMarketReferenceCurrency"])
        threshold = Fraction(lib["currentLiquidationThreshold"]) * BPS  # unrounded average, in bps
        floored = int(threshold)  # the contract's whole-bps average
        assert floored == threshold_bps, wallet
        differences = {
            "hf": _relative(collateral * floored / BPS / debt, hf),
            "hf_library_rescaled": _relative(Fraction(lib["healthFactor"]) * floored / threshold, hf),
            "collateral": _relative(Fraction(lib["totalCollateralUSD"]), Fraction(collateral_usd)),
            "debt": _relative(Fraction(lib["totalBorrowsUSD"]), Fraction(debt_usd)),
        }
        # The contract floors each asset's value to base units (1e-8 USD), the library does not: at most one unit
        # per asset held, which for dust positions (a few USD) exceeds 1e-9 relative on its own.
        floor_gap = {
            "collateral": Fraction(int(assets), max(1, int(collateral_base))),
            "debt": Fraction(int(assets), max(1, int(debt_base))),
        }
        floor_gap["hf"] = floor_gap["hf_library_rescaled"] = floor_gap["collateral"] + floor_gap["debt"]
        for key, difference in differences.items():
            allowed = max(TOLERANCE, floor_gap[key])
            assert difference < allowed, (wallet, key, float(difference), float(allowed), lib)
            worst[key] = max(worst[key], difference)
        dust += any(v >= TOLERANCE for v in floor_gap.values())
        raw_gap = max(raw_gap, _relative(Fraction(lib["healthFactor"]), hf))

    assert compared >= 40 and emode >= 1, (compared, emode)
    print(
        f"@aave/math-utils agrees on {compared} wallets with debt ({emode} in e-mode); max relative differences "
        + ", ".join(f"{key} {float(value):.3g}" for key, value in worst.items())
        + f"; library HF unrounded-threshold gap up to {float(raw_gap):.3g}"
        + f"; {result['seconds']:.4f} s for {result['wallets']} wallets; {dust} dust wallets held to the "
        "per-asset flooring bound instead of 1e-9"
    )
    assert dust <= compared // 20, dust
