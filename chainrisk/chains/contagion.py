"""Contagion: a base-asset shock travelling along the asset graph and through bad debt, round by round.

Round 1 moves the shocked base prices and every price built on them: a wrapper's oracle price is its base's price
times its exchange rate, so an stETH shock reaches wstETH collateral and a WETH shock reaches aWETH posted on Morpho.
Every wallet the engine then finds liquidatable is liquidated in full; the debt its collateral cannot cover is bad
debt, which lands where the market's protocol puts it (its `bad_debt_rule`, chainrisk.protocols.adapter.BAD_DEBT_RULES):
in a market whose suppliers bear it (Morpho Blue `liquidate` lowers totalSupplyAssets) or whose reserves absorb it
first (Compound V3 `absorb`), every claim on that market loses the same fraction of what exceeds the reserves: direct
suppliers, and vaults supplying it, whose share price (convertToAssets) falls by their weighted loss. Round 2
re-prices collateral made of those shares, and so on until a round liquidates nobody new.

In a market whose bad debt is redistributed (Liquity V1), a liquidated position's debt goes first to the market's
pool (`supply_amount`: the Stability Pool), and what the pool cannot take is moved, with the matching share of the
collateral (less the liquidator's incentive), onto the market's other positions in proportion to their collateral
(Liquity does it by stake, which is collateral at the last liquidation's ratio): they carry more debt in the next
round, which may liquidate them too (the "redistribution" channel). Liquity's Recovery Mode (below a 150 % TCR) is
not modelled here: at shocked prices the rounds follow Normal Mode's MCR.

Held still, as the chain would: bad debt that stays unbacked or goes to a deficit (Aave V3) does not write down
suppliers' claims, and liquidations sell no collateral into the market here (price impact is the cascade model's
subject, chainrisk.risk.cascade). Exchange rates other than vault shares' stay at the snapshot's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from chainrisk.assets import Link
from chainrisk.chains.moves import AssetGraph
from chainrisk.scoring.health import prepare, reprice, wallet_health

#: Bad-debt rules under which a market's suppliers (and those who hold claims on them) lose what is not covered.
SOCIALISED = ("suppliers", "reserves")
#: The rule under which liquidated debt beyond the market's pool moves onto its other positions.
REDISTRIBUTED = "redistribution"
#: A run stops after this many rounds even if it has not settled (each round needs new bad debt to go on, so real
#: chains settle in a handful).
MAX_ROUNDS = 25
KEYS = ["protocol", "chain_id", "market", "wallet"]
ROUNDS_SCHEMA: dict[str, pl.DataType] = {
    "round": pl.Int32(),
    "protocol": pl.Utf8(),
    "new_liquidatable_wallets": pl.Int64(),
    "new_liquidatable_debt_usd": pl.Float64(),
    "new_bad_debt_usd": pl.Float64(),
}
WALLETS_SCHEMA: dict[str, pl.DataType] = {
    "protocol": pl.Utf8(),
    "chain_id": pl.Int64(),
    "market": pl.Utf8(),
    "wallet": pl.Utf8(),
    "round": pl.Int32(),
    "channel": pl.Utf8(),
    "health_factor_before": pl.Float64(),
    "health_factor": pl.Float64(),
    "debt_usd": pl.Float64(),
    "bad_debt_usd": pl.Float64(),
}
ASSETS_SCHEMA: dict[str, pl.DataType] = {
    "round": pl.Int32(),
    "asset": pl.Utf8(),
    "symbol": pl.Utf8(),
    "multiplier": pl.Float64(),
    "rate_factor": pl.Float64(),
}
MARKETS_SCHEMA: dict[str, pl.DataType] = {
    "round": pl.Int32(),
    "protocol": pl.Utf8(),
    "market": pl.Utf8(),
    "bad_debt_units": pl.Float64(),
    "supply_units": pl.Float64(),
    "supply_loss": pl.Float64(),
}


@dataclass(frozen=True)
class ContagionResult:
    #: round, protocol, new_liquidatable_wallets, new_liquidatable_debt_usd, new_bad_debt_usd (one row per round and
    #: protocol, with a row per round even when nobody is liquidated in a protocol)
    rounds: pl.DataFrame
    #: protocol, chain_id, market, wallet, round, channel (direct: holds a shocked base itself; chain: only through
    #: a wrapper; bad debt: through a claim on an impaired market; before shock: already under 1), health_factor_before,
    #: health_factor (when liquidated), debt_usd, bad_debt_usd
    wallets: pl.DataFrame
    #: round, asset, symbol, multiplier (price after / before), rate_factor (vault shares: exchange rate after/before)
    assets: pl.DataFrame
    #: round, protocol, market, bad_debt_units (loan token units, new), supply_units, supply_loss (cumulative fraction)
    markets: pl.DataFrame
    settled: bool  #: a round with no new liquidation was reached within MAX_ROUNDS
    #: what the run could not carry as the shock names it (a symbol whose addresses moved apart in round 1)
    notes: tuple[str, ...] = ()


def _in(pools: Mapping[tuple[str, str], float]) -> pl.Expr:
    """Whether a row's (protocol, market) is one of `pools`' markets."""
    return pl.concat_str("protocol", "market", separator="|").is_in([f"{p}|{m}" for p, m in pools])


def _redistribute(book: pl.DataFrame, new: pl.DataFrame, pools: dict[tuple[str, str], float]) -> pl.DataFrame | None:
    """The book after this round's liquidations in redistribution markets: the liquidated positions closed, the
    debt their pool cannot absorb (and the matching share of their collateral) added to the market's other positions
    pro rata to their collateral; `pools` loses what it absorbs. None when no such market liquidated anyone."""
    hit = new.filter(_in(pools)).select(KEYS).unique()
    if hit.is_empty():
        return None
    gone = book.join(hit, on=KEYS, how="semi")
    rest = book.join(hit, on=KEYS, how="anti")
    exact = pl.Decimal(38, 0)
    adds: list[pl.DataFrame] = []
    for (protocol, market), part in gone.group_by("protocol", "market", maintain_order=True):
        debt = float(part["debt_amount"].cast(pl.Float64).sum())
        absorbed = min(debt, pools[str(protocol), str(market)])
        pools[str(protocol), str(market)] -= absorbed
        share = (debt - absorbed) / debt if debt > 0 else 0.0
        others = rest.filter((pl.col("protocol") == protocol) & (pl.col("market") == market))
        # In the book's order (it is sorted): `total` sums the wallets' weights, and a float sum taken in the order a
        # parallel group_by happens to give its groups moved by an ulp from run to run.
        weight = others.group_by("wallet", maintain_order=True).agg(
            pl.col("collateral_amount").cast(pl.Float64).sum().alias("_w")
        )
        total = float(weight["_w"].sum())
        if share <= 0 or total <= 0:
            continue
        # The liquidator keeps its incentive (Liquity: 0.5 % of the collateral, a bonus of 200/199); the rest moves.
        bonus = (
            pl.col("liquidation_bonus_wad").cast(pl.Float64) / 10**18
            if "liquidation_bonus_wad" in part.columns
            else pl.col("liquidation_bonus_bps").cast(pl.Float64) / 10**4
        )
        moved = part.group_by("asset").agg(
            (pl.col("debt_amount").cast(pl.Float64).sum() * share).alias("_debt"),
            ((pl.col("collateral_amount").cast(pl.Float64) / bonus).sum() * share).alias("_coll"),
        )
        adds.append(
            others.select("protocol", "market", "wallet", "asset")
            .join(weight, on="wallet")
            .join(moved, on="asset")
            .with_columns((pl.col("_w") / total).alias("_w"))
            .select(
                "protocol",
                "market",
                "wallet",
                "asset",
                (pl.col("_debt") * pl.col("_w")).alias("_add_debt"),
                (pl.col("_coll") * pl.col("_w")).alias("_add_coll"),
            )
        )
    if not adds:
        return rest
    added = pl.concat(adds).group_by("protocol", "market", "wallet", "asset").agg(pl.all().sum())
    grown = rest.join(added, on=["protocol", "market", "wallet", "asset"], how="left", maintain_order="left")
    new_debt = pl.col("debt_amount").cast(pl.Float64) + pl.col("_add_debt").fill_null(0.0)
    new_coll = pl.col("collateral_amount").cast(pl.Float64) + pl.col("_add_coll").fill_null(0.0)
    changed = (pl.col("_add_debt").fill_null(0.0) > 0) | (pl.col("_add_coll").fill_null(0.0) > 0)
    value = {
        "debt_amount": new_debt.floor(),
        "collateral_amount": new_coll.floor(),
        "supplied_amount": pl.max_horizontal(pl.col("supplied_amount").cast(pl.Float64), new_coll.floor()),
    }
    columns = [
        pl.when(changed).then(expr).otherwise(pl.col(c).cast(pl.Float64)).cast(pl.Int128).cast(exact).alias(c)
        for c, expr in value.items()
    ]
    # The adapter's exact base values hold for the amounts it read; moved amounts are valued at the oracle price.
    scale = pl.col("price_scale") if "price_scale" in book.columns else pl.lit(10.0).pow(pl.col("decimals"))
    per_unit = pl.col("price").cast(pl.Float64) / scale.cast(pl.Float64)
    bases = [
        pl.when(changed)
        .then((pl.col(amount).cast(pl.Float64) * per_unit).floor().cast(pl.Int128).cast(exact))
        .otherwise(pl.col(base))
        .alias(base)
        for base, amount in (("collateral_base", "collateral_amount"), ("debt_base", "debt_amount"))
        if base in book.columns
    ]
    return grown.with_columns(*columns).with_columns(*bases).drop("_add_debt", "_add_coll")


def _supply_loss(
    lost: Mapping[tuple[str, str], float],
    reserves: Mapping[tuple[str, str], float],
    supply: Mapping[tuple[str, str], float],
    key: tuple[str, str],
) -> float:
    """The fraction of a market's supply its bad debt so far takes, after the reserves that absorb it first."""
    total = supply.get(key, 0.0)
    if not total:
        return 0.0
    return min(1.0, max(0.0, lost.get(key, 0.0) - reserves.get(key, 0.0)) / total)


