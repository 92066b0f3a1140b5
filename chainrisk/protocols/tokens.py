"""Token contracts every protocol meets, read on chain: ERC-20 metadata, and the wrapper standards found by probing
(ERC-4626 vaults, liquid-staking tokens with Lido wstETH's interface, and mainnet LSTs whose rate is a plain getter).

Nothing is assumed from a token's symbol: each link is what the contract answers at the block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.assets import Link, Token
from chainrisk.rpc import RpcClient
from chainrisk.units import WAD

ERC20 = load_abi("erc20", "IERC20Detailed")
ERC4626 = load_abi("tokens", "IERC4626")
WSTETH = load_abi("tokens", "IWstETH")
RATES = load_abi("tokens", "IRateProvider")
#: The ABIs a link's `convert` function is called through, by Link.abi_name.
CONVERTERS = {"IERC4626": ERC4626, "IWstETH": WSTETH}


@dataclass(frozen=True)
class KnownWrapper:
    """A liquid-staking token whose exchange rate is a getter without arguments (base per token, 1e18-scaled)."""

    name: str  #: what it is
    chain_id: int
    address: str  #: the wrapper token
    underlying: str  #: what one token is a claim on
    rate_function: str  #: getter in abis/tokens/IRateProvider.json


#: Mainnet LSTs whose rate is not an ERC-4626 or wstETH-style call. Addresses from each issuer's documentation
#: (Rocket Pool "Smart contracts" page, Coinbase cbETH docs, ether.fi docs) and Etherscan's verified sources.
WETH_MAINNET = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
REGISTRY: tuple[KnownWrapper, ...] = (
    KnownWrapper("Rocket Pool rETH", 1, "0xae78736cd615f374d3085123a210448e74fc6393", WETH_MAINNET, "getExchangeRate"),
    KnownWrapper("Coinbase cbETH", 1, "0xbe9895146f7af43049ca1c1ae358b0541ea49704", WETH_MAINNET, "exchangeRate"),
    KnownWrapper(
        "ether.fi weETH",
        1,
        "0xcd5fe23c85820f7b72d0926fc9b05b43e359b7ee",
        "0x35fa164735182de50811e8e2e824cfb9b6118ac2",
        "getRate",
    ),
)


def word_address(raw: Any) -> str | None:
    """An eth_call answer holding one non-zero address, lowercase; None for a revert, an empty or odd answer."""
    found = any_word_address(raw)
    return None if found is None or int(found, 16) == 0 else found


def any_word_address(raw: Any) -> str | None:
    """An eth_call answer holding one address, the zero address too (an oracle naming no source), lowercase; None for a
    revert, an empty or odd answer."""
    if not isinstance(raw, str) or len(raw) != 66 or int(raw, 16) >= 2**160:
        return None
    return "0x" + raw[-40:].lower()


def word_uint(raw: Any) -> int | None:
    """The first 32-byte word of an eth_call answer as an unsigned integer; None for a revert or a short answer."""
    if not isinstance(raw, str) or len(raw) < 66:
        return None
    return int(raw[2:66], 16)


def read_tokens(rpc: RpcClient, addresses: list[str], tag: str) -> dict[str, Token]:
    """Symbol and decimals of each token at block `tag`; a token without them (or with a bytes32 symbol) keeps its
    shortened address as symbol and 18 decimals."""
    calls = [
        c
        for a in addresses
        for c in (eth_call(a, ERC20, "symbol", block=tag), eth_call(a, ERC20, "decimals", block=tag))
    ]
    raw = rpc.batch_each(calls)
    tokens = {}
    for i, address in enumerate(addresses):
        symbol = address[:10]
        if raw[2 * i] not in (None, "0x"):
            with contextlib.suppress(ValueError, TypeError, OverflowError):  # bytes32 symbols keep the address
                symbol = str(ERC20.decode("symbol", raw[2 * i])[0])
        decimals = word_uint(raw[2 * i + 1])
        tokens[address] = Token(address, symbol, decimals if decimals is not None and decimals <= 36 else 18)
    return tokens


#: What `standard_links` probes each asset with, and the interface each probe belongs to.
STANDARD_PROBES = ("asset", "totalAssets", "totalSupply", "stETH")


def standard_probe_calls(assets: list[str], block: int) -> list[tuple[str, list[Any]]]:
    """The probes `standard_links` sends each of `assets` (for a caller that sends them with others: batch_each)."""
    abis = (ERC4626, ERC4626, ERC4626, WSTETH)
    return [
        eth_call(a, abi, fn, block=hex(block)) for a in assets for abi, fn in zip(abis, STANDARD_PROBES, strict=True)
    ]


def standard_links(
    rpc: RpcClient,
    chain_id: int,
    assets: list[str],
    block: int,
    registry: tuple[KnownWrapper, ...] = REGISTRY,
    probed: Sequence[Any] | None = None,
) -> dict[str, Link]:
    """The links of `assets` that are registry LSTs, ERC-4626 vaults (`asset()`, `totalAssets()`, rate
    `convertToAssets(10**decimals)`) or wstETH-style wrappers (`stETH()`, `getStETHByWstETH`), by asset. `probed`:
    the answers to standard_probe_calls(assets, block), where the caller sent them (None: asked here)."""
    tag = hex(block)
    known = {w.address: w for w in registry if w.chain_id == chain_id}
    probes = STANDARD_PROBES
    raw = probed if probed is not None else rpc.batch_each(standard_probe_calls(assets, block))
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}  # asset -> (kind, underlying, extra)
    for i, asset in enumerate(assets):
        answers = dict(zip(probes, raw[i * len(probes) : (i + 1) * len(probes)], strict=True))
        vault_asset, stake_token = word_address(answers["asset"]), word_address(answers["stETH"])
        if asset in known:
            found[asset] = ("lst", known[asset].underlying, {"registry": known[asset]})
        elif vault_asset and word_uint(answers["totalAssets"]) is not None:
            sizes = {
                "total_assets": word_uint(answers["totalAssets"]),
                "total_supply": word_uint(answers["totalSupply"]),
            }
            found[asset] = ("erc4626", vault_asset, sizes)
        elif stake_token:
            found[asset] = ("lst", stake_token, {})
    if not found:
        return {}
    tokens = read_tokens(rpc, sorted(set(found) | {u for _, u, _ in found.values()}), tag)
    rate_calls = []
    for asset, (kind, _, extra) in found.items():
        sample = 10 ** tokens[asset].decimals
        if kind == "erc4626":
            rate_calls.append(eth_call(asset, ERC4626, "convertToAssets", sample, block=tag))
        elif "registry" in extra:
            rate_calls.append(eth_call(asset, RATES, extra["registry"].rate_function, block=tag))
        else:
            rate_calls.append(eth_call(asset, WSTETH, "getStETHByWstETH", sample, block=tag))
    links = {}
    for (asset, (kind, underlying, extra)), answer in zip(found.items(), rpc.batch_each(rate_calls), strict=True):
        rate = word_uint(answer)
        if rate is None or rate == 0:
            continue
        token, under = tokens[asset], tokens[underlying]
        sample = 10**token.decimals
        if kind == "erc4626":
            links[asset] = Link(token, kind, under, rate, sample, "convertToAssets", "IERC4626", "probe", **extra)
        elif "registry" in extra:
            # The getter answers base per whole token, 1e18-scaled: in base units per 10**decimals.
            links[asset] = Link(
                token, kind, under, rate * 10**under.decimals // WAD, sample, None, "IRateProvider", "registry"
            )
        else:
            links[asset] = Link(token, kind, under, rate, sample, "getStETHByWstETH", "IWstETH", "probe")
    return links
