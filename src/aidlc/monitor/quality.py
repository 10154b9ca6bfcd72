"""Live data quality, and the mergeable summary of one prediction log batch.

A batch of logged predictions becomes, per model version, a `BatchSummary`: the profile of its
inputs and predictions (for drift) and the counts of data quality problems (null and missing
values, values of the wrong type, unknown fields, out-of-distribution and anomalous rows) and of
latency (for cost). Summaries merge by addition, so a window costs what its batches' summaries
cost, and each batch is read once.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

from aidlc.data.profile import DatasetProfile, profile_frame
from aidlc.errors import InvalidInput

__all__ = ["ANOMALY_Z", "BatchSummary", "QualityCounts", "summarise_rows"]

# A row whose largest |z| against the training baseline exceeds this is counted as anomalous.
# Real features are skewed: on the breast cancer data 6% of the training rows themselves have
# some |z| > 4 and 2% some |z| > 6, so the bar is high and the default rule (anomaly rate above
# 10%) watches for bursts far beyond what the training data shows.
ANOMALY_Z = 6.0
PREDICTION = "prediction"


@dataclass
class QualityCounts:
    """Counts of problems in live inputs; `merge` adds them."""

    rows: int = 0
    ood: int = 0
    anomalies: int = 0
    unknown_fields: int = 0
    latency_ms: float = 0.0
    nulls: Counter[str] = field(default_factory=Counter)  # present but null
    missing: Counter[str] = field(default_factory=Counter)  # key absent
    type_errors: Counter[str] = field(default_factory=Counter)  # wrong type for the feature

    def merge(self, other: QualityCounts) -> QualityCounts:
        return QualityCounts(
            self.rows + other.rows,
            self.ood + other.ood,
            self.anomalies + other.anomalies,
            self.unknown_fields + other.unknown_fields,
            self.latency_ms + other.latency_ms,
            self.nulls + other.nulls,
            self.missing + other.missing,
            self.type_errors + other.type_errors,
        )

    def rates(self, features: list[str]) -> dict[str, Any]:
        """Per-feature null rates (nulls and missing keys) and the overall problem rates."""
        n = self.rows
        share = (lambda k: k / n) if n else (lambda k: 0.0)
        null_rates = {f: share(self.nulls[f] + self.missing[f]) for f in features}
        bad_rows = sum(self.type_errors.values()) + self.unknown_fields
        return {
            "rows": n,
            "ood_rate": share(self.ood),
            "anomaly_rate": share(self.anomalies),
            "null_rate": max(null_rates.values(), default=0.0),
            "null_rates": null_rates,
            "schema_violation_rate": min(1.0, share(bad_rows)),
            "type_errors": dict(self.type_errors),
            "unknown_fields": self.unknown_fields,
            "mean_latency_ms": self.latency_ms / n if n else 0.0,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ood": self.ood,
            "anomalies": self.anomalies,
            "unknown_fields": self.unknown_fields,
            "latency_ms": self.latency_ms,
            "nulls": dict(self.nulls),
            "missing": dict(self.missing),
            "type_errors": dict(self.type_errors),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> QualityCounts:
        try:
            return cls(
                int(doc["rows"]),
                int(doc["ood"]),
                int(doc["anomalies"]),
                int(doc["unknown_fields"]),
                float(doc["latency_ms"]),
                Counter({str(k): int(v) for k, v in doc["nulls"].items()}),
                Counter({str(k): int(v) for k, v in doc["missing"].items()}),
                Counter({str(k): int(v) for k, v in doc["type_errors"].items()}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"a batch summary is malformed: {exc}") from None


@dataclass
class BatchSummary:
    """Profile of inputs (+ a `prediction` column) and quality counts of one model version."""

    profile: DatasetProfile
    quality: QualityCounts

    def merge(self, other: BatchSummary) -> BatchSummary:
        return BatchSummary(self.profile.merge(other.profile), self.quality.merge(other.quality))

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile.to_json(), "quality": self.quality.to_json()}

    @classmethod
    def from_json(cls, doc: Any) -> BatchSummary:
        if not isinstance(doc, dict) or set(doc) != {"profile", "quality"}:
            raise InvalidInput("a batch summary must have `profile` and `quality`")
        return cls(
            DatasetProfile.from_json(doc["profile"]), QualityCounts.from_json(doc["quality"])
        )


def _number(value: Any) -> float | bool | None:
    """A numeric feature's value as float, None for null, False when it is not a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value)


def summarise_rows(
    rows: list[dict[str, Any]], features: dict[str, str], task: str
) -> dict[int, BatchSummary]:
    """Summaries per model version of logged prediction rows.

    `features` maps each input feature to its baseline kind ("numeric" or "categorical");
    the profiles have exactly these columns plus `prediction`, so any two summaries of one
    model merge.
    """
    by_version: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_version.setdefault(int(row.get("version") or 0), []).append(row)
    return {v: _summarise(part, features, task) for v, part in by_version.items()}


def _summarise(rows: list[dict[str, Any]], features: dict[str, str], task: str) -> BatchSummary:
    counts = QualityCounts(rows=len(rows))
    columns: dict[str, list[Any]] = {name: [] for name in features}
    outputs: list[Any] = []
    for row in rows:
        counts.ood += bool(row.get("ood"))
        anomaly = row.get("anomaly")
        if isinstance(anomaly, (int, float)) and math.isfinite(anomaly) and anomaly > ANOMALY_Z:
            counts.anomalies += 1
        latency = row.get("latency_ms")
        if isinstance(latency, (int, float)) and math.isfinite(latency):
            counts.latency_ms += float(latency)
        try:
            inputs = orjson.loads(row.get("inputs") or "{}")
        except orjson.JSONDecodeError:
            inputs = None
        if not isinstance(inputs, dict):
            counts.unknown_fields += 1
            inputs = {}
        counts.unknown_fields += len(set(inputs) - set(features))
        for name, kind in features.items():
            if name not in inputs:
                counts.missing[name] += 1
                columns[name].append(None)
                continue
            value = inputs[name]
            if value is None:
                counts.nulls[name] += 1
                columns[name].append(None)
            elif kind == "numeric":
                number = _number(value)
                if number is False:
                    counts.type_errors[name] += 1
                    columns[name].append(None)
                else:
                    columns[name].append(number)
            else:
                columns[name].append(value if isinstance(value, str) else str(value))
        try:
            output = orjson.loads(row.get("output") or "null")
        except orjson.JSONDecodeError:
            output = None
        outputs.append(_output(output, task))
    data: dict[str, pl.Series] = {}
    for name, kind in features.items():
        dtype = pl.Float64 if kind == "numeric" else pl.String
        data[name] = pl.Series(name, columns[name], dtype=dtype)
    out_dtype = pl.String if task == "classification" else pl.Float64
    data[PREDICTION] = pl.Series(PREDICTION, outputs, dtype=out_dtype)
    categorical = [n for n, k in features.items() if k != "numeric"]
    if task == "classification":
        categorical.append(PREDICTION)
    profile = profile_frame(pl.DataFrame(data), categorical=categorical)
    return BatchSummary(profile, counts)


def _output(value: Any, task: str) -> Any:
    if task == "classification":
        return None if value is None else str(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
