"""Odd contracts met while reading a market (tokens without decimals() or with a bytes32 symbol, tokens whose calls
revert, oracles that revert or answer zero, contracts without code): what each one left unknown, as rows of the
shared `data_quality` table (README "The SQL contract"), and the tolerant ERC-20 metadata read that finds them.

Permissionless markets list whatever their creator chose; none of it may stop a run. An adapter stores what is exact,
leaves NULL what it cannot know, and says so here, one row per market, contract and problem.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from chainrisk.abi import Abi, eth_call, load_abi
from chainrisk.rpc import RpcClient

ERC20 = load_abi("erc20", "IERC20Detailed")

#: What decoding an odd answer raises (chainrisk.abi.DecodingError, eth_abi's refusal, is a ValueError).
DECODE_ERRORS = (ValueError, TypeError, OverflowError)
#: What each kind of problem means (the `kind` column of `data_quality`).
KINDS = {
    "no_code": "the address holds no contract (self-destructed, or never deployed)",
    "token_reverts": "the token answers none of symbol(), decimals(), totalSupply()",
    "no_decimals": "the token does not answer decimals() (optional in ERC-20)",
    "odd_decimals": "the token's decimals() is beyond 36, more than any amount column can scale",
    "no_symbol": "the token does not answer symbol() (optional in ERC-20)",
    "bytes32_symbol": "the token's symbol() is a bytes32, not a string (MKR-style); read as text",
    "oracle_reverts": "the market's oracle reverts, runs out of gas or answers no price",
    "oracle_zero": "the market's oracle answers a price of zero",
    "oracle_overflow": "the market's oracle answers a price so large that a position's collateral value overflows "
    "(past 2^256 in the protocol's own health check, which then reverts, or past the 38 digits a HUGEINT holds): "
    "that value and the wallet's health are left unknown",
    "no_oracle": "the market has no oracle (address zero): nothing can be borrowed against its collateral",
    "oracle_deviates": "the market's oracle prices the collateral 10 % or more off the tokens' own USD prices (another "
    "pair's oracle, one scaled for other decimals, or a depeg): the protocol's figures follow the oracle",
    "no_irm": "the market has no interest rate model (address zero): its debt bears no interest",
    "irm_reverts": "the market's interest rate model reverts or answers nothing",
    "irm_overflow": "the market's interest rate model answers a rate at which Morpho's accrual overflows: the market "
    "is frozen (every call that accrues reverts), its interest since the last update unknown",
    "no_usd_price": "no USD price for the market: no USD source configured, or none prices any of its tokens",
    "amount_overflow": "amounts past the 38 digits a HUGEINT holds: a Morpho market's shares or totals (Morpho keeps "
    "them in uint128: its raw state is not stored, its positions are where their own amounts fit), an Aave balance "
    "(that position is not stored, its wallet's health is left out)",
    "auctions_unread": "a Maker ilk's Clipper does not answer list() or sales(): its running auctions are unknown",
    "stale_usd_price": "a token's USD feed last answered longer ago than usd_feed_max_age at the block read (its "
    "price is used, as the chain serves it)",
}
#: Token decimals the amount columns can scale (10**36 is the largest power of ten the health engine tabulates).
MAX_DECIMALS = 36

#: Columns of a `data_quality` frame as an adapter returns it (the job's `keyed` columns come on top).
DATA_QUALITY_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.Utf8(),
    "subject": pl.Utf8(),
    "kind": pl.Utf8(),
    "detail": pl.Utf8(),
    "unknown": pl.Utf8(),
}


@dataclass(frozen=True)
class Issue:
    """One odd contract as one market meets it."""

    market: str  #: the risk-isolated market it affects (as in `positions`)
    subject: str  #: the odd contract, lowercase hex
    kind: str  #: a key of KINDS
    detail: str  #: one line for people: what was asked and what came back
    unknown: str | None  #: what was left unknown because of it (NULL: nothing, the figures are whole)


def data_quality_frame(issues: Sequence[Issue], protocol: str, chain_id: int, source: str, block: int) -> pl.DataFrame:
    """The `data_quality` rows of one snapshot, one per (market, subject, kind), in a fixed order."""
    unique = sorted(
        {(i.market, i.subject, i.kind): i for i in issues}.values(), key=lambda i: (i.market, i.subject, i.kind)
    )
    rows = [
        {"market": i.market, "subject": i.subject, "kind": i.kind, "detail": i.detail, "unknown": i.unknown}
        for i in unique
    ]
    return pl.DataFrame(rows, schema=DATA_QUALITY_SCHEMA).with_columns(
        pl.lit(protocol).alias("protocol"),
        pl.lit(chain_id, pl.Int64).alias("chain_id"),
        pl.lit(source).alias("source"),
        pl.lit(block, pl.Int64).alias("block_number"),
    )


@dataclass(frozen=True)
class Problem:
    """A contract's problem before it is tied to a market (what `Issue` needs besides the market)."""

    kind: str  #: a key of KINDS
    detail: str  #: one line
    unknown: str | None  #: what it leaves unknown
    subject: str | None = None  #: the odd contract, when it is not the token the problem is found on


@dataclass(frozen=True)
class TokenInfo:
    """An ERC-20's metadata as the token answers it at the block; None where it does not."""

    address: str  #: lowercase hex
    symbol: str | None  #: symbol(), a string or a bytes32 read as text
    decimals: int | None  #: decimals(), when it answers one the amount columns can scale
    problems: tuple[Problem, ...]  #: what is odd about it

    @property
    def label(self) -> str:
        """Its symbol, else its shortened address: how people see it."""
        return self.symbol or self.address[:10]


