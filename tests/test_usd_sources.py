"""USD sources for protocols that price in their own units (chainrisk.protocols.usd): a token's Chainlink feed wins
over the AaveOracle, a feed that reverts or answers zero or less leaves that token unpriced, nothing else, and a feed
answer older than usd_feed_max_age is named stale and still used."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode

from chainrisk.errors import UserError
from chainrisk.protocols.usd import (
    DEFAULT_MAX_FEED_AGE,
    Feed,
    TokenUsd,
    UsdSource,
    discover_usd,
    parse_feeds,
    parse_max_age,
    unpriced,
)

TOKENS = ["0x" + f"{i:040x}" for i in range(1, 5)]
FEEDS = ["0x" + f"{i:040x}" for i in range(101, 105)]
ORACLE = "0x" + "aa" * 20


def _round(answer: int, updated_at: int = 2) -> str:
    return "0x" + encode(["uint80", "int256", "uint256", "uint256", "uint80"], [7, answer, 1, updated_at, 7]).hex()


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _prices(source: UsdSource, rpc: Any) -> list[float | None]:
    """The USD price of each of TOKENS from `source`, at block 0x10."""
    return [t.usd for t in source.read(rpc, TOKENS, "0x10", None)]


class Replies:
    """An RpcClient's batch_each over canned answers: by (to, 4-byte selector); None is a revert."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers, self.calls = answers, 0

    def batch_each(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        self.calls += 1
        return [self.answers.get((params[0]["to"], params[0]["data"][:10])) for _, params in calls]


LATEST_ROUND, DECIMALS, GET_ASSET_PRICE, BASE_CURRENCY_UNIT = "0xfeaf968c", "0x313ce567", "0xb3596f07", "0x8c89b64f"


def test_a_token_s_feed_wins_over_the_oracle_and_a_failing_feed_leaves_only_its_token_unpriced() -> None:
    feeds = [Feed(TOKENS[0], FEEDS[0], 8), Feed(TOKENS[1], FEEDS[1], 18), Feed(TOKENS[2], FEEDS[2], 8)]
    rpc = Replies(
        {
            (FEEDS[0], LATEST_ROUND): _round(2_000 * 10**8),  # 2,000 USD at 8 decimals
            (FEEDS[1], LATEST_ROUND): _round(-1),  # a negative answer: no price
            (FEEDS[2], LATEST_ROUND): None,  # reverts
            (ORACLE, GET_ASSET_PRICE): _word(3 * 10**8),  # the oracle's price of every token it is asked
        }
    )
    prices = _prices(UsdSource(ORACLE, 10**8, tuple(feeds)), rpc)
    # The feed's price for token 0, none for the failing feeds (the oracle is not asked for them), the oracle's for 3.
    assert prices == [2_000.0, None, None, 3.0] and rpc.calls == 1
    # Each price names the contract it was read from; an unpriced token names none.
    read = UsdSource(ORACLE, 10**8, tuple(feeds)).read(rpc, TOKENS, "0x10", None)  # type: ignore[arg-type]
    sources = [t.source for t in read]
    assert sources == [f"usd feed {FEEDS[0]}", None, None, f"usd oracle {ORACLE}"]
    assert _prices(UsdSource(None, 1, tuple(feeds)), rpc) == [2_000.0, None, None, None]
    assert _prices(UsdSource(), Replies({})) == [None] * 4


def test_feeds_are_checked_and_parsed() -> None:
    answers = {(FEEDS[0], DECIMALS): _word(8), (FEEDS[0], LATEST_ROUND): _round(1)}
    answers |= {(FEEDS[1], DECIMALS): _word(2**200), (FEEDS[1], LATEST_ROUND): _round(1)}  # junk decimals
    rpc = Replies(answers)
    source = discover_usd(rpc, None, f"{TOKENS[0]}={FEEDS[0]}", "0x1")  # type: ignore[arg-type]
    assert source == UsdSource(feeds=(Feed(TOKENS[0], FEEDS[0], 8),))
    for feed in FEEDS[1:3]:  # decimals beyond any feed's, or no answer at all
        with pytest.raises(UserError, match=f"{feed} \\(the feed given for token {TOKENS[1]}\\) does not answer"):
            discover_usd(rpc, None, f"{TOKENS[0]}={FEEDS[0]} {TOKENS[1]}={feed}", "0x1")  # type: ignore[arg-type]
    upper = TOKENS[0].replace("0x", "0X").upper().replace("0X", "0x", 1)
    assert parse_feeds(f"{upper}={FEEDS[0]}, {TOKENS[1]}={FEEDS[1]}") == ((TOKENS[0], FEEDS[0]), (TOKENS[1], FEEDS[1]))
    assert parse_feeds(None) == () and parse_feeds("  ") == ()
    for text, message in (
        (TOKENS[0], "is not TOKEN=FEED"),
        (f"{TOKENS[0]}=0x12", "feed of .* is not a 20-byte hex address"),
        (f"{TOKENS[0]}={FEEDS[0]} {TOKENS[0]}={FEEDS[1]}", "given two feeds"),
    ):
        with pytest.raises(UserError, match=message):
            parse_feeds(text)


def test_what_a_missing_usd_price_is_blamed_on() -> None:
    none = unpriced(UsdSource(), "this Comet", "it", "base USDC")
    assert "give usd_oracle" in none and "or usd_feeds" in none and "USDC" not in none
    feeds = (Feed(TOKENS[0], FEEDS[0], 8), Feed(TOKENS[1], FEEDS[1], 8))
    assert unpriced(UsdSource(ORACLE, 10**8, feeds), "x", "y", "base USDC") == (
        f"USD oracle {ORACLE} and usd_feeds (2 tokens) give no price for base USDC"
    )
    assert unpriced(UsdSource(None, 1, feeds[:1]), "x", "y", "A") == "usd_feeds (1 token) give no price for A"
    later = UsdSource(later=(f"USD oracle {ORACLE}",))
    assert unpriced(later, "x", "its markets", "A") == (
        f"USD oracle {ORACLE} not answering yet at this block: no USD source to value its markets here"
    )


class Chain(Replies):
    """Replies at two blocks: a contract in `now` answers at the head ("latest"), one in `then` also at the block
    asked; a contract that answers at neither is not there (an empty answer)."""

    def __init__(self, answers: dict[tuple[str, str], Any], now: set[str], then: set[str]) -> None:
        super().__init__(answers)
        self.now, self.then = now, then

    def batch_each(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        answers = super().batch_each(calls)
        there = [params[0]["to"] in (self.now if params[1] == "latest" else self.then) for _, params in calls]
        return [a if ok else "0x" for a, ok in zip(answers, there, strict=True)]


def test_a_source_deployed_after_the_block_is_left_out_there_and_a_typo_is_refused() -> None:
    feed_answers = {(FEEDS[0], DECIMALS): _word(8), (FEEDS[0], LATEST_ROUND): _round(10**8)}
    answers = {(ORACLE, BASE_CURRENCY_UNIT): _word(10**8), **feed_answers}
    both = f"{TOKENS[0]}={FEEDS[0]}"
    deployed = {ORACLE, FEEDS[0]}
    source = discover_usd(Chain(answers, deployed, deployed), ORACLE, both, "0x10")  # type: ignore[arg-type]
    assert source == UsdSource(ORACLE, 10**8, (Feed(TOKENS[0], FEEDS[0], 8),))
    # Before the oracle was deployed (a credit-history sample of an early block): left out at that block, named.
    early = discover_usd(Chain(answers, deployed, {FEEDS[0]}), ORACLE, both, "0x10")  # type: ignore[arg-type]
    assert early == UsdSource(None, 1, (Feed(TOKENS[0], FEEDS[0], 8),), (f"USD oracle {ORACLE}",))
    earliest = discover_usd(Chain(answers, deployed, set()), ORACLE, both, "0x10")  # type: ignore[arg-type]
    assert earliest.oracle is None and not earliest.feeds and len(earliest.later) == 2
    assert _prices(earliest, Chain(answers, deployed, set())) == [None] * 4
    # An address with code nowhere is a typo: refused in one line.
    with pytest.raises(UserError, match=f"USD oracle {ORACLE} does not answer BASE_CURRENCY_UNIT"):
        discover_usd(Chain(answers, {FEEDS[0]}, {FEEDS[0]}), ORACLE, both, "0x10")  # type: ignore[arg-type]
    with pytest.raises(UserError, match=f"usd_feeds: {FEEDS[0]} \\(the feed given for token"):
        discover_usd(Chain(answers, {ORACLE}, {ORACLE}), ORACLE, both, "0x10")  # type: ignore[arg-type]


def test_a_feed_answer_older_than_the_max_age_is_named_stale_and_still_used() -> None:
    now = 1_700_000_000
    feeds = (Feed(TOKENS[0], FEEDS[0], 8), Feed(TOKENS[1], FEEDS[1], 8), Feed(TOKENS[2], FEEDS[2], 8))
    rpc = Replies(
        {
            (FEEDS[0], LATEST_ROUND): _round(2_000 * 10**8, now - 3_600),  # an hour old
            (FEEDS[1], LATEST_ROUND): _round(10**8, now - 3 * 86_400),  # three days old
            (FEEDS[2], LATEST_ROUND): _round(-1, now - 3 * 86_400),  # no price: nothing to call stale
            (ORACLE, GET_ASSET_PRICE): _word(3 * 10**8),
        }
    )
    read = UsdSource(ORACLE, 10**8, feeds).read(rpc, TOKENS, "0x10", now)  # type: ignore[arg-type]
    assert [t.usd for t in read] == [2_000.0, 1.0, None, 3.0]
    assert [t.stale is not None for t in read] == [False, True, False, False]
    stale = read[1].stale
    assert stale is not None and stale.kind == "stale_usd_price" and stale.subject == FEEDS[1]
    assert stale.detail == (
        f"USD feed {FEEDS[1]} last updated 3.0 days before this block, over usd_feed_max_age (25.0 h); its answer "
        "is used as the chain serves it"
    )
    # A tighter age names the hour-old answer too; no block time (a price alone) names none.
    tight = UsdSource(ORACLE, 10**8, feeds, max_feed_age=600).read(rpc, TOKENS, "0x10", now)  # type: ignore[arg-type]
    assert [t.stale is not None for t in tight] == [True, True, False, False]
    assert "last updated 60 min before this block, over usd_feed_max_age (10 min)" in str(tight[0].stale)
    unchecked = UsdSource(ORACLE, 10**8, feeds).read(rpc, TOKENS, "0x10", None)[1]  # type: ignore[arg-type]
    assert unchecked == TokenUsd(1.0, None, f"usd feed {FEEDS[1]}")


def test_the_max_age_is_parsed_and_a_bad_one_refused() -> None:
    assert parse_max_age(None) == DEFAULT_MAX_FEED_AGE == 90_000
    assert [parse_max_age(t) for t in ("3600", "90m", " 25h", "2d", "45s")] == [3_600, 5_400, 90_000, 172_800, 45]
    for text in ("0", "-5", "1.5h", "3w", "h", ""):
        with pytest.raises(UserError, match=r"usd_feed_max_age: .* is not a positive age"):
            parse_max_age(text)
    rpc = Replies({(FEEDS[0], DECIMALS): _word(8), (FEEDS[0], LATEST_ROUND): _round(1)})
    source = discover_usd(rpc, None, f"{TOKENS[0]}={FEEDS[0]}", "0x1", "6h")  # type: ignore[arg-type]
    assert source.max_feed_age == 21_600
