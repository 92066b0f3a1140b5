"""The DuckDB file's schema, one module per domain (each domain's DDL beside the migrations that changed it), and its
version. Exact integers are HUGEINT (two 64-bit halves on the way in: chainrisk.store.exact); floats only for USD and
ratios.

Versions: 1 Aave only; 2 every adapter's columns in positions (migrated); 3 scored_markets, runs and alerts; 4 the
exact liquidation bonus (migrated) and the risk model tables; 5 collateralization chains and contagion; 6 credit;
7 markets (each market's name and where its bad debt lands, filled from the next snapshot on); 8 positions'
decimals and position_risk's USD nullable (a token without decimals(), an oracle without a price) and
data_quality (odd contracts a snapshot met); 9 one history stored by change: snapshot and score tables keep the
latest snapshot only, raw tables' versions (history schema), wallet_health_history in buckets (credit's health_history
folded in), snapshot_blocks; 10 wallet_health_history without its primary-key index (most of a bucket's bytes);
11 its buckets keyed by an integer (wallet_health_buckets, wallet_health_keys), wallet_health_history a view over the
two with the same columns; 12 finished days may leave the buckets for Parquet files (cold_history_files,
wallet_health_cold), wallet_health_history reading both; 13 the cold files' exact health factor kept exact (schema 12
wrote it as a DOUBLE: those files' health_factor_wad, no longer known exactly, become NULL); 14 positions'
price_fixed (a price the protocol fixes, not the market's: dai at par in the Vat, LUSD in Liquity); 15
liquidation_distance's liquidatable_now (its first liquidation is now the first of the holders not liquidatable
already); 16 positions' liquidation_recovery_wad (what the protocol recovers of collateral it sells: all of it for
Maker/Sky, whose chop is a penalty, not a keeper's cut); 17 wallet_risk's USD figures nullable (a market without a
USD price); 18 cold_history_markets, the cold days' sums per market and bucket (filled from the listed cold files on
upgrade: chainrisk.store.history.roll_up_cold_days); 19 the chain tables' exact sums nullable (a sum of an odd token's
amounts that could reach 38 digits is unknown); 20 positions' full_close_below_base (Aave 3.3+: a wallet whose debt
or collateral is worth less than this may be liquidated whole).
Tables new in a version are created on every open (CREATE TABLE IF NOT EXISTS); only changed tables migrate.
"""

from __future__ import annotations

from chainrisk.store.schema import chains, core, credit, history, risk, runs, scores

SCHEMA_VERSION = 20

DOMAINS = (core, scores, runs, risk, chains, credit, history)
#: Every table of every domain, created when missing.
DDL = "\n".join(domain.DDL for domain in DOMAINS)
#: Upgrade statements by the version they lead to, in domain order.
MIGRATIONS: dict[int, list[str]] = {
    version: [statement for domain in DOMAINS for statement in domain.MIGRATIONS.get(version, [])]
    for version in range(2, SCHEMA_VERSION + 1)
}
