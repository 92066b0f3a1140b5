"""Reads a Compound V3 Comet (proxy or bare market) at one pinned block through its public interface: the market's
configuration, totals, rates and prices, then every account's `userBasic` and entered `userCollateral`, in
JSON-RPC batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chainrisk.abi import eth_call, load_abi
from chainrisk.errors import UserError
from chainrisk.protocols.compound_v3.constants import BASE_INDEX_SCALE, EXTENDED_ASSETS_SHIFT
from chainrisk.protocols.compound_v3.maths import (
    Indices,
    RateModel,
    Totals,
    accrued_interest_indices,
    borrow_rate,
    reserves,
    supply_rate,
    utilization,
)
from chainrisk.protocols.quality import (
    MAX_DECIMALS,
    TOKEN_INFO_FUNCTIONS,
    Issue,
    Problem,
    decode_decimals,
    token_info_calls,
    token_infos,
)
from chainrisk.protocols.usd import Feed, UsdSource, read_feeds, stale_problem, unpriced, usd_source, usd_source_calls
from chainrisk.rpc import RpcClient, RpcError
from chainrisk.units import HUGEINT_LIMIT, ZERO_ADDRESS

COMET = load_abi("compound-v3", "IComet")
ERC20 = load_abi("erc20", "IERC20Detailed")
#: What a contract that is not a Comet does when asked Comet's questions: revert, or answer undecodable bytes.
NOT_A_COMET = (RpcError, ValueError, TypeError, OverflowError)  # chainrisk.abi.DecodingError is a ValueError
#: Token problems that leave its symbol unknown; Comet's own scale stands in for decimals a token does not answer.
SYMBOL_LOST = ("no_symbol", "token_reverts", "no_code")
#: CometWithExtendedAssetList's limit (userBasic keeps 16 + 8 entered-asset bits).
MAX_ASSETS = 24
#: Comet's rate model parameters, in the order RateModel takes them.
RATE_GETTERS = (
    "supplyKink",
    "supplyPerSecondInterestRateSlopeLow",
    "supplyPerSecondInterestRateSlopeHigh",
    "supplyPerSecondInterestRateBase",
    "borrowKink",
    "borrowPerSecondInterestRateSlopeLow",
    "borrowPerSecondInterestRateSlopeHigh",
    "borrowPerSecondInterestRateBase",
)
#: One-answer getters read with the totals.
MARKET_GETTERS = (
    "baseToken",
    "baseTokenPriceFeed",
    "baseScale",
    "numAssets",
    "totalsBasic",
    "getUtilization",
    "storeFrontPriceFactor",
    "targetReserves",
    "getReserves",
    "baseBorrowMin",
    *RATE_GETTERS,
)


@dataclass(frozen=True)
class Deployment:
    comet: str  #: the market (proxy or bare Comet), lowercase hex
    usd: UsdSource = field(default_factory=UsdSource)  #: the configured USD oracle and feeds (chainrisk.protocols.usd)


@dataclass(frozen=True)
class Token:
    address: str  #: lowercase hex
    symbol: str  #: ERC-20 symbol (address prefix when the token has none)
    decimals: int  #: ERC-20 decimals
    usd: float | None  #: USD per whole token from the USD oracle, when it knows the token
    problems: tuple[Problem, ...] = ()  #: what is odd about it (chainrisk.protocols.quality); Comet's scale stands in
    usd_source: str | None = None  #: where `usd` was read (chainrisk.protocols.usd.TokenUsd.source)


@dataclass(frozen=True)
class Asset:
    """getAssetInfo(i) with what the snapshot reads about the asset."""

    offset: int  #: index in the market's asset list (its bit in assetsIn)
    token: Token  #: the collateral token
    price_feed: str  #: the feed Comet prices it with
    scale: int  #: 10^decimals
    borrow_collateral_factor: int  #: 1e18 = 1
    liquidate_collateral_factor: int  #: 1e18 = 1
    liquidation_factor: int  #: 1e18 = 1
    supply_cap: int  #: token units
    #: getPrice(priceFeed), 8 decimals, exact (a price of 38 digits or more too: stored NULL, feed_issues); None
    #: when the feed reverts or answers <= 0
    price: int | None
    total_supply: int  #: totalsCollateral(asset).totalSupplyAsset
    reserves: int | None  #: getCollateralReserves(asset): collateral the protocol holds for sale


@dataclass(frozen=True)
class Market:
    comet: str  #: the indexed contract
    base: Token  #: base token
    base_price_feed: str  #: baseTokenPriceFeed
    base_price: int | None  #: getPrice(baseTokenPriceFeed), exact; None when the feed reverts
    base_scale: int  #: baseScale
    totals: Totals  #: totalsBasic() as stored
    model: RateModel  #: the kinked rate model's per-second parameters
    utilization: int  #: getUtilization() at the stored indices (the rate the accrual uses)
    supply_rate: int  #: getSupplyRate(utilization), per second
    borrow_rate: int  #: getBorrowRate(utilization), per second
    accrued: Indices  #: indices accrued to the snapshot's timestamp (Comet.accruedInterestIndices)
    store_front_price_factor: int  #: share of the liquidation discount passed to collateral buyers
    target_reserves: int  #: reserves above which collateral is not sold
    reserves: int  #: getReserves() at the block: signed, base units
    base_borrow_min: int  #: smallest borrow, base units
    assets: list[Asset]  #: collateral assets in offset order
    usd_per_price_unit: float | None  #: USD per unit of Comet's prices (1e-8 of its price currency)
    #: the base token's balanceOf(comet) where maths.reserves gives from it exactly getReserves() (Comet.sol's
    #: formula): the reserves then follow for any block time while the state stands; None otherwise
    base_balance: int | None = None
    #: how usd_per_price_unit was found: the token whose USD price anchors Comet's prices, and where that price was
    #: read ("base USDC: usd oracle 0x…"); None without one
    usd_route: str | None = None


@dataclass(frozen=True)
class Account:
    wallet: str  #: lowercase hex
    principal: int  #: userBasic.principal: signed, positive supply, negative borrow
    base_tracking_index: int  #: userBasic.baseTrackingIndex
    base_tracking_accrued: int  #: userBasic.baseTrackingAccrued
    assets_in: int  #: entered assets, one bit per offset (assetsIn, then _reserved's 8 bits above 16)
    collateral: dict[str, int]  #: asset -> userCollateral(wallet, asset).balance, for entered assets


def _decode(fn: str, raw: Any) -> tuple[Any, ...]:
    return COMET.decode(fn, raw)


def discover(rpc: RpcClient, address: str, block: int, usd_options: Mapping[str, str] | None = None) -> Deployment:
    """Checks the contract answers as a Comet (its base token, scale, asset count and totals, with indices at or
    above their starting value); reads the USD oracle's unit and the USD feeds' decimals (chainrisk.protocols.usd)."""
    tag = hex(block)
    usd_calls = usd_source_calls(usd_options or {}, tag)
    try:
        probes = ("baseToken", "baseTokenPriceFeed", "baseScale", "numAssets", "totalsBasic")
        probe_calls = [eth_call(address, COMET, fn, block=tag) for fn in probes]
        # The USD sources' discovery rides with the probes; a probe refused is asked again, to fail as it does.
        raw, usd_answers = rpc.batch_with(probe_calls, usd_calls)
        _decode("baseToken", raw[0])
        _decode("baseTokenPriceFeed", raw[1])
        scale = _decode("baseScale", raw[2])[0]
        count = _decode("numAssets", raw[3])[0]
        totals = Totals(*_decode("totalsBasic", raw[4])[0])
        if scale not in {10**d for d in range(6, 19)} or count > MAX_ASSETS:
            raise ValueError("baseScale or numAssets out of Comet's range")
        if min(totals.base_supply_index, totals.base_borrow_index) < BASE_INDEX_SCALE or not totals.last_accrual_time:
            raise ValueError("totalsBasic is not an initialised Comet's")
    except NOT_A_COMET as exc:
        raise UserError(
            f"{address} is not a Compound V3 Comet ({type(exc).__name__}); check --address (the market's proxy, "
            "e.g. cUSDCv3), or give --protocol for the contract it is"
        ) from None
    return Deployment(address.lower(), usd_source(rpc, usd_options or {}, tag, usd_answers))


def _price(raw: Any) -> int | None:
    """getPrice's answer, or None where the feed reverts (Comet reverts BadPrice on a non-positive answer)."""
    return int(_decode("getPrice", raw)[0]) if raw not in (None, "0x") else None


