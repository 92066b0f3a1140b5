"""Protocol-agnostic risk engine in polars: frames in, frames out (no web3, no DuckDB)."""
