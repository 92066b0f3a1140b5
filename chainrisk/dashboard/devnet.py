"""Frames for the dashboard's devnet page, read from the devnet manifest (no chain access)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from chainrisk.devnet.aave import RESERVES
from chainrisk.devnet.build import manifest_path, read_manifest
from chainrisk.devnet.prices import FEED_DECIMALS, load_price_path, parse_start


def manifest_location() -> Path:
    """The manifest named by CHAINRISK_MANIFEST, else the default devnet's."""
    env = os.environ.get("CHAINRISK_MANIFEST")
    return Path(env) if env else manifest_path()


def load_manifest(path: Path) -> dict[str, Any]:
    return read_manifest(path)


def contracts_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    aave, morpho = manifest["aave_v3"], manifest["morpho_blue"]
    rows = [
        ("Aave V3", "PoolAddressesProvider", aave["pool_addresses_provider"]),
        ("Aave V3", "Pool (proxy)", aave["pool"]),
        ("Aave V3", "PoolConfigurator (proxy)", aave["pool_configurator"]),
        ("Aave V3", "AaveOracle", aave["oracle"]),
        ("Aave V3", "AaveProtocolDataProvider", aave["data_provider"]),
        ("Aave V3", "ACLManager", aave["acl_manager"]),
        ("Morpho Blue", "Morpho", morpho["morpho"]),
        ("Morpho Blue", "IRM (kinked)", morpho["irm"]),
    ]
    return pl.DataFrame(rows, schema=["protocol", "contract", "address"], orient="row")


def reserves_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    rows = []
    for spec in RESERVES:
        reserve = manifest["aave_v3"]["reserves"][spec.symbol]
        rows.append(
            {
                "asset": spec.symbol,
                "decimals": spec.decimals,
                "LTV %": spec.ltv / 100,
                "liq. threshold %": spec.liquidation_threshold / 100,
                "liq. bonus %": (spec.liquidation_bonus - 10_000) / 100,
                "e-mode": "ETH correlated" if spec.emode_category else "",
                "isolation debt ceiling": f"${spec.debt_ceiling / 100:,.0f}" if spec.debt_ceiling else "",
                "token": reserve["asset"],
            }
        )
    return pl.DataFrame(rows)


def morpho_markets_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "market": f"{m['collateral_symbol']} / {m['loan_symbol']}",
                "LLTV %": m["lltv"] / 10**16,
                "market id": m["market_id"],
            }
            for m in manifest["morpho_blue"]["markets"]
        ]
    )


#: Devnet plumbing (token faucet) rather than wallet behaviour; left out of the behaviour chart.
FUNDING_ACTIONS = frozenset({"mint", "approve"})


def actions_frame(manifest: dict[str, Any]) -> pl.DataFrame:
    history = manifest["history"]
    kinds = sorted((set(history["actions"]) | set(history["reverted"])) - FUNDING_ACTIONS)
    return pl.DataFrame(
        {
            "action": kinds,
            "succeeded": [history["actions"].get(k, 0) for k in kinds],
            "refused by the contracts": [history["reverted"].get(k, 0) for k in kinds],
        }
    )


def replayed_prices(manifest: dict[str, Any]) -> pl.DataFrame:
    """Long frame (time, asset, price USD, change %) of the feed answers the replay set, from the same history."""
    options = manifest["options"]
    sources = {r.symbol: (r.history_symbol, r.price_multiplier) for r in RESERVES}
    path = load_price_path(sources, parse_start(options["start"]), options["days"], options["step_hours"])
    return (
        path.unpivot(index=["step", "time"], variable_name="asset", value_name="answer")
        .sort("asset", "step")
        .with_columns(
            (pl.col("answer") / 10**FEED_DECIMALS).alias("price USD"),
            ((pl.col("answer") / pl.col("answer").first().over("asset") - 1) * 100).alias("change %"),
        )
    )
