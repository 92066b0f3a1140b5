"""Fixed-point scales, sentinels and the market key every layer shares: one definition each (protocols keep
their own named ones)."""

from __future__ import annotations

from datetime import UTC, datetime

#: 1e18: the wad (18-decimal fixed point: health factors, Morpho's LLTV, Comet's factors).
WAD = 10**18
#: 1e27: the ray (27-decimal fixed point: Aave's indexes and rates, Maker's rate and spot).
RAY = 10**27
#: Basis points in one: Aave's percentages (PercentageMath.PERCENTAGE_FACTOR).
BPS = 10_000
#: The exact integers a HUGEINT column holds are those under this in magnitude (38 digits: what DECIMAL(38,0) carries
#: into DuckDB; a HUGEINT itself stops at 2^127, a little further).
HUGEINT_LIMIT = 10**38
#: The zero address, lowercase hex: "none" in every protocol's storage and the mint/burn side of a Transfer.
ZERO_ADDRESS = "0x" + "0" * 40
#: Seconds in a day.
DAY_S = 86_400
#: The columns that name one market in every table and frame: the adapter, the chain, the market's own id there.
MARKET_KEY = ("protocol", "chain_id", "market")
#: What a protocol lets change of a collateral's parameters (an adapter's `parameter_changes`, read by parameter
#: advice): governance sets each (Aave V3, Compound V3, Maker/Sky); fixed for a market when it is created, the bonus
#: following the threshold (Morpho Blue's LLTV and incentive); nothing, no governance (Liquity V1).
GOVERNED, PER_MARKET, IMMUTABLE = "governed", "per-market", "immutable"


def setting_text(amount: float | None, unit: str | None, value: str | None) -> str:
    """A governed setting's value for people (mart_parameter_changes' amounts and units): its amount in its unit
    ('78 %', '5 % a year', '1,760,000,000 tokens', a date for a unix time), else the exact value (a flag, an address,
    a label), 'none' for NULL."""
    if amount is None or unit is None:
        return "none" if value is None else value
    if unit == "unix time":
        return datetime.fromtimestamp(amount, UTC).strftime("%Y-%m-%d %H:%M UTC")
    figure = f"{amount:,.4f}".rstrip("0").rstrip(".")
    return {"percent": f"{figure} %", "percent a year": f"{figure} % a year", "usd": f"${figure}"}.get(
        unit, f"{figure} {unit}"
    )


def hugeint_or_none(value: int | None) -> int | None:
    """`value` where a HUGEINT column holds it exactly, else None (a figure past 38 digits is left unknown, never
    rounded)."""
    return value if value is not None and abs(value) < HUGEINT_LIMIT else None
