"""The devnet's protocols beside Aave V3.0.2 and Morpho Blue, built on the same chain after the main replay (so chain
time only moves forward): an Aave V3.6 market (aave-v3-origin 3.6.0's own bytecode) driven through aave36's
scenarios, and the labelled stand-ins for Compound V3 (Comet), Maker/Sky and Liquity V1 with their populations.
Each builder returns its manifest section; the section's "index" entry names the market `chainrisk run --devnet`
reads (config.devnet_config)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from typing import Any

from chainrisk.abi import keccak
from chainrisk.devnet.aave36 import ORIGIN_VERSION, Aave36Driver, deploy_with_assets, run_scenarios
from chainrisk.devnet.compound_v3 import CometDevnetOptions, build_compound_v3
from chainrisk.devnet.liquity_v1 import build_liquity
from chainrisk.devnet.maker import build_maker, reset_stalled_auction
from chainrisk.devnet.node import BlockBuilder
from chainrisk.devnet.prices import FEED_DECIMALS
from chainrisk.devnet.toolchain import aave_origin_contracts, compiled_contracts, standin_contracts
from chainrisk.errors import UserError
from chainrisk.protocols.aave_v3.adapter import AaveV3Adapter
from chainrisk.protocols.compound_v3.adapter import CompoundV3Adapter
from chainrisk.protocols.liquity_v1.adapter import LiquityV1Adapter
from chainrisk.protocols.maker.adapter import MakerAdapter
from chainrisk.protocols.morpho_blue.adapter import MorphoBlueAdapter
from chainrisk.rpc import RpcClient

#: The main build, always made together: Morpho's markets take Aave 3.0.2's aTokens as collateral.
BASE_PROTOCOLS = (AaveV3Adapter.name, MorphoBlueAdapter.name)
#: `devnet up --protocols` names of the protocols built after the main replay, in build order, with the manifest
#: key of each one's section.
AAVE_V3_6 = f"{AaveV3Adapter.name}.6"
EXTRA_SECTIONS = {
    AAVE_V3_6: "aave_v3_6",
    CompoundV3Adapter.name: "compound_v3",
    MakerAdapter.name: "maker",
    LiquityV1Adapter.name: "liquity_v1",
}
ALL_PROTOCOLS = (*BASE_PROTOCOLS, *EXTRA_SECTIONS)

AAVE_V3_6_LABEL = f"Aave V{ORIGIN_VERSION} (aave-v3-origin's own bytecode, compiled from its npm sources)"
#: Days of interest the 3.6 scenarios let accrue before their crash (aave36.run_scenarios).
AAVE_V3_6_ACCRUAL_DAYS = 14
#: The Comet stand-in's population and price window (from the day the main window ends: June 2022's crash).
COMET_WALLETS, COMET_DAYS, COMET_STEP_HOURS = 40, 30, 24
#: Vaults per ilk and days of stability fees of the Maker stand-ins' population (maker.populate_maker).
MAKER_VAULTS_PER_ILK, MAKER_FEE_DAYS = 6, 14
#: Troves of the Liquity stand-in's population (about ten days of chain time).
LIQUITY_TROVES = 30

LIQUIDATION_CALL = "LiquidationCall(address,address,address,uint256,uint256,address,bool)"


def count_logs(rpc: RpcClient, address: str, event_signature: str, from_block: int) -> list[dict[str, Any]]:
    """Every log of `event_signature` that `address` emitted from `from_block` to the head."""
    topic = "0x" + keccak(event_signature.encode()).hex()
    logs: list[dict[str, Any]] = rpc.call(
        "eth_getLogs", [{"address": address, "topics": [topic], "fromBlock": hex(from_block), "toBlock": "latest"}]
    )
    return logs


def check_protocols(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` checked (known, the base pair included), in build order."""
    unknown = [n for n in names if n not in ALL_PROTOCOLS]
    if unknown:
        raise UserError(f"--protocols: unknown {unknown[0]!r}; known: {','.join(ALL_PROTOCOLS)}")
    missing = [n for n in BASE_PROTOCOLS if n not in names]
    if missing:
        raise UserError(
            f"--protocols: {' and '.join(BASE_PROTOCOLS)} are always built (Morpho's markets take Aave's aTokens as "
            f"collateral); add {missing[0]}"
        )
    return tuple(n for n in ALL_PROTOCOLS if n in names)


def compile_devnet(names: tuple[str, ...]) -> float:
    """Compiles (or loads the caches of) every contract a devnet of `names` deploys, before the node starts (so its
    clock is not waiting); returns the seconds it took. The compilations run side by side, as many at once as there
    are cores: each is one single-threaded solcjs process, and on a checkout with no cache Morpho's with ours takes
    ~60 s, Aave V3.6's ~30 s and each stand-in's 7-10 s (~115 s one after another)."""
    started = time.perf_counter()
    jobs: list[Callable[[], object]] = [compiled_contracts]
    if AAVE_V3_6 in names:
        jobs.append(aave_origin_contracts)
    for name, key in EXTRA_SECTIONS.items():
        if name in names and name != AAVE_V3_6:
            jobs.append(functools.partial(standin_contracts, key))  # the stand-ins' folders are named as sections
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    return time.perf_counter() - started


