"""Schema of the one history (schema 9, 10, 11): wallet_health_history, every wallet's health per market in buckets of
an hour (a day once older than the hourly window), written by every score and by `credit history`; snapshot_blocks, the
blocks each indexed source was snapshotted at (so any of them can be rebuilt from the raw tables' versions, kept in
the `history` schema by chainrisk.store.versions); with the migration that folds a version 8 file's snapshots in, and
version 10's, which rebuilds wallet_health_history without its primary-key index, and version 11's, which stores its
buckets under an integer key (wallet_health_buckets, wallet_health_keys) with wallet_health_history the view over them.

Why no index on wallet_health_history (measured on a synthetic year, 2,000 keys x 2,435 buckets in time order,
every figure varying as prices move them): the PRIMARY KEY's ART index took 106 of the 167 bytes a bucket used
(774 MiB for 4.87M buckets against 281 MiB, 60.5 bytes a bucket, without it); a year of the goal size's 251,188 keys
is 612M buckets, so the index alone would be ~60 GiB. Without it the bucket is the figures: six varying DOUBLEs at
~7 bytes (ALP), the exact health factor (HUGEINT) 8, the blocks and times under 3 (a run's buckets share them), and
the text columns: ~4 bytes at 2,000 keys, but ~23 at 10,000 and more, as a segment's dictionary then never repeats a
wallet (README "A year of health buckets"). Rows are appended in time order (each run writes one hour's buckets);
the same 2,000 keys' rows sorted by key took 68.6 bytes. A bucket's key stays unique without the index: every write
folds the incoming rows by key with the stored rows of the same keys, deletes those and inserts the folded ones in
one transaction (chainrisk.store.history._replace_buckets), the only writer; a test checks it.

Why an integer key (schema 11): the four text key columns repeat in every bucket, and in time order a segment's
dictionary holds one bucket per key, so the 42-character wallet costs ~23 bytes a bucket there; finished days are
stored again by key (_cluster_finished_days), but the day buckets (275 of a key's 2,435) and the newest day stay in
time order. On a synthetic year of 10,000 keys with random addresses (24.35M buckets, finished days by key): 66.8
bytes a bucket with the text key (wallet 5.0, market 1.0), 61.0 with key_id (0.5) and the key table, 54.8 with the
first block, first and last time and block of the minimum stored as offsets too (ENCODE: within a key's clustered
hours the blocks and times span a day, ~2-3 bytes each, the offsets repeat run to run). Each write
numbers the keys it has not seen in its own transaction (chainrisk.store.history._number_keys). The stored
health_factor stays: it is the engine's float (a credit sample has no health_factor_wad), not health_factor_wad /
1e18, so it cannot be derived from the exact figure."""

from __future__ import annotations

#: Where the raw tables' versions live: history.<raw table>, one row per value a key held from a block on.
HISTORY_SCHEMA = "history"

#: What readers read: one row per (protocol, chain_id, market, wallet, bucket), the columns schema 10's table had.
HISTORY_VIEW = """
SELECT k.protocol, b.chain_id, k.market, k.wallet, b.bucket_start, b.bucket_seconds, b.samples,
    b.last_block - b.first_back AS first_block, b.bucket_start + b.first_offset AS first_timestamp, b.last_block,
    b.bucket_start + b.last_offset AS last_timestamp, b.health_factor, b.health_factor_wad, b.health_factor_min,
    b.last_block - b.min_back AS health_factor_min_block, b.health_factor_max, b.collateral_usd, b.debt_usd,
    b.borrowing_power_usd, b.bad_debt_usd, b.liquidation_threshold_bps, b.ltv_bps, b.liquidatable,
    b.liquidatable_samples
FROM (SELECT * FROM wallet_health_buckets UNION ALL BY NAME SELECT * FROM wallet_health_cold) b
JOIN wallet_health_keys k ON k.key_id = b.key_id"""
#: Bucket rows as folded (first_block, first_timestamp, last_timestamp, health_factor_min_block) as stored, and back.
ENCODE = (
    "* EXCLUDE (first_block, first_timestamp, last_timestamp, health_factor_min_block), "
    "last_block - first_block AS first_back, first_timestamp - bucket_start AS first_offset, "
    "last_timestamp - bucket_start AS last_offset, last_block - health_factor_min_block AS min_back"
)
DECODE = (
    "* EXCLUDE (first_back, first_offset, last_offset, min_back), last_block - first_back AS first_block, "
    "bucket_start + first_offset AS first_timestamp, bucket_start + last_offset AS last_timestamp, "
    "last_block - min_back AS health_factor_min_block"
)
#: A file whose wallet_health_history is still schema 10's table keeps it (IF NOT EXISTS) until migrate_to_11.
HISTORY_VIEW_DDL = f"CREATE VIEW IF NOT EXISTS wallet_health_history AS {HISTORY_VIEW}"
#: Finished days moved out of wallet_health_buckets into immutable Parquet files (chainrisk.store.history.evict_days):
#: one row per file, the day it holds, its rows' count and content hash (chainrisk.store.ledger's definition), and
#: whether it holds hour buckets still (the downsampling folds them into the day once the day leaves the window).
COLD_FILES_DDL = """
CREATE TABLE IF NOT EXISTS cold_history_files (
    chain_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    file VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    content_hash HUGEINT NOT NULL,
    hourly BOOLEAN NOT NULL
);
"""
#: A market's figures in one bucket of the history, summed over its wallets' buckets (each the wallet's last sample
#: there): over stored-form bucket rows `b` (ENCODE) joined with wallet_health_keys `k`, grouped by market and bucket
#: (GROUP BY ALL). What mart_market_health_history charts; one definition for the cold days' sums, written with each
#: cold file (chainrisk.store.history._write_days), and the hot days', summed when read (stg_market_health_buckets).
MARKET_SUMS = """
    max(b.last_block) AS last_block,
    max(b.bucket_start + b.last_offset) AS last_timestamp,
    min(b.last_block) AS earliest_last_block,
    count(*) AS wallets,
    count(*) FILTER (WHERE b.health_factor IS NOT NULL) AS borrowers,
    sum(b.collateral_usd) AS collateral_usd,
    sum(b.debt_usd) AS debt_usd,
    sum(b.bad_debt_usd) AS bad_debt_usd,
    count(*) FILTER (WHERE b.liquidatable) AS liquidatable_wallets,
    count(*) FILTER (WHERE b.liquidatable_samples > 0) AS wallets_liquidatable_in_bucket,
    min(b.health_factor) AS min_health_factor,
    min(b.health_factor_min) AS lowest_health_factor,
    sum(b.samples) AS samples"""


