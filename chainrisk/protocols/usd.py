"""USD prices of the tokens a market holds, for protocols whose contracts price in units of their own (Morpho Blue in
loan-token units, a Comet in its feeds' currency).

Two sources, both read at the snapshot's block:
- `usd_oracle`: an AaveOracle-compatible contract (`getAssetPrice(token)` over `BASE_CURRENCY_UNIT`); the presets use
  the Aave V3 oracle of the market's chain, where there is one.
- `usd_feeds`: Chainlink AggregatorV3-compatible feeds that answer a token's price in USD, given token by token
  (`latestRoundData().answer` over `10 ** decimals()`, Chainlink's AggregatorV3Interface). For chains without an Aave V3
  market, and for tokens the oracle does not price. A token's own feed wins over the oracle.

Both are checked when a market is read (`discover_usd`): a source that does not answer as one at the block read nor at
the chain's head (a mistyped address) is refused in one line. One that answers at the head only was deployed, or first
updated, after that block (a `credit history` sample before the chain's Aave market or feed existed): it is left out
at that block, not refused. A feed that reverts or answers zero or less leaves that token's price unknown. The
adapters name a market left without any USD price in `data_quality` (`no_usd_price`, `unpriced`).

A feed answer is used as the chain serves it at the block, as AaveOracle uses its feeds' answers, however old; but one
whose `updatedAt` lies more than `usd_feed_max_age` before the block (default DEFAULT_MAX_FEED_AGE) is named on the
token (`stale_usd_price`): a feed that stopped updating shows a price nobody trades at. An AaveOracle's own feeds are
not visible through getAssetPrice, so only `usd_feeds` are checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.quality import DECODE_ERRORS, MAX_DECIMALS, Problem, decode_decimals
from chainrisk.rpc import RpcClient

#: An AaveOracle-compatible USD source (getAssetPrice, BASE_CURRENCY_UNIT).
USD_ORACLE = load_abi("aave-v3", "IAaveOracle")
#: Chainlink's AggregatorV3Interface (decimals, description, latestRoundData).
FEED = load_abi("chainlink", "AggregatorV3Interface")
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
#: A feed answer older than this at the block read is named stale: a day and an hour, as a day is the longest
#: heartbeat (the most time between two answers of a feed whose price does not move) that Chainlink lists for most of
#: its USD feeds (docs.chain.link, "Price Feed Contract Addresses"). A team that knows its feeds' heartbeats sets
#: `usd_feed_max_age` to theirs.
DEFAULT_MAX_FEED_AGE = 25 * 3600
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE = re.compile(r"(\d+)\s*([smhd]?)")


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


def parse_max_age(text: str | None, where: str = "usd_feed_max_age") -> int:
    """Seconds from `3600`, `90m`, `25h` or `2d` (the default, DEFAULT_MAX_FEED_AGE, when not given)."""
    if text is None:
        return DEFAULT_MAX_FEED_AGE
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise UserError(f"{where}: {text[:80]!r} is not a positive age; give seconds, or a number with s, m, h or d")
    return int(match[1]) * _AGE_UNITS[match[2] or "s"]


def _address(text: str, where: str) -> str:
    if not _HEX_ADDRESS.fullmatch(text):
        raise UserError(f"{where}: {text[:80]!r} is not a 20-byte hex address; give 0x followed by 40 hex digits")
    return text.lower()


@dataclass(frozen=True)
class UsdSource:
    """The USD sources of one indexed contract at one block."""

    oracle: str | None = None  #: AaveOracle-compatible contract, lowercase hex
    oracle_unit: int = 1  #: its BASE_CURRENCY_UNIT (1 without one)
    feeds: tuple[Feed, ...] = ()  #: Chainlink USD feeds by token
    later: tuple[str, ...] = ()  #: configured sources that answer at the head but not at the block, left out there
    max_feed_age: int = DEFAULT_MAX_FEED_AGE  #: seconds: a feed answer older at the block read is named stale

    def read(self, rpc: RpcClient, tokens: Sequence[str], tag: str, timestamp: int | None) -> list[TokenUsd]:
        """USD per whole token of each of `tokens` (lowercase hex) at `tag`: its feed's answer where it has one, else
        the oracle's price; None where neither gives a positive price (no source, a revert, zero or less). A feed's
        answer older than `max_feed_age` at `timestamp` (the block's time; None: not checked) is a `stale_usd_price`
        problem of the token."""
        calls = self.calls(tokens, tag)
        return self.prices(tokens, rpc.batch_each(calls) if calls else [], timestamp)

    def calls(self, tokens: Sequence[str], tag: str) -> list[tuple[str, list[Any]]]:
        """The calls `read` sends (for a caller that sends them with others, in `batch_each`): a token's feed's
        latestRoundData, else the oracle's getAssetPrice; none for a token without a source."""
        by_token = {f.token: f for f in self.feeds}
        calls: list[tuple[str, list[Any]]] = []
        for token in tokens:
            feed = by_token.get(token)
            if feed is not None:
                calls.append(_round(feed.feed, tag))
            elif self.oracle:
                calls.append(eth_call(self.oracle, USD_ORACLE, "getAssetPrice", token, block=tag))
        return calls

    def prices(self, tokens: Sequence[str], answers: Sequence[Any], timestamp: int | None) -> list[TokenUsd]:
        """`read`'s prices from the answers to `calls(tokens, ...)` (None for a refused call)."""
        by_token = {f.token: f for f in self.feeds}
        raw = iter(answers)
        prices: list[TokenUsd] = []
        for token in tokens:
            feed = by_token.get(token)
            if feed is not None:
                answer = _round_answer(next(raw))
                if answer is None or answer[0] <= 0:
                    prices.append(TokenUsd(None))
                    continue
                age = None if timestamp is None else timestamp - answer[1]
                stale = stale_problem(feed, age, self.max_feed_age)
                prices.append(TokenUsd(answer[0] / 10**feed.decimals, stale, f"{FEED_SOURCE} {feed.feed}"))
            elif self.oracle:
                price = decode_decimals(next(raw))  # one uint256 word, like decimals(); None for a revert
                usd = price / self.oracle_unit if price else None
                prices.append(TokenUsd(usd, None, f"{ORACLE_SOURCE} {self.oracle}" if usd is not None else None))
            else:
                prices.append(TokenUsd(None))
        return prices


#: How a stored USD price names where it came from (`*_usd_source` columns): "usd feed 0x…" (latestRoundData of
#: the token's configured Chainlink-compatible feed) or "usd oracle 0x…" (getAssetPrice of the AaveOracle-compatible
#: contract); the address is the contract read.
FEED_SOURCE = "usd feed"
ORACLE_SOURCE = "usd oracle"


@dataclass(frozen=True)
class TokenUsd:
    usd: float | None  #: USD per whole token; None where no source gives a positive price
    stale: Problem | None = None  #: its feed's answer is older than the source's max_feed_age
    #: the contract the price was read from (FEED_SOURCE / ORACLE_SOURCE and its address); None exactly when usd is
    source: str | None = None

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What is odd about the token's USD price (added to the token's own problems)."""
        return () if self.stale is None else (self.stale,)


#: The market options that configure the USD sources (the Morpho Blue and Compound V3 adapters take them); the last
#: two are text (usd_oracle is an address).
USD_OPTIONS = ("usd_oracle", "usd_feeds", "usd_feed_max_age")
USD_TEXT_OPTIONS = ("usd_feeds", "usd_feed_max_age")


def usd_source(rpc: RpcClient, options: Mapping[str, str], tag: str, answered: Sequence[Any]) -> UsdSource:
    """discover_usd of a market's USD_OPTIONS, from `answered`: the answers to usd_source_calls(options, tag), sent
    with the caller's own calls."""
    oracle, feeds, max_age = (options.get(name) for name in USD_OPTIONS)
    return discover_usd(rpc, oracle, feeds, tag, max_age, answered)


