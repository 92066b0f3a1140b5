"""DuckDB storage: raw_* tables from the indexers, the positions/wallet_health contract, and sync_state."""