def token_calls(deployment: Deployment, addresses: Sequence[str], tag: str) -> list[tuple[str, list[Any]]]:
    """What `read_tokens` reads of `addresses` (token_info_calls, then the USD source's calls), for a caller that sends
    them with other calls in one `batch_each`."""
    return [*token_info_calls(addresses, tag), *deployment.usd.calls(addresses, tag)]


def read_tokens(
    rpc: RpcClient,
    deployment: Deployment,
    addresses: Sequence[str],
    block: int,
    scales: dict[str, int],
    timestamp: int,
    answers: Sequence[Any],
) -> dict[str, Token]:
    """Symbol, decimals and (with a USD feed or oracle) USD price of each token, read as far as the token answers
    (chainrisk.protocols.quality.token_infos), from the answers to `token_calls`. Decimals a token does not answer come
    from Comet's own `scales` (10^decimals, which Comet's constructor checked against the token's decimals() when it
    listed it). A USD feed's answer older than the source's max age at `timestamp` is a problem of the token
    (`stale_usd_price`)."""
    tag = hex(block)
    width = len(TOKEN_INFO_FUNCTIONS) * len(addresses)
    infos = token_infos(rpc, addresses, answers[:width], tag)
    prices = deployment.usd.prices(addresses, answers[width:], timestamp)
    tokens = {}
    for token, usd in zip(addresses, prices, strict=True):
        info = infos[token]
        decimals = info.decimals if info.decimals is not None else len(str(scales[token])) - 1
        problems = tuple(replace(p, unknown="symbol" if p.kind in SYMBOL_LOST else None) for p in info.problems)
        tokens[token] = Token(token, info.label, decimals, usd.usd, problems + usd.problems, usd.source)
    return tokens