def usd_source_calls(options: Mapping[str, str], tag: str) -> list[tuple[str, list[Any]]]:
    """What discover_usd asks at `tag` of a market's USD_OPTIONS (for `batch_each`, with a caller's other calls): the
    oracle's BASE_CURRENCY_UNIT, then each feed's decimals() and latestRoundData()."""
    oracle, feeds = options.get("usd_oracle"), options.get("usd_feeds")
    return _discovery_calls(_address(oracle, "usd_oracle") if oracle else None, parse_feeds(feeds), tag)


def _discovery_calls(oracle: str | None, pairs: Sequence[tuple[str, str]], tag: str) -> list[tuple[str, list[Any]]]:
    calls = [eth_call(oracle, USD_ORACLE, "BASE_CURRENCY_UNIT", block=tag)] if oracle else []
    return calls + _feed_calls(pairs, tag)


def discover_usd(
    rpc: RpcClient,
    oracle: str | None,
    feeds: str | None,
    tag: str,
    max_age: str | None = None,
    answered: Sequence[Any] | None = None,
) -> UsdSource:
    """The configured USD oracle's unit and feeds' decimals at `tag`, in one round trip (none where `answered`, the
    answers to its calls, is given). A source that does not answer as it must at `tag` is asked again at the chain's
    head: one that answers there is left out at `tag` (deployed, or first updated, later), one that does not is
    refused in one line (UserError: a mistyped address). `max_age`: the `usd_feed_max_age` option (parse_max_age)."""
    pairs = parse_feeds(feeds)
    max_feed_age = parse_max_age(max_age)
    oracle = _address(oracle, "usd_oracle") if oracle else None
    if answered is None:
        calls = _discovery_calls(oracle, pairs, tag)
        answered = rpc.batch_each(calls) if calls else []
    later: list[str] = []
    unit = _unit_of(answered[0]) if oracle else 1
    if oracle and unit is None:
        if _oracle_unit(rpc, oracle, "latest") is None:
            raise UserError(
                f"USD oracle {oracle} does not answer BASE_CURRENCY_UNIT; it must be an AaveOracle-compatible contract"
            )
        later.append(f"USD oracle {oracle}")
    checked = _feed_decimals_of(pairs, answered[1 if oracle else 0 :])
    missing = [pair for pair, decimals in zip(pairs, checked, strict=True) if decimals is None]
    for (token, feed), decimals in zip(missing, _feed_decimals(rpc, missing, "latest"), strict=True):
        if decimals is None:
            raise UserError(
                f"usd_feeds: {feed} (the feed given for token {token}) does not answer decimals() and "
                "latestRoundData(); it must be a Chainlink AggregatorV3-compatible feed"
            )
        later.append(f"the USD feed of {token} ({feed})")
    answering = tuple(Feed(t, f, d) for (t, f), d in zip(pairs, checked, strict=True) if d is not None)
    return UsdSource(None if unit is None else oracle, unit or 1, answering, tuple(later), max_feed_age)


