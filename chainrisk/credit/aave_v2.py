"""Aave V2 liquidation history (shared/data/aave_v2) as liquidation-history features and 30-day repeat labels.

The credit model's sanity check: among wallets Aave V2 had already liquidated, are those with more or more recent
liquidations liquidated again more often? Source: TheRensselaerIDEA/IDEA-Blockchain (commit 55d5dac),
`DefiResearch/Data/liquidations.csv`; see /work/shared/data/README.md. Limits: the population is only wallets that
were liquidated at least once (no healthy borrowers, so no base rate for the market), Aave V2 on Ethereum 2020-12 to
2022-04 (not V3), events only (no health factor history between them), and amounts priced as described in
`load_liquidations`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import polars.exceptions as ple

from chainrisk.errors import UserError
from chainrisk.units import DAY_S

#: LendingPoolAddressesProvider of each Aave V2 Ethereum market, as the file's `pool` column names it.
POOLS = {"0xb53c1a33016b2dc2ff3653530bff1848a515c8c5": "main", "0xacc030ef66f9dfeae9cbb0cd1b25654b82cfa8d5": "amm"}
#: Reserves priced in ETH by definition: the file leaves their ETH price empty in schema 1.
ETH_SYMBOLS = frozenset({"WETH", "AmmWETH"})
#: Oldest hourly WETH quote used to value a liquidation (the series is roughly hourly with a few gaps of up to 12 h;
#: it starts on 2021-01-01, after the first liquidations of 2020-12-17).
ETH_USD_MAX_AGE_S = 2 * 3600
REQUIRED = (
    "collateralAmount",
    "collateralReserve",
    "pool",
    "principalAmount",
    "principalReserve",
    "timestamp",
    "user",
    "priceUSDTCollateral",
    "reservePriceETHPrincipal",
    "reservePriceETHCollateral",
    "reservePriceUSDPrincipal",
    "liquidator",
    "amountUSDPrincipal",
)
FLOAT_COLUMNS = (
    "priceUSDTCollateral",
    "reservePriceETHPrincipal",
    "reservePriceETHCollateral",
    "reservePriceUSDPrincipal",
    "amountUSDPrincipal",
)
FEATURES = (
    "liquidations",
    "liquidation_days",
    "liquidated_usd",
    "largest_liquidation_usd",
    "days_since_liquidation",
    "days_since_first_liquidation",
    "distinct_collateral",
    "distinct_debt",
)


def load_liquidations(path: Path, prices_dir: Path) -> pl.DataFrame:
    """One row per liquidation in `path` (the file's data rows, duplicates kept), sorted by time then file row.

    Columns: row (1-based data row in the file), user (the liquidated borrower), liquidator (null in schema 1),
    timestamp (Int64 seconds), pool ("main"/"amm" from the addresses provider; null if unknown), collateral_symbol,
    debt_symbol (the file's reserve symbols; AMM reserves carry an "Amm" prefix), debt_repaid_usd,
    collateral_seized_usd (Float64), schema (1 or 2). The file has no block number, so there is no block column.

    The file holds two schemas. A row is schema 2 when it carries `amountUSDPrincipal` (with `liquidator`,
    `amountETH*` and the stability flags), else schema 1 (data rows 1..6,231, to 2021-07-27).
    - Schema 1: `collateralAmount`/`principalAmount` are raw token units, divided here by the reserve's `decimals`
      from tokens.csv beside `path`; `reservePriceETH*` are wei per whole token (divided by 1e18), empty for WETH.
      Its `amountUSD*` columns ignore decimals and are not used.
    - Schema 2: amounts are whole tokens and `reservePriceETH*` are ETH per token. Its `amountUSD*` columns are not
      used either: their USD prices imply an ETH/USD that strays more than 5 % from the market on 5 % of
      rows (down to a fifth of it), so both schemas are valued one way, on one scale.
    USD = whole tokens x the row's Aave oracle price in ETH x ETH/USD, where ETH/USD is the last hourly WETH quote
    at or before the liquidation (`prices_dir`/WETH_usd.csv, CoinGecko, millisecond timestamps) if at most
    `ETH_USD_MAX_AGE_S` old; otherwise (the 26 liquidations before the series starts) the row's own oracle: in
    schema 1 1e18 / `priceUSDTCollateral` (USDT taken at $1), in schema 2 `reservePriceUSDPrincipal` /
    `reservePriceETHPrincipal`. The oracle's ETH prices agree with CoinGecko's at the median; 2-3 % of rows
    (ENJ, xSUSHI, KNC, ZRX, GUSD mostly) differ by more than 20 %, in both schemas, and are kept as the file has
    them.
    """
    raw = _read_csv(path)
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise UserError(f"{path} is not the Aave V2 liquidations file: no column {', '.join(missing)}")
    if raw.is_empty():
        raise UserError(f"{path} holds no liquidations")
    frame = raw.with_row_index("row", offset=1).with_columns(
        pl.when(pl.col("amountUSDPrincipal").is_null()).then(1).otherwise(2).cast(pl.Int8).alias("schema")
    )
    frame = frame.with_columns(
        _number(frame, path, "timestamp", pl.Int64),
        *(_number(frame, path, c, pl.Float64) for c in FLOAT_COLUMNS),
        *(_number(frame, path, c, pl.Float64).alias(f"{c}_f") for c in ("collateralAmount", "principalAmount")),
    )
    _check_nonempty(frame, path, ("user", "collateralReserve", "principalReserve"))
    frame = _whole_tokens(frame, path)
    frame = _with_eth_usd(frame, path, prices_dir)
    usd = {}
    for side, amount, price, symbol in (
        ("collateral", "collateral_tokens", "reservePriceETHCollateral", "collateralReserve"),
        ("debt", "debt_tokens", "reservePriceETHPrincipal", "principalReserve"),
    ):
        eth_price = pl.when(pl.col("schema") == 1).then(pl.col(price) / 1e18).otherwise(pl.col(price))
        eth_price = pl.when(eth_price.is_null() & pl.col(symbol).is_in(ETH_SYMBOLS)).then(1.0).otherwise(eth_price)
        unpriced = frame.filter(eth_price.is_null())
        if not unpriced.is_empty():
            first = unpriced.row(0, named=True)
            raise UserError(f"{path}: data row {first['row']} has no ETH price for {first[symbol]} ({price})")
        usd[side] = pl.col(amount) * eth_price * pl.col("eth_usd")
    return frame.select(
        pl.col("row").cast(pl.Int64),
        pl.col("user").str.to_lowercase(),
        pl.col("liquidator").str.to_lowercase(),
        "timestamp",
        pl.col("pool").str.to_lowercase().replace_strict(POOLS, default=None, return_dtype=pl.Utf8),
        pl.col("collateralReserve").alias("collateral_symbol"),
        pl.col("principalReserve").alias("debt_symbol"),
        usd["debt"].alias("debt_repaid_usd"),
        usd["collateral"].alias("collateral_seized_usd"),
        "schema",
    ).sort("timestamp", "row")


def _read_csv(path: Path) -> pl.DataFrame:
    """The file with every column as text (numbers are parsed per schema), or one UserError line."""
    if not path.is_file():
        raise UserError(f"no liquidations file at {path}")
    try:
        return pl.read_csv(path, infer_schema=False)
    except (ple.ComputeError, ple.NoDataError, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not a readable CSV file: {reason}") from None


def _number(frame: pl.DataFrame, path: Path, column: str, dtype: type[pl.DataType]) -> pl.Series:
    """`column` cast to `dtype`; a non-empty cell that is not a number is a UserError naming its data row."""
    parsed = frame[column].str.strip_chars().cast(dtype, strict=False)
    bad = frame.filter(parsed.is_null() & frame[column].is_not_null() & (frame[column].str.strip_chars() != ""))
    if not bad.is_empty():
        first = bad.row(0, named=True)
        raise UserError(f"{path}: data row {first['row']} has {column} {first[column]!r}, not a number")
    return parsed.alias(column)


def _check_nonempty(frame: pl.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    """A UserError naming the first data row with an empty cell in `columns` or in a field every row needs."""
    for column in (*columns, "timestamp", "collateralAmount_f", "principalAmount_f"):
        empty = frame.filter(pl.col(column).is_null() | (pl.col(column).cast(pl.Utf8) == ""))
        if not empty.is_empty():
            name = column.removesuffix("_f")
            raise UserError(f"{path}: data row {empty['row'][0]} has no {name}")


def _whole_tokens(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Adds collateral_tokens and debt_tokens in whole tokens: schema 1's raw units over 10**decimals."""
    schema1 = pl.col("schema") == 1
    units = pl.col("collateralAmount").str.contains(r"^\d+$") & pl.col("principalAmount").str.contains(r"^\d+$")
    not_units = frame.filter(schema1 & ~units)
    if not not_units.is_empty():
        raise UserError(
            f"{path}: data row {not_units['row'][0]} lacks amountUSDPrincipal (schema 1) yet its amounts are not "
            "raw token units (whole numbers)"
        )
    tokens_path = path.parent / "tokens.csv"
    decimals = _decimals(tokens_path)
    for symbol_column in ("collateralReserve", "principalReserve"):
        unknown = frame.filter(schema1 & ~pl.col(symbol_column).is_in(list(decimals)))
        if not unknown.is_empty():
            first = unknown.row(0, named=True)
            raise UserError(f"{tokens_path} has no decimals for {first[symbol_column]} (data row {first['row']})")

    def tokens(amount: str, symbol: str) -> pl.Expr:
        scale = pl.col(symbol).replace_strict(decimals, default=0, return_dtype=pl.Int64)
        return pl.when(schema1).then(pl.col(f"{amount}_f") / pl.lit(10.0).pow(scale)).otherwise(pl.col(f"{amount}_f"))

    return frame.with_columns(
        tokens("collateralAmount", "collateralReserve").alias("collateral_tokens"),
        tokens("principalAmount", "principalReserve").alias("debt_tokens"),
    )


def _decimals(path: Path) -> dict[str, int]:
    """Reserve symbol -> token decimals from tokens.csv (symbols are unique across both pools)."""
    if not path.is_file():
        raise UserError(f"no tokens file at {path}: schema-1 amounts need each reserve's decimals")
    try:
        tokens = pl.read_csv(path, schema_overrides={"symbol": pl.Utf8, "decimals": pl.Int64})
        return dict(zip(tokens["symbol"].to_list(), tokens["decimals"].to_list(), strict=True))
    except (ple.ComputeError, ple.NoDataError, ple.ColumnNotFoundError, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not the Aave V2 tokens file (symbol, decimals): {reason}") from None


def _with_eth_usd(frame: pl.DataFrame, path: Path, prices_dir: Path) -> pl.DataFrame:
    """Adds eth_usd: the last WETH quote at most `ETH_USD_MAX_AGE_S` before the row, else the row's own oracle."""
    quotes = _weth_quotes(prices_dir / "WETH_usd.csv")
    own_oracle = (
        pl.when(pl.col("schema") == 1)
        .then(1e18 / pl.col("priceUSDTCollateral"))
        .otherwise(pl.col("reservePriceUSDPrincipal") / pl.col("reservePriceETHPrincipal"))
    )
    priced = (
        frame.sort("timestamp")
        .join_asof(quotes, on="timestamp", strategy="backward", tolerance=ETH_USD_MAX_AGE_S)
        .with_columns(pl.coalesce(pl.col("weth_usd"), own_oracle).alias("eth_usd"))
        .sort("row")
    )
    unpriced = priced.filter(pl.col("eth_usd").is_null() | ~pl.col("eth_usd").is_finite() | (pl.col("eth_usd") <= 0))
    if not unpriced.is_empty():
        raise UserError(
            f"{path}: data row {unpriced['row'][0]} has no ETH/USD price (no WETH quote within "
            f"{ETH_USD_MAX_AGE_S // 3600} h before it in {prices_dir}, no oracle price in the row)"
        )
    return priced


def _weth_quotes(path: Path) -> pl.DataFrame:
    """timestamp (seconds) and weth_usd from the hourly WETH series, whose timestamps are milliseconds."""
    if not path.is_file():
        raise UserError(f"no WETH price history at {path}; pass prices_dir= the hourly_usd folder")
    try:
        quotes = pl.read_csv(path, schema_overrides={"timestamp": pl.Int64, "USD_price": pl.Float64})
        return (
            quotes.select((pl.col("timestamp") // 1000).alias("timestamp"), pl.col("USD_price").alias("weth_usd"))
            .filter(pl.col("weth_usd").is_finite() & (pl.col("weth_usd") > 0))
            .sort("timestamp")
        )
    except (ple.ComputeError, ple.NoDataError, ple.ColumnNotFoundError, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not an hourly USD price file (timestamp, USD_price): {reason}") from None


def liquidation_features(frame: pl.DataFrame, cutoff: int, horizon_days: int = 30) -> pl.DataFrame:
    """Per user liquidated at or before `cutoff` (seconds): liquidation-history features from rows with
    timestamp <= cutoff only, and `label`: liquidated again in (cutoff, cutoff + horizon_days days].

    Features: liquidations (calls), liquidation_days (distinct UTC days with one: a liquidator often splits one
    unhealthy moment into several calls, so this counts episodes more fairly), liquidated_usd (debt repaid, summed),
    largest_liquidation_usd, days_since_liquidation and days_since_first_liquidation (from `cutoff`, fractional),
    distinct_collateral and distinct_debt (reserve symbols). `frame` is `load_liquidations`' shape (user, timestamp,
    collateral_symbol, debt_symbol, debt_repaid_usd). A label is only as complete as the frame: near its end the
    window runs past the data and reads as not liquidated (`sanity_table` refuses such cutoffs).
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, not {horizon_days}")
    past = frame.filter(pl.col("timestamp") <= cutoff)
    window_end = cutoff + horizon_days * DAY_S
    again = (
        frame.filter((pl.col("timestamp") > cutoff) & (pl.col("timestamp") <= window_end))
        .select("user")
        .unique()
        .with_columns(pl.lit(True).alias("label"))
    )
    return (
        past.group_by("user")
        .agg(
            pl.len().cast(pl.Int64).alias("liquidations"),
            (pl.col("timestamp") // DAY_S).n_unique().cast(pl.Int64).alias("liquidation_days"),
            pl.col("debt_repaid_usd").sum().alias("liquidated_usd"),
            pl.col("debt_repaid_usd").max().alias("largest_liquidation_usd"),
            ((cutoff - pl.col("timestamp").max()) / DAY_S).alias("days_since_liquidation"),
            ((cutoff - pl.col("timestamp").min()) / DAY_S).alias("days_since_first_liquidation"),
            pl.col("collateral_symbol").n_unique().cast(pl.Int64).alias("distinct_collateral"),
            pl.col("debt_symbol").n_unique().cast(pl.Int64).alias("distinct_debt"),
        )
        .join(again, on="user", how="left")
        .with_columns(pl.col("label").fill_null(False))
        .sort("user")
    )


def sanity_table(frame: pl.DataFrame, cutoffs: list[int], horizon_days: int = 30) -> pl.DataFrame:
    """`liquidation_features` at each cutoff, stacked with a leading `cutoff` column (Int64 seconds).

    A cutoff whose label window ends after the frame's last liquidation is refused: its labels would be censored."""
    if not cutoffs:
        raise UserError("no cutoffs given for the Aave V2 sanity table")
    last = int(frame["timestamp"].max()) if not frame.is_empty() else None  # type: ignore[arg-type]
    parts = []
    for cutoff in cutoffs:
        if last is None or cutoff + horizon_days * DAY_S > last:
            raise UserError(
                f"cutoff {cutoff} + {horizon_days} days runs past the last liquidation in the data ({last}); "
                "choose an earlier cutoff"
            )
        features = liquidation_features(frame, cutoff, horizon_days)
        parts.append(features.select(pl.lit(cutoff, pl.Int64).alias("cutoff"), pl.all()))
    return pl.concat(parts)
