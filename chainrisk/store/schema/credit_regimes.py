"""Schema of the credit evaluations' market regimes (`chainrisk credit evaluate`): the market's state at each
evaluated cutoff and the calibration of all its borrowers, beside credit_evaluations and credit_calibration.

Kept apart from chainrisk.store.schema.credit until it is folded into that module's DDL (a new table, created when
missing: no schema version or migration); chainrisk.jobs.credit creates it before writing to it.
"""

from __future__ import annotations

DDL = """
-- The market at each evaluated cutoff (chainrisk.credit.regime): the collateral markets' annualised volatility over
-- the 30 days before it and their fall from the 90-day high, the regime they name, and the cutoff's borrowers:
-- the model's mean 30-day PD against the share liquidated (calibration by regime; by band: credit_calibration).
CREATE TABLE IF NOT EXISTS credit_regimes (
    run_id BIGINT NOT NULL,
    chain_id BIGINT NOT NULL,
    cutoff_block BIGINT NOT NULL,
    cutoff_timestamp BIGINT NOT NULL,
    regime VARCHAR NOT NULL,
    market_vol DOUBLE NOT NULL,
    market_drawdown DOUBLE NOT NULL,
    wallets BIGINT NOT NULL,
    liquidated BIGINT NOT NULL,
    predicted_pd DOUBLE NOT NULL,
    observed_rate DOUBLE NOT NULL,
    PRIMARY KEY (run_id, cutoff_block)
);
"""
