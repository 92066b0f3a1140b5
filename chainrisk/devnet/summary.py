"""What the devnet holds, per protocol, read from its manifest: for `chainrisk devnet status` and the dashboard's
Devnet page (which says, for each, whether it runs the protocol's real bytecode or chainrisk's labelled stand-in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REAL = "real bytecode"
STAND_IN = "stand-in (not the real bytecode)"


@dataclass(frozen=True)
class ProtocolSummary:
    protocol: str  #: display name
    bytecode: str  #: REAL or STAND_IN
    markets: str  #: how many markets (reserves, ilks ...), in the protocol's own word
    wallets: str  #: how many wallets or vaults hold positions, in the protocol's own word
    liquidations: int  #: liquidations (absorbs, barks) the devnet's keepers made
    contracts: tuple[tuple[str, str], ...]  #: (contract, address) of its main contracts


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def protocol_summaries(manifest: dict[str, Any]) -> list[ProtocolSummary]:
    """One summary per protocol the manifest holds, Aave V3.0.2 and Morpho Blue first (they share the wallet
    population), then the sections built after the main replay."""
    aave, morpho, history = manifest["aave_v3"], manifest["morpho_blue"], manifest["history"]
    population = _count(len(manifest["wallets"]), "wallet") + " (shared)"
    aave_contracts = (
        ("PoolAddressesProvider", aave["pool_addresses_provider"]),
        ("Pool (proxy)", aave["pool"]),
        ("PoolConfigurator (proxy)", aave["pool_configurator"]),
        ("AaveOracle", aave["oracle"]),
        ("AaveProtocolDataProvider", aave["data_provider"]),
        ("ACLManager", aave["acl_manager"]),
    )
    reserves, markets = _count(len(aave["reserves"]), "reserve"), _count(len(morpho["markets"]), "market")
    rows = [
        ProtocolSummary("Aave V3.0.2", REAL, reserves, population, history["aave_liquidations"], aave_contracts),
        ProtocolSummary(
            "Morpho Blue",
            REAL,
            markets,
            population,
            history["morpho_liquidations"],
            (("Morpho", morpho["morpho"]), ("IRM (kinked)", morpho["irm"])),
        ),
    ]
    v36 = manifest.get("aave_v3_6")
    if v36 is not None:
        rows.append(
            ProtocolSummary(
                f"Aave V{v36['version']}",
                REAL,
                _count(len(v36["reserves"]), "reserve"),
                _count(len(v36["wallets"]), "wallet"),
                v36["liquidations"],
                tuple(v36["contracts"].items()),
            )
        )
    comet = manifest.get("compound_v3")
    if comet is not None:
        collaterals = len(comet["tokens"]) - 1
        rows.append(
            ProtocolSummary(
                "Compound V3 (Comet)",
                STAND_IN,
                f"1 market (USDC, {_count(collaterals, 'collateral')})",
                _count(len(comet["wallets"]), "wallet"),
                len(comet["history"]["absorbed"]),
                (
                    ("CometStandinProxy (the market)", comet["comet"]),
                    ("CometStandin", comet["implementation"]),
                    ("CometStandinExt", comet["extension"]),
                    ("AaveOracle (USD source)", comet["usd_oracle"]),
                ),
            )
        )
    maker = manifest.get("maker")
    if maker is not None:
        maker_names = ("chainlog", "vat", "spot", "jug", "dog", "vow", "dai", "dai_join", "cdp_manager", "ilk_registry")
        rows.append(
            ProtocolSummary(
                "Maker/Sky",
                STAND_IN,
                _count(len(maker["ilks"]), "ilk"),
                _count(len(maker["vaults"]), "vault"),
                len(maker["history"]["barked"]),
                tuple((name, maker[name]) for name in maker_names),
            )
        )
    liquity = manifest.get("liquity_v1")
    if liquity is not None:
        names = ("trove_manager", "borrower_operations", "stability_pool", "price_feed", "sorted_troves", "lusd_token")
        rows.append(
            ProtocolSummary(
                "Liquity V1",
                STAND_IN,
                "1 system (ETH / LUSD)",
                _count(len(liquity["wallets"]), "trove owner"),
                liquity["liquidations"],
                tuple((name, liquity[name]) for name in names),
            )
        )
    return rows


def status_lines(manifest: dict[str, Any], running: bool) -> list[str]:
    """`chainrisk devnet status`: the chain, its head, and one line per protocol."""
    head = datetime.fromtimestamp(manifest["head_timestamp"], tz=UTC)
    lines = [
        f"devnet {'running' if running else 'NOT running'} at {manifest['rpc_url']} (chain {manifest['chain_id']}), "
        f"head block {manifest['head_block']:,} at {head:%Y-%m-%d %H:%M} UTC",
        f"prices replayed from {manifest['history']['window'][0][:10]} to {manifest['history']['window'][1][:10]}",
    ]
    rows = protocol_summaries(manifest)
    width = max(len(r.protocol) for r in rows)
    markets = max(len(r.markets) for r in rows)
    wallets = max(len(r.wallets) for r in rows)
    for r in rows:
        lines.append(
            f"  {r.protocol:<{width}}  {r.markets:<{markets}}  {r.wallets:<{wallets}}  "
            f"{_count(r.liquidations, 'liquidation'):<16}  {r.bytecode}"
        )
    return lines