def read_market(rpc: RpcClient, deployment: Deployment, block: int, timestamp: int) -> Market:
    """The market at `block`, with its indices accrued to `timestamp`. The utilization and rates are the port's
    (Comet.getUtilization, getSupplyRate, getBorrowRate over the stored totals and the public rate parameters);
    the chain's own answers are read in the same batches and must agree, or this is not the model we mirror."""
    tag, comet = hex(block), deployment.comet
    raw = rpc.batch([eth_call(comet, COMET, fn, block=tag) for fn in MARKET_GETTERS])
    got = {fn: _decode(fn, r)[0] for fn, r in zip(MARKET_GETTERS, raw, strict=True)}
    totals = Totals(*got["totalsBasic"])
    model = RateModel(*(int(got[fn]) for fn in RATE_GETTERS))
    u = utilization(totals)
    count = int(got["numAssets"])
    rate_views = ("getSupplyRate", "getBorrowRate")
    raw = rpc.batch(
        [eth_call(comet, COMET, "getAssetInfo", i, block=tag) for i in range(count)]
        + [eth_call(comet, COMET, fn, u, block=tag) for fn in rate_views]
    )
    infos = [_decode("getAssetInfo", r)[0] for r in raw[:count]]
    chain = [
        int(got["getUtilization"]),
        *(int(_decode(fn, r)[0]) for fn, r in zip(rate_views, raw[count:], strict=True)),
    ]
    ours = [u, supply_rate(model, u), borrow_rate(model, u)]
    if chain != ours:
        raise UserError(
            f"Comet {comet} answers utilization and rates {chain} where Comet.sol's kinked model gives {ours}; "
            "chainrisk cannot accrue this market's interest exactly"
        )
    base_feed = str(got["baseTokenPriceFeed"]).lower()
    base_token = str(got["baseToken"]).lower()
    addresses = [base_token, *(str(i[1]).lower() for i in infos)]
    # Feeds may revert and tokens may be odd: these answers are optional (None), the market is read regardless. The
    # tokens' symbols, decimals and USD prices come in the same round trip.
    market_calls = (
        [eth_call(comet, COMET, "getPrice", feed, block=tag) for feed in (base_feed, *(i[2] for i in infos))]
        + [eth_call(comet, COMET, "totalsCollateral", i[1], block=tag) for i in infos]
        + [eth_call(comet, COMET, "getCollateralReserves", i[1], block=tag) for i in infos]
        + [eth_call(base_token, ERC20, "balanceOf", comet, block=tag)]
    )
    answers = rpc.batch_each([*market_calls, *token_calls(deployment, addresses, tag)])
    optional = answers[: len(market_calls)]
    prices = [_price(r) for r in optional[: count + 1]]
    scales = {base_token: int(got["baseScale"])} | {str(i[1]).lower(): int(i[3]) for i in infos}
    tokens = read_tokens(rpc, deployment, addresses, block, scales, timestamp, answers[len(market_calls) :])
    assets = []
    for k, (offset, asset, feed, scale, borrow_cf, liquidate_cf, liquidation_factor, cap) in enumerate(infos):
        total_raw, reserves_raw = optional[count + 1 + k], optional[2 * count + 1 + k]
        assets.append(
            Asset(
                int(offset),
                tokens[str(asset).lower()],
                str(feed).lower(),
                int(scale),
                int(borrow_cf),
                int(liquidate_cf),
                int(liquidation_factor),
                int(cap),
                prices[k + 1],
                int(_decode("totalsCollateral", total_raw)[0]) if total_raw not in (None, "0x") else 0,
                int(_decode("getCollateralReserves", reserves_raw)[0]) if reserves_raw not in (None, "0x") else None,
            )
        )
    if _usd_anchor(tokens[base_token], prices[0], assets) is None:
        tokens[base_token] = _priced_by_own_feed(
            rpc, tokens[base_token], base_feed, prices[0], tag, timestamp, deployment
        )
    base = tokens[base_token]
    accrued = accrued_interest_indices(totals, model, timestamp)
    balance = decode_decimals(optional[-1])  # one uint256 word; None where the token's balanceOf fails
    if balance is not None and reserves(balance, totals, accrued) != int(got["getReserves"]):
        balance = None  # another formula: the reserves are stored as read
    return Market(
        comet=comet,
        base=base,
        base_price_feed=base_feed,
        base_price=prices[0],
        base_scale=int(got["baseScale"]),
        totals=totals,
        model=model,
        utilization=u,
        supply_rate=ours[1],
        borrow_rate=ours[2],
        accrued=accrued,
        store_front_price_factor=int(got["storeFrontPriceFactor"]),
        target_reserves=int(got["targetReserves"]),
        reserves=int(got["getReserves"]),
        base_borrow_min=int(got["baseBorrowMin"]),
        assets=assets,
        usd_per_price_unit=usd_per_price_unit(base, prices[0], assets),
        usd_route=usd_route(base, prices[0], assets),
        base_balance=balance,
    )


