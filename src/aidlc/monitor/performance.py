"""Performance in production, from labels sent to `/v1/feedback`, against the training metrics.

Classifiers: accuracy, precision, recall and F1 (binary: of the positive class, the second of
the model's classes; more classes: macro averages) and ROC AUC when the log holds scores.
Regressors: MAE, RMSE and R². The drop is the largest fall of a higher-is-better metric below
its training value (for regressors R²), the number the `performance_drop` rule watches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MIN_LABELS", "Performance", "evaluate"]

# Fewer labelled predictions than this say too little to compare with training.
MIN_LABELS = 30
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")


@dataclass(frozen=True)
class Performance:
    labelled: int
    metrics: dict[str, float]
    training: dict[str, float]
    drop: float  # largest (training - live) over higher-is-better metrics, 0 if none
    worst: str | None  # the metric with that drop
    enough: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "labelled": self.labelled,
            "metrics": self.metrics,
            "training": self.training,
            "drop": self.drop,
            "worst": self.worst,
            "enough": self.enough,
        }


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def evaluate(
    task: str,
    classes: list[Any] | None,
    pairs: list[tuple[Any, Any]],
    training: dict[str, float],
    scores: list[float | None] | None = None,
) -> Performance:
    """Metrics of (prediction, label) pairs; compared with `training` metrics of the version.

    >>> p = evaluate("classification", ["no", "yes"], [("yes", "yes")] * 40, {"accuracy": 0.9})
    >>> p.metrics["accuracy"], p.drop
    (1.0, 0.0)
    """
    from sklearn import metrics as m

    metrics: dict[str, float] = {}
    if pairs and task == "classification":
        predicted = [_label(p) for p, _ in pairs]
        actual = [_label(t) for _, t in pairs]
        labels = [_label(c) for c in classes] if classes else sorted(set(actual) | set(predicted))
        binary = len(labels) == 2
        kwargs: dict[str, Any] = (
            {"pos_label": labels[1], "average": "binary"} if binary else {"average": "macro"}
        )
        kwargs["zero_division"] = 0.0
        metrics["accuracy"] = float(m.accuracy_score(actual, predicted))
        metrics["precision"] = float(m.precision_score(actual, predicted, labels=labels, **kwargs))
        metrics["recall"] = float(m.recall_score(actual, predicted, labels=labels, **kwargs))
        metrics["f1"] = float(m.f1_score(actual, predicted, labels=labels, **kwargs))
        if binary and scores is not None:
            scored = [(s, a) for s, a in zip(scores, actual, strict=True) if s is not None]
            if len({a for _, a in scored}) == 2:
                y = [a == labels[1] for _, a in scored]
                metrics["roc_auc"] = float(m.roc_auc_score(y, [s for s, _ in scored]))
    elif pairs:
        predicted_f = np.array([float(p) for p, _ in pairs])
        actual_f = np.array([float(t) for _, t in pairs])
        metrics["mae"] = float(m.mean_absolute_error(actual_f, predicted_f))
        metrics["rmse"] = float(math.sqrt(m.mean_squared_error(actual_f, predicted_f)))
        if len(pairs) > 1 and float(np.var(actual_f)) > 0:
            metrics["r2"] = float(m.r2_score(actual_f, predicted_f))
    drops = {
        k: training[k] - metrics[k]
        for k in HIGHER_IS_BETTER
        if k in metrics and isinstance(training.get(k), (int, float))
    }
    worst = max(drops, key=lambda k: drops[k]) if drops else None
    enough = len(pairs) >= MIN_LABELS
    drop = max(0.0, drops[worst]) if worst and enough else 0.0
    return Performance(len(pairs), metrics, dict(training), drop, worst, enough)
