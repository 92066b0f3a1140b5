"""USD prices of the tokens a market holds, for protocols whose contracts price in units of their own (Morpho Blue in
loan-token units, a Comet in its feeds' currency).

Two sources, both read at the snapshot's block:
- `usd_oracle`: an AaveOracle-compatible contract (`getAssetPrice(token)` over `BASE_CURRENCY_UNIT`); the presets use
  the Aave V3 oracle of the market's chain, where there is one.
- `usd_feeds`: Chainlink AggregatorV3-compatible feeds that answer a token's price in USD, given token by token
  (`latestRoundData().answer` over `10 ** decimals()`, Chainlink's AggregatorV3Interface). For chains without an Aave V3
  market, and for tokens the oracle does not price. A token's own feed wins over the oracle.

A feed is checked when the market is first read (it must answer `decimals()` and `latestRoundData()`: a mistyped
address is refused in one line, as a wrong `usd_oracle` is). Later, a feed that reverts or answers zero or less leaves
that token's price unknown, which the adapters name in `data_quality` (`no_usd_price`). The answer's `updatedAt` is not
checked, as AaveOracle does not check it either: the figure is the one the chain serves at the block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.quality import DECODE_ERRORS, decode_decimals
from chainrisk.rpc import RpcClient

#: An AaveOracle-compatible USD source (getAssetPrice, BASE_CURRENCY_UNIT).
USD_ORACLE = load_abi("aave-v3", "IAaveOracle")
#: Chainlink's AggregatorV3Interface (decimals, description, latestRoundData).
FEED = load_abi("chainlink", "AggregatorV3Interface")
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Feed:
    token: str  #: the priced token, lowercase hex
    feed: str  #: its USD feed, lowercase hex
    decimals: int  #: the feed's decimals()


def parse_feeds(text: str | None, where: str = "usd_feeds") -> tuple[tuple[str, str], ...]:
    """`TOKEN=FEED` pairs, separated by commas or spaces (the form `--option usd_feeds=...` and a TOML string take; a
    TOML table is written in this form by the config), each address checked; one feed per token."""
    pairs: dict[str, str] = {}
    for item in (text or "").replace(",", " ").split():
        token, sep, feed = item.partition("=")
        if not sep:
            raise UserError(f"{where}: {item!r} is not TOKEN=FEED; give token and feed addresses joined by '='")
        token, feed = _address(token, f"{where}: token"), _address(feed, f"{where}: feed of {token}")
        if token in pairs:
            raise UserError(f"{where}: token {token} is given two feeds; give one")
        pairs[token] = feed
    return tuple(pairs.items())


def _address(text: str, where: str) -> str:
    if not _HEX_ADDRESS.fullmatch(text):
        raise UserError(f"{where}: {text[:80]!r} is not a 20-byte hex address; give 0x followed by 40 hex digits")
    return text.lower()


def check_feeds(rpc: RpcClient, pairs: Sequence[tuple[str, str]], tag: str) -> tuple[Feed, ...]:
    """Each pair's feed with its decimals, after checking that it answers `decimals()` and `latestRoundData()` at
    `tag`; a feed that does not is refused in one line (UserError)."""
    calls = [c for _, feed in pairs for c in (eth_call(feed, FEED, "decimals", block=tag), _round(feed, tag))]
    raw = rpc.batch_each(calls) if calls else []
    feeds = []
    for index, (token, feed) in enumerate(pairs):
        decimals = decode_decimals(raw[2 * index])
        if decimals is None or _answer(raw[2 * index + 1]) is _NO_ANSWER:
            raise UserError(
                f"usd_feeds: {feed} (the feed given for token {token}) does not answer decimals() and "
                "latestRoundData(); it must be a Chainlink AggregatorV3-compatible feed"
            )
        feeds.append(Feed(token, feed, decimals))
    return tuple(feeds)


def token_prices(
    rpc: RpcClient, oracle: str | None, oracle_unit: int, feeds: Sequence[Feed], tokens: Sequence[str], tag: str
) -> list[float | None]:
    """USD per whole token of each of `tokens` (lowercase hex) at `tag`: its feed's answer where `feeds` has one,
    else the oracle's price; None where neither gives a positive price (no source, a revert, zero or less)."""
    by_token = {f.token: f for f in feeds}
    calls: list[tuple[str, list[Any]]] = []
    for token in tokens:
        feed = by_token.get(token)
        if feed is not None:
            calls.append(_round(feed.feed, tag))
        elif oracle:
            calls.append(eth_call(oracle, USD_ORACLE, "getAssetPrice", token, block=tag))
    raw = iter(rpc.batch_each(calls) if calls else [])
    prices: list[float | None] = []
    for token in tokens:
        feed = by_token.get(token)
        if feed is not None:
            answer = _answer(next(raw))
            prices.append(answer / 10**feed.decimals if isinstance(answer, int) and answer > 0 else None)
        elif oracle:
            price = decode_decimals(next(raw))  # one uint256 word, like decimals(); None for a revert
            prices.append(price / oracle_unit if price else None)
        else:
            prices.append(None)
    return prices


def unpriced(oracle: str | None, feeds: Sequence[Feed], what: str, valued: str) -> str:
    """The start of a `no_usd_price` detail: which sources were asked (`what` is the indexed thing, "this Comet",
    and `valued` what a source would value, "it"); the adapter adds which tokens they did not price."""
    if oracle is None and not feeds:
        return (
            f"no USD source is configured for {what} (its chain has no Aave V3 market whose AaveOracle a preset "
            f"could use): give usd_oracle, an AaveOracle-compatible contract, or usd_feeds, Chainlink USD feeds by "
            f"token, to value {valued} in USD"
        )
    asked = [f"USD oracle {oracle}"] if oracle else []
    if feeds:
        asked.append(f"usd_feeds ({len(feeds)} token{'s' if len(feeds) > 1 else ''})")
    return " and ".join(asked)


def _round(feed: str, tag: str) -> tuple[str, list[Any]]:
    return eth_call(feed, FEED, "latestRoundData", block=tag)


_NO_ANSWER = object()


def _answer(raw: Any) -> Any:
    """latestRoundData's answer (a signed int), or _NO_ANSWER for a revert or an undecodable reply."""
    if raw in (None, "0x"):
        return _NO_ANSWER
    try:
        return int(FEED.decode("latestRoundData", raw)[1])
    except DECODE_ERRORS:
        return _NO_ANSWER
