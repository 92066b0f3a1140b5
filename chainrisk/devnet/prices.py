"""Real hourly USD price history (../shared/data/prices/hourly_usd) resampled onto the devnet replay clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from chainrisk.devnet.toolchain import shared_prices_dir
from chainrisk.errors import UserError

#: USD feeds carry 8 decimals, as Chainlink's USD feeds and AaveOracle's base currency unit do.
FEED_DECIMALS = 8
#: The settable base feeds the replay moves: feed symbol -> the history it replays (file stem in hourly_usd).
#: Wrapped assets have none: wstETH's and cvUSDC's feeds derive on chain from stETH's and USDC's times the
#: wrapper's exchange rate (chainrisk.devnet.wrappers), as real wrapped-asset oracles do.
BASE_FEEDS: dict[str, str] = {
    "WETH": "WETH",
    "stETH": "stETH",
    "WBTC": "WBTC",
    "USDC": "USDC",
    "DAI": "DAI",
    "USDT": "USDT",
    "LINK": "LINK",
}


def load_price_path(sources: dict[str, str], start: datetime, days: float, step_hours: int) -> pl.DataFrame:
    """One row per replay step: `step`, `time` (UTC) and one Int64 column per feed symbol at 8 decimals.

    `sources` maps a feed symbol to its history symbol (BASE_FEEDS). Each step takes the last observation at
    or before its time (an as-of join).
    Source: CoinGecko USD prices gathered by bhemen/aave-data (see shared/data/README.md).
    """
    steps = int(days * 24 // step_hours)
    clock = pl.DataFrame({"time": [start + timedelta(hours=step_hours * i) for i in range(steps + 1)]}).with_columns(
        pl.col("time").dt.cast_time_unit("ms").dt.replace_time_zone("UTC")
    )
    clock = clock.with_row_index("step")
    folder = shared_prices_dir()
    for feed_symbol, history_symbol in sources.items():
        path = folder / f"{history_symbol}_usd.csv"
        if not path.is_file():
            raise UserError(f"no price history for {history_symbol} at {path}")
        history = (
            pl.read_csv(path, schema_overrides={"timestamp": pl.Int64, "USD_price": pl.Float64})
            .select(
                pl.from_epoch("timestamp", time_unit="ms")
                .dt.cast_time_unit("ms")
                .dt.replace_time_zone("UTC")
                .alias("time"),
                pl.col("USD_price").alias("usd"),
            )
            .drop_nulls()
            .filter(pl.col("usd") > 0)
            .sort("time")
        )
        if history.is_empty() or history["time"][0] > clock["time"][0] or history["time"][-1] < clock["time"][-1]:
            raise UserError(f"{history_symbol} history does not cover {start:%Y-%m-%d} + {days} days")
        clock = (
            clock.join_asof(history, on="time", strategy="backward")
            .with_columns((pl.col("usd") * 10**FEED_DECIMALS).round().cast(pl.Int64).alias(feed_symbol))
            .drop("usd")
        )
    return clock


def parse_start(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UserError(f"--start {text!r} is not a date like 2022-05-01") from None
