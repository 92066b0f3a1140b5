"""The bundled credit model and the out-of-time evaluation shipped beside it (read, never written, here).

`make credit-eval` trains chainrisk/credit/models/devnet.json on the 2,000-wallet devnet history and writes, beside
it, devnet.evaluation.json: JSON lines of the same run's credit_evaluations ("part": "evaluation"),
credit_calibration ("calibration") and credit_regimes ("regime") rows. A database scored with the bundled model but
never evaluated (the demo's: 30 days are too short to train and test on) shows that evaluation, said to be of the
method on the devnet, not of its own wallets.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

#: The model `chainrisk credit` uses without --model: trained on the devnet history (README "Credit scores").
BUNDLED_MODEL = Path(__file__).resolve().parent / "models" / "devnet.json"
#: The parts of a shipped evaluation and the tables their rows come from.
PARTS = {"evaluation": "credit_evaluations", "calibration": "credit_calibration", "regime": "credit_regimes"}


def evaluation_file(model: Path) -> Path:
    """Where the evaluation shipped with `model` lives: beside it, NAME.evaluation.json."""
    return model.with_name(f"{model.stem}.evaluation.json")


def shipped_evaluation(model: Path = BUNDLED_MODEL) -> dict[str, pl.DataFrame] | None:
    """The shipped evaluation's rows by table (credit_evaluations, credit_calibration, credit_regimes), or None when
    the model has none (or it cannot be read)."""
    path = evaluation_file(model)
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError):
        return None
    frames = {}
    for part, table in PARTS.items():
        mine = [{k: v for k, v in row.items() if k != "part" and v is not None} for row in rows if row["part"] == part]
        if not mine:
            return None
        frames[table] = pl.DataFrame(mine, infer_schema_length=None)
    evaluations = frames["credit_evaluations"]
    frames["credit_evaluations"] = evaluations.with_columns(
        pl.col("evaluated_at").str.to_datetime(time_zone="UTC", time_unit="us")
    )
    return frames
