"""The served model: request validation against the version's schema, OOD flags, the predict path.

A request's records are checked field by field against the input schema the version was
registered with (the data contract's column specs), so a bad request is refused with the row, the
field and the reason before any of it reaches the estimator. Rows that pass are flagged when they
lie outside what the model saw in training (the baseline profile): a numeric value beyond the
training range or further than `ood_z` standard deviations from the training mean, or a category
training never saw.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from aidlc.errors import InvalidInput
from aidlc.registry.model import LoadedModel

MAX_PROBLEMS = 20
MAX_TEXT = 10_000
_NUMERIC = ("int", "float")


class InvalidRecords(InvalidInput):
    """Records that do not match the model's input schema; `problems` says where and why."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class _Field:
    name: str
    dtype: str
    nullable: bool
    low: Any = None
    high: Any = None
    allowed: frozenset[Any] | None = None
    regex: re.Pattern[str] | None = None


def _bound(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype == "date":
        return date.fromisoformat(str(value)[:10])
    if dtype == "datetime":
        return datetime.fromisoformat(str(value))
    return float(value)


def _fields(schema: list[dict[str, Any]]) -> list[_Field]:
    out = []
    for spec in schema:
        dtype = str(spec.get("dtype", "float"))
        allowed = spec.get("allowed")
        out.append(
            _Field(
                name=spec["name"],
                dtype=dtype,
                nullable=bool(spec.get("nullable", True)),
                low=_bound(spec.get("min"), dtype),
                high=_bound(spec.get("max"), dtype),
                allowed=frozenset(allowed) if isinstance(allowed, list) else None,
                regex=re.compile(spec["regex"]) if spec.get("regex") else None,
            )
        )
    return out


def _typed(f: _Field, value: Any) -> tuple[Any, str | None]:
    """The value as the schema's type, or a reason it is not one."""
    kind = f.dtype
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"must be a number ({kind}), not {_type_name(value)}"
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            return None, "must be a whole number"
        if not math.isfinite(value):
            return None, "must be finite"
        return value, None
    if kind == "bool":
        if not isinstance(value, bool):
            return None, f"must be true or false, not {_type_name(value)}"
        return value, None
    if not isinstance(value, str):
        return None, f"must be a string ({kind}), not {_type_name(value)}"
    if len(value) > MAX_TEXT:
        return None, f"is longer than {MAX_TEXT} characters"
    if kind in ("date", "datetime"):
        try:
            parsed: Any = (
                date.fromisoformat(value) if kind == "date" else datetime.fromisoformat(value)
            )
        except ValueError:
            return None, f"must be an ISO 8601 {kind}"
        return parsed, None
    return value, None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _rule(f: _Field, value: Any) -> str | None:
    """Which of the column's value rules `value` breaks, if any."""
    if f.low is not None and value < f.low:
        return f"is below the minimum {f.low}"
    if f.high is not None and value > f.high:
        return f"is above the maximum {f.high}"
    if f.allowed is not None and value not in f.allowed:
        return "is not one of the allowed values"
    if f.regex is not None and not f.regex.search(value):
        return "does not match the required pattern"
    return None


def _cell(value: Any, text: bool) -> Any:
    if value is None:
        return None
    return str(value) if text else float(value)


@dataclass(frozen=True)
class _Reference:
    """What training saw of one feature, for OOD flags."""

    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    categories: frozenset[str] | None = None


def _references(baseline: dict[str, Any], names: list[str]) -> dict[str, _Reference]:
    columns = {c.get("name"): c for c in baseline.get("features", {}).get("columns", [])}
    out: dict[str, _Reference] = {}
    for name in names:
        col = columns.get(name)
        if not isinstance(col, dict) or not col.get("count"):
            continue
        if col.get("kind") == "numeric":
            count, m2 = col["count"], col.get("m2") or 0.0
            std = math.sqrt(m2 / (count - 1)) if count > 1 else 0.0
            out[name] = _Reference(low=col["min"], high=col["max"], mean=col["mean"], std=std)
        elif col.get("kind") == "categorical" and not col.get("other"):
            out[name] = _Reference(categories=frozenset(str(v) for v, _ in col["counts"]))
    return out


@dataclass
class Prediction:
    """The outcome of one predict call: one entry per record in every list."""

    predictions: list[Any]
    probabilities: list[list[float]] | None
    ood: list[list[str]]
    anomaly: list[float]
    fields: list[dict[str, Any]] = field(default_factory=list)


class ServedModel:
    """A verified model version ready to answer requests.

    >>> # built by the server from `registry.load_model(..., require_approved=True)`
    """

    def __init__(
        self,
        name: str,
        version: int,
        digest: str,
        model: LoadedModel,
        baseline: dict[str, Any],
        *,
        ood_z: float = 6.0,
    ) -> None:
        self.name = name
        self.version = version
        self.digest = digest
        self.model = model
        self.ood_z = ood_z
        self.schema = model.bundle.input_schema
        self._fields = _fields(self.schema)
        self._by_name = {f.name: f for f in self._fields}
        # Numeric pipelines run in numpy: a data frame costs more than the model on small requests.
        self._numeric_inputs = not model.preprocessor.categorical and all(
            self._by_name.get(n) is None or self._by_name[n].dtype in (*_NUMERIC, "bool")
            for n in model.preprocessor.input_features
        )
        self._refs = _references(baseline, model.features)
        prediction_profile = baseline.get("predictions") or {}
        self.prediction_baseline = prediction_profile

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def task(self) -> str:
        return self.model.bundle.task

    @property
    def classes(self) -> list[Any] | None:
        return self.model.bundle.classes

    # -- validation --------------------------------------------------------------------------

    def check(self, records: Any, max_rows: int) -> list[dict[str, Any]]:
        """Typed records, or `InvalidRecords` naming each bad row and field (the first 20)."""
        if not isinstance(records, list):
            raise InvalidRecords(
                "records must be an array of objects",
                [{"row": None, "field": None, "problem": "not an array"}],
            )
        if not records:
            raise InvalidRecords(
                "records is empty", [{"row": None, "field": None, "problem": "no records"}]
            )
        if len(records) > max_rows:
            raise InvalidRecords(
                f"{len(records)} records in one request; at most {max_rows} are allowed",
                [{"row": None, "field": None, "problem": f"more than {max_rows} records"}],
            )
        problems: list[dict[str, Any]] = []
        out: list[dict[str, Any]] = []
        fields = self._fields
        by_name = self._by_name
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append({"row": i, "field": None, "problem": "must be an object"})
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            typed: dict[str, Any] = {}
            for key in record:
                if key not in by_name:
                    problems.append(
                        {
                            "row": i,
                            "field": str(key)[:100],
                            "problem": "is not an input of the model",
                        }
                    )
            for f in fields:
                value = record.get(f.name)
                if value is None:
                    if not f.nullable:
                        problems.append({"row": i, "field": f.name, "problem": "is required"})
                    typed[f.name] = None
                    continue
                value, why = _typed(f, value)
                if why is None:
                    why = _rule(f, value)
                if why is not None:
                    problems.append({"row": i, "field": f.name, "problem": why})
                typed[f.name] = value
            if len(problems) >= MAX_PROBLEMS:
                break
            out.append(typed)
        if problems:
            problems = problems[:MAX_PROBLEMS]
            first = problems[0]
            where = f"record {first['row']}" if first["row"] is not None else "the request"
            what = f" field {first['field']!r}" if first["field"] else ""
            raise InvalidRecords(
                f"{where}{what} {first['problem']}"
                + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""),
                problems,
            )
        return out

    # -- prediction --------------------------------------------------------------------------

    def matrix(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """The estimator's input for typed rows: numpy for numeric pipelines, else polars."""
        pre = self.model.preprocessor
        features = pre.input_features
        if self._numeric_inputs:
            X = np.empty((len(rows), len(features)), dtype=np.float64)
            for i, row in enumerate(rows):
                X[i] = [np.nan if row.get(n) is None else row[n] for n in features]
            out = pre.transform_numbers(X)
            if out is not None:
                return out
        import polars as pl

        categorical = set(pre.categorical)
        schema = {n: (pl.String if n in categorical else pl.Float64) for n in features}
        columns = {n: [_cell(r.get(n), n in categorical) for r in rows] for n in features}
        return pre.transform(pl.DataFrame(columns, schema=schema))

    def out_of_distribution(
        self, rows: list[dict[str, Any]]
    ) -> tuple[list[list[str]], list[float]]:
        """Per row: the reasons it lies outside training data, and its largest |z| score."""
        reasons: list[list[str]] = [[] for _ in rows]
        anomaly = [0.0] * len(rows)
        for name, ref in self._refs.items():
            for i, row in enumerate(rows):
                value = row.get(name)
                if value is None:
                    continue
                if ref.categories is not None:
                    if str(value) not in ref.categories:
                        reasons[i].append(f"{name}: a category training never saw")
                    continue
                if ref.low is None or ref.high is None or not isinstance(value, int | float):
                    continue
                x = float(value)
                if x < ref.low:
                    reasons[i].append(f"{name}: below the training minimum {ref.low:g}")
                elif x > ref.high:
                    reasons[i].append(f"{name}: above the training maximum {ref.high:g}")
                if ref.std and ref.mean is not None:
                    z = abs(x - ref.mean) / ref.std
                    anomaly[i] = max(anomaly[i], z)
                    if z > self.ood_z:
                        reasons[i].append(f"{name}: {z:.1f} standard deviations from the mean")
        return reasons, anomaly

    def predict(self, rows: list[dict[str, Any]], *, probabilities: bool = False) -> Prediction:
        """Predict typed rows (from `check`)."""
        from aidlc.train import estimators

        kind = self.model.bundle.kind
        X = self.matrix(rows)
        out = estimators.predict(kind, self.model.estimator, X)
        if self.task == "classification":
            classes = self.classes or []
            labels: list[Any] = [classes[int(i)] for i in out]
        else:
            labels = [float(v) for v in out]
        proba = None
        if probabilities and self.task == "classification":
            p = estimators.predict_proba(kind, self.model.estimator, X)
            proba = None if p is None else p.tolist()
        ood, anomaly = self.out_of_distribution(rows)
        return Prediction(labels, proba, ood, anomaly)

    def describe(self) -> dict[str, Any]:
        """The V2 protocol's model metadata, with aidlc's schema beside it."""
        dtypes = {"int": "INT64", "float": "FP64", "bool": "BOOL"}
        inputs = [
            {"name": f.name, "datatype": dtypes.get(f.dtype, "BYTES"), "shape": [-1]}
            for f in self._fields
        ]
        out_type = "BYTES" if self.task == "classification" else "FP64"
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": f"aidlc-{self.model.bundle.flavor}",
            "inputs": inputs,
            "outputs": [{"name": "predict", "datatype": out_type, "shape": [-1]}],
        }
