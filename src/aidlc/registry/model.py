"""The model bundle: the directory of files that is signed, and the loaded model that serves.

A bundle holds `aidlc-model.json` (task, target, classes, the fitted preprocessing as plain JSON,
the input and output schema) beside one estimator file in a format that cannot run code on load.
Its bytes are a pure function of the fitted model, so equal models have equal digests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aidlc.errors import IntegrityError, InvalidInput
from aidlc.registry import formats
from aidlc.train.preprocess import Preprocessor

MANIFEST = "aidlc-model.json"
_MAX_MANIFEST = 16 * 1024 * 1024
_TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Bundle:
    """What `aidlc-model.json` says about a model."""

    kind: str
    flavor: str
    task: str
    target: str
    classes: list[Any] | None
    preprocessing: dict[str, Any]
    estimator_file: str
    input_schema: list[dict[str, Any]]
    output_schema: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "kind": self.kind,
            "flavor": self.flavor,
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "preprocessing": self.preprocessing,
            "estimator_file": self.estimator_file,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    @property
    def features(self) -> list[str]:
        return [c["name"] for c in self.input_schema]


def output_schema(task: str, target: str, classes: list[Any] | None) -> dict[str, Any]:
    if task == "classification":
        return {"name": target, "task": task, "classes": classes}
    return {"name": target, "task": task, "dtype": "float"}


def write_bundle(
    directory: Path,
    *,
    kind: str,
    model: Any,
    preprocessor: Preprocessor,
    task: str,
    target: str,
    classes: list[Any] | None,
    input_schema: list[dict[str, Any]],
) -> Bundle:
    """Write the bundle's files into the empty directory `directory`."""
    if task not in _TASKS:
        raise InvalidInput(f"unknown task {task!r}")
    directory.mkdir(parents=True, exist_ok=True)
    estimator_file = formats.save_estimator(kind, model, directory)
    bundle = Bundle(
        kind=kind,
        flavor=formats.flavor_of(kind),
        task=task,
        target=target,
        classes=classes,
        preprocessing=preprocessor.to_json(),
        estimator_file=estimator_file,
        input_schema=input_schema,
        output_schema=output_schema(task, target, classes),
    )
    text = json.dumps(bundle.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")
    return bundle


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise IntegrityError(f"{MANIFEST} is malformed: {key!r} is missing or has the wrong type")
    return value


def read_manifest(directory: Path) -> Bundle:
    path = directory / MANIFEST
    try:
        raw = path.read_bytes()
    except OSError:
        raise IntegrityError(f"the model has no readable {MANIFEST}") from None
    if len(raw) > _MAX_MANIFEST:
        raise IntegrityError(f"{MANIFEST} is larger than {_MAX_MANIFEST} bytes")
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise IntegrityError(f"{MANIFEST} is not JSON") from None
    if not isinstance(obj, dict) or obj.get("format") != 1:
        raise IntegrityError(f"{MANIFEST} is not a format-1 aidlc model manifest")
    task = _field(obj, "task", str)
    if task not in _TASKS:
        raise IntegrityError(f"{MANIFEST} names an unknown task")
    classes = obj.get("classes")
    if task == "classification" and (not isinstance(classes, list) or len(classes) < 2):
        raise IntegrityError(f"{MANIFEST} of a classifier lists fewer than two classes")
    schema = _field(obj, "input_schema", list)
    if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in schema):
        raise IntegrityError(f"{MANIFEST} has a malformed input schema")
    kind = _field(obj, "kind", str)
    flavor = _field(obj, "flavor", str)
    if formats.flavor_of(kind) != flavor:
        raise IntegrityError(f"{MANIFEST}: kind and flavor disagree")
    estimator_file = _field(obj, "estimator_file", str)
    if estimator_file != formats.FLAVOR_FILES[flavor]:
        raise IntegrityError(f"{MANIFEST} names an unexpected estimator file")
    return Bundle(
        kind=kind,
        flavor=flavor,
        task=task,
        target=_field(obj, "target", str),
        classes=classes if task == "classification" else None,
        preprocessing=_field(obj, "preprocessing", dict),
        estimator_file=estimator_file,
        input_schema=schema,
        output_schema=_field(obj, "output_schema", dict),
    )


class LoadedModel:
    """A verified, deserialized model: preprocessing plus estimator, ready to predict."""

    def __init__(self, bundle: Bundle, preprocessor: Preprocessor, estimator: Any) -> None:
        self.bundle = bundle
        self.preprocessor = preprocessor
        self.estimator = estimator

    @property
    def features(self) -> list[str]:
        return self.bundle.features

    def matrix(self, rows: Any) -> np.ndarray:
        """The estimator's input for a polars DataFrame (or anything polars can read)."""
        import polars as pl

        frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows)
        return self.preprocessor.transform(frame)

    def predict(self, rows: Any) -> list[Any]:
        """Predicted labels (classifiers) or values (regressors), one per row."""
        from aidlc.train import estimators

        out = estimators.predict(self.bundle.kind, self.estimator, self.matrix(rows))
        if self.bundle.task == "classification":
            classes = self.bundle.classes or []
            return [classes[int(i)] for i in out]
        return [float(v) for v in out]

    def predict_proba(self, rows: Any) -> list[list[float]] | None:
        """Class probabilities in the order of `bundle.classes`; None for regressors."""
        from aidlc.train import estimators

        proba = estimators.predict_proba(self.bundle.kind, self.estimator, self.matrix(rows))
        return None if proba is None else proba.tolist()


def read_bundle(directory: Path) -> LoadedModel:
    """Deserialize a bundle. Call this only on files whose signature has been verified."""
    bundle = read_manifest(directory)
    preprocessor = Preprocessor.from_json(bundle.preprocessing)
    estimator = formats.load_estimator(bundle.flavor, directory)
    return LoadedModel(bundle, preprocessor, estimator)
