"""Maker's accrued raw columns at any block time, from the state a version stores: Jug.drip's rate at the time
(makerdao/dss src/jug.sol), what it makes of each urn's debt and safety (Vat.frob's check, src/vat.sol), and each
running auction's price and reset verdict (src/abaci.sol, src/clip.sol: chainrisk.protocols.maker.auctions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from chainrisk.protocols.maker import auctions
from chainrisk.protocols.maker.constants import RAD
from chainrisk.protocols.maker.maths import MakerRevert, drip, is_unsafe

ILKS = "raw_maker_ilks"
URNS = "raw_maker_urns"
ACCRUED_COLUMNS = {
    ILKS: ("rate_dripped",),
    URNS: ("debt_dripped", "debt_dripped_dai", "safe_after_drip"),
    auctions.AUCTIONS: auctions.ACCRUED,
}


def _dripped(row: dict[str, Any], timestamp: int) -> int | None:
    if any(row[c] is None for c in ("rate", "duty", "base", "rho")):
        return None
    try:
        return drip(int(row["rate"]), int(row["duty"]), int(row["base"]), int(row["rho"]), timestamp)
    except MakerRevert:
        return None


def accrue(
    table: str, rows: pl.DataFrame, timestamp: int, related: Callable[[str], pl.DataFrame]
) -> list[dict[str, Any]]:
    """Ilks: the rate a drip at `timestamp` would set; urns: their debt at it and whether they stay safe; running
    auctions: their price and whether they need a reset."""
    if table == ILKS:
        return [{"rate_dripped": _dripped(row, timestamp)} for row in rows.iter_rows(named=True)]
    if table == URNS:
        ilks = {(r["chain_id"], r["market"], r["ilk_hex"]): r for r in related(ILKS).iter_rows(named=True)}
        out = []
        for row in rows.iter_rows(named=True):
            ilk = ilks[(row["chain_id"], row["market"], row["ilk_hex"])]
            rate = int(ilk["rate_dripped"]) if ilk["rate_dripped"] is not None else None
            ink, art = int(row["ink"]), int(row["art"])
            debt = art * rate if rate is not None else None
            out.append(
                {
                    "debt_dripped": str(debt) if debt is not None else None,
                    "debt_dripped_dai": debt / RAD if debt is not None else None,
                    "safe_after_drip": (
                        not is_unsafe(ink, art, rate, int(ilk["spot"]))
                        if rate is not None and ilk["spot"] is not None
                        else None
                    ),
                }
            )
        return out
    if table == auctions.AUCTIONS:
        return auctions.accrue(rows, timestamp)
    raise ValueError(f"{table} has no accrued columns")