def decode_symbol(raw: str | None) -> tuple[str | None, bool]:
    """(symbol, was it a bytes32) of a symbol() answer: an ABI string, else one 32-byte word of text (MKR-style
    tokens), trailing zero bytes dropped; (None, False) for a revert or an answer that is neither."""
    if not raw or raw == "0x":
        return None, False
    with contextlib.suppress(*DECODE_ERRORS):
        text = str(ERC20.decode("symbol", raw)[0]).strip("\x00").strip()
        if text:
            return text, False
    body = raw[2:]
    if len(body) == 64:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            text = bytes.fromhex(body).rstrip(b"\x00").decode("utf-8").strip()
            if text and text.isprintable():
                return text, True
    return None, False


def decode_uint(abi: Abi, fn: str, raw: str | None) -> int | None:
    """One uint answer of `fn` decoded by `abi`; None for a revert, an empty or an undecodable answer (one odd
    contract's answer must not sink a snapshot)."""
    if raw in (None, "0x"):
        return None
    try:
        return int(abi.decode(fn, raw)[0])
    except DECODE_ERRORS:
        return None


def decode_decimals(raw: str | None) -> int | None:
    """decimals() as an integer when it is one word; None for a revert or an empty or short answer."""
    if not isinstance(raw, str) or len(raw) < 66:
        return None
    return int(raw[2:66], 16)


#: Addresses below this are precompiles or reserved for them: some answer any call with data though they hold no code.
PRECOMPILES = 0x10000


def code_where_unanswered(
    rpc: RpcClient, contracts: Sequence[str], answered: Sequence[bool], tag: str
) -> Callable[[str], bool]:
    """Whether each of `contracts` has code at `tag`, asked (eth_getCode, in one batch) only of those whose calls gave
    no answer (`answered`, one per contract) and of precompile addresses: a call to an address without code answers
    nothing, so an answer says the code is there. A snapshot of a thousand markets would otherwise ask thousands of
    eth_getCode calls each run to tell a revert from a self-destructed contract it does not meet."""
    asked = sorted({c for c, a in zip(contracts, answered, strict=True) if not a or int(c, 16) < PRECOMPILES})
    found = rpc.batch_each([("eth_getCode", [c, tag]) for c in asked]) if asked else []
    codes = dict(zip(asked, found, strict=True))
    return lambda contract: codes.get(contract, "0x1") not in (None, "0x", "0x0")


def read_token_info(rpc: RpcClient, addresses: Sequence[str], tag: str) -> dict[str, TokenInfo]:
    """Each token's symbol(), decimals() and totalSupply() at block `tag`, in one batch that no revert can sink, and its
    code where none of them answers; what is missing or odd becomes a Problem. totalSupply() tells a token that lacks
    the optional metadata (it still answers) from one whose every call reverts."""
    return token_infos(rpc, addresses, rpc.batch_each(token_info_calls(addresses, tag)), tag)


#: What read_token_info asks of each token, in this order.
TOKEN_INFO_FUNCTIONS = ("symbol", "decimals", "totalSupply")


def token_info_calls(addresses: Sequence[str], tag: str) -> list[tuple[str, list[Any]]]:
    """read_token_info's calls, for a caller that sends them in a batch with others (batch_each: none may sink it)."""
    return [eth_call(address, ERC20, fn, block=tag) for address in addresses for fn in TOKEN_INFO_FUNCTIONS]


def token_infos(rpc: RpcClient, addresses: Sequence[str], raw: Sequence[Any], tag: str) -> dict[str, TokenInfo]:
    """read_token_info from the answers to token_info_calls(addresses, tag) (None for a refused call), asking the code
    of the tokens none of whose calls answered."""
    per = len(TOKEN_INFO_FUNCTIONS)
    # (symbol, was it bytes32, decimals, totalSupply) of each token, each None where its call gave nothing.
    decoded = [
        (*decode_symbol(s), decode_decimals(d), decode_decimals(t))
        for s, d, t in (raw[per * i : per * i + per] for i in range(len(addresses)))
    ]
    answered = [
        symbol is not None or decimals is not None or supply is not None for symbol, _, decimals, supply in decoded
    ]
    has_code = code_where_unanswered(rpc, addresses, answered, tag)
    found = {}
    for address, (symbol, bytes32, decimals, supply) in zip(addresses, decoded, strict=True):
        if not has_code(address):
            problem = Problem(
                "no_code",
                f"no contract at {address} (self-destructed?)",
                "symbol, decimals and so its USD price per token",
            )
            found[address] = TokenInfo(address, None, None, (problem,))
            continue
        problems: list[Problem] = []
        if symbol is None and decimals is None and supply is None:
            problems.append(
                Problem(
                    "token_reverts",
                    "symbol(), decimals() and totalSupply() all revert",
                    "symbol, decimals and so its USD price per token",
                )
            )
        else:
            if decimals is None:
                problems.append(
                    Problem(
                        "no_decimals",
                        "decimals() reverts or answers nothing",
                        "decimals, and so its USD price per token",
                    )
                )
            elif decimals > MAX_DECIMALS:
                problems.append(
                    Problem(
                        "odd_decimals", f"decimals() answers {decimals}", "decimals, and so its USD price per token"
                    )
                )
                decimals = None
            if symbol is None:
                problems.append(
                    Problem("no_symbol", "symbol() reverts or answers no text (none, empty, or not UTF-8)", "symbol")
                )
            elif bytes32:
                problems.append(Problem("bytes32_symbol", f"symbol() is bytes32, read as {symbol!r}", None))
        found[address] = TokenInfo(address, symbol, decimals, tuple(problems))
    return found
