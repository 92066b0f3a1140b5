"""Risk models over the health engine: calibration from real prices, Monte-Carlo VaR / ES, backtests."""
