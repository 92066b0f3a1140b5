"""Hand-made `positions` rows the engine tests share."""

from __future__ import annotations

from typing import Any


def per_position(protocol: str, market: str, wallet: str) -> dict[str, Any]:
    """The fields of a per-position-rule row (Morpho, Compound, Maker) at block 10, in 8-decimal base units, whole
    debt repayable at once."""
    return {
        "protocol": protocol,
        "chain_id": 1,
        "market": market,
        "wallet": wallet,
        "block_number": 10,
        "block_timestamp": 1000,
        "base_currency_usd": 1e-8,
        "health_rule": "per-position",
        "close_factor": 1.0,
        "full_close_below_health": None,
    }
