"""USD sources for protocols that price in their own units (chainrisk.protocols.usd): a token's Chainlink feed wins
over the AaveOracle, and a feed that reverts or answers zero or less leaves that token unpriced, nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode

from chainrisk.errors import UserError
from chainrisk.protocols.usd import Feed, check_feeds, parse_feeds, token_prices, unpriced

TOKENS = ["0x" + f"{i:040x}" for i in range(1, 5)]
FEEDS = ["0x" + f"{i:040x}" for i in range(101, 105)]
ORACLE = "0x" + "aa" * 20


def _round(answer: int) -> str:
    return "0x" + encode(["uint80", "int256", "uint256", "uint256", "uint80"], [7, answer, 1, 2, 7]).hex()


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


class Replies:
    """An RpcClient's batch_each over canned answers: by (to, 4-byte selector); None is a revert."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers, self.calls = answers, 0

    def batch_each(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        self.calls += 1
        return [self.answers.get((params[0]["to"], params[0]["data"][:10])) for _, params in calls]


LATEST_ROUND, DECIMALS, GET_ASSET_PRICE = "0xfeaf968c", "0x313ce567", "0xb3596f07"


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
    prices = token_prices(rpc, ORACLE, 10**8, feeds, TOKENS, "0x10")  # type: ignore[arg-type]
    # The feed's price for token 0, none for the failing feeds (the oracle is not asked for them), the oracle's for 3.
    assert prices == [2_000.0, None, None, 3.0] and rpc.calls == 1
    assert token_prices(rpc, None, 1, feeds, TOKENS, "0x10") == [2_000.0, None, None, None]  # type: ignore[arg-type]
    assert token_prices(Replies({}), None, 1, (), TOKENS, "0x10") == [None] * 4  # type: ignore[arg-type]


def test_feeds_are_checked_and_parsed() -> None:
    rpc = Replies({(FEEDS[0], DECIMALS): _word(8), (FEEDS[0], LATEST_ROUND): _round(1)})
    assert check_feeds(rpc, [(TOKENS[0], FEEDS[0])], "0x1") == (Feed(TOKENS[0], FEEDS[0], 8),)  # type: ignore[arg-type]
    with pytest.raises(UserError, match=f"{FEEDS[1]} \\(the feed given for token {TOKENS[1]}\\) does not answer"):
        check_feeds(rpc, [(TOKENS[0], FEEDS[0]), (TOKENS[1], FEEDS[1])], "0x1")  # type: ignore[arg-type]
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
    assert "give usd_oracle" in unpriced(None, (), "this Comet", "it") and "or usd_feeds" in unpriced(
        None, (), "x", "y"
    )
    feeds = (Feed(TOKENS[0], FEEDS[0], 8), Feed(TOKENS[1], FEEDS[1], 8))
    assert unpriced(ORACLE, feeds, "x", "y") == f"USD oracle {ORACLE} and usd_feeds (2 tokens)"
    assert unpriced(None, feeds[:1], "x", "y") == "usd_feeds (1 token)"
