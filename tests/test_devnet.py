"""The devnet is real: the deployed Aave V3 and Morpho Blue contracts answer as a live market would."""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak

from chainrisk.abi import eth_call, load_abi
from chainrisk.devnet.aave import EMODE_CATEGORY, RESERVES
from chainrisk.devnet.morpho import MARKETS, market_id
from chainrisk.devnet.population import HF_ONE
from chainrisk.rpc import RpcClient

POOL = load_abi("aave-v3", "IPool")
DATA = load_abi("aave-v3", "AaveProtocolDataProvider")
PROVIDER = load_abi("aave-v3", "IPoolAddressesProvider")
ERC20 = load_abi("erc20", "IERC20Detailed")
ORACLE = load_abi("aave-v3", "IAaveOracle")
MORPHO = load_abi("morpho-blue", "IMorpho")
RAY = 10**27


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