def _oracle_unit(rpc: RpcClient, oracle: str, tag: str) -> int | None:
    """The oracle's BASE_CURRENCY_UNIT at `tag`; None when it does not answer one (a revert, no code, junk)."""
    return _unit_of(rpc.batch_each([eth_call(oracle, USD_ORACLE, "BASE_CURRENCY_UNIT", block=tag)])[0])


def _unit_of(raw: Any) -> int | None:
    unit = decode_decimals(raw)
    return unit if unit else None


def _feed_calls(pairs: Sequence[tuple[str, str]], tag: str) -> list[tuple[str, list[Any]]]:
    """Each pair's feed's decimals() and latestRoundData() at `tag`."""
    return [c for _, feed in pairs for c in (eth_call(feed, FEED, "decimals", block=tag), _round(feed, tag))]


def _feed_decimals(rpc: RpcClient, pairs: Sequence[tuple[str, str]], tag: str) -> list[int | None]:
    """Each pair's feed's decimals() at `tag` where it also answers latestRoundData() there, else None."""
    calls = _feed_calls(pairs, tag)
    return _feed_decimals_of(pairs, rpc.batch_each(calls) if calls else [])


def _feed_decimals_of(pairs: Sequence[tuple[str, str]], raw: Sequence[Any]) -> list[int | None]:
    """_feed_decimals from the answers to _feed_calls(pairs, ...)."""
    decimals = [decode_decimals(raw[2 * i]) for i in range(len(pairs))]
    # Chainlink's decimals() is a uint8; more than MAX_DECIMALS is junk (and 10**d of a huge d would never finish).
    return [
        d if d is not None and d <= MAX_DECIMALS and _round_answer(raw[2 * i + 1]) is not None else None
        for i, d in enumerate(decimals)
    ]


