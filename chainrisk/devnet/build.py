"""`chainrisk devnet up/down`: start anvil, deploy Aave V3 and Morpho Blue, run the population and the price replay,
then build the other protocols (Aave V3.6, the Comet, Maker and Liquity stand-ins: chainrisk.devnet.extras) on the
same chain, and write the manifest."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chainrisk.devnet.aave import RESERVES, deploy_aave, deploy_tokens_and_feeds
from chainrisk.devnet.aave36 import as_aave_deployment, deploy_aave36
from chainrisk.devnet.extras import ALL_PROTOCOLS, build_extras, check_protocols, compile_devnet, count_logs
from chainrisk.devnet.manifest import manifest_path, read_manifest
from chainrisk.devnet.morpho import ATOKEN_COLLATERAL, MARKETS, create_markets, deploy_morpho, market_index
from chainrisk.devnet.node import BlockBuilder, free_port, start_anvil, stop_process
from chainrisk.devnet.population import KEEPER, Population, plan_wallets
from chainrisk.devnet.prices import BASE_FEEDS, load_price_path, parse_start
from chainrisk.devnet.toolchain import state_dir
from chainrisk.devnet.wrappers import LST, VAULT, deploy_lst, deploy_vault
from chainrisk.errors import UserError
from chainrisk.rpc import RpcClient

DEVNET_CHAIN_ID = 31337


@dataclass(frozen=True)
class DevnetOptions:
    wallets: int  #: wallets in the population
    days: float  #: length of the price replay
    seed: int  #: RNG seed: same seed, same chain
    port: int  #: anvil's loopback port
    start: datetime  #: first day of the replayed price window (UTC)
    step_hours: int  #: hours between price updates (and keeper rounds)
    protocols: tuple[str, ...] = ALL_PROTOCOLS  #: what to build (extras.ALL_PROTOCOLS' names; the base pair always)
    aave_version: str = "3.0.2"  #: the Aave market's bytecode: "3.0.2" (aave-v3-core) or "3.6" (aave-v3-origin)
    anvil_args: tuple[str, ...] = ()  #: anvil's own options, added to start_anvil's

    @classmethod
    def demo(cls, wallets: int, seed: int, **more: Any) -> DevnetOptions:
        """`chainrisk devnet up`'s window (30 days of 4-hourly prices from 2022-05-01, across the May 2022 crash) for
        `wallets` and `seed`, on a free loopback port; `more` sets any other field (protocols, days)."""
        fields: dict[str, Any] = {"days": 30.0, "start": parse_start("2022-05-01"), "step_hours": 4, "port": 0, **more}
        fields["port"] = fields["port"] or free_port()
        return cls(wallets=wallets, seed=seed, **fields)


def _liquidations_by_persona(logs: list[dict[str, Any]], personas: dict[str, str]) -> dict[str, int]:
    """Liquidation events per persona of the borrower: the third indexed topic of both Aave's LiquidationCall
    (user) and Morpho's Liquidate (borrower)."""
    counts = Counter(personas["0x" + log["topics"][3][-40:]] for log in logs)
    return dict(sorted(counts.items()))


