"""Aave V3 (and forks such as Spark): deployment discovery, events, account snapshots and account maths."""