def token_issues(market: Market, deployment: Deployment) -> list[Issue]:
    """The market's odd tokens (its base and collateral assets) and price feeds as `data_quality` issues of the
    Comet, and the lack of a USD price (`no_usd_price`) when no USD source is configured or they price none of the
    market's tokens."""
    roles = [("base", market.base), *(("collateral", a.token) for a in market.assets)]
    issues = [
        Issue(market.comet, p.subject or t.address, p.kind, f"{role} {t.symbol}: {p.detail}", p.unknown)
        for role, t in roles
        for p in t.problems
    ]
    issues += feed_issues(market)
    if market.usd_per_price_unit is None:
        detail = unpriced(deployment.usd, "this Comet", "it", f"base {market.base.symbol} nor any collateral")
        detail += (
            f"; nor does its base price feed {market.base_price_feed} give a USD price (its description() names "
            "another currency, or it does not answer)"
        )
        unknown = "USD figures (health exact, amounts in token units)"
        issues.append(Issue(market.comet, deployment.usd.oracle or ZERO_ADDRESS, "no_usd_price", detail, unknown))
    return issues


def feed_issues(market: Market) -> list[Issue]:
    """The price feeds Comet cannot price with: one that reverts or answers a price <= 0 (getPrice reverts BadPrice:
    `oracle_reverts`), and one whose price has 38 digits or more (`oracle_overflow`: no HUGEINT holds it; the values
    of its holders are judged one by one, normalise.oversized_wallets)."""
    feeds = [("base", market.base, market.base_price_feed, market.base_price)]
    feeds += [("collateral", a.token, a.price_feed, a.price) for a in market.assets]
    issues = []
    for role, token, feed, price in feeds:
        if price is None:
            detail = f"{role} {token.symbol}: getPrice({feed}) reverts (the feed reverts or answers a price <= 0)"
            kind = "oracle_reverts"
        elif price >= HUGEINT_LIMIT:
            detail = f"{role} {token.symbol}: getPrice({feed}) answers {price}, past the 38 digits a HUGEINT holds"
            kind = "oracle_overflow"
        else:
            continue
        unknown = "every wallet's health" if role == "base" else f"the health of the wallets holding {token.symbol}"
        issues.append(Issue(market.comet, feed, kind, detail, unknown))
    return issues


#: How a base token priced by the Comet's own feed names its source: "comet price feed 0x<feed> (USDC / USD)".
COMET_FEED_SOURCE = "comet price feed"