def _by_asset(assets: list[str], per_asset: Mapping[str, float]) -> pl.DataFrame:
    """One multiplier per asset address of `assets` (1 where the graph names none): by address, not symbol, since one
    symbol may be a linked wrapper at one address and a token the graph does not know at another."""
    return pl.DataFrame(
        {"asset": assets, "multiplier": [per_asset.get(a, 1.0) for a in assets]},
        schema={"asset": pl.Utf8, "multiplier": pl.Float64},
    )


def _apart(positions: pl.DataFrame, per_asset: Mapping[str, float]) -> list[str]:
    """A note for each symbol whose addresses the shock moves apart: the addresses the asset graph does not link to
    a shocked base keep their price, though their symbol says otherwise."""
    notes = []
    pairs = positions.select("symbol", "asset", "protocol").unique().drop_nulls().sort("symbol", "asset", "protocol")
    for (symbol,), part in pairs.group_by("symbol", maintain_order=True):
        moves = {a: per_asset.get(a, 1.0) for a in part["asset"].to_list()}
        if len(set(moves.values())) < 2:
            continue
        still = part.filter(pl.col("asset").is_in([a for a, m in moves.items() if m == 1.0]))
        moved = len([m for m in moves.values() if m != 1.0])
        held = ", ".join(f"{a[:10]}… ({p})" for a, p in still.select("asset", "protocol").iter_rows())
        notes.append(
            f"{symbol}: {moved} of {len(moves)} addresses move with the shock through the asset graph, while {held} "
            "are not linked to a shocked base and keep their price"
        )
    return notes


