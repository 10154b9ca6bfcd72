"""The diabetes data set of Efron et al. (2004) as scikit-learn ships it, unscaled (442 patients:
age, sex, body mass index, blood pressure, six blood serum measurements, and a measure of disease
progression one year later), shaped like a clinical extract with text categories: a synthetic
patient id (a subject id, pii), `sex` as the source codes it ("1" or "2", text), and `bmi_class`,
the WHO body-mass-index band derived from `bmi`. The quickstart's notebook act trains on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The serum measurements' names in the source (s1..s6) and what they are.
SERUM = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}
WHO_BANDS = ("underweight", "normal", "overweight", "obese")
TRAIN_ROWS = 332  # the rest (110) is the held-out file


def bmi_class(bmi: Any) -> Any:
    """The WHO band of a body mass index column (a polars expression or Series)."""
    import polars as pl

    return (
        pl.when(bmi < 18.5)
        .then(pl.lit("underweight"))
        .when(bmi < 25)
        .then(pl.lit("normal"))
        .when(bmi < 30)
        .then(pl.lit("overweight"))
        .otherwise(pl.lit("obese"))
    )


def frame() -> Any:
    """The data set as a polars DataFrame: patient_id, 11 features, progression."""
    import polars as pl
    from sklearn.datasets import load_diabetes

    raw = load_diabetes(scaled=False)
    names = [SERUM.get(n, n) for n in raw.feature_names]
    df = pl.DataFrame(raw.data, schema=names, orient="row")
    df = df.with_columns(
        pl.col("age").cast(pl.Int64),
        pl.col("sex").cast(pl.Int64).cast(pl.String),
        bmi_class(pl.col("bmi")).alias("bmi_class"),
    )
    ids = pl.Series("patient_id", [f"D-{i:05d}" for i in range(1, len(df) + 1)])
    return df.insert_column(0, ids).with_columns(pl.Series("progression", raw.target))


def contract(df: Any) -> dict[str, Any]:
    """A reviewed contract: ids unique, measurements within twice the observed maximum, the
    categories closed lists."""
    columns: list[dict[str, Any]] = [
        {
            "name": "patient_id",
            "dtype": "string",
            "nullable": False,
            "unique": True,
            "regex": r"^D-[0-9]{5}$",
            "classification": "pii",
            "subject_id": True,
        },
        {"name": "age", "dtype": "int", "nullable": False, "min": 0, "max": 120},
        {
            "name": "sex",
            "dtype": "category",
            "nullable": False,
            "allowed": ["1", "2"],
            "classification": "sensitive",
        },
    ]
    for name in ("bmi", "bp", *SERUM.values()):
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
    columns += [
        {"name": "bmi_class", "dtype": "category", "nullable": False, "allowed": list(WHO_BANDS)},
        {"name": "progression", "dtype": "float", "nullable": False, "min": 0.0, "max": 1000.0},
    ]
    return {
        "name": "diabetes",
        "format": 1,
        "on_failure": "reject_file",
        "columns": columns,
        "table": {"min_rows": 50, "no_duplicate_rows": True, "max_null_fraction": 0.0},
    }


def write_files(folder: Path) -> tuple[Path, Path]:
    """Write a seeded shuffle of the patients as a training file (332 rows) and a held-out file
    (110 rows); returns their paths."""
    df = frame().sample(fraction=1.0, shuffle=True, seed=42)
    train = folder / "diabetes_train.csv"
    holdout = folder / "diabetes_holdout.csv"
    df.head(TRAIN_ROWS).write_csv(train)
    df.slice(TRAIN_ROWS).write_csv(holdout)
    return train, holdout