def _priced_by_own_feed(
    rpc: RpcClient, base: Token, feed: str, price: int | None, tag: str, timestamp: int, deployment: Deployment
) -> Token:
    """The base token in USD as the Comet itself prices it, when no configured source prices any of its tokens and its
    base price feed (`baseTokenPriceFeed`) quotes in USD by its `description()` ("USDC / USD"): Comet's price over
    10^decimals of that feed (Comet.sol requires its feeds' decimals to be PRICE_FEED_DECIMALS, 8). Every Comet price is
    in its base feed's currency, so that one token converts them all (usd_per_price_unit). A feed in another currency
    (the WETH Comets' are in ETH), or one that does not answer, leaves the base unpriced; an answer older than the
    deployment's usd_feed_max_age is named `stale_usd_price`, as for a configured feed."""
    if not price:
        return base
    pair, decimals, answer = read_feeds(rpc, [feed], tag)[feed]
    if pair is None or pair[1] != "USD" or decimals is None or decimals > MAX_DECIMALS:
        return base
    stale = (
        None
        if answer is None
        else stale_problem(Feed(base.address, feed, decimals), timestamp - answer[1], deployment.usd.max_feed_age)
    )
    source = f"{COMET_FEED_SOURCE} {feed} ({pair[0]} / {pair[1]})"
    return replace(
        base, usd=price / 10**decimals, usd_source=source, problems=base.problems + ((stale,) if stale else ())
    )


def _usd_anchor(base: Token, base_price: int | None, assets: Sequence[Asset]) -> tuple[str, Token, float, int] | None:
    """(role, token, its USD price, its Comet price) of the first token both Comet and the USD sources price: the
    base, else a collateral in offset order; None when there is none."""
    for role, token, price in (("base", base, base_price), *(("collateral", a.token, a.price) for a in assets)):
        if token.usd is not None and price:
            return role, token, token.usd, price
    return None


def usd_per_price_unit(base: Token, base_price: int | None, assets: Sequence[Asset]) -> float | None:
    """USD per unit of Comet's prices, from the first token both Comet and the USD oracle price: the base token,
    else a collateral. Comet's feeds quote one currency (USD for most markets, ETH for the WETH ones), 8 decimals:
    a token's USD price over its Comet price converts every other Comet price."""
    anchor = _usd_anchor(base, base_price, assets)
    return None if anchor is None else float(anchor[2] / anchor[3])


def usd_route(base: Token, base_price: int | None, assets: Sequence[Asset]) -> str | None:
    """Which token's USD price converts Comet's prices (usd_per_price_unit's anchor) and where it was read."""
    anchor = _usd_anchor(base, base_price, assets)
    if anchor is None:
        return None
    role, token, _, _ = anchor
    return f"{role} {token.symbol}: {token.usd_source or 'source not recorded'}"


def read_accounts(
    rpc: RpcClient,
    comet: str,
    assets: Sequence[Asset],
    wallets: Sequence[str],
    block: int,
    known: Mapping[str, Mapping[str, int]] | None = None,
) -> list[Account]:
    """userBasic of every wallet, then userCollateral only for the assets each has entered: Comet sets an asset's
    bit exactly when a balance leaves zero and clears it when it returns there, so the others hold nothing.
    `known`: the collateral balances (asset -> balance) of wallets no event touched since an earlier snapshot (the
    adapter's _unchanged_collateral); an entered asset's balance found there is taken as it is, not read again.
    userBasic is always read: its tracking fields move without an event (Comet.accrueAccount)."""
    tag = hex(block)
    calls = [eth_call(comet, COMET, "userBasic", w, block=tag) for w in wallets]
    basics = [_decode("userBasic", r) for r in rpc.batch(calls)]
    held: list[tuple[str, Asset, int | None]] = []  # each entered asset, its balance when known
    for wallet, (_, _, _, assets_in, reserved) in zip(wallets, basics, strict=True):
        bits = int(assets_in) | int(reserved) << EXTENDED_ASSETS_SHIFT
        kept = known.get(wallet) if known is not None else None
        held.extend(
            (wallet, a, kept.get(a.token.address) if kept is not None else None) for a in assets if bits >> a.offset & 1
        )
    wanted = [(w, a) for w, a, balance in held if balance is None]
    raw = rpc.batch([eth_call(comet, COMET, "userCollateral", w, a.token.address, block=tag) for w, a in wanted])
    read = iter(int(_decode("userCollateral", item)[0]) for item in raw)
    balances: dict[str, dict[str, int]] = {}
    for wallet, asset, balance in held:
        balances.setdefault(wallet, {})[asset.token.address] = balance if balance is not None else next(read)
    return [
        Account(w, int(p), int(ti), int(ta), int(a_in) | int(res) << EXTENDED_ASSETS_SHIFT, balances.get(w, {}))
        for w, (p, ti, ta, a_in, res) in zip(wallets, basics, strict=True)
    ]