def build_devnet(
    options: DevnetOptions,
    folder: Path | None = None,
    *,
    detach: bool = True,
    builder_type: type[BlockBuilder] = BlockBuilder,
) -> dict[str, Any]:
    """Starts anvil and builds the whole devnet; returns the manifest (also written to `folder`)."""
    if options.wallets < 1 or options.days <= 0 or options.step_hours < 1:
        raise UserError("--wallets must be >= 1, --days > 0 and --step-hours >= 1")
    protocols = check_protocols(options.protocols)
    folder = folder or state_dir() / "devnet"
    folder.mkdir(parents=True, exist_ok=True)
    path = load_price_path(BASE_FEEDS, options.start, options.days, options.step_hours)
    compile_devnet(protocols)
    started = time.perf_counter()
    process = start_anvil(
        options.port, DEVNET_CHAIN_ID, folder / "anvil.log", detach=detach, extra_args=options.anvil_args
    )
    rpc_url = f"http://127.0.0.1:{options.port}"
    try:
        rpc = RpcClient(rpc_url)
        builder = builder_type(rpc, timestamp=int(options.start.timestamp()) - 86_400)
        initial = {symbol: int(path[symbol][0]) for symbol in BASE_FEEDS}
        deployment_block = int(rpc.call("eth_blockNumber"), 16) + 1
        decimals = {r.symbol: r.decimals for r in RESERVES} | {LST.base: LST.base_decimals}
        tokens, feeds = deploy_tokens_and_feeds(builder, {s: decimals[s] for s in BASE_FEEDS}, initial)
        lst = deploy_lst(builder, tokens[LST.base], feeds[LST.base])
        tokens[LST.symbol] = lst.token
        # Every price the protocols read, by symbol: the base feeds, and the feeds derived from them on chain.
        prices = {**feeds, LST.symbol: lst.feed}
        if options.aave_version == "3.6":
            aave = as_aave_deployment(deploy_aave36(builder, tokens, prices))
        elif options.aave_version == "3.0.2":
            aave = deploy_aave(builder, tokens, prices)
        else:
            raise UserError(f"unknown Aave devnet version {options.aave_version!r}; give 3.0.2 or 3.6")
        morpho = deploy_morpho(builder)
        tokens_for_morpho = dict(tokens)
        for a_symbol, underlying in ATOKEN_COLLATERAL.items():
            tokens_for_morpho[a_symbol] = aave.reserves[underlying].a_token
            prices[a_symbol], decimals[a_symbol] = feeds[underlying], decimals[underlying]
        # The vault needs its market to exist, and the markets on its shares need the vault (MARKETS lists
        # those last, so the markets are created in MARKETS order).
        on_vault = [m for m in MARKETS if m.collateral == VAULT.symbol]
        before_vault = [m for m in MARKETS if m not in on_vault]
        create_markets(builder, morpho, before_vault, tokens_for_morpho, prices, decimals)
        vault_market = morpho.markets[market_index(morpho.markets, VAULT.collateral, VAULT.loan)]
        vault = deploy_vault(builder, morpho, vault_market, feeds[VAULT.loan], decimals[VAULT.loan])
        tokens[VAULT.symbol] = tokens_for_morpho[VAULT.symbol] = vault.token
        prices[VAULT.symbol], decimals[VAULT.symbol] = vault.feed, vault.decimals
        create_markets(builder, morpho, on_vault, tokens_for_morpho, prices, decimals)
        deployed_block = int(rpc.call("eth_blockNumber"), 16)
        deploy_seconds = time.perf_counter() - started

        population_started = time.perf_counter()
        wallets = plan_wallets(options.wallets, options.seed, morpho.markets)
        population = Population(builder, aave, morpho, lst, vault, feeds, wallets, options.seed, initial)
        population.open_positions()
        population.replay(path, options.step_hours * 3600)
        population_seconds = time.perf_counter() - population_started
        # The main markets' liquidations, all the replay's: the protocols built next have contracts of their own.
        liquidations = count_logs(
            rpc, aave.pool, "LiquidationCall(address,address,address,uint256,uint256,address,bool)", deployed_block
        )
        morpho_liquidations = count_logs(
            rpc,
            morpho.morpho,
            "Liquidate(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)",
            deployed_block,
        )

        extras_started = time.perf_counter()
        answers = {symbol: int(path[symbol][-1]) for symbol in BASE_FEEDS}
        window_end = path["time"][-1]
        extras = build_extras(builder, protocols, answers, window_end, options.seed)
        extras_seconds = time.perf_counter() - extras_started

        head = rpc.call("eth_getBlockByNumber", ["latest", False])
        bad_debt = sum(1 for log in morpho_liquidations if int(log["data"][2 + 64 * 4 : 2 + 64 * 5], 16) > 0)
        manifest: dict[str, Any] = {
            "rpc_url": rpc_url,
            "chain_id": DEVNET_CHAIN_ID,
            "port": options.port,
            "pid": process.pid,
            "options": {**asdict(options), "start": options.start.strftime("%Y-%m-%d"), "protocols": list(protocols)},
            "deployment_block": deployment_block,
            "deployed_block": deployed_block,
            "head_block": int(head["number"], 16),
            "head_block_hash": head["hash"],
            "head_timestamp": int(head["timestamp"], 16),
            "tokens": tokens,
            "feeds": feeds,
            "derived_feeds": {
                LST.symbol: {"address": lst.feed, "base": LST.base, "source": lst.token},
                VAULT.symbol: {"address": vault.feed, "base": VAULT.loan, "source": vault.token},
            },
            "wrappers": {
                LST.symbol: {
                    "address": lst.token,
                    "kind": "lst",
                    "underlying": lst.base_token,
                    "underlying_symbol": LST.base,
                },
                VAULT.symbol: {
                    "address": vault.token,
                    "kind": "erc4626",
                    "underlying": tokens[VAULT.loan],
                    "underlying_symbol": VAULT.loan,
                    "market_id": vault.market_id,
                },
            },
            "aave_v3": asdict(aave),
            "morpho_blue": asdict(morpho),
            **extras,
            "keeper": KEEPER,
            "wallets": [w.address for w in wallets],
            "behaviours": {w.address: w.behaviour for w in wallets},
            "personas": {w.address: w.persona for w in wallets},
            "history": {
                "actions": dict(sorted(population.history.actions.items())),
                "reverted": dict(sorted(population.history.reverted.items())),
                "behaviour_actions": {
                    behaviour: dict(sorted(counts.items()))
                    for behaviour, counts in sorted(population.history.by_behaviour.items())
                },
                "persona_actions": {
                    persona: dict(sorted(counts.items()))
                    for persona, counts in sorted(population.history.by_persona.items())
                },
                "persona_liquidations": _liquidations_by_persona(
                    liquidations + morpho_liquidations, {w.address: w.persona for w in wallets}
                ),
                "lst_reports": population.history.lst_reports,
                "aave_liquidations": len(liquidations),
                "morpho_liquidations": len(morpho_liquidations),
                "morpho_bad_debt_liquidations": bad_debt,
                "price_steps": path.height - 1,
                "window": [str(path["time"][0]), str(path["time"][-1])],
            },
            "timings": {
                "deploy_s": round(deploy_seconds, 3),
                "population_s": round(population_seconds, 3),
                "other_protocols_s": round(extras_seconds, 3),
            },
        }
    except BaseException:
        process.kill()
        raise
    manifest_path(folder).write_text(json.dumps(manifest, indent=2))
    return manifest


def stop_devnet(folder: Path | None = None) -> str:
    path = manifest_path(folder)
    manifest = read_manifest(path)
    stopped = stop_process(int(manifest["pid"]))
    return f"devnet on port {manifest['port']} {'stopped' if stopped else 'was not running'}"
