"""A deterministic tabular data set with numeric and text columns, as a notebook user's data
would be: 3,000 members, split into a training version (2,000 rows) and a held-out version
(1,000 rows) of one dataset, both through the data gate.

Columns: member_id (subject id), age (int), bmi (float), visits (int), region and plan (text
categories), readmitted ("no"/"yes", the classification target) and cost (float, the regression
target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NUMERIC = ["age", "bmi", "visits"]
TEXT = ["region", "plan"]
FEATURES = NUMERIC + TEXT
TRAIN_ROWS = 2000


def frame(rows: int = 3000, seed: int = 7) -> Any:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 91, rows)
    bmi = np.round(np.clip(rng.normal(27, 5, rows), 15, 50), 2)
    visits = rng.poisson(2.0, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    plan = rng.choice(["basic", "plus", "premium"], rows, p=[0.5, 0.3, 0.2])
    score = (
        0.04 * (age - 50)
        + 0.12 * (bmi - 27)
        + 0.35 * visits
        + np.where(region == "north", 0.8, 0.0)
        - np.where(plan == "premium", 0.9, 0.0)
        - 0.7
        + rng.normal(0, 1.0, rows)
    )
    cost = np.round(800 + 25 * age + 40 * visits + rng.gamma(2.0, 300.0, rows), 2)
    return pl.DataFrame(
        {
            "member_id": [f"M-{i:05d}" for i in range(1, rows + 1)],
            "age": age.astype(np.int64),
            "bmi": bmi,
            "visits": visits.astype(np.int64),
            "region": region,
            "plan": plan,
            "readmitted": np.where(score > 0, "yes", "no"),
            "cost": cost,
        }
    )


def contract() -> dict[str, Any]:
    return {
        "name": "claims",
        "format": 1,
        "on_failure": "reject_file",
        "columns": [
            {
                "name": "member_id",
                "dtype": "string",
                "nullable": False,
                "unique": True,
                "classification": "pii",
                "subject_id": True,
            },
            {"name": "age", "dtype": "int", "nullable": False, "min": 0, "max": 130},
            {"name": "bmi", "dtype": "float", "nullable": False, "min": 10.0, "max": 80.0},
            {"name": "visits", "dtype": "int", "nullable": False, "min": 0, "max": 100},
            {
                "name": "region",
                "dtype": "category",
                "nullable": False,
                "allowed": ["north", "south", "east", "west"],
            },
            {
                "name": "plan",
                "dtype": "category",
                "nullable": False,
                "allowed": ["basic", "plus", "premium"],
            },
            {
                "name": "readmitted",
                "dtype": "category",
                "nullable": False,
                "allowed": ["no", "yes"],
            },
            {"name": "cost", "dtype": "float", "nullable": False, "min": 0.0},
        ],
        "table": {"min_rows": 10},
    }


def ingest(env: Any, folder: Path) -> tuple[str, str]:
    """claims@1 (training rows) and claims@2 (held-out rows), ingested by the steward."""
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest as run

    folder.mkdir(parents=True, exist_ok=True)
    df = frame()
    train, holdout = folder / "claims_train.csv", folder / "claims_holdout.csv"
    df.head(TRAIN_ROWS).write_csv(train)
    df.slice(TRAIN_ROWS).write_csv(holdout)
    with env.open("steward") as steward:
        first = run(steward, train, "claims", contract=parse_contract(contract(), source="test"))
        second = run(steward, holdout, "claims")
    assert first.outcome == second.outcome == "accepted", (first.outcome, second.outcome)
    return str(first.ref), str(second.ref)
