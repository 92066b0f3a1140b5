"""Look-through exposure: every position resolved along the asset graph to the base assets it is ultimately a claim on.

A position in a wrapper (aToken, vault share, LST) is followed hop by hop to a base asset (one the graph does not
wrap). A vault that itself holds positions (a MetaMorpho-style vault supplying a Morpho market: the vault's address
is a wallet in `positions`) passes its holders' claims on to those positions pro rata, so the path names the market
the money finally sits in; that hop is what contagion follows when the market takes bad debt.

Counting once: positions held by intermediates (a wrapper contract, or a protocol contract such as the Morpho
singleton holding the aTokens posted on it) are not end owners' money; they are reached through the holders'
chains instead, so no collateral is counted twice. Amounts stay exact integers from chain to table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from chainrisk.assets import Link
from chainrisk.chains.graph import base_token, links_frame
from chainrisk.scoring.groups import group_expr
from chainrisk.units import HUGEINT_LIMIT

#: Exact conversion of (wrapper, amount) pairs to underlying units (graph.convert_exact bound to an RPC and block).
Converter = Callable[[list[tuple[str, int]]], dict[tuple[str, int], int]]


def rate_converter(links: dict[str, Link]) -> Converter:
    """Conversion at the links' per-token rates (no RPC): for tests and what-ifs."""

    def convert(pieces: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {(a, x): x * links[a].rate_num // links[a].rate_den for a, x in pieces}

    return convert


@dataclass
class _Piece:
    leg: int  #: index of the position leg it came from
    asset: str  #: what the piece is in now
    amount: int  #: units of `asset`
    path: list[str]  #: symbols from the held asset to here
    depth: int  #: hops taken
    claim_protocol: str | None = None  #: the protocol of the position a vault's money sits in
    claim_market: str | None = None
    hops: list[str] = field(default_factory=list)  #: link kinds taken


LEG_SCHEMA: dict[str, pl.DataType] = {
    "chain_id": pl.Int64(),
    "block_number": pl.Int64(),
    "wallet": pl.Utf8(),
    "protocol": pl.Utf8(),
    "market": pl.Utf8(),
    "role": pl.Utf8(),
    "asset": pl.Utf8(),
    "symbol": pl.Utf8(),
    "amount": pl.Int128(),
    "path": pl.List(pl.Utf8),
    "hops": pl.List(pl.Utf8),
    "depth": pl.Int32(),
    "base_asset": pl.Utf8(),
    "base_symbol": pl.Utf8(),
    "base_decimals": pl.Int32(),
    "base_amount": pl.Int128(),
    "claim_protocol": pl.Utf8(),
    "claim_market": pl.Utf8(),
}


def intermediates(positions: pl.DataFrame, links: dict[str, Link]) -> set[str]:
    """Wallets whose positions belong to someone else: wrapper contracts and the protocols' own contracts."""
    sources = set(positions["source"].drop_nulls().str.to_lowercase().to_list()) if "source" in positions else set()
    return set(links) | sources


def vault_holdings(positions: pl.DataFrame, links: dict[str, Link]) -> dict[str, list[tuple[str, str, int]]]:
    """ERC-4626 vault -> [(protocol, market, underlying units)] of the supply positions it holds itself."""
    vaults = {a: link for a, link in links.items() if link.kind == "erc4626"}
    if not vaults:
        return {}
    held = positions.filter(pl.col("wallet").is_in(list(vaults)) & (pl.col("supplied_amount") > 0))
    out: dict[str, list[tuple[str, str, int]]] = {}
    for row in held.sort("protocol", "market").iter_rows(named=True):
        if row["asset"] == vaults[row["wallet"]].underlying.address:
            out.setdefault(row["wallet"], []).append((row["protocol"], row["market"], int(row["supplied_amount"])))
    return out


def legs(positions: pl.DataFrame, links: dict[str, Link], convert: Converter) -> pl.DataFrame:
    """One row per (end owner's position leg, base asset reached): role collateral / supply / debt, the held amount,
    path of symbols, depth (hops), base asset and exact base amount, and the market a vault's claim sits in."""
    if positions.is_empty():
        return pl.DataFrame(schema=LEG_SCHEMA)
    skip = intermediates(positions, links)
    owned = positions.filter(~pl.col("wallet").is_in(list(skip)))
    long_amount = pl.max_horizontal(pl.col("supplied_amount"), pl.col("collateral_amount"))
    base_cols = ["chain_id", "block_number", "wallet", "protocol", "market", "asset", "symbol", "decimals"]
    held = pl.concat(
        [
            owned.filter(long_amount > 0).select(
                *base_cols,
                pl.when(pl.col("collateral_amount") > 0)
                .then(pl.lit("collateral"))
                .otherwise(pl.lit("supply"))
                .alias("role"),
                long_amount.cast(pl.Int128).alias("amount"),
            ),
            owned.filter(pl.col("debt_amount") > 0).select(
                *base_cols, pl.lit("debt").alias("role"), pl.col("debt_amount").cast(pl.Int128).alias("amount")
            ),
        ]
    ).sort("wallet", "protocol", "market", "role", "asset")
    holdings = vault_holdings(positions, links)
    symbols = {a: link.asset.symbol for a, link in links.items()} | {
        link.underlying.address: link.underlying.symbol for link in links.values()
    }
    decimals: dict[str, int | None] = {a: link.asset.decimals for a, link in links.items()}
    decimals |= {link.underlying.address: link.underlying.decimals for link in links.values()}
    for row in held.select("asset", "symbol", "decimals").unique().iter_rows():
        symbols.setdefault(row[0], row[1] or row[0][:10])
        # A token without decimals() (optional in ERC-20) keeps them unknown: its legs' USD stays NULL.
        decimals.setdefault(row[0], None if row[2] is None else int(row[2]))

    # Legs in anything but a non-empty wrapper end where they start: built as columns. Only the wrappers' legs are
    # followed piece by piece (at 250,000 wallets, Python objects for every leg took seconds a run).
    held = held.with_row_index("leg")
    wrapper = pl.col("asset").is_in(list(links)) & (pl.col("amount") > 0)
    symbol_of = pl.col("asset").replace_strict(symbols, return_dtype=pl.Utf8)
    direct = held.filter(~wrapper).select(
        "leg",
        pl.lit(0, dtype=pl.UInt32).alias("rank"),
        *base_cols[:5],
        "role",
        "asset",
        symbol_of.alias("symbol"),
        "amount",
        pl.concat_list(symbol_of).alias("path"),
        pl.lit([], dtype=pl.List(pl.Utf8)).alias("hops"),
        pl.lit(0, dtype=pl.Int32).alias("depth"),
        pl.col("asset").alias("base_asset"),
        symbol_of.alias("base_symbol"),
        pl.col("asset").replace_strict(decimals, default=18, return_dtype=pl.Int32).alias("base_decimals"),
        pl.col("amount").alias("base_amount"),
        pl.lit(None, dtype=pl.Utf8).alias("claim_protocol"),
        pl.lit(None, dtype=pl.Utf8).alias("claim_market"),
    )
    rows = held.filter(wrapper).to_dicts()
    pending = [_Piece(i, r["asset"], int(r["amount"]), [symbols[r["asset"]]], 0) for i, r in enumerate(rows)]
    done: list[_Piece] = []
    while pending:
        # A piece goes on while it is a non-empty wrapper; the depth bound stops a cycle of wrappers.
        follow = [p.asset in links and p.amount > 0 and p.depth < 2 * len(links) + 2 for p in pending]
        wrapped = [p for p, go in zip(pending, follow, strict=True) if go]
        done += [p for p, go in zip(pending, follow, strict=True) if not go]
        converted = convert([(p.asset, p.amount) for p in wrapped]) if wrapped else {}
        pending = []
        for p in wrapped:
            link = links[p.asset]
            under = converted[(p.asset, p.amount)]
            if abs(under) >= HUGEINT_LIMIT:  # a claim no HUGEINT holds: the piece stays the wrapper's own shares
                done.append(p)
                continue
            target = link.underlying.address
            path = [*p.path, symbols[target]]
            hops = [*p.hops, link.kind]
            splits = holdings.get(p.asset, [])
            total = link.total_assets or 0
            allocated = 0
            if splits and total > 0:
                for protocol, market, amount in splits:
                    part = under * min(amount, total) // total
                    allocated += part
                    if part:
                        pending.append(
                            _Piece(
                                p.leg, target, part, path, p.depth + 2, protocol, market, [*hops, f"{protocol} supply"]
                            )
                        )
            if under - allocated > 0:  # idle cash, or the whole claim when the vault holds no indexed position
                pending.append(
                    _Piece(p.leg, target, under - allocated, path, p.depth + 1, p.claim_protocol, p.claim_market, hops)
                )
    out = []
    for rank, p in enumerate(sorted(done, key=lambda q: (q.leg, q.path, q.claim_market or ""))):
        r = rows[p.leg]
        out.append(
            {
                "leg": r["leg"],
                "rank": rank,
                "chain_id": r["chain_id"],
                "block_number": r["block_number"],
                "wallet": r["wallet"],
                "protocol": r["protocol"],
                "market": r["market"],
                "role": r["role"],
                "asset": r["asset"],
                "symbol": symbols[r["asset"]],
                "amount": int(r["amount"]),
                "path": p.path,
                "hops": p.hops,
                "depth": p.depth,
                "base_asset": p.asset,
                "base_symbol": symbols[p.asset],
                "base_decimals": decimals.get(p.asset, 18),
                "base_amount": p.amount,
                "claim_protocol": p.claim_protocol,
                "claim_market": p.claim_market,
            }
        )
    followed = pl.DataFrame(out, schema={"leg": pl.UInt32(), "rank": pl.UInt32(), **LEG_SCHEMA})
    legs = pl.concat([direct.cast({c: t for c, t in LEG_SCHEMA.items()}), followed], how="vertical")
    return legs.sort("leg", "rank").drop("leg", "rank")


def usd_prices(positions: pl.DataFrame, links: dict[str, Link]) -> dict[str, float]:
    """USD per whole token of every asset in the positions or the graph: from the positions' own prices, and for an
    asset no position prices (stETH behind wstETH) through the graph's rates, in either direction."""
    priced = positions.filter(pl.col("price_usd").is_not_null() & (pl.col("price_usd") > 0))
    # One price per asset, the same on every run: the first protocol's (Aave's oracle before a Morpho-derived one).
    first = priced.sort("asset", "protocol", "market").group_by("asset", maintain_order=True)
    prices: dict[str, float] = dict(first.agg(pl.col("price_usd").first()).iter_rows())
    for _ in range(len(links) + 1):
        changed = False
        for address, link in links.items():
            under = link.underlying.address
            if under not in prices and address in prices and link.rate > 0:
                prices[under], changed = prices[address] / link.rate, True
            elif address not in prices and under in prices:
                prices[address], changed = prices[under] * link.rate, True
        if not changed:
            break
    return prices


def _usd(amount: str, decimals: str, price: pl.Expr) -> pl.Expr:
    return pl.col(amount).cast(pl.Float64) / pl.lit(10.0).pow(pl.col(decimals)) * price


def valued(leg_frame: pl.DataFrame, prices: dict[str, float]) -> pl.DataFrame:
    """Legs with `base_usd` at the base asset's USD price (null where none is known)."""
    price = pl.col("base_asset").replace_strict(prices, default=None, return_dtype=pl.Float64)
    return leg_frame.with_columns(_usd("base_amount", "base_decimals", price).alias("base_usd"))


def collateral_chains(leg_frame: pl.DataFrame) -> pl.DataFrame:
    """The chained legs only (depth >= 1): wallet, position, path, depth, held and base amounts."""
    return leg_frame.filter((pl.col("depth") > 0) & (pl.col("role") != "debt")).with_columns(
        pl.col("path").list.join(" → ").alias("path_text")
    )


def _exact_sum(amount: pl.Expr) -> pl.Expr:
    """`amount`'s exact sum, NULL where it could reach 38 digits: polars' Int128 sum wraps around silently past
    2^127, and a HUGEINT holds 38 digits (the doubles' sum of magnitudes bounds every partial sum)."""
    return pl.when(amount.cast(pl.Float64).abs().sum() < HUGEINT_LIMIT).then(amount.sum())


def wallet_exposure(leg_frame: pl.DataFrame) -> pl.DataFrame:
    """Per wallet and base asset: long (collateral + supply), short (debt) and net, exact and in USD."""
    is_long = pl.col("role") != "debt"
    return (
        leg_frame.group_by(
            "chain_id", "block_number", "wallet", "base_asset", "base_symbol", "base_decimals", maintain_order=True
        )
        .agg(
            _exact_sum(pl.col("base_amount").filter(is_long)).alias("long_amount"),
            _exact_sum(pl.col("base_amount").filter(~is_long)).alias("short_amount"),
            pl.col("base_usd").filter(is_long).sum().alias("long_usd"),
            pl.col("base_usd").filter(~is_long).sum().alias("short_usd"),
            pl.col("base_usd").filter(is_long & (pl.col("depth") > 0)).sum().alias("chained_usd"),
            pl.col("depth").max().alias("max_depth"),
        )
        .with_columns(
            (pl.col("long_amount") - pl.col("short_amount")).alias("net_amount"),
            (pl.col("long_usd") - pl.col("short_usd")).alias("net_usd"),
        )
        .sort("chain_id", "wallet", "base_asset")
    )


def _backed_debt(leg_frame: pl.DataFrame) -> pl.DataFrame:
    """Each (wallet, market)'s debt in USD shared among the base assets of its collateral, by their USD value.
    Groups keep the legs' order, so every float sum adds in the same order on every run."""
    keys = ["chain_id", "wallet", "protocol", "market"]
    debt = (
        leg_frame.filter(pl.col("role") == "debt")
        .group_by(keys, maintain_order=True)
        .agg(pl.col("base_usd").sum().alias("debt_usd"))
    )
    collateral = (
        leg_frame.filter(pl.col("role") == "collateral")
        .group_by(*keys, "base_asset", maintain_order=True)
        .agg(pl.col("base_usd").sum().alias("usd"))
    )
    return (
        collateral.join(debt, on=keys, how="inner", maintain_order="left")
        .with_columns((pl.col("usd") / pl.col("usd").sum().over(keys)).alias("share"))
        .with_columns((pl.col("debt_usd") * pl.col("share")).alias("backed_debt_usd"))
        .group_by("chain_id", "base_asset", maintain_order=True)
        .agg(pl.col("backed_debt_usd").sum(), pl.col("wallet").n_unique().alias("backed_borrowers"))
    )


def base_asset_exposure(
    leg_frame: pl.DataFrame, positions: pl.DataFrame, links: dict[str, Link], prices: dict[str, float]
) -> pl.DataFrame:
    """Per base asset: collateral and supply that end owners hold in it (counted once, directly and through chains),
    debt denominated in it, the debt across every protocol that its collateral backs, and — for comparison — what a
    plain sum over every position (wrappers and protocol contracts included) would have counted."""
    is_coll = pl.col("role") == "collateral"
    block = leg_frame["block_number"].max() if leg_frame.height else None
    sums = leg_frame.group_by("chain_id", "base_asset", "base_symbol", maintain_order=True).agg(
        _exact_sum(pl.col("base_amount").filter(is_coll)).alias("collateral_amount"),
        pl.col("base_usd").filter(is_coll).sum().alias("collateral_usd"),
        pl.col("base_usd").filter(is_coll & (pl.col("depth") == 0)).sum().alias("direct_collateral_usd"),
        pl.col("base_usd").filter(is_coll & (pl.col("depth") > 0)).sum().alias("chained_collateral_usd"),
        pl.col("base_usd").filter(pl.col("role") == "supply").sum().alias("supply_usd"),
        pl.col("base_usd").filter(pl.col("role") == "debt").sum().alias("debt_usd"),
        pl.col("wallet").filter(is_coll).n_unique().alias("collateral_wallets"),
        pl.col("depth").max().alias("max_depth"),
    )

    # The naive view: every position row's collateral at face value, intermediates included, each held asset
    # credited to the base it wraps at the graph's rate. The difference to collateral_usd is the double count.
    def base_of(asset: str) -> str:
        base = base_token(links, asset)
        return asset if base is None else base.address

    naive = (
        positions.filter(pl.col("collateral_amount") > 0)
        .with_columns(
            pl.col("asset").map_elements(base_of, return_dtype=pl.Utf8).alias("base_asset"),
            _usd("collateral_amount", "decimals", pl.col("price_usd")).alias("usd"),
        )
        .group_by("chain_id", "base_asset", maintain_order=True)
        .agg(pl.col("usd").sum().alias("naive_collateral_usd"))
    )
    return (
        sums.join(_backed_debt(leg_frame), on=["chain_id", "base_asset"], how="left", maintain_order="left")
        .join(naive, on=["chain_id", "base_asset"], how="left", maintain_order="left")
        .with_columns(
            pl.lit(block, pl.Int64).alias("block_number"),
            pl.col("base_asset").replace_strict(prices, default=None, return_dtype=pl.Float64).alias("price_usd"),
            pl.col("backed_debt_usd").fill_null(0.0),
            pl.col("backed_borrowers").fill_null(0).cast(pl.Int64),
            pl.col("naive_collateral_usd").fill_null(0.0),
        )
        # Clipped at 0: a wrapper's own oracle price and its base's price x rate can differ by cents, which is
        # valuation, not double counting.
        .with_columns(
            (pl.col("naive_collateral_usd") - pl.col("collateral_usd")).clip(lower_bound=0).alias("double_counted_usd")
        )
        .sort("chain_id", "collateral_usd", descending=[False, True])
    )


def wallet_lookthrough(
    leg_frame: pl.DataFrame, wallet_risk: pl.DataFrame, groups: dict[str, str] | None = None
) -> pl.DataFrame:
    """One row per wallet: its positions across protocols as one portfolio. Look-through collateral, debt and net
    worth (USD); deepest chain; loop leverage (collateral over equity within the correlated group it both posts and
    borrows, e.g. wstETH posted against WETH debt is an ETH loop); and the combined health factor the wallet would
    have if every market it uses were one cross-margined account: sum(collateral x threshold) / sum(debt)."""
    group = group_expr(pl.col("base_symbol"), groups).alias("group")
    per_group = (
        leg_frame.with_columns(group)
        .group_by("chain_id", "wallet", "group", maintain_order=True)
        .agg(
            pl.col("base_usd").filter(pl.col("role") == "collateral").sum().alias("posted"),
            pl.col("base_usd").filter(pl.col("role") == "debt").sum().alias("owed"),
        )
        .filter((pl.col("posted") > 0) & (pl.col("owed") > 0))
        .with_columns(
            pl.when(pl.col("posted") > pl.col("owed"))
            .then(pl.col("posted") / (pl.col("posted") - pl.col("owed")))
            .otherwise(None)
            .alias("leverage")
        )
        .sort("owed", descending=True, maintain_order=True)
        .group_by("chain_id", "wallet", maintain_order=True)
        .agg(pl.col("group").first().alias("loop_group"), pl.col("leverage").first().alias("loop_leverage"))
    )
    is_long = pl.col("role") != "debt"
    totals = leg_frame.group_by("chain_id", "block_number", "wallet", maintain_order=True).agg(
        pl.col("protocol").unique().sort().alias("protocols"),
        pl.struct("protocol", "market").n_unique().alias("markets"),
        pl.col("base_usd").filter(pl.col("role") == "collateral").sum().alias("collateral_usd"),
        pl.col("base_usd").filter(is_long).sum().alias("assets_usd"),
        pl.col("base_usd").filter(~is_long).sum().alias("debt_usd"),
        pl.col("base_usd").filter(is_long & (pl.col("depth") > 0)).sum().alias("chained_usd"),
        pl.col("depth").filter(is_long).max().fill_null(0).alias("max_depth"),
        pl.col("base_asset").filter(is_long).n_unique().alias("base_assets"),
    )
    risk = (
        wallet_risk.sort([c for c in ("chain_id", "wallet", "protocol", "market") if c in wallet_risk.columns])
        .group_by("chain_id", "wallet", maintain_order=True)
        .agg(
            (pl.col("collateral_usd") * pl.col("liquidation_threshold_bps") / 10_000).sum().alias("_weighted"),
            pl.col("debt_usd").sum().alias("_debt"),
            pl.col("health_factor").min().alias("worst_health_factor"),
        )
    )
    return (
        totals.join(per_group, on=["chain_id", "wallet"], how="left", maintain_order="left")
        .join(risk, on=["chain_id", "wallet"], how="left", maintain_order="left")
        .with_columns(
            (pl.col("assets_usd") - pl.col("debt_usd")).alias("net_usd"),
            pl.when(pl.col("_debt") > 0).then(pl.col("_weighted") / pl.col("_debt")).alias("combined_health_factor"),
            (pl.col("protocols").list.len() > 1).alias("cross_protocol"),
        )
        .drop("_weighted", "_debt")
        .sort("chain_id", "wallet")
    )


def chain_frames(
    positions: pl.DataFrame, links: dict[str, Link], convert: Converter, wallet_risk: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """The five chain tables for one chain's positions at one block (pure, given `convert`)."""
    chain_id, block = int(positions["chain_id"][0]), int(positions["block_number"].max())  # type: ignore[arg-type]
    prices = usd_prices(positions, links)
    leg_frame = valued(legs(positions, links, convert), prices).with_columns(
        pl.lit(block, pl.Int64).alias("block_number")
    )
    chains = collateral_chains(leg_frame).rename({"path": "path_symbols", "path_text": "path"})
    return {
        "asset_links": links_frame(links, chain_id, block),
        "collateral_chains": chains,
        "wallet_exposure": wallet_exposure(leg_frame),
        "wallet_lookthrough": wallet_lookthrough(leg_frame, wallet_risk.filter(pl.col("chain_id") == chain_id)),
        "base_asset_exposure": base_asset_exposure(leg_frame, positions, links, prices),
    }