def contagion(
    positions: pl.DataFrame,
    links: Mapping[str, Link],
    shock: Mapping[str, float],
    vault_holdings: Mapping[str, list[tuple[str, str, int]]],
    markets: pl.DataFrame,
    *,
    max_rounds: int = MAX_ROUNDS,
) -> ContagionResult:
    """Runs the rounds on the snapshot `positions` (one chain) for `shock` (base symbol -> price multiplier);
    `vault_holdings` (vault -> [(protocol, market, underlying units)]) is lookthrough.vault_holdings's answer;
    `markets` names each market's bad_debt_rule and reserves_amount (reserves that absorb bad debt first, in the
    loan token's units; NULL for none)."""
    symbols = dict(positions.select("asset", "symbol").unique().drop_nulls().iter_rows())
    for address, link in links.items():
        symbols.setdefault(address, link.asset.symbol)
        symbols.setdefault(link.underlying.address, link.underlying.symbol)
    shocked_assets = {a for a, s in symbols.items() if s in shock and a not in links}
    # Bases carry the shock; every price built on them follows through the graph (a wrapper's own symbol is not
    # shocked here: contagion asks what a base's move does).
    graph = AssetGraph.from_links(links, by="address")
    base_moves = {a: float(shock[symbols[a]]) for a in shocked_assets}
    rules = markets.select("protocol", "market", "bad_debt_rule", pl.col("reserves_amount").cast(pl.Float64))
    shared = positions.join(rules, on=["protocol", "market"], how="left", maintain_order="left").filter(
        pl.col("bad_debt_rule").is_in(SOCIALISED)
    )
    # Each such market's loan token and what its suppliers hold: loan-token rows (a collateral row repeats its
    # collateral as supplied).
    loans = (
        shared.filter(pl.col("collateral_amount") == 0)
        .group_by("protocol", "market", maintain_order=True)
        .agg(
            pl.col("supplied_amount").cast(pl.Float64).sum(),
            pl.col("asset").first(),
            pl.col("decimals").first(),
            pl.col("price_usd").first(),
            pl.col("reserves_amount").first().fill_null(0.0),
        )
    )
    supply = {(r[0], r[1]): r[2] for r in loans.iter_rows()}
    loan_of = {(r[0], r[1]): (r[3], r[4], r[5]) for r in loans.iter_rows()}
    reserves = {(r[0], r[1]): max(0.0, r[6]) for r in loans.iter_rows()}
    pools = {
        (r["protocol"], r["market"]): float(r["supply_amount"] or 0)
        for r in markets.filter(pl.col("bad_debt_rule") == REDISTRIBUTED).iter_rows(named=True)
    }
    # Prepared once; each round only reprices (the engine's stress() without re-preparing the book every round),
    # unless a redistribution moved debt onto other positions.
    # In one order whatever the caller's: the redistribution's float sums then come out the same every time.
    book = positions.sort([*KEYS, "asset", "debt_amount", "collateral_amount"])
    prepared = prepare(book).collect()

    held = sorted(positions["asset"].drop_nulls().unique().to_list())

    def health_at(per_asset: Mapping[str, float]) -> pl.DataFrame:
        return wallet_health(reprice(prepared, _by_asset(held, per_asset))).collect()

    before = health_at({}).select(*KEYS, pl.col("health_factor").alias("hf_before"))
    direct = (
        positions.filter(pl.col("asset").is_in(list(shocked_assets)))
        .select(KEYS)
        .unique()
        .with_columns(pl.lit(True).alias("_direct"))
    )
    protocols = sorted(set(positions["protocol"].unique().to_list()))

    factors: dict[str, float] = {}
    lost: dict[tuple[str, str], float] = {}  # (protocol, market) -> loan units of bad debt booked so far
    liquidated: set[tuple[str, int, str, str]] = set()
    round_rows, wallet_frames, asset_rows, market_rows = [], [], [], []
    settled = False
    notes: list[str] = []
    for round_ in range(1, max_rounds + 1):
        per_asset = graph.multipliers(base_moves, symbols, factors)
        if round_ == 1:
            notes = _apart(positions, per_asset)
        for asset in sorted(per_asset):
            asset_rows.append(
                (round_, asset, symbols.get(asset, asset[:10]), per_asset[asset], factors.get(asset, 1.0))
            )
        health = health_at(per_asset)
        done = pl.DataFrame(
            list(liquidated), schema=dict.fromkeys(KEYS, pl.Utf8) | {"chain_id": pl.Int64}, orient="row"
        )
        new = health.filter(pl.col("liquidatable")).join(done.select(KEYS), on=KEYS, how="anti")
        new = (
            new.join(direct, on=KEYS, how="left")
            .join(before, on=KEYS, how="left")
            .with_columns(
                pl.when(pl.col("hf_before") < 1)
                .then(pl.lit("before shock"))
                .when(pl.lit(round_ > 1) & _in(pools))
                .then(pl.lit("redistribution"))
                .when(pl.lit(round_ > 1))
                .then(pl.lit("bad debt"))
                .when(pl.col("_direct").fill_null(False))
                .then(pl.lit("direct"))
                .otherwise(pl.lit("chain"))
                .alias("channel")
            )
            # In key order: the sums below (floats) and the redistribution then do not depend on the book's order.
            .sort(KEYS)
        )
        for protocol in protocols:
            part = new.filter(pl.col("protocol") == protocol)
            round_rows.append(
                (round_, protocol, part.height, float(part["debt_usd"].sum()), float(part["bad_debt_usd"].sum()))
            )
        wallet_frames.append(
            new.select(
                *KEYS,
                pl.lit(round_).alias("round"),
                "channel",
                pl.col("hf_before").alias("health_factor_before"),
                "health_factor",
                "debt_usd",
                "bad_debt_usd",
            )
        )
        if new.is_empty():
            settled = True
            break
        liquidated.update((r[0], int(r[1]), r[2], r[3]) for r in new.select(KEYS).iter_rows())
        # Bad debt booked in each market whose suppliers bear it, in loan token units at the round's loan price.
        for protocol, market, usd in (
            new.filter(pl.col("bad_debt_usd") > 0)
            .group_by("protocol", "market", maintain_order=True)
            .agg(pl.col("bad_debt_usd").sum())
            .sort("protocol", "market")
            .iter_rows()
        ):
            if (protocol, market) not in loan_of:
                continue
            asset, decimals, price = loan_of[protocol, market]
            price_now = (price or 0.0) * per_asset.get(asset, 1.0)
            if price_now <= 0 or decimals is None:  # a loan token without decimals(): its units are unknown
                continue
            units = usd / price_now * 10 ** int(decimals)
            lost[protocol, market] = lost.get((protocol, market), 0.0) + units
            total = supply[protocol, market]
            market_rows.append(
                (round_, protocol, market, units, total, _supply_loss(lost, reserves, supply, (protocol, market)))
            )
        moved = _redistribute(book, new, pools)
        if moved is not None:
            book = moved
            prepared = prepare(book).collect()
        # Vault shares lose what their supply positions lost.
        for vault, holdings in vault_holdings.items():
            vault_link = links.get(vault)
            if vault_link is None or not vault_link.total_assets:
                continue
            loss = sum(
                amount * _supply_loss(lost, reserves, supply, (protocol, market))
                for protocol, market, amount in holdings
                if supply.get((protocol, market))
            )
            factors[vault] = max(0.0, 1.0 - loss / vault_link.total_assets)
    wallets = (
        pl.concat([w.cast(pl.Schema(WALLETS_SCHEMA)) for w in wallet_frames])
        if wallet_frames
        else pl.DataFrame(schema=WALLETS_SCHEMA)
    )
    return ContagionResult(
        rounds=pl.DataFrame(round_rows, orient="row", schema=ROUNDS_SCHEMA),
        wallets=wallets.sort("round", "protocol", "market", "wallet"),
        assets=pl.DataFrame(asset_rows, orient="row", schema=ASSETS_SCHEMA),
        markets=pl.DataFrame(market_rows, orient="row", schema=MARKETS_SCHEMA),
        settled=settled,
        notes=tuple(notes),
    )
