"""The model bundle: the directory of files that is signed, and the loaded model that serves.

A bundle holds `aidlc-model.json` (task, target, classes, how the model runs, the input and output
schema) beside the model's files, all in formats that cannot run code on load. Models trained by
`aidlc train` (format 1) hold their fitted preprocessing as plain JSON and one estimator file, and
their bytes are a pure function of the fitted model. Imported models (format 2) hold the file the
user brought: run by aidlc's own code (XGBoost, LightGBM), as an audited scikit-learn object on a
data frame, or by ONNX Runtime, which may serve a scikit-learn model converted at import while
its skops file stays beside it as the reference the conversion was proven against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aidlc.errors import IntegrityError, InvalidInput
from aidlc.registry import formats
from aidlc.train.preprocess import Preprocessor

if TYPE_CHECKING:
    from aidlc.registry.runtime import Runtime

MANIFEST = "aidlc-model.json"
_MAX_MANIFEST = 16 * 1024 * 1024
_TASKS = ("classification", "regression")
# How a model runs: aidlc's preprocessing + estimator code, an audited scikit-learn object, ONNX.
RUNTIMES = ("aidlc", "sklearn", "onnx")
ONNX_FILE = "model.onnx"
SKOPS_FILE = "estimator.skops"


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
    runtime: str = "aidlc"
    # the model's own labels for its classes, in its order (imports); `classes` are what they
    # stand for in the data set, index for index
    model_classes: list[Any] | None = None
    # how the ONNX graph's inputs take the feature columns and which outputs say what
    onnx: dict[str, Any] | None = None
    # the skops file an ONNX conversion was proven equal to on the evaluation data
    reference_file: str | None = None
    # the polars type of each feature, for models that take a data frame
    frame_schema: dict[str, str] | None = None
    # where an imported model came from: format, file digest, producer, conversion proof
    imported: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
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
        if self.imported is None:
            return out  # models trained by aidlc keep format 1, byte for byte
        out.update(
            format=2,
            runtime=self.runtime,
            model_classes=self.model_classes,
            onnx=self.onnx,
            reference_file=self.reference_file,
            frame_schema=self.frame_schema,
            imported=self.imported,
        )
        return out

    @property
    def features(self) -> list[str]:
        return [c["name"] for c in self.input_schema]

    @property
    def files(self) -> list[str]:
        """The model files the manifest names (besides itself)."""
        return [self.estimator_file] + ([self.reference_file] if self.reference_file else [])


def output_schema(task: str, target: str, classes: list[Any] | None) -> dict[str, Any]:
    if task == "classification":
        return {"name": target, "task": task, "classes": classes}
    return {"name": target, "task": task, "dtype": "float"}


def write_manifest(directory: Path, bundle: Bundle) -> None:
    text = json.dumps(bundle.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")


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
    """Write the bundle of a model trained by aidlc into the empty directory `directory`."""
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
    write_manifest(directory, bundle)
    return bundle


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise IntegrityError(f"{MANIFEST} is malformed: {key!r} is missing or has the wrong type")
    return value


def _optional(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        raise IntegrityError(f"{MANIFEST} is malformed: {key!r} has the wrong type")
    return value


def _check_onnx_spec(spec: dict[str, Any], features: list[str], task: str) -> None:
    """Every feature feeds exactly one graph input; the outputs the runtime reads are named."""
    inputs = spec.get("inputs")
    bad = IntegrityError(f"{MANIFEST} has a malformed onnx section")
    if not isinstance(inputs, list) or not inputs:
        raise bad
    fed: list[str] = []
    for item in inputs:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("elem"), str)
            and isinstance(item.get("columns"), list)
            and all(isinstance(c, str) for c in item["columns"])
        ):
            raise bad
        fed += item["columns"]
    if sorted(fed) != sorted(features) or len(set(fed)) != len(fed):
        raise IntegrityError(f"{MANIFEST}: the onnx inputs do not take exactly the features")
    outputs = [spec.get(k) for k in ("label", "scores", "values")]
    if not all(o is None or isinstance(o, str) for o in outputs):
        raise bad
    if task == "classification" and spec.get("label") is None and spec.get("scores") is None:
        raise bad
    if task == "regression" and spec.get("values") is None:
        raise bad
    if spec.get("scores") is not None and spec.get("scores_are") not in (
        "probabilities",
        "logits",
    ):
        raise bad


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
    if not isinstance(obj, dict) or obj.get("format") not in (1, 2):
        raise IntegrityError(f"{MANIFEST} is not a format-1 or format-2 aidlc model manifest")
    task = _field(obj, "task", str)
    if task not in _TASKS:
        raise IntegrityError(f"{MANIFEST} names an unknown task")
    classes = obj.get("classes")
    if task == "classification" and (not isinstance(classes, list) or len(classes) < 2):
        raise IntegrityError(f"{MANIFEST} of a classifier lists fewer than two classes")
    schema = _field(obj, "input_schema", list)
    if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in schema):
        raise IntegrityError(f"{MANIFEST} has a malformed input schema")
    features = [c["name"] for c in schema]
    kind = _field(obj, "kind", str)
    flavor = _field(obj, "flavor", str)
    estimator_file = _field(obj, "estimator_file", str)
    common = {
        "kind": kind,
        "flavor": flavor,
        "task": task,
        "target": _field(obj, "target", str),
        "classes": classes if task == "classification" else None,
        "estimator_file": estimator_file,
        "input_schema": schema,
        "output_schema": _field(obj, "output_schema", dict),
    }
    if obj["format"] == 1:
        if formats.flavor_of(kind) != flavor:
            raise IntegrityError(f"{MANIFEST}: kind and flavor disagree")
        if estimator_file != formats.FLAVOR_FILES[flavor]:
            raise IntegrityError(f"{MANIFEST} names an unexpected estimator file")
        return Bundle(**common, preprocessing=_field(obj, "preprocessing", dict))
    runtime = _field(obj, "runtime", str)
    model_classes = _optional(obj, "model_classes", list)
    if task == "classification" and (
        model_classes is None or len(model_classes) != len(classes or [])
    ):
        raise IntegrityError(f"{MANIFEST}: model_classes and classes disagree")
    bundle = Bundle(
        **common,
        preprocessing=_field(obj, "preprocessing", dict),
        runtime=runtime,
        model_classes=model_classes if task == "classification" else None,
        onnx=_optional(obj, "onnx", dict),
        reference_file=_optional(obj, "reference_file", str),
        frame_schema=_optional(obj, "frame_schema", dict),
        imported=_field(obj, "imported", dict),
    )
    if runtime == "aidlc":
        if (
            flavor not in formats.BOOSTER_FILES
            or estimator_file not in formats.BOOSTER_FILES[flavor]
        ):
            raise IntegrityError(f"{MANIFEST} names an unexpected estimator file")
    elif runtime == "sklearn":
        if (flavor, estimator_file) != ("sklearn", SKOPS_FILE) or bundle.frame_schema is None:
            raise IntegrityError(f"{MANIFEST} describes a scikit-learn model inconsistently")
        if sorted(bundle.frame_schema) != sorted(features):
            raise IntegrityError(f"{MANIFEST}: the frame schema does not list the features")
    elif runtime == "onnx":
        if estimator_file != ONNX_FILE or bundle.onnx is None:
            raise IntegrityError(f"{MANIFEST} describes an ONNX model inconsistently")
        if bundle.reference_file not in (None, SKOPS_FILE):
            raise IntegrityError(f"{MANIFEST} names an unexpected reference file")
        _check_onnx_spec(bundle.onnx, features, task)
    else:
        raise IntegrityError(f"{MANIFEST} names an unknown runtime")
    return bundle


class LoadedModel:
    """A verified, deserialized model ready to predict: aidlc's preprocessing plus estimator, or
    the runtime of an imported model (`runtime`), which takes the feature columns as they are."""

    def __init__(
        self,
        bundle: Bundle,
        preprocessor: Preprocessor,
        estimator: Any,
        runtime: Runtime | None = None,
    ) -> None:
        self.bundle = bundle
        self.preprocessor = preprocessor
        self.estimator = estimator
        self.runtime = runtime

    @property
    def features(self) -> list[str]:
        return self.bundle.features

    def matrix(self, rows: Any) -> np.ndarray:
        """The estimator's input for a polars DataFrame (or anything polars can read)."""
        import polars as pl

        frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows)
        return self.preprocessor.transform(frame)

    def outputs(self, rows: Any, *, probabilities: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(class indices or values, class probabilities or None) for a polars DataFrame."""
        import polars as pl

        from aidlc.train import estimators

        frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows)
        if self.runtime is not None:
            return self.runtime.run(self.runtime.columns_of(frame), probabilities=probabilities)
        X = self.matrix(frame)
        out = estimators.predict(self.bundle.kind, self.estimator, X)
        proba = None
        if probabilities and self.bundle.task == "classification":
            proba = estimators.predict_proba(self.bundle.kind, self.estimator, X)
        return out, proba

    def predict(self, rows: Any) -> list[Any]:
        """Predicted labels (classifiers) or values (regressors), one per row."""
        out, _ = self.outputs(rows, probabilities=False)
        if self.bundle.task == "classification":
            classes = self.bundle.classes or []
            return [classes[int(i)] for i in out]
        return [float(v) for v in out]

    def predict_proba(self, rows: Any) -> list[list[float]] | None:
        """Class probabilities in the order of `bundle.classes`; None for regressors."""
        if self.bundle.task != "classification":
            return None
        _, proba = self.outputs(rows, probabilities=True)
        return None if proba is None else proba.tolist()


def read_bundle(directory: Path) -> LoadedModel:
    """Deserialize a bundle. Call this only on files whose signature has been verified."""
    bundle = read_manifest(directory)
    if bundle.runtime == "aidlc":
        preprocessor = Preprocessor.from_json(bundle.preprocessing)
        if bundle.imported is None:
            estimator = formats.load_estimator(bundle.flavor, directory)
        else:
            estimator = formats.load_estimator(bundle.flavor, directory, bundle.estimator_file)
        return LoadedModel(bundle, preprocessor, estimator)
    from aidlc.registry import runtime

    built = runtime.load(bundle, directory)
    identity = Preprocessor(bundle.features, bundle.features, [], [])
    return LoadedModel(bundle, identity, built.model, built)
