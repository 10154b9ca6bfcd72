"""The Wisconsin Diagnostic Breast Cancer data set (569 patients, 30 features), as scikit-learn
ships it, shaped like a clinical extract: a synthetic patient id (a subject id, pii) and the
diagnosis as text. Also a deliberately broken copy, to show the gate refusing it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def frame() -> Any:
    """The data set as a polars DataFrame: patient_id, 30 features, diagnosis."""
    import polars as pl
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    names = [re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_") for n in raw.feature_names]
    df = pl.DataFrame(raw.data, schema=names, orient="row")
    ids = pl.Series("patient_id", [f"P-{i:05d}" for i in range(1, len(df) + 1)])
    diagnosis = pl.Series("diagnosis", [raw.target_names[t] for t in raw.target])
    return df.insert_column(0, ids).with_columns(diagnosis)


def contract(df: Any) -> dict[str, Any]:
    """A reviewed contract: ids unique and well formed, features non-negative and within twice
    the observed maximum, the diagnosis one of two labels, no duplicate rows."""
    columns: list[dict[str, Any]] = [
        {
            "name": "patient_id",
            "dtype": "string",
            "nullable": False,
            "unique": True,
            "regex": r"^P-[0-9]{5}$",
            "classification": "pii",
            "subject_id": True,
        }
    ]
    for name in df.columns[1:-1]:
        columns.append(
            {
                "name": name,
                "dtype": "float",
                "nullable": False,
                "min": 0.0,
                "max": round(float(df[name].max()) * 2, 4),
                "classification": "sensitive",
            }
        )
    columns.append(
        {
            "name": "diagnosis",
            "dtype": "category",
            "nullable": False,
            "allowed": ["malignant", "benign"],
            "classification": "sensitive",
        }
    )
    return {
        "name": "breast-cancer",
        "format": 1,
        "on_failure": "reject_file",
        "columns": columns,
        "table": {"min_rows": 50, "no_duplicate_rows": True, "max_null_fraction": 0.0},
    }


def write_files(folder: Path) -> tuple[Path, Path]:
    """Write the first 400 patients as the good CSV and the other 169 as a broken batch
    (a negative radius, a missing and an unknown diagnosis, a malformed id, a duplicated row);
    returns their paths."""
    import polars as pl

    df = frame()
    good = folder / "breast_cancer.csv"
    df.head(400).write_csv(good)
    bad_df = df.slice(400).with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(-1.0)
        .otherwise(pl.col("mean_radius"))
        .alias("mean_radius"),
        pl.when(pl.int_range(pl.len()) == 7)
        .then(None)
        .otherwise(pl.col("diagnosis"))
        .alias("diagnosis"),
    )
    bad_df = bad_df.with_columns(
        pl.when(pl.int_range(pl.len()) == 11)
        .then(pl.lit("unknown"))
        .otherwise(pl.col("diagnosis"))
        .alias("diagnosis"),
        pl.when(pl.int_range(pl.len()) == 13)
        .then(pl.lit("X-13"))
        .otherwise(pl.col("patient_id"))
        .alias("patient_id"),
    )
    bad_df = pl.concat([bad_df, bad_df.slice(20, 1)])
    bad = folder / "breast_cancer_new_batch.csv"
    bad_df.write_csv(bad)
    return good, bad
