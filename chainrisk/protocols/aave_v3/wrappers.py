"""Aave V3's own wrappers for the asset graph: aTokens, each a 1:1 claim on its reserve's underlying (balanceOf
already applies the liquidity index), confirmed by the pool naming it as the reserve's aToken."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.assets import Link
from chainrisk.protocols.tokens import read_tokens, word_address
from chainrisk.rpc import RpcClient

ATOKEN = load_abi("aave-v3", "IAToken")
POOL = load_abi("aave-v3", "IPool")


def atoken_probe_calls(assets: list[str], block: int) -> list[tuple[str, list[Any]]]:
    """The probes `atoken_links` sends each of `assets`: UNDERLYING_ASSET_ADDRESS() and POOL()."""
    return [eth_call(a, ATOKEN, fn, block=hex(block)) for a in assets for fn in ("UNDERLYING_ASSET_ADDRESS", "POOL")]


def atoken_links(rpc: RpcClient, assets: list[str], block: int, probed: Sequence[Any] | None = None) -> dict[str, Link]:
    """The aTokens among `assets` (`UNDERLYING_ASSET_ADDRESS()` and `POOL()`, and the pool's getReserveData naming
    the token), with the reserve's normalized income at `block` recorded for scaled-balance readers. `probed`: the
    answers to atoken_probe_calls(assets, block), where the caller sent them (None: asked here)."""
    tag = hex(block)
    raw = probed if probed is not None else rpc.batch_each(atoken_probe_calls(assets, block))
    found: dict[str, tuple[str, str]] = {}  # aToken -> (underlying, pool)
    for i, asset in enumerate(assets):
        underlying, pool = word_address(raw[2 * i]), word_address(raw[2 * i + 1])
        if underlying and pool:
            found[asset] = (underlying, pool)
    if not found:
        return {}
    tokens = read_tokens(rpc, sorted(set(found) | {u for u, _ in found.values()}), tag)
    answers = iter(
        rpc.batch_each(
            [
                eth_call(pool, POOL, fn, underlying, block=tag)
                for underlying, pool in found.values()
                for fn in ("getReserveData", "getReserveNormalizedIncome")
            ]
        )
    )
    links = {}
    for asset, (underlying, pool) in found.items():
        data, income = next(answers), next(answers)
        if data in (None, "0x") or income in (None, "0x"):
            continue
        if str(POOL.decode("getReserveData", data)[0][8]).lower() != asset:  # aTokenAddress: the pool must vouch
            continue
        index = POOL.decode("getReserveNormalizedIncome", income)[0]
        links[asset] = Link(
            tokens[asset], "atoken", tokens[underlying], 1, 1, None, "", "probe", pool=pool, index_ray=index
        )
    return links
