"""The asset graph: which assets wrap or claim which other asset, and at what exchange rate, read on chain at a block.

Three kinds of link, each found on chain (nothing is assumed from a token's symbol):

* `atoken`: an Aave V3 aToken (`UNDERLYING_ASSET_ADDRESS()` and `POOL()`, confirmed by the pool naming it as the
  reserve's aToken). Balances are already in underlying units (the pool's liquidity index is applied by
  `balanceOf`), so the rate is 1:1; the index is recorded for scaled-balance readers.
* `erc4626`: a tokenised vault (`asset()`, `totalAssets()`), rate = `convertToAssets(10**decimals)`.
* `lst`: a liquid-staking wrapper: mainnet ones from REGISTRY (rate getter per token), and any contract with
  Lido wstETH's interface (`stETH()`, `getStETHByWstETH`).

Each link knows how to convert an exact amount on chain (`convert`), so look-through amounts are the contract's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.rpc import RpcClient
from chainrisk.units import WAD, ZERO_ADDRESS

ERC20 = load_abi("erc20", "IERC20Detailed")
ERC4626 = load_abi("tokens", "IERC4626")
WSTETH = load_abi("tokens", "IWstETH")
RATES = load_abi("tokens", "IRateProvider")
ATOKEN = load_abi("aave-v3", "IAToken")
POOL = load_abi("aave-v3", "IPool")
#: Wrappers of wrappers deeper than this are not followed (no real chain is this long; a cycle would be).
MAX_DEPTH = 6


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
        "ether.fi weETH", 1, "0xcd5fe23c85820f7b72d0926fc9b05b43e359b7ee", "0x35fa164735182de50811e8e2e824cfb9b6118ac2",
        "getRate",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Token:
    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class Link:
    """One edge: `rate_num` units of `underlying` per `rate_den` units of `asset`, at the block."""

    asset: Token
    kind: str  #: atoken, erc4626, lst
    underlying: Token
    rate_num: int
    rate_den: int
    #: ABI function (of `abi_name`) converting an exact amount on chain; None when balances are already underlying
    #: units (aTokens) or only a per-token rate exists (registry LSTs: floor(amount * rate / 1e18))
    convert: str | None
    abi_name: str  #: tokens/IERC4626, tokens/IWstETH, ... ('' for aTokens)
    detected_by: str  #: probe or registry
    pool: str | None = None  #: aToken: its Aave pool
    index_ray: int | None = None  #: aToken: the reserve's normalized income (liquidity index) at the block
    total_assets: int | None = None  #: ERC-4626: totalAssets()
    total_supply: int | None = None  #: ERC-4626: totalSupply()

    @property
    def rate(self) -> float:
        """Whole underlying tokens per whole asset token."""
        return float((self.rate_num / 10**self.underlying.decimals) / (self.rate_den / 10**self.asset.decimals))


def _address(raw: Any) -> str | None:
    if not isinstance(raw, str) or len(raw) != 66:
        return None
    word = int(raw, 16)
    if word == 0 or word >= 2**160:
        return None
    return "0x" + raw[-40:].lower()


def _uint(raw: Any) -> int | None:
    if not isinstance(raw, str) or len(raw) < 66:
        return None
    return int(raw[2:66], 16)


def _tokens(rpc: RpcClient, addresses: list[str], tag: str) -> dict[str, Token]:
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
        decimals = _uint(raw[2 * i + 1])
        tokens[address] = Token(address, symbol, decimals if decimals is not None and decimals <= 36 else 18)
    return tokens


def discover_links(
    rpc: RpcClient, chain_id: int, assets: list[str], block: int, registry: tuple[KnownWrapper, ...] = REGISTRY
) -> dict[str, Link]:
    """Every link reachable from `assets` (their underlyings are probed in turn), by wrapper address."""
    tag = hex(block)
    known = {w.address: w for w in registry if w.chain_id == chain_id}
    links: dict[str, Link] = {}
    seen: set[str] = set()
    frontier = sorted({a.lower() for a in assets} - {ZERO_ADDRESS})
    for _ in range(MAX_DEPTH):
        frontier = [a for a in frontier if a not in seen]
        if not frontier:
            break
        seen.update(frontier)
        probes = ("UNDERLYING_ASSET_ADDRESS", "POOL", "asset", "totalAssets", "totalSupply", "stETH")
        abis = (ATOKEN, ATOKEN, ERC4626, ERC4626, ERC4626, WSTETH)
        raw = rpc.batch_each(
            [eth_call(a, abi, fn, block=tag) for a in frontier for abi, fn in zip(abis, probes, strict=True)]
        )
        found: dict[str, tuple[str, str, dict[str, Any]]] = {}  # asset -> (kind, underlying, extra)
        for i, asset in enumerate(frontier):
            answers = dict(zip(probes, raw[i * len(probes) : (i + 1) * len(probes)], strict=True))
            if asset in known:
                found[asset] = ("lst", known[asset].underlying, {"registry": known[asset]})
            elif _address(answers["UNDERLYING_ASSET_ADDRESS"]) and _address(answers["POOL"]):
                found[asset] = ("atoken", str(_address(answers["UNDERLYING_ASSET_ADDRESS"])),
                                {"pool": _address(answers["POOL"])})  # fmt: skip
            elif _address(answers["asset"]) and _uint(answers["totalAssets"]) is not None:
                found[asset] = ("erc4626", str(_address(answers["asset"])),
                                {"total_assets": _uint(answers["totalAssets"]),
                                 "total_supply": _uint(answers["totalSupply"])})  # fmt: skip
            elif _address(answers["stETH"]):
                found[asset] = ("lst", str(_address(answers["stETH"])), {})
        if not found:
            break
        tokens = _tokens(rpc, sorted(set(found) | {u for _, u, _ in found.values()}), tag)
        # Second round: the rate (or, for aTokens, the pool's own word that this is its reserve's aToken and its
        # index): each asset's calls, answered in order.
        calls: list[tuple[str, list[Any]]] = []
        per_asset: list[int] = []
        for asset, (kind, underlying, extra) in found.items():
            sample = 10 ** tokens[asset].decimals
            if kind == "atoken":
                mine = [eth_call(extra["pool"], POOL, "getReserveData", underlying, block=tag),
                        eth_call(extra["pool"], POOL, "getReserveNormalizedIncome", underlying, block=tag)]  # fmt: skip
            elif kind == "erc4626":
                mine = [eth_call(asset, ERC4626, "convertToAssets", sample, block=tag)]
            elif "registry" in extra:
                mine = [eth_call(asset, RATES, extra["registry"].rate_function, block=tag)]
            else:
                mine = [eth_call(asset, WSTETH, "getStETHByWstETH", sample, block=tag)]
            calls += mine
            per_asset.append(len(mine))
        answers_in_order = iter(rpc.batch_each(calls))
        for (asset, (kind, underlying, extra)), count in zip(found.items(), per_asset, strict=True):
            first, *rest = [next(answers_in_order) for _ in range(count)]
            token, under = tokens[asset], tokens[underlying]
            sample = 10**token.decimals
            if kind == "atoken":
                second = rest[0]
                if first in (None, "0x") or second in (None, "0x"):
                    continue
                data = POOL.decode("getReserveData", first)[0]
                if str(data[8]).lower() != asset:  # aTokenAddress: the pool must vouch for it
                    continue
                links[asset] = Link(token, kind, under, 1, 1, None, "", "probe", pool=extra["pool"],
                                    index_ray=POOL.decode("getReserveNormalizedIncome", second)[0])  # fmt: skip
            else:
                rate = _uint(first)
                if rate is None or rate == 0:
                    continue
                if kind == "erc4626":
                    sizes = {"total_assets": extra["total_assets"], "total_supply": extra["total_supply"]}
                    links[asset] = Link(
                        token, kind, under, rate, sample, "convertToAssets", "IERC4626", "probe", **sizes
                    )
                elif "registry" in extra:
                    # The getter answers base per whole token, 1e18-scaled: in base units per 10**decimals.
                    num = rate * 10**under.decimals // WAD
                    links[asset] = Link(token, kind, under, num, sample, None, "IRateProvider", "registry")
                else:
                    links[asset] = Link(token, kind, under, rate, sample, "getStETHByWstETH", "IWstETH", "probe")
        frontier = sorted({link.underlying.address for link in links.values()})
    return links


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


def convert_exact(
    rpc: RpcClient, links: dict[str, Link], pieces: list[tuple[str, int]], block: int
) -> dict[tuple[str, int], int]:
    """Underlying amount of each (wrapper, amount), as the wrapper's own conversion answers at `block`; aTokens are
    1:1 and registry LSTs floor(amount x rate); a conversion that reverts falls back to the rate."""
    tag = hex(block)
    abis = {"IERC4626": ERC4626, "IWstETH": WSTETH}
    wanted = sorted({p for p in pieces if p[1] > 0 and links[p[0]].convert is not None})
    raw = rpc.batch_each(
        [eth_call(a, abis[links[a].abi_name], str(links[a].convert), amount, block=tag) for a, amount in wanted]
    )
    out: dict[tuple[str, int], int] = {}
    exact = dict(zip(wanted, raw, strict=True))
    for asset, amount in pieces:
        link = links[asset]
        value = _uint(exact.get((asset, amount)))
        out[(asset, amount)] = value if value is not None else amount * link.rate_num // link.rate_den
    return out