def _sub_builder(builder: BlockBuilder) -> BlockBuilder:
    """A builder of the same kind on the same node, clock and nonces, with its own revert counts (each section
    reports its own)."""
    return type(builder)(builder.rpc, timestamp=builder.timestamp, nonces=builder.nonces)


def build_aave_v3_6(builder: BlockBuilder, answers: dict[str, int]) -> dict[str, Any]:
    """A V3.6 market on tokens and settable feeds of its own (its scenarios' crash moves only its feeds), starting at
    the base feeds' `answers`, then every scenario of aave36.run_scenarios: healthy, e-mode, isolated, siloed and
    ltvzero positions, accrual, a crash, liquidations that leave a deficit, one left open."""
    first_block = int(builder.rpc.call("eth_blockNumber"), 16) + 1
    deployed = deploy_with_assets(builder, answers)
    market = deployed["market"]
    driver = Aave36Driver(builder, market, deployed["feeds"], deployed["lst"])
    result = run_scenarios(driver, accrual_days=AAVE_V3_6_ACCRUAL_DAYS)
    liquidations = count_logs(builder.rpc, market["pool"], LIQUIDATION_CALL, first_block)
    return {
        "label": AAVE_V3_6_LABEL,
        "stand_in": False,
        "index": {
            "protocol": AaveV3Adapter.name,
            "address": market["pool_addresses_provider"],
            "name": f"devnet {AAVE_V3_6}",
        },
        **market,
        "tokens": deployed["tokens"],
        "feeds": deployed["feeds"],
        "lst": asdict(deployed["lst"]),
        "deployment_block": first_block,
        "wallets": result.wallets,
        "deficits": [list(d) for d in result.deficits],
        "grace_until": result.grace_until,
        "liquidations": len(liquidations),
    }


def build_comet(builder: BlockBuilder, start: datetime, seed: int) -> dict[str, Any]:
    """The Comet stand-in (proxy, implementation, extension, a USD oracle) on tokens and feeds of its own, and
    COMET_WALLETS wallets over COMET_DAYS of prices from `start`, with a keeper that absorbs."""
    options = CometDevnetOptions(
        wallets=COMET_WALLETS,
        days=COMET_DAYS,
        step_hours=COMET_STEP_HOURS,
        seed=seed,
        start=start.strftime("%Y-%m-%d"),
        bare=False,
    )
    section = build_compound_v3(builder, options)
    index = {
        "protocol": CompoundV3Adapter.name,
        "address": section["comet"],
        "options": {"usd_oracle": section["usd_oracle"]},
        "name": f"devnet {CompoundV3Adapter.name} (stand-in Comet)",
    }
    return {"stand_in": True, **section, "index": index}


def build_maker_standins(builder: BlockBuilder, seed: int) -> dict[str, Any]:
    """The Maker/Sky stand-ins on gems of their own, with vaults opened, fees dripped, a crash, barks and a take."""
    section = build_maker(builder, seed=seed, vaults_per_ilk=MAKER_VAULTS_PER_ILK, fee_days=MAKER_FEE_DAYS)
    index = {
        "protocol": MakerAdapter.name,
        "address": section["chainlog"],
        "name": f"devnet {MakerAdapter.name} (stand-in Vat, Dog, Spotter ...)",
    }
    return {**section, "index": index}


def build_liquity_standins(builder: BlockBuilder, eth_usd: int, seed: int) -> dict[str, Any]:
    """The Liquity V1 stand-ins with LIQUITY_TROVES troves, their price starting at `eth_usd` (the main WETH feed's
    last answer), two crashes liquidated and a last one left open."""
    section = build_liquity(builder, troves=LIQUITY_TROVES, seed=seed, eth_price_usd=eth_usd)
    index = {
        "protocol": LiquityV1Adapter.name,
        "address": section["trove_manager"],
        "name": f"devnet {LiquityV1Adapter.name} (stand-in TroveManager)",
    }
    return {**section, "index": index}


def build_extras(
    builder: BlockBuilder, names: tuple[str, ...], answers: dict[str, int], window_end: datetime, seed: int
) -> dict[str, dict[str, Any]]:
    """The sections of the protocols `names` asks for beyond the base pair, built one after the other on `builder`'s
    node from its clock on; `answers` are the base feeds' last answers, `window_end` the main replay's last day."""
    builds: dict[str, Callable[[BlockBuilder], dict[str, Any]]] = {
        AAVE_V3_6: lambda b: build_aave_v3_6(b, answers),
        CompoundV3Adapter.name: lambda b: build_comet(b, window_end, seed),
        MakerAdapter.name: lambda b: build_maker_standins(b, seed),
        LiquityV1Adapter.name: lambda b: build_liquity_standins(b, answers["WETH"] // 10**FEED_DECIMALS, seed),
    }
    sections = {}
    for name, key in EXTRA_SECTIONS.items():
        if name not in names:
            continue
        own = _sub_builder(builder)
        sections[key] = builds[name](own)
        builder.timestamp = own.timestamp
    maker = sections.get(EXTRA_SECTIONS[MakerAdapter.name])
    if maker is not None:
        # Last of all, so a running auction is still running at the snapshot taken right after the build.
        own = _sub_builder(builder)
        maker["history"]["auction_reset"] = reset_stalled_auction(own, maker)
        builder.timestamp = own.timestamp
    return sections