def stale_problem(feed: Feed, age: int | None, max_age: int) -> Problem | None:
    """The `stale_usd_price` problem of a feed answer `age` seconds old at the block, if that is over `max_age`."""
    if age is None or age <= max_age:
        return None
    return Problem(
        "stale_usd_price",
        f"USD feed {feed.feed} last updated {_duration(age)} before this block, over usd_feed_max_age "
        f"({_duration(max_age)}); its answer is used as the chain serves it",
        "whether the USD price is current",
        feed.feed,
    )


def _duration(seconds: int) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def unpriced(source: UsdSource, what: str, valued: str, tokens: str) -> str:
    """The `no_usd_price` detail of a market its sources left without a USD price: that none is configured, or answers
    at this block, or which were asked and did not price `tokens` ("loan token USDC nor collateral WETH"). `what` is
    the indexed thing ("this Comet"), `valued` what a source would value ("it")."""
    later = f"{' and '.join(source.later)} not answering yet at this block" if source.later else ""
    if source.oracle is None and not source.feeds:
        if later:
            return f"{later}: no USD source to value {valued} here"
        return (
            f"no USD source is configured for {what} (its chain has no Aave V3 market whose AaveOracle a preset "
            f"could use): give usd_oracle, an AaveOracle-compatible contract, or usd_feeds, Chainlink USD feeds by "
            f"token, to value {valued} in USD"
        )
    asked = [f"USD oracle {source.oracle}"] if source.oracle else []
    if source.feeds:
        asked.append(f"usd_feeds ({len(source.feeds)} token{'s' if len(source.feeds) > 1 else ''})")
    return " and ".join(asked) + (f" ({later})" if later else "") + f" give no price for {tokens}"


def _round(feed: str, tag: str) -> tuple[str, list[Any]]:
    """The eth_call of a feed's latestRoundData() at `tag`."""
    return eth_call(feed, FEED, "latestRoundData", block=tag)


def _round_answer(raw: Any) -> tuple[int, int] | None:
    """latestRoundData's answer (a signed int) and updatedAt; None for a revert or an undecodable reply."""
    if raw in (None, "0x"):
        return None
    try:
        decoded = FEED.decode("latestRoundData", raw)
    except DECODE_ERRORS:
        return None
    return int(decoded[1]), int(decoded[3])


#: What a feed answered: its description as (base, quote), its decimals and its latest (answer, updatedAt); each None
#: where it reverts or answers junk.
FeedRead = tuple[tuple[str, str] | None, int | None, tuple[int, int] | None]


def read_feeds(rpc: RpcClient, feeds: Sequence[str], tag: str) -> dict[str, FeedRead]:
    """Each feed's description(), decimals() and latestRoundData() at `tag`, in one batch no revert can sink (a feed
    a market's own oracle or contract names, whose currency its description says)."""
    calls = [
        c
        for feed in feeds
        for c in (eth_call(feed, FEED, "description", block=tag), eth_call(feed, FEED, "decimals", block=tag))
    ]
    calls += [_round(feed, tag) for feed in feeds]
    answers = rpc.batch_each(calls) if calls else []
    return {
        feed: (
            _description(answers[2 * i]),
            decode_decimals(answers[2 * i + 1]),
            _round_answer(answers[2 * len(feeds) + i]),
        )
        for i, feed in enumerate(feeds)
    }


def _description(raw: Any) -> tuple[str, str] | None:
    """A feed's description() as (base, quote) in upper case ("ETH / USD" -> ("ETH", "USD")); None when it reverts or
    is not two names around one slash."""
    if raw in (None, "0x"):
        return None
    try:
        (text,) = FEED.decode("description", raw)
    except DECODE_ERRORS:
        return None
    parts = [part.strip().upper() for part in str(text).split("/")]
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]
