"""The devnet is real: the deployed Aave V3 and Morpho Blue contracts answer as a live market would."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.devnet.aave import EMODE_CATEGORY, RESERVES
from chainrisk.devnet.morpho import MARKETS, market_id
from chainrisk.devnet.population import HF_ONE
from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.devnet.wrappers import LST, next_rate
from chainrisk.rpc import RpcClient
from chainrisk.units import RAY, WAD

POOL = load_abi("aave-v3", "IPool")
DATA = load_abi("aave-v3", "AaveProtocolDataProvider")
PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
ERC20 = load_abi("erc20", "IERC20Detailed")
ORACLE = load_abi("aave-v3", "IAaveOracle")
MORPHO = load_abi("morpho-blue", "IMorpho")
LST_ABI = Abi(compiled_contracts()["DevnetWstETH"].abi)
VAULT_ABI = Abi(compiled_contracts()["MorphoSupplyVault"].abi)
RATE_FEED = Abi(compiled_contracts()["RateFeed"].abi)
SUPPLY = "Supply(address,address,address,uint256,uint16)"
#: What each chain behaviour does at opening, once per wallet (kind -> transactions per wallet).
OPENING_ACTIONS = {
    "vault_depositor": {"vault_deposit": 1},
    "vault_borrower": {"vault_deposit": 1, "morpho_supplyCollateral": 1, "morpho_borrow": 1},
    "atoken_borrower": {"supply": 1, "morpho_supplyCollateral": 1, "morpho_borrow": 1},
    "cross_looper": {"supply": 1, "morpho_supplyCollateral": 1, "morpho_borrow": 1, "loop_supply": 2, "loop_borrow": 1},
    "aave_emode_looper": {"setUserEMode": 1, "supply": 1, "loop_borrow": 2, "loop_swap": 2, "loop_wrap": 2},
}


def _logs(rpc: RpcClient, address: str, signature: str) -> list[dict[str, Any]]:
    topic = "0x" + keccak(signature.encode()).hex()
    logs: list[dict[str, Any]] = rpc.call(
        "eth_getLogs", [{"address": address, "topics": [topic], "fromBlock": "0x0", "toBlock": "latest"}]
    )
    return logs


def test_provider_resolves_the_market(devnet: dict[str, Any], rpc: RpcClient) -> None:
    aave = devnet["aave_v3"]
    provider = aave["pool_addresses_provider"]
    fns = ("getPool", "getPoolConfigurator", "getPriceOracle", "getPoolDataProvider", "getACLManager")
    got = [
        PROVIDER.decode(fn, raw)[0]
        for fn, raw in zip(fns, rpc.batch([eth_call(provider, PROVIDER, f) for f in fns]), strict=True)
    ]
    assert got == [aave["pool"], aave["pool_configurator"], aave["oracle"], aave["data_provider"], aave["acl_manager"]]
    # Pool and configurator are proxies: their code differs from the implementation behind them.
    assert rpc.call("eth_getCode", [aave["pool"], "latest"]) != "0x"


def test_pool_lists_reserves_with_real_decimals_and_parameters(devnet: dict[str, Any], rpc: RpcClient) -> None:
    aave = devnet["aave_v3"]
    listed = POOL.decode("getReservesList", rpc.call(*eth_call(aave["pool"], POOL, "getReservesList")))[0]
    assert len(listed) >= 6
    assert set(listed) == {r["asset"] for r in aave["reserves"].values()}
    for spec in RESERVES:
        asset = aave["reserves"][spec.symbol]["asset"]
        decimals = ERC20.decode("decimals", rpc.call(*eth_call(asset, ERC20, "decimals")))[0]
        config = DATA.decode(
            "getReserveConfigurationData",
            rpc.call(*eth_call(aave["data_provider"], DATA, "getReserveConfigurationData", asset)),
        )
        assert decimals == spec.decimals == config[0]
        assert config[1:4] == (spec.ltv, spec.liquidation_threshold, spec.liquidation_bonus)
        assert config[5] is True and config[8] is True  # collateral enabled, active
        caps = DATA.decode("getReserveCaps", rpc.call(*eth_call(aave["data_provider"], DATA, "getReserveCaps", asset)))
        assert caps == (spec.borrow_cap, spec.supply_cap)
    symbols_decimals = {r.symbol: r.decimals for r in RESERVES}
    assert {symbols_decimals[s] for s in ("WETH", "WBTC", "USDC", "DAI", "USDT", "wstETH")} == {18, 8, 6}


def test_emode_and_isolation_are_configured_and_used(devnet: dict[str, Any], rpc: RpcClient) -> None:
    aave = devnet["aave_v3"]
    category, ltv, lt, bonus, label = EMODE_CATEGORY
    data = POOL.decode(
        "getEModeCategoryData", rpc.call(*eth_call(aave["pool"], POOL, "getEModeCategoryData", category))
    )[0]
    assert data[:3] == (ltv, lt, bonus) and data[4] == label
    in_category = [
        s.symbol
        for s in RESERVES
        if DATA.decode(
            "getReserveEModeCategory",
            rpc.call(
                *eth_call(aave["data_provider"], DATA, "getReserveEModeCategory", aave["reserves"][s.symbol]["asset"])
            ),
        )[0]
        == category
    ]
    assert set(in_category) == {"WETH", "wstETH"}
    emode_users = [
        w
        for w, raw in zip(
            devnet["wallets"],
            rpc.batch([eth_call(aave["pool"], POOL, "getUserEMode", w) for w in devnet["wallets"]]),
            strict=True,
        )
        if POOL.decode("getUserEMode", raw)[0] == category
    ]
    assert emode_users, "no wallet entered e-mode"

    isolated = [s for s in RESERVES if s.debt_ceiling]
    assert len(isolated) == 1
    asset = aave["reserves"][isolated[0].symbol]["asset"]
    ceiling = DATA.decode("getDebtCeiling", rpc.call(*eth_call(aave["data_provider"], DATA, "getDebtCeiling", asset)))[
        0
    ]
    assert ceiling == isolated[0].debt_ceiling
    reserve = POOL.decode("getReserveData", rpc.call(*eth_call(aave["pool"], POOL, "getReserveData", asset)))[0]
    isolation_total_debt = reserve[-1]
    assert 0 < isolation_total_debt <= ceiling, "no isolation-mode debt outstanding"


def test_every_wallet_answers_and_many_carry_debt(devnet: dict[str, Any], rpc: RpcClient) -> None:
    pool = devnet["aave_v3"]["pool"]
    raw = rpc.batch([eth_call(pool, POOL, "getUserAccountData", w) for w in devnet["wallets"]])
    accounts = [POOL.decode("getUserAccountData", r) for r in raw]
    assert len(accounts) == len(devnet["wallets"])
    with_debt = [a for a in accounts if a[1] > 0]
    assert len(with_debt) >= len(devnet["wallets"]) // 4
    health = sorted(a[5] for a in with_debt)
    assert health[0] < 2 * HF_ONE and health[-1] > 2 * HF_ONE, "health factors should spread around the risky band"
    assert any(HF_ONE <= hf < 1.25 * HF_ONE for hf in health), "someone should sit close to liquidation"
    # Heavy tail: the largest tenth of accounts holds most of the collateral.
    collateral = sorted((a[0] for a in accounts), reverse=True)
    assert sum(collateral[: len(collateral) // 10]) > 0.5 * sum(collateral)


def test_history_carries_liquidations_and_every_kind_of_action(devnet: dict[str, Any], rpc: RpcClient) -> None:
    pool = devnet["aave_v3"]["pool"]
    liquidations = _logs(rpc, pool, "LiquidationCall(address,address,address,uint256,uint256,address,bool)")
    assert liquidations, "the replay should liquidate at least one Aave position"
    for signature in (
        "Supply(address,address,address,uint256,uint16)",
        "Borrow(address,address,address,uint256,uint8,uint256,uint16)",
        "Repay(address,address,address,uint256,bool)",
        "Withdraw(address,address,address,uint256)",
        "ReserveUsedAsCollateralDisabled(address,address)",
        "UserEModeSet(address,uint8)",
    ):
        assert _logs(rpc, pool, signature), f"no {signature} in the history"
    a_token_moves = [
        log
        for reserve in devnet["aave_v3"]["reserves"].values()
        for log in _logs(rpc, reserve["a_token"], "BalanceTransfer(address,address,uint256,uint256)")
    ]
    assert a_token_moves, "no aToken transfer between wallets"
    morpho_liquidations = _logs(
        rpc,
        devnet["morpho_blue"]["morpho"],
        "Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)",
    )
    assert morpho_liquidations, "the replay should liquidate at least one Morpho position"
    assert devnet["history"]["aave_liquidations"] == len(liquidations)


def test_interest_accrued_and_prices_follow_history(devnet: dict[str, Any], rpc: RpcClient) -> None:
    aave = devnet["aave_v3"]
    for symbol in ("USDC", "WETH"):
        reserve = POOL.decode(
            "getReserveData",
            rpc.call(*eth_call(aave["pool"], POOL, "getReserveData", aave["reserves"][symbol]["asset"])),
        )[0]
        assert reserve[1] > RAY and reserve[3] > RAY, f"{symbol} indexes did not grow"
    price = ORACLE.decode(
        "getAssetPrice", rpc.call(*eth_call(aave["oracle"], ORACLE, "getAssetPrice", aave["reserves"]["WETH"]["asset"]))
    )[0]
    # WETH on 2022-05-15 was near $2,000 (CoinGecko via shared/data); far below the $2,790 of 1 May.
    assert 1_700 * 10**8 < price < 2_300 * 10**8
    head = rpc.call("eth_getBlockByNumber", ["latest", False])
    assert (
        int(head["timestamp"], 16) - int(rpc.call("eth_getBlockByNumber", ["0x1", False])["timestamp"], 16)
        > 13 * 86_400
    )


def test_morpho_markets_positions_and_accrual(devnet: dict[str, Any], rpc: RpcClient) -> None:
    morpho = devnet["morpho_blue"]
    created = _logs(rpc, morpho["morpho"], "CreateMarket(bytes32,(address,address,address,address,uint256))")
    assert len(created) == len(MARKETS) >= 3
    assert len({m["lltv"] for m in morpho["markets"]}) >= 3
    for market in morpho["markets"]:
        params = (market["loan_token"], market["collateral_token"], market["oracle"], market["irm"], market["lltv"])
        assert market["market_id"] == market_id(params)
        on_chain = MORPHO.decode(
            "idToMarketParams", rpc.call(*eth_call(morpho["morpho"], MORPHO, "idToMarketParams", market["market_id"]))
        )[0]
        assert tuple(on_chain) == params
        state = MORPHO.decode("market", rpc.call(*eth_call(morpho["morpho"], MORPHO, "market", market["market_id"])))[0]
        assert state[0] > 0 and state[2] > 0, "market should have supply and borrow"
    fee_market = next(m for m, spec in zip(morpho["markets"], MARKETS, strict=True) if spec.fee_bps)
    fee_position = MORPHO.decode(
        "position",
        rpc.call(*eth_call(morpho["morpho"], MORPHO, "position", fee_market["market_id"], morpho["fee_recipient"])),
    )[0]
    assert fee_position[0] > 0, "interest accrual should mint fee shares"


def _read(rpc: RpcClient, to: str, abi: Abi, fn: str, *args: Any) -> Any:
    return abi.decode(fn, rpc.call(*eth_call(to, abi, fn, *args)))[0]


def _market(devnet: dict[str, Any], collateral: str, loan: str) -> dict[str, Any]:
    return next(
        m for m in devnet["morpho_blue"]["markets"] if (m["collateral_symbol"], m["loan_symbol"]) == (collateral, loan)
    )


def _wallets(devnet: dict[str, Any], behaviour: str) -> list[str]:
    return [w for w, b in devnet["behaviours"].items() if b == behaviour]


def test_manifest_names_the_chains(devnet: dict[str, Any]) -> None:
    tokens, wrappers, derived = devnet["tokens"], devnet["wrappers"], devnet["derived_feeds"]
    assert set(devnet["feeds"]) == {"WETH", "stETH", "WBTC", "USDC", "DAI", "USDT", "LINK"}
    assert wrappers["wstETH"] == {
        "address": tokens["wstETH"],
        "kind": "lst",
        "underlying": tokens["stETH"],
        "underlying_symbol": "stETH",
    }
    vault_market = _market(devnet, "WETH", "USDC")["market_id"]
    assert wrappers["cvUSDC"] == {
        "address": tokens["cvUSDC"],
        "kind": "erc4626",
        "underlying": tokens["USDC"],
        "underlying_symbol": "USDC",
        "market_id": vault_market,
    }
    assert {s: (d["base"], d["source"]) for s, d in derived.items()} == {
        "wstETH": ("stETH", tokens["wstETH"]),
        "cvUSDC": ("USDC", tokens["cvUSDC"]),
    }
    assert devnet["aave_v3"]["reserves"]["wstETH"]["feed"] == derived["wstETH"]["address"]
    assert "stETH" not in devnet["aave_v3"]["reserves"]
    markets = devnet["morpho_blue"]["markets"]
    assert [(m["collateral_symbol"], m["loan_symbol"]) for m in markets] == [(m.collateral, m.loan) for m in MARKETS]
    assert markets[4]["collateral_token"] == devnet["aave_v3"]["reserves"]["WETH"]["a_token"]
    assert markets[5]["collateral_token"] == tokens["cvUSDC"]
    assert set(devnet["behaviours"]) == set(devnet["wallets"])


def test_wsteth_rate_rose_daily_and_its_feed_derives_from_steth(devnet: dict[str, Any], rpc: RpcClient) -> None:
    wst = devnet["tokens"]["wstETH"]
    rate = _read(rpc, wst, LST_ABI, "stEthPerToken")
    days = devnet["history"]["lst_reports"]
    assert days == int(devnet["options"]["days"]), "one report per simulated day"
    assert rate == next_rate(LST.initial_rate, days) > LST.initial_rate
    # 3.5 % a year over the window, compounded daily.
    assert rate / LST.initial_rate - 1 == pytest.approx(1.035 ** (days / 365) - 1, rel=1e-6)
    reports = _logs(rpc, wst, "RateReported(uint256,uint256,uint256)")
    assert len(reports) == days + 1  # the constructor's, then one a day
    assert _read(rpc, wst, LST_ABI, "getStETHByWstETH", WAD) == rate
    assert _read(rpc, wst, LST_ABI, "stETH") == devnet["tokens"]["stETH"]
    # The wrapper holds the stETH its supply claims: every wstETH was minted by wrapping, and each report
    # added the rewards.
    supply = _read(rpc, wst, ERC20, "totalSupply")
    assert _read(rpc, devnet["tokens"]["stETH"], ERC20, "balanceOf", wst) >= supply * rate // WAD > 0
    steth = _read(rpc, devnet["feeds"]["stETH"], RATE_FEED, "latestAnswer")
    derived = _read(rpc, devnet["derived_feeds"]["wstETH"]["address"], RATE_FEED, "latestAnswer")
    assert derived == steth * rate // WAD
    aave = devnet["aave_v3"]
    assert _read(rpc, aave["oracle"], ORACLE, "getAssetPrice", devnet["tokens"]["wstETH"]) == derived


def test_vault_share_price_rose_and_values_its_morpho_supply(devnet: dict[str, Any], rpc: RpcClient) -> None:
    vault = devnet["tokens"]["cvUSDC"]
    morpho = devnet["morpho_blue"]["morpho"]
    market_id_ = devnet["wrappers"]["cvUSDC"]["market_id"]
    assert _read(rpc, vault, ERC20, "decimals") == 6 and _read(rpc, vault, ERC20, "symbol") == "cvUSDC"
    price = _read(rpc, vault, VAULT_ABI, "convertToAssets", 10**6)
    assert price > 10**6, "interest of the WETH/USDC market should lift the share price"
    state = _read(rpc, morpho, MORPHO, "market", market_id_)
    supply_shares = _read(rpc, morpho, MORPHO, "position", market_id_, vault)[0]
    idle = _read(rpc, devnet["tokens"]["USDC"], ERC20, "balanceOf", vault)
    # SharesMathLib.toAssetsDown on the stored totals, virtual shares 1e6 and virtual assets 1.
    assert _read(rpc, vault, VAULT_ABI, "totalAssets") == idle + supply_shares * (state[0] + 1) // (state[1] + 10**6)
    assert supply_shares * 2 > state[1], "the vault should be its market's main supplier"
    usdc = _read(rpc, devnet["feeds"]["USDC"], RATE_FEED, "latestAnswer")
    derived = _read(rpc, devnet["derived_feeds"]["cvUSDC"]["address"], RATE_FEED, "latestAnswer")
    assert derived == usdc * price // 10**6


def test_a_weth_is_posted_on_morpho_by_its_borrowers(devnet: dict[str, Any], rpc: RpcClient) -> None:
    morpho = devnet["morpho_blue"]["morpho"]
    market = _market(devnet, "aWETH", "USDC")
    a_weth = devnet["aave_v3"]["reserves"]["WETH"]["a_token"]
    posters = _wallets(devnet, "atoken_borrower") + _wallets(devnet, "cross_looper")
    raw = rpc.batch([eth_call(morpho, MORPHO, "position", market["market_id"], w) for w in posters])
    collateral = {w: MORPHO.decode("position", r)[0][2] for w, r in zip(posters, raw, strict=True)}
    posted = [w for w, c in collateral.items() if c > 0]
    assert len(posted) >= 0.8 * len(posters), "most aWETH posters should still be in the market"
    assert {devnet["behaviours"][w] for w in posted} == {"atoken_borrower", "cross_looper"}
    # Morpho holds the aWETH (and it earns Aave's interest there): at least what its borrowers posted.
    assert _read(rpc, a_weth, ERC20, "balanceOf", morpho) >= sum(collateral.values())
    # aToken borrowers posted all they supplied (less the unit Aave's rounding may take); none left on Aave.
    left = rpc.batch([eth_call(a_weth, ERC20, "balanceOf", w) for w in _wallets(devnet, "atoken_borrower")])
    assert max(ERC20.decode("balanceOf", r)[0] for r in left) <= 2


def test_chain_behaviours_are_present_and_acted(devnet: dict[str, Any]) -> None:
    done = devnet["history"]["behaviour_actions"]
    for behaviour, per_wallet in OPENING_ACTIONS.items():
        wallets = len(_wallets(devnet, behaviour))
        assert wallets >= 15, (behaviour, wallets)
        for kind, times in per_wallet.items():
            assert done[behaviour].get(kind, 0) >= times * wallets, (behaviour, kind, done[behaviour])
    assert done["aave_emode_looper"]["loop_supply"] == done["aave_emode_looper"]["loop_wrap"]
    assert done["liquidity_provider"]  # LPs, the vault's market's through the vault
    assert not devnet["history"]["reverted"].get("loop_borrow"), "loops must stay inside e-mode's LTV"


def test_loopers_resupplied_on_aave(devnet: dict[str, Any], rpc: RpcClient) -> None:
    aave = devnet["aave_v3"]
    reserves = aave["reserves"]
    supplies = _logs(rpc, aave["pool"], SUPPLY)

    def supplied(wallet: str, symbol: str) -> list[int]:
        topic = "0x" + "0" * 24 + wallet[2:].lower()
        asset = "0x" + "0" * 24 + reserves[symbol]["asset"][2:].lower()
        return [
            int(log["data"][66:130], 16) for log in supplies if log["topics"][1] == asset and log["topics"][2] == topic
        ]

    loopers = _wallets(devnet, "aave_emode_looper")
    a_wst = reserves["wstETH"]["a_token"]
    raw = rpc.batch([eth_call(a_wst, ERC20, "balanceOf", w) for w in loopers])
    debts = {w: d[1] for w, d in zip(loopers, _account_data(rpc, aave["pool"], loopers), strict=True)}
    alive = 0
    for wallet, item in zip(loopers, raw, strict=True):
        amounts = supplied(wallet, "wstETH")
        assert len(amounts) >= 3, (wallet, amounts)  # the first supply, then one per loop round
        if debts[wallet] > 0:
            alive += 1
            assert ERC20.decode("balanceOf", item)[0] > 1.5 * amounts[0], wallet
    assert alive >= 10
    for wallet in _wallets(devnet, "cross_looper"):
        # WETH supplied, its aWETH posted on Morpho; then the USDC borrowed there, and WETH borrowed against it.
        assert len(supplied(wallet, "WETH")) >= 2 and len(supplied(wallet, "USDC")) >= 1, wallet
    cross = _wallets(devnet, "cross_looper")
    collateral = [d[0] for d in _account_data(rpc, aave["pool"], cross)]
    assert sum(1 for c in collateral if c > 0) >= 0.8 * len(cross)


def _account_data(rpc: RpcClient, pool: str, wallets: list[str]) -> list[tuple[int, ...]]:
    return [
        POOL.decode("getUserAccountData", r)
        for r in rpc.batch([eth_call(pool, POOL, "getUserAccountData", w) for w in wallets])
    ]
