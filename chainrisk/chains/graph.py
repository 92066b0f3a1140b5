"""The asset graph as data (pure): the base asset a wrapper is ultimately a claim on, and the graph to and from
the `asset_links` table. Links are found on chain by chainrisk.protocols.graph (every adapter's own wrappers, such
as Aave's aTokens, and the token standards: ERC-4626 vaults, liquid-staking wrappers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import polars as pl

from chainrisk.assets import Link, Token
from chainrisk.units import HUGEINT_LIMIT, hugeint_or_none

LINK_SCHEMA = {
    "chain_id": pl.Int64,
    "block_number": pl.Int64,
    "asset": pl.Utf8,
    "symbol": pl.Utf8,
    "decimals": pl.Int32,
    "kind": pl.Utf8,
    "underlying": pl.Utf8,
    "underlying_symbol": pl.Utf8,
    "underlying_decimals": pl.Int32,
    "rate_num": pl.Int128,
    "rate_den": pl.Int128,
    "rate": pl.Float64,
    "convert_function": pl.Utf8,
    "abi_name": pl.Utf8,
    "detected_by": pl.Utf8,
    "pool": pl.Utf8,
    "index_ray": pl.Int128,
    "total_assets": pl.Int128,
    "total_supply": pl.Int128,
}


def fitting_links(links: Mapping[str, Link]) -> tuple[dict[str, Link], list[str]]:
    """The links the graph can hold exactly, and the wrappers left out. A permissionless market may take any
    ERC-4626 vault's shares: one whose rate (`convertToAssets` of a whole share) has 38 digits or more is no HUGEINT's,
    and no real claim (1e20 whole tokens a share at 18 decimals), so its shares are not looked through; a vault's
    totalAssets() or totalSupply() past 38 digits is only unknown (NULL)."""
    kept, left = {}, []
    for asset, link in links.items():
        if max(link.rate_num, link.rate_den) >= HUGEINT_LIMIT:
            left.append(asset)
            continue
        sizes = (link.total_assets, link.total_supply)
        if any(size is not None and size >= HUGEINT_LIMIT for size in sizes):
            link = replace(
                link, total_assets=hugeint_or_none(link.total_assets), total_supply=hugeint_or_none(link.total_supply)
            )
        kept[asset] = link
    return kept, left


def links_frame(links: dict[str, Link], chain_id: int, block: int) -> pl.DataFrame:
    rows = [
        {
            "chain_id": chain_id,
            "block_number": block,
            "asset": a,
            "symbol": k.asset.symbol,
            "decimals": k.asset.decimals,
            "kind": k.kind,
            "underlying": k.underlying.address,
            "underlying_symbol": k.underlying.symbol,
            "underlying_decimals": k.underlying.decimals,
            "rate_num": k.rate_num,
            "rate_den": k.rate_den,
            "rate": k.rate,
            "convert_function": k.convert,
            "abi_name": k.abi_name,
            "detected_by": k.detected_by,
            "pool": k.pool,
            "index_ray": k.index_ray,
            "total_assets": k.total_assets,
            "total_supply": k.total_supply,
        }
        for a, k in sorted(links.items())
    ]
    return pl.DataFrame(rows, schema=LINK_SCHEMA)


def links_from_frame(frame: pl.DataFrame) -> dict[str, Link]:
    """The stored graph back as Links (for models that run without an RPC)."""
    out = {}
    for r in frame.iter_rows(named=True):
        out[r["asset"]] = Link(
            Token(r["asset"], r["symbol"], int(r["decimals"])),
            r["kind"],
            Token(r["underlying"], r["underlying_symbol"], int(r["underlying_decimals"])),
            int(r["rate_num"]),
            int(r["rate_den"]),
            r["convert_function"],
            r["abi_name"] or "",
            r["detected_by"],
            pool=r["pool"],
            index_ray=None if r["index_ray"] is None else int(r["index_ray"]),
            total_assets=None if r["total_assets"] is None else int(r["total_assets"]),
            total_supply=None if r["total_supply"] is None else int(r["total_supply"]),
        )
    return out


def base_token(links: Mapping[str, Link], asset: str) -> Token | None:
    """The base asset a wrapper is ultimately a claim on (following underlyings until one is not a wrapper); None
    for an asset that wraps nothing. A cycle stops after one pass over the links."""
    link = links.get(asset)
    if link is None:
        return None
    token = link.underlying
    for _ in range(len(links)):
        if token.address not in links:
            break
        token = links[token.address].underlying
    return token
