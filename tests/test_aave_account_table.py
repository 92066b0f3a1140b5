"""account_table (getUserAccountData of every account column by column) against the real pools' recorded outputs,
against user_account_data (the per-account port) on random accounts of every version, and the SQL-contract frames
built from it against the per-account figures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chainrisk.protocols.aave_v3.account import AccountData, Balances, is_borrowing
from chainrisk.protocols.aave_v3.account_book import AccountBook
from chainrisk.protocols.aave_v3.account_table import AccountTable, account_table
from chainrisk.protocols.aave_v3.account_versions import MarketState, user_account_data
from chainrisk.protocols.aave_v3.constants import MAX_UINT256, RAY, WAD
from chainrisk.protocols.aave_v3.normalise import contract_frames
from chainrisk.protocols.aave_v3.reserve import EModeCategory, Reserve, ReserveConfiguration
from chainrisk.protocols.aave_v3.snapshot import Account
from chainrisk.protocols.aave_v3.version import PoolVersion
from chainrisk.protocols.frames import HEALTH_WAD_CAP
from tests.test_aave_versions import ACCOUNT_FIELDS, FILES, SNAPSHOTS, _balances, _ids, _load, _market, _version

VERSIONS = [PoolVersion(3, minor) for minor in range(7)]


def _fields(table: AccountTable, i: int) -> tuple[int, ...]:
    return tuple(int(getattr(table, f)[i]) for f in ACCOUNT_FIELDS)


def _scalar(data: AccountData) -> tuple[int, ...]:
    return tuple(getattr(data, f) for f in ACCOUNT_FIELDS)


def _assert_equal_to_the_port(market: MarketState, accounts: list[Account]) -> AccountTable:
    """Every account's six fields, zero-LTV flag and per-reserve amounts as user_account_data gives them (the table
    holds the accounts in wallet order)."""
    table = account_table(AccountBook.of(accounts), market)
    rows = table.rows
    for i, account in enumerate(sorted(accounts, key=lambda a: a.wallet)):
        data = user_account_data(market, account.configuration, account.emode, account.balances)
        assert _fields(table, i) == _scalar(data), account.wallet
        assert bool(table.has_zero_ltv_collateral[i]) is data.has_zero_ltv_collateral, account.wallet
        mine = [j for j in range(len(rows.account)) if rows.account[j] == i]
        assert [
            (
                rows.reserve_id[j],
                rows.supplied[j],
                rows.debt[j],
                rows.price[j],
                rows.rules[rows.term[j]].ltv,
                rows.rules[rows.term[j]].liquidation_threshold,
                rows.collateral_base[j],
                rows.debt_base[j],
            )
            for j in mine
        ] == [
            (
                p.reserve.reserve_id,
                p.supplied,
                p.debt,
                p.price,
                p.ltv,
                p.liquidation_threshold,
                p.collateral_base,
                p.debt_base,
            )
            for p in data.positions
        ], account.wallet
    return table


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_the_table_equals_the_pool_and_the_port(path: Path) -> None:
    version, data = _version(path), _load(path)
    checked = 0
    for name in SNAPSHOTS:
        snapshot = data["snapshots"][name]
        market = _market(version, snapshot)
        users = snapshot["users"]
        accounts = [Account(w["name"], int(w["configuration"]), int(w["emode"]), _balances(w)) for w in users]
        table = _assert_equal_to_the_port(market, accounts)
        order = sorted(w["name"] for w in users)
        for wallet in users:
            i = order.index(wallet["name"])
            assert _fields(table, i) == tuple(int(wallet["out_account"][k]) for k in ACCOUNT_FIELDS), wallet["name"]
            checked += 1
    assert checked > 10


def _word(ltv: int, threshold: int, bonus: int, decimals: int, emode: int) -> int:
    return ltv | threshold << 16 | bonus << 32 | decimals << 48 | 1 << 56 | emode << 168


def _random_market(rng: random.Random, version: PoolVersion, ids: tuple[int, ...] = (0, 1, 2, 4, 5)) -> MarketState:
    """A market listing reserves `ids` (by default without id 3: a configuration bit may name a reserve the pool no
    longer lists)."""
    now = 1_750_000_000
    reserves = {}
    for reserve_id in ids:
        ltv = rng.choice([0, 7_500, 8_000])
        threshold = rng.choice([0, ltv + 300]) if ltv == 0 else ltv + rng.randint(100, 800)
        word = _word(ltv, threshold, 10_500, rng.choice([6, 8, 18]), rng.choice([0, 0, 1, 2]))
        reserves[reserve_id] = Reserve(
            asset=f"0x{reserve_id:040x}",
            symbol=f"R{reserve_id}",
            reserve_id=reserve_id,
            configuration_word=word,
            config=ReserveConfiguration.decode(word),
            a_token=f"0x{reserve_id + 100:040x}",
            variable_debt_token=f"0x{reserve_id + 200:040x}",
            stable_debt_token=f"0x{reserve_id + 300:040x}",
            liquidity_index=RAY + rng.randint(0, RAY // 3),
            variable_borrow_index=RAY + rng.randint(0, RAY // 2),
            liquidity_rate=rng.randint(0, RAY // 10),
            variable_borrow_rate=rng.randint(0, RAY // 4),
            last_update_timestamp=now - rng.choice([0, 1, 2, 3, 600, 86_400 * 40]),
            normalized_income=0,
            normalized_variable_debt=0,
            price=rng.choice([1, 10**8, 3_123_45678901, rng.randint(1, 10**12)]),
            isolation_mode_total_debt=0,
        )
    categories = {
        c: EModeCategory(
            c,
            9_000 + c * 100,
            9_300 + c * 100,
            10_100,
            "0x" + "0" * 40,
            f"e{c}",
            rng.choice([0, 10**8]),
            collateral_bitmap=rng.getrandbits(6),
            borrowable_bitmap=rng.getrandbits(6),
            ltvzero_bitmap=rng.getrandbits(6),
        )
        for c in (1, 2)
    }
    return MarketState(version, reserves, categories, now)


def _random_accounts(rng: random.Random, count: int, largest: int = 2**128 - 1) -> list[Account]:
    """Accounts of every shape; balances up to `largest` (uint128, the tokens' own bound)."""
    amounts = [0, 1, 10**6, 10**18, 10**24, largest // 2, largest]
    accounts = []
    for n in range(count):
        config = rng.getrandbits(12) if n % 7 else 0
        balances = {
            reserve_id: Balances(
                rng.choice([*amounts, rng.randint(0, 10**30)]),
                rng.choice([*amounts, rng.randint(0, 10**30)]),
                rng.choice([0, 0, rng.randint(0, 10**20)]),
            )
            for reserve_id in rng.sample(range(6), rng.randint(0, 3))
        }
        accounts.append(Account(f"0x{n:040x}", config, rng.choice([0, 0, 1, 2, 9]), balances))
    return accounts


@pytest.mark.parametrize("version", VERSIONS, ids=str)
def test_the_table_equals_the_port_on_random_accounts(version: PoolVersion) -> None:
    rng = random.Random(version.minor)
    for _ in range(4):
        market = _random_market(rng, version)
        table = _assert_equal_to_the_port(market, _random_accounts(rng, 300))
        health = table.health_factor
        # The accounts cover the branches: no debt, no collateral, under and over health 1.
        assert (
            (health == MAX_UINT256).any() and (health < WAD).any() and ((health > WAD) & (health != MAX_UINT256)).any()
        )
    assert account_table(AccountBook.of([]), market).health_factor.size == 0


@pytest.mark.parametrize("version", [PoolVersion(3, 0), PoolVersion(3, 5), PoolVersion(3, 6)], ids=str)
def test_contract_frames_carry_the_ports_figures(version: PoolVersion) -> None:
    rng = random.Random(7 + version.minor)
    market = _random_market(rng, version)
    # The frames' exact columns are DECIMAL(38,0) (HUGEINT): balances that keep every product of them inside it.
    accounts = _random_accounts(rng, 200, 10**28)
    base_unit = 10**8
    book = AccountBook.of(accounts)
    positions, health = contract_frames(book, account_table(book, market), 1, "0xpool", 10, 99, base_unit)
    assert health["wallet"].to_list() == [a.wallet for a in accounts]
    expected_positions, expected_health = [], []
    for account in accounts:
        data = user_account_data(market, account.configuration, account.emode, account.balances)
        for p in data.positions:
            if not (p.supplied or p.debt):
                continue
            unit = 10**p.reserve.config.decimals
            counts = version.emode_decoupled or p.reserve.config.liquidation_threshold != 0
            collateral = p.supplied if p.used_as_collateral and counts else 0
            price_usd = p.price / base_unit
            expected_positions.append(
                (
                    account.wallet,
                    p.reserve.asset,
                    p.supplied,
                    collateral,
                    p.debt,
                    p.used_as_collateral,
                    is_borrowing(account.configuration, p.reserve.reserve_id),
                    p.price,
                    price_usd,
                    p.supplied / unit * price_usd,
                    collateral / unit * price_usd,
                    p.debt / unit * price_usd,
                    p.liquidation_bonus,
                    account.emode,
                    p.collateral_base if collateral else 0,
                    p.debt_base if p.borrowing else p.debt * p.price // unit,
                )
            )
        has_debt = data.health_factor != MAX_UINT256
        expected_health.append(
            (
                data.total_collateral_base / base_unit,
                data.total_debt_base / base_unit,
                data.health_factor / WAD if has_debt else None,
                min(data.health_factor, HEALTH_WAD_CAP) if has_debt else None,
                data.total_collateral_base,
                data.available_borrows_base,
                data.current_liquidation_threshold,
            )
        )
    columns = (
        "wallet",
        "asset",
        "supplied_amount",
        "collateral_amount",
        "debt_amount",
        "used_as_collateral",
        "is_borrowing",
        "price",
        "price_usd",
        "supplied_usd",
        "collateral_usd",
        "debt_usd",
        "liquidation_bonus_bps",
        "emode_category",
        "collateral_base",
        "debt_base",
    )
    # Decimal(38, 0) columns come back as Decimal; compare as ints. Floats exactly (the same Python divisions).
    found = [
        tuple(int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, float | bool) else v for v in row)
        for row in positions.select(columns).iter_rows()
    ]
    assert found == expected_positions
    health_columns = (
        "collateral_usd",
        "debt_usd",
        "health_factor",
        "health_factor_wad",
        "total_collateral_base",
        "available_borrows_base",
        "liquidation_threshold_bps",
    )
    found_health = [
        tuple(int(v) if v is not None and not isinstance(v, float) else v for v in row)
        for row in health.select(health_columns).iter_rows()
    ]
    assert found_health == expected_health