def market_buckets(rows: str) -> str:
    """MARKET_SUMS of the stored-form bucket rows of the query `rows`, per (protocol, chain_id, market, bucket)."""
    return (
        "SELECT k.protocol, b.chain_id, k.market, b.bucket_start, b.bucket_seconds,"
        f"{MARKET_SUMS}\nFROM ({rows}) AS b JOIN wallet_health_keys AS k ON k.key_id = b.key_id GROUP BY ALL"
    )


#: Schema 18: the cold days' market sums (MARKET_SUMS), one row per (market, bucket) of each listed cold day, written
#: in the transaction that lists the day's file, so a market's history reads a few rows per bucket instead of every
#: wallet's (a 90-day chart of a market of 200,000 wallets would sum 432M buckets at every load).
COLD_MARKETS_DDL = """
CREATE TABLE IF NOT EXISTS cold_history_markets (
    chain_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    protocol VARCHAR NOT NULL,
    market VARCHAR NOT NULL,
    bucket_start BIGINT NOT NULL,
    bucket_seconds INTEGER NOT NULL,
    last_block BIGINT NOT NULL,
    last_timestamp BIGINT NOT NULL,
    earliest_last_block BIGINT NOT NULL,
    wallets BIGINT NOT NULL,
    borrowers BIGINT NOT NULL,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    bad_debt_usd DOUBLE,
    liquidatable_wallets BIGINT NOT NULL,
    wallets_liquidatable_in_bucket BIGINT NOT NULL,
    min_health_factor DOUBLE,
    lowest_health_factor DOUBLE,
    samples BIGINT NOT NULL
);
"""

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {HISTORY_SCHEMA};

-- One row per (protocol, chain_id, market, wallet): the key of a wallet's health history in a market, numbered.
CREATE TABLE IF NOT EXISTS wallet_health_keys (
    key_id INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    wallet VARCHAR NOT NULL
);

-- One row per (key_id, bucket): the samples of the bucket (scores of `run`/`score`, `credit history` samples)
-- folded so that a dip is never averaged away: the last sample's figures, the minimum and maximum health factor and
-- the block of the minimum, how many samples and how many were liquidatable. chain_id is the key's (a constant
-- column costs nothing stored) so that a chain's buckets are found without the key table. The first block and the
-- block of the minimum are stored as blocks back from last_block, the first and last times as seconds after
-- bucket_start (ENCODE; the view adds them back): small numbers a run's buckets share, where the blocks and times
-- themselves span a day within a key's clustered hours.
CREATE TABLE IF NOT EXISTS wallet_health_buckets (
    key_id INTEGER NOT NULL,
    chain_id BIGINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    bucket_seconds INTEGER NOT NULL,
    samples BIGINT NOT NULL,
    first_back BIGINT NOT NULL,
    first_offset BIGINT NOT NULL,
    last_block BIGINT NOT NULL,
    last_offset BIGINT NOT NULL,
    health_factor DOUBLE,
    health_factor_wad HUGEINT,
    health_factor_min DOUBLE,
    min_back BIGINT,
    health_factor_max DOUBLE,
    collateral_usd DOUBLE,
    debt_usd DOUBLE,
    borrowing_power_usd DOUBLE,
    bad_debt_usd DOUBLE,
    liquidation_threshold_bps INTEGER,
    ltv_bps INTEGER,
    liquidatable BOOLEAN,
    liquidatable_samples BIGINT NOT NULL
);

{COLD_FILES_DDL}
{COLD_MARKETS_DDL}
-- The cold days' files (chainrisk.store.history.refresh_cold_view replaces it as they are listed); none yet.
CREATE VIEW IF NOT EXISTS wallet_health_cold AS SELECT * FROM wallet_health_buckets WHERE false;

{HISTORY_VIEW_DDL};

CREATE TABLE IF NOT EXISTS snapshot_blocks (
    protocol VARCHAR NOT NULL,
    chain_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    block_timestamp BIGINT NOT NULL,
    PRIMARY KEY (protocol, chain_id, source, block_number)
);
"""

#: Version 9 folds the per-block snapshots a version 8 file kept into the history, then keeps the latest only. The
#: raw tables' versions are built on the first open by chainrisk.store.versions (their columns are the adapters').
#: Version 10 rebuilds wallet_health_history without its PRIMARY KEY (chainrisk.store.migrate.migrate_to_10).
#: Version 11 moves its rows into wallet_health_keys and wallet_health_buckets, then makes it the view over them
#: (chainrisk.store.migrate.migrate_to_11).
#: Version 12 reads the cold days' files too (wallet_health_cold, chainrisk.store.history.evict_days).
MIGRATIONS: dict[int, list[str]] = {12: [f"CREATE OR REPLACE VIEW wallet_health_history AS {HISTORY_VIEW}"]}
