"""A market's loan token in USD from its own oracle's quote feeds, for Morpho Blue markets no configured USD source
prices (a chain without an Aave V3 oracle, a long-tail loan token).

Most Morpho Blue markets are priced by a MorphoChainlinkOracleV2 (morpho-org/morpho-blue-oracles,
src/morpho-chainlink/MorphoChainlinkOracleV2.sol; its first ChainlinkOracle, src/ChainlinkOracle.sol, the same without
a quote vault): price() = SCALE_FACTOR x base side / quote side, where the quote
side is QUOTE_VAULT's assets for a sample of shares times QUOTE_FEED_1's and QUOTE_FEED_2's answers (a zero address
counting 1). The quote side is the loan token's price in the currency both sides meet in, so where the loan token is
no vault (QUOTE_VAULT zero) and the quote feeds chain to USD by their `description()`s ("USDC / USD", or "WBTC / BTC"
then "BTC / USD"), the product of their answers over 10^decimals is the loan token's USD price, the very one the
market's liquidations use. Anything else leaves the price unknown: another oracle (its getters revert), a quote vault
(its conversion would need the vault's share and asset decimals), a quote side ending in another currency, feeds whose
descriptions do not chain, an answer of zero or less. A quote feed whose answer is older than the deployment's
`usd_feed_max_age` names the token `stale_usd_price`, as a configured feed does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.protocols.quality import DECODE_ERRORS, MAX_DECIMALS, Problem
from chainrisk.protocols.usd import Feed, FeedRead, TokenUsd, UsdSource, read_feeds, stale_problem
from chainrisk.rpc import RpcClient
from chainrisk.units import ZERO_ADDRESS

ORACLE_V2 = load_abi("morpho-blue", "IMorphoChainlinkOracleV2")
#: How a stored USD price read this way names its source (`loan_usd_source`): "oracle quote feed 0x<feed> of 0x<oracle>
#: (USDC / USD)", the feeds joined by " x " when there are two.
ORACLE_FEED_SOURCE = "oracle quote feed"
#: QUOTE_VAULT, and VAULT: Morpho's first ChainlinkOracle (src/ChainlinkOracle.sol) has a base vault only (`VAULT`)
#: and no QUOTE_VAULT getter, so its quote side is its feeds alone.
_QUOTE_GETTERS = ("QUOTE_VAULT", "VAULT", "QUOTE_FEED_1", "QUOTE_FEED_2")


def loan_usd_from_oracles(
    rpc: RpcClient, oracles: Sequence[tuple[str, str]], tag: str, timestamp: int, usd: UsdSource
) -> dict[str, TokenUsd]:
    """USD per whole loan token for each (oracle, loan token) pair whose oracle's quote side prices it in USD, by
    oracle address (lowercase hex); pairs it does not price are left out. Two batches: the oracles' quote getters,
    then each quote feed's description, decimals and latest round (`batch_each`: a revert is an unknown, never a
    failed read)."""
    if not oracles:
        return {}
    raw = iter(rpc.batch_each([eth_call(o, ORACLE_V2, g, block=tag) for o, _ in oracles for g in _QUOTE_GETTERS]))
    chains: dict[str, tuple[str, list[str]]] = {}
    for oracle, token in oracles:
        quote_vault, base_vault, first, second = (_address(next(raw), getter) for getter in _QUOTE_GETTERS)
        no_quote_vault = quote_vault == ZERO_ADDRESS or (quote_vault is None and base_vault is not None)
        if no_quote_vault and first not in (None, ZERO_ADDRESS) and second is not None:
            chains[oracle] = (token, [first] + ([second] if second != ZERO_ADDRESS else []))
    read = read_feeds(rpc, sorted({feed for _, path in chains.values() for feed in path}), tag)
    found = {}
    for oracle, (token, path) in chains.items():
        priced = _price(oracle, token, path, read, timestamp, usd.max_feed_age)
        if priced is not None:
            found[oracle] = priced
    return found


def _price(
    oracle: str, token: str, path: list[str], read: Mapping[str, FeedRead], timestamp: int, max_age: int
) -> TokenUsd | None:
    """The product of the path's feed answers when their descriptions chain to USD and each answers a positive price."""
    pairs = []
    usd = 1.0
    stale: Problem | None = None
    for feed in path:
        pair, decimals, answer = read[feed]
        if pair is None or decimals is None or decimals > MAX_DECIMALS or answer is None or answer[0] <= 0:
            return None
        pairs.append(pair)
        usd *= answer[0] / 10**decimals
        stale = stale or stale_problem(Feed(token, feed, decimals), timestamp - answer[1], max_age)
    linked = all(earlier[1] == later[0] for earlier, later in pairwise(pairs))
    if not linked or pairs[-1][1] != "USD":
        return None
    shown = " x ".join(f"{b} / {q}" for b, q in pairs)
    source = f"{ORACLE_FEED_SOURCE} {' x '.join(path)} of {oracle} ({shown})"
    return TokenUsd(usd, stale, source)


def _address(raw: Any, getter: str) -> str | None:
    """An address getter's answer, lowercase hex; None for a revert or an answer that is not one address."""
    if raw in (None, "0x"):
        return None
    try:
        (value,) = ORACLE_V2.decode(getter, raw)
    except DECODE_ERRORS:
        return None
    return str(value).lower()
