"""Bring a model trained elsewhere under every guarantee: read it from a file, an MLflow model
directory or a Python object without running its code, judge it on validated data (metrics,
gates, baseline), and register it signed, like a model `aidlc train` made.

aidlc judges the model, not the notebook: the input schema comes from the data contract of the
version it was trained on, and its metrics, gates and drift baseline are computed here, on a
held-out validated version the importer names (or, marked in-sample, on the training version).
A scikit-learn model that ONNX Runtime can run, with predictions proven equal on the evaluation
data, is served from ONNX with its skops file kept as the reference.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aidlc.errors import (
    AidlcError,
    ConfigError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ValidationFailed,
)
from aidlc.registry import formats, runtime
from aidlc.registry.model import ONNX_FILE, SKOPS_FILE, Bundle, output_schema, write_manifest

if TYPE_CHECKING:
    import polars as pl

    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import Contract
    from aidlc.data.versions import DatasetVersion
    from aidlc.registry.mlflowdir import MlflowModel
    from aidlc.registry.versions import ModelVersion
    from aidlc.train.tracking import Run

MAX_SOURCE_BYTES = 2 * 1024**3
MIN_EVALUATION_ROWS = 10
# How close ONNX Runtime must come to scikit-learn on every evaluation row for the converted
# graph to be served: labels equal, probabilities within this (absolute), values within this
# times (1 + |value|). ONNX runs in float32, scikit-learn in float64.
CONVERSION_TOLERANCE = 1e-4
FORMATS = ("skops", "onnx", "xgboost-ubj", "xgboost-json", "lightgbm-text", "lightgbm-skops")
_UNNAMED_LIGHTGBM = re.compile(r"Column_\d+")
_ACCEPTED = (
    "a skops file of a scikit-learn model, an ONNX model, an XGBoost .ubj/.json or LightGBM "
    ".txt model file, or an MLflow model directory"
)
Progress = Callable[[str], None]


@dataclass
class Candidate:
    """A model read from what the user brought, before aidlc has judged it."""

    source_format: str  # one of FORMATS
    file_name: str  # the bundle file it is kept as
    data: bytes  # the model file's bytes, as given
    kind: str
    flavor: str
    runtime: str  # "aidlc" (boosters), "sklearn" or "onnx"
    model: Any  # the scikit-learn object, the booster, or the ONNX facts
    input_names: list[str] | None  # the model's own input names, in its order
    task: str | None  # what the model says it is, None when it cannot say
    model_classes: list[Any] | None  # the model's own class labels
    producer: dict[str, Any] = field(default_factory=dict)
    declared: dict[str, Any] = field(default_factory=dict)  # what an MLflow directory says
    named_inputs: bool = True  # a scikit-learn model fitted on named columns
    mlflow: MlflowModel | None = None
    _session: Any = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def session(self) -> Any:
        """The ONNX Runtime session of an ONNX candidate, made once (large graphs take
        seconds to load)."""
        from aidlc.registry import onnxfile

        if self._session is None:
            self._session = onnxfile.onnx_session(self.data, threads=_threads())
        return self._session


# -- reading what the user brought --------------------------------------------------------------


def _as_input(exc: AidlcError) -> InvalidInput:
    return InvalidInput(exc.message, hint=exc.hint)


def _checked(work: Callable[[], Any]) -> Any:
    """Refusals of a file the user brings are input errors (exit 2, HTTP 422)."""
    try:
        return work()
    except IntegrityError as exc:
        raise _as_input(exc) from None


def _plain(value: Any) -> Any:
    """A class label as plain JSON (numpy scalars and bytes become Python values)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str | int | float | bool):
        raise InvalidInput(f"a class label of type {type(value).__name__} cannot be served")
    return value


def _from_skops(data: bytes, name: str) -> Candidate:
    import sklearn
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import InconsistentVersionWarning, NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from aidlc.registry import skopsaudit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        model = skopsaudit.load_skops(data, name=name)
    made_with = next(
        (
            str(w.message.original_sklearn_version)
            for w in caught
            if isinstance(w.message, InconsistentVersionWarning)
        ),
        sklearn.__version__,
    )
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(f"{name} holds a {type(model).__name__}, which cannot predict")
    try:
        check_is_fitted(model)
    except (NotFittedError, TypeError):
        raise InvalidInput(
            f"the {type(model).__name__} in {name} is not fitted", hint="fit it, then save it"
        ) from None
    if is_classifier(model):
        task: str | None = "classification"
        classes = [_plain(c) for c in np.asarray(model.classes_).tolist()]
    elif is_regressor(model):
        task, classes = "regression", None
    else:
        raise InvalidInput(f"a {type(model).__name__} is neither a classifier nor a regressor")
    names = getattr(model, "feature_names_in_", None)
    return Candidate(
        source_format="skops",
        file_name=SKOPS_FILE,
        data=data,
        kind=f"sklearn.{type(model).__name__}",
        flavor="sklearn",
        runtime="sklearn",
        model=model,
        input_names=[str(n) for n in names] if names is not None else None,
        task=task,
        model_classes=classes,
        producer={"framework": "scikit-learn", "framework_version": made_with},
        named_inputs=names is not None,
    )


def _from_onnx(data: bytes) -> Candidate:
    from aidlc.registry import onnxfile

    facts = onnxfile.inspect_onnx(data)
    per_column = all(len(i.shape) == 1 or i.shape[1:] == (1,) for i in facts.inputs)
    has_label = any(
        o.kind == "tensor" and o.elem in ("int64", "int32", "string") for o in facts.outputs
    )
    return Candidate(
        source_format="onnx",
        file_name=ONNX_FILE,
        data=data,
        kind="onnx",
        flavor="onnx",
        runtime="onnx",
        model=facts,
        input_names=[i.name for i in facts.inputs] if per_column else None,
        task="classification" if has_label else None,
        model_classes=[_plain(c) for c in facts.class_labels] if facts.class_labels else None,
        producer={
            "framework": facts.producer_name or "unknown",
            "framework_version": facts.producer_version,
            "onnx_ir_version": facts.ir_version,
            "opsets": facts.opsets,
        },
    )


def _from_booster(
    flavor: str, data: bytes, source_format: str, classes: list[Any] | None = None
) -> Candidate:
    from aidlc.train import estimators

    name = "estimator.json" if source_format == "xgboost-json" else formats.FLAVOR_FILES[flavor]
    booster = _checked(lambda: formats.load_booster(flavor, name, data))
    task = estimators.task_of(flavor, booster)
    if flavor == "xgboost":
        config = json.loads(booster.save_config())
        version = ".".join(str(v) for v in config.get("version", []))
        if any(t == "c" for t in booster.feature_types or []):
            raise InvalidInput(
                "the XGBoost model has categorical features; aidlc feeds boosters numbers",
                hint="encode the categories as numbers, or export the model to ONNX",
            )
        names = booster.feature_names
    else:
        header = data[: data.find(b"\nTree=")].decode("utf-8", "replace")
        version = next((ln[8:] for ln in header.splitlines() if ln.startswith("version=")), "")
        tail = data[data.rfind(b"pandas_categorical:") :].decode("utf-8", "replace")
        if tail.strip() not in ("pandas_categorical:null", "pandas_categorical:[]"):
            raise InvalidInput(
                "the LightGBM model maps pandas categories, which aidlc cannot reproduce",
                hint="encode the categories as numbers, or export the model to ONNX",
            )
        names = booster.feature_name()
        if all(_UNNAMED_LIGHTGBM.fullmatch(n) for n in names):
            names = None
    return Candidate(
        source_format=source_format,
        file_name=name,
        data=data,
        kind=flavor,
        flavor=flavor,
        runtime="aidlc",
        model=booster,
        input_names=list(names) if names else None,
        task=task,
        model_classes=classes,
        producer={"framework": flavor, "framework_version": version},
    )


def _threads() -> int:
    # evaluation is a batch job: every core the process may use
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _is_onnx(name: str, data: bytes) -> bool:
    # a ModelProto's first field is its ir_version (field 1, varint: byte 0x08)
    return name.lower().endswith(".onnx") or data[:1] == b"\x08"


def _from_bytes(data: bytes, name: str) -> Candidate:
    """Tell the format from the bytes (never from a name alone) and read it."""
    _checked(lambda: formats.refuse_pickle(name, data[:4096]))
    if data.startswith(b"PK\x03\x04"):
        return _from_skops(data, name)
    if data.startswith(b"tree\n"):
        return _from_booster("lightgbm", data, "lightgbm-text")
    if data.startswith(b"{"):
        # JSON follows its brace with a quote or white space, UBJSON with a type marker
        json_like = data[1:2] in (b'"', b" ", b"\n", b"\r", b"\t", b"}")
        return _from_booster("xgboost", data, "xgboost-json" if json_like else "xgboost-ubj")
    if _is_onnx(name, data):
        return _from_onnx(data)
    raise InvalidInput(
        f"cannot tell what kind of model {name} is", hint=f"aidlc imports {_ACCEPTED}"
    )


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(4096)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc.strerror or exc}") from None


def _read_file(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise InvalidInput(f"{path.name} is not a regular file")
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise InvalidInput(f"{path.name} is larger than {MAX_SOURCE_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc.strerror or exc}") from None


def _read_onnx(path: Path) -> bytes:
    """An ONNX file with any external data (from its own folder only) inlined."""
    from aidlc.registry import onnxfile

    return onnxfile.load_onnx_file(path)


def _from_mlflow(directory: Path) -> Candidate:
    from aidlc.registry import mlflowdir, skopsaudit

    found = mlflowdir.read_mlflow_dir(directory)
    fmt = found.artifact_format
    # the bytes loaded are the bytes checked: read once, refused if they are a pickle
    data = _read_onnx(found.artifact) if fmt == "onnx" else _read_file(found.artifact)
    _checked(lambda: formats.refuse_pickle(found.artifact.name, data[:4096]))
    if fmt == "lightgbm-skops":
        text, classes = skopsaudit.lightgbm_from_skops(data, name=found.artifact.name)
        candidate = _from_booster(
            "lightgbm",
            text.encode("utf-8"),
            "lightgbm-skops",
            [_plain(c) for c in classes] if classes is not None else None,
        )
    elif fmt == "skops":
        candidate = _from_skops(data, found.artifact.name)
    elif fmt == "onnx":
        candidate = _from_onnx(data)
    elif fmt in ("xgboost-ubj", "xgboost-json"):
        candidate = _from_booster("xgboost", data, fmt)
    elif fmt == "lightgbm-text":
        candidate = _from_booster("lightgbm", data, fmt)
    else:
        raise InvalidInput(f"aidlc cannot import an MLflow {found.flavor} model saved as {fmt}")
    candidate.mlflow = found
    candidate.declared = {"mlflow": found.facts}
    return candidate


def _from_object(model: Any) -> Candidate:
    """Serialize a fitted Python object to its safe file format, then read it back as a file:
    what is registered is exactly what a later load will see."""
    cls = type(model)
    package = cls.__module__.partition(".")[0]
    if package == "xgboost":
        import xgboost as xgb

        if isinstance(model, xgb.Booster | xgb.XGBModel):
            booster = formats.from_xgboost_object(model)
            return _from_booster("xgboost", bytes(booster.save_raw("ubj")), "xgboost-ubj")
    if package == "lightgbm":
        import lightgbm as lgb

        if isinstance(model, lgb.Booster | lgb.LGBMModel):
            booster = formats.from_lightgbm_object(model)
            classes = getattr(model, "classes_", None) if isinstance(model, lgb.LGBMModel) else None
            labels = (
                [_plain(c) for c in np.asarray(classes).tolist()] if classes is not None else None
            )
            return _from_booster(
                "lightgbm", booster.model_to_string().encode("utf-8"), "lightgbm-text", labels
            )
    if package == "onnx" and hasattr(model, "SerializeToString"):
        return _from_onnx(model.SerializeToString())
    if package == "sklearn" or hasattr(model, "_get_tags") or hasattr(model, "__sklearn_tags__"):
        import skops.io

        try:
            data = skops.io.dumps(model)
        except Exception as exc:  # skops raises whatever the object's state makes it raise
            raise InvalidInput(
                f"the {cls.__name__} cannot be saved in skops format: {type(exc).__name__}"
            ) from None
        return _from_skops(data, f"the {cls.__name__}")
    raise InvalidInput(
        f"cannot import a {cls.__module__}.{cls.__qualname__}",
        hint=f"aidlc imports {_ACCEPTED}, or a fitted scikit-learn, XGBoost or LightGBM model "
        "or an onnx.ModelProto from Python",
    )


def read_source(source: Any) -> Candidate:
    """A candidate from a path (file or MLflow directory) or a fitted Python object."""
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            from aidlc.registry import mlflowdir

            if not mlflowdir.is_mlflow_dir(path):
                raise InvalidInput(
                    f"{path.name} is a directory without an MLmodel file",
                    hint=f"aidlc imports {_ACCEPTED}",
                )
            return _from_mlflow(path)
        if not path.exists():
            raise NotFound(f"no file {str(path)[:200]}")
        head = _read_head(path)
        _checked(lambda: formats.refuse_pickle(path.name, head))
        if _is_onnx(path.name, head):
            return _from_onnx(_read_onnx(path))
        return _from_bytes(_read_file(path), path.name)
    return _from_object(source)


# -- judging it on validated data ---------------------------------------------------------------


def _resolve(ws: Workspace, ref: str, what: str) -> DatasetVersion:
    from aidlc.data import versions

    try:
        return versions.resolve(ws, ref)
    except NotFound as exc:
        raise NotFound(
            f"{what} {ref[:80]!r}: {exc.message}",
            hint="only versions that passed the data gate can be used; see aidlc data versions",
        ) from None


def _features(
    candidate: Candidate,
    given: Sequence[str] | None,
    contract: Contract,
    target: str,
    dataset: str,
) -> list[str]:
    names = candidate.input_names
    if given is not None:
        given = list(given)
        if not given or len(set(given)) != len(given):
            raise InvalidInput("--features must name distinct columns")
    if names is None and given is None:
        raise InvalidInput(
            "the model does not name its inputs",
            hint="give --features: the columns it takes, in its input order",
        )
    if names is not None and given is not None and set(names) != set(given):
        extra = sorted(set(given) - set(names))[:5]
        lacking = sorted(set(names) - set(given))[:5]
        raise InvalidInput(
            "--features disagree with the model's own input names"
            + (f"; the model does not take {', '.join(extra)}" if extra else "")
            + (f"; the model also needs {', '.join(lacking)}" if lacking else "")
        )
    chosen = list(names if names is not None else given or [])
    columns = {c.name: c for c in contract.columns}
    for name in chosen:
        spec = columns.get(name)
        if spec is None:
            raise InvalidInput(f"the model takes {name[:80]!r}, which is not a column of {dataset}")
        if name == target:
            raise InvalidInput(f"the model takes the target {target!r} as an input")
        if spec.subject_id:
            raise InvalidInput(
                f"the model takes {name!r}, {dataset}'s subject id; a model may not take it",
                hint="retrain it without the id column",
            )
    return chosen


def _task(candidate: Candidate, task: str | None, contract: Contract, target: str) -> str:
    if task is not None and task not in ("classification", "regression"):
        raise InvalidInput(f"--task is classification or regression, not {task[:40]!r}")
    if task is not None and candidate.task is not None and task != candidate.task:
        raise InvalidInput(f"--task {task} disagrees with the model, which is a {candidate.task}")
    if task or candidate.task:
        return str(task or candidate.task)
    spec = next(c for c in contract.columns if c.name == target)
    return "regression" if spec.dtype == "float" else "classification"


def _sort_key(value: Any) -> tuple[str, Any]:
    return (str(type(value)), value)


def _classes(
    candidate: Candidate, given: Sequence[Any] | None, labels: list[Any], target: str, ds: str
) -> tuple[list[Any], list[Any]]:
    """(served classes, the model's own labels): what each of the model's classes stands for
    in the data set, index for index."""
    own = candidate.model_classes
    if given is not None:
        given = [_plain(c) for c in given]
        if own is not None and len(given) != len(own):
            raise InvalidInput(f"--classes names {len(given)} classes; the model has {len(own)}")
        if len(set(map(runtime._key, given))) != len(given):
            raise InvalidInput("--classes must be distinct")
        return given, own if own is not None else list(range(len(given)))
    if own is not None:
        if {runtime._key(c) for c in own} >= {runtime._key(v) for v in labels}:
            return own, own
        raise InvalidInput(
            f"the model's classes {own[:6]} are not the labels of {target} in {ds} ({labels[:6]})",
            hint="say what each of the model's classes stands for with --classes, in its order",
        )
    # a booster or graph that predicts class indices: they index the sorted labels, as in
    # aidlc train
    return labels, list(range(len(labels)))


def _check_disjoint(
    ws: Workspace,
    train: DatasetVersion,
    evaluation: DatasetVersion,
    frames: tuple[pl.DataFrame, pl.DataFrame],
    columns: list[str],
) -> None:
    import polars as pl

    from aidlc.core import objects
    from aidlc.data.ingest import row_hashes

    if evaluation.ref == train.ref:
        raise InvalidInput(
            f"--evaluate-on {evaluation.ref} is the version the model was trained on",
            hint="name a held-out version, or leave --evaluate-on out (in-sample metrics)",
        )
    if train.columns == evaluation.columns:
        # the data set's own row identity: every column, ids included
        seen = [
            pl.read_parquet(io.BytesIO(objects.get_ref(ws, v.hashes_object)))["h"]
            for v in (train, evaluation)
        ]
    else:
        seen = [row_hashes(frame.select(columns)) for frame in frames]
    shared = int(seen[1].is_in(seen[0].implode()).sum())
    if shared:
        raise ValidationFailed(
            f"{shared} rows of {evaluation.ref} also appear in {train.ref}; a held-out version "
            "shares no row with the training data",
            hint="evaluate on rows the model never saw",
        )


@dataclass
class _Judged:
    """What aidlc computed about a candidate on validated data."""

    features: list[str]
    task: str
    classes: list[Any] | None
    model_classes: list[Any] | None
    metrics: dict[str, float]
    gates: list[dict[str, Any]]
    gates_passed: bool
    predictions: list[Any]
    rows: int
    dropped: int


def _metrics_wanted(task: str, gates: Sequence[Any], proba: bool) -> list[str]:
    from aidlc.train.config import METRICS, default_metrics

    wanted = [m for m in default_metrics(task) if proba or m not in ("roc_auc", "log_loss")]
    for gate in gates:
        if gate.metric not in METRICS[task]:
            raise ConfigError(
                f"gate {gate.text!r} names {gate.metric}, not a {task} metric",
                hint=f"use one of: {', '.join(METRICS[task])}",
            )
        if gate.metric not in wanted and (proba or gate.metric not in ("roc_auc", "log_loss")):
            wanted.append(gate.metric)
    return wanted


def _frame_schema(frame: pl.DataFrame, features: list[str]) -> dict[str, str]:
    return {f: runtime.frame_type(frame.schema[f]) for f in features}


def _runner(
    candidate: Candidate, bundle: Bundle, frame: pl.DataFrame
) -> Callable[[pl.DataFrame, bool], tuple[np.ndarray, np.ndarray | None]]:
    """Predict a frame the way a later load of `bundle` will."""
    from aidlc.registry.model import LoadedModel
    from aidlc.train.preprocess import Preprocessor

    if candidate.runtime == "aidlc":
        pre = Preprocessor(bundle.features, bundle.features, [], [])
        loaded = LoadedModel(bundle, pre, candidate.model)
    elif candidate.runtime == "sklearn":
        built: runtime.Runtime = runtime.SklearnRuntime(
            candidate.model,
            bundle.features,
            bundle.frame_schema or {},
            bundle.task,
            bundle.model_classes,
            named=candidate.named_inputs,
        )
        loaded = LoadedModel(
            bundle, Preprocessor(bundle.features, bundle.features, []), None, built
        )
    else:
        built = runtime.OnnxRuntime(
            candidate.session(), bundle.onnx or {}, bundle.task, bundle.model_classes
        )
        loaded = LoadedModel(
            bundle, Preprocessor(bundle.features, bundle.features, []), None, built
        )
    return lambda rows, proba: loaded.outputs(rows, probabilities=proba)


# -- the ONNX conversion of a scikit-learn model -------------------------------------------------


@dataclass
class _Conversion:
    record: dict[str, Any]
    data: bytes | None = None
    spec: dict[str, Any] | None = None


def _convert(
    candidate: Candidate,
    features: list[str],
    dtypes: Mapping[str, str],
    task: str,
    model_classes: list[Any] | None,
    frame: pl.DataFrame,
    reference: tuple[np.ndarray, np.ndarray | None],
) -> _Conversion:
    """Convert a scikit-learn model with skl2onnx and keep the graph only if ONNX Runtime gives
    the same labels and, within CONVERSION_TOLERANCE, the same scores on every evaluation row."""
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from aidlc.registry import onnxfile

    base: dict[str, Any] = {
        "converter": "skl2onnx",
        "converter_version": skl2onnx.__version__,
        "tolerance": CONVERSION_TOLERANCE,
    }

    def kept_skops(reason: str) -> _Conversion:
        return _Conversion({**base, "served": "skops", "reason": reason[:300]})

    numeric = ("int", "float", "bool")
    if candidate.named_inputs:
        kinds = {f: dtypes.get(f) for f in features}
        if not all(k in (*numeric, "string", "category") for k in kinds.values()):
            return kept_skops("a date or time input has no ONNX form here")
        initial = [
            (f, FloatTensorType([None, 1]) if kinds[f] in numeric else StringTensorType([None, 1]))
            for f in features
        ]
    else:
        initial = [("input", FloatTensorType([None, len(features)]))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = skl2onnx.convert_sklearn(
                candidate.model,
                initial_types=initial,
                options={"zipmap": False} if task == "classification" else None,
            )
        data = graph.SerializeToString()
        facts = onnxfile.inspect_onnx(data)
        plan = runtime.plan_onnx(facts, features, dtypes)
        spec = runtime.finish_plan(plan, task, None)
        session = onnxfile.onnx_session(data, threads=_threads())
        graph_runtime = runtime.OnnxRuntime(session, spec, task, model_classes)
        out, proba = graph_runtime.run(graph_runtime.columns_of(frame), probabilities=True)
    except AidlcError as exc:
        return kept_skops(f"the converted graph cannot run here: {exc.message}")
    except Exception as exc:  # skl2onnx raises whatever a converter does on a model it lacks
        root = _root_cause(exc)
        first = (str(root).strip().splitlines() or [""])[0]
        return kept_skops(f"skl2onnx cannot convert it ({type(root).__name__}: {first[:160]})")
    want, want_proba = reference
    record = {**base, "rows": len(out), "opsets": facts.opsets}
    if task == "classification":
        mismatched = int((out != want).sum())
        record["labels_equal"] = mismatched == 0
        diff = (
            float(np.abs(proba - want_proba).max())
            if proba is not None and want_proba is not None
            else 0.0
        )
        record["max_abs_diff"] = diff
        if mismatched or diff > CONVERSION_TOLERANCE:
            return kept_skops(
                f"ONNX Runtime disagreed on {mismatched} labels (largest score difference "
                f"{diff:.2g}) of {len(out)} evaluation rows"
            )
    else:
        scaled = np.abs(out - want) / (1.0 + np.abs(want))
        record["max_rel_diff"] = float(scaled.max()) if len(scaled) else 0.0
        if record["max_rel_diff"] > CONVERSION_TOLERANCE:
            return kept_skops(
                f"ONNX Runtime's values differ by up to {record['max_rel_diff']:.2g} "
                "(relative) on the evaluation rows"
            )
    return _Conversion({**record, "served": "onnx"}, data, spec)


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain: skl2onnx wraps its converters' errors in a
    ValueError whose message is a dump of the node's attributes."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


# -- the service function -----------------------------------------------------------------------


def _input_schema(
    ws: Workspace, dataset: dict[str, Any], features: list[str], onnx: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    from aidlc.registry.versions import schema_of

    schema = schema_of(ws, [dataset], features)
    if onnx is None:
        return schema
    # A graph input of text or integers has no null: the request check says so, by field.
    strict = {
        c for i in onnx["inputs"] if i["elem"] not in ("float", "double") for c in i["columns"]
    }
    return [{**s, "nullable": False} if s["name"] in strict else s for s in schema]


def _dataset_entry(version: DatasetVersion) -> dict[str, Any]:
    return {
        "ref": version.ref,
        "dataset": version.dataset,
        "version": version.version,
        "rows": version.rows,
        "data_sha256": version.data_sha256,
        "contract_version": version.contract_version,
        "source_name": version.source_name,
        "source_sha256": version.source_sha256,
    }


def import_model(
    ws: Workspace,
    source: Any,
    *,
    name: str,
    trained_on: str,
    target: str,
    evaluate_on: str | None = None,
    features: Sequence[str] | None = None,
    gates: Sequence[str] = (),
    task: str | None = None,
    classes: Sequence[Any] | None = None,
    owner: str = "",
    intended_use: str = "",
    limitations: str = "",
    description: str = "",
    tags: Mapping[str, str] | None = None,
    run: Run | None = None,
    progress: Progress | None = None,
) -> ModelVersion:
    """Register a model trained elsewhere as the next version of `name`, judged by aidlc.

    `source` is a path (a skops, ONNX, XGBoost or LightGBM file, or an MLflow model directory)
    or a fitted Python object. `trained_on` names the validated dataset version it was trained
    on (its contract gives the input schema); `evaluate_on` a validated version held out from
    training (sharing no row with it) on which aidlc computes the metrics and gates. Without
    it, the metrics are computed on `trained_on` and marked in-sample, and approving the version
    needs the approver's explicit acceptance.
    """
    from aidlc.registry.versions import check_model_name

    check_model_name(name)
    principal = ws.authorize("model.register", f"model:{name}")
    say = progress or (lambda _step: None)
    from aidlc.train import tracking
    from aidlc.train.config import parse_gate

    parsed_gates = [parse_gate(g) for g in gates]
    if tags is not None:
        from aidlc.registry.versions import check_tags

        check_tags(tags)
    say("reading the model")
    candidate = read_source(source)
    train_version = _resolve(ws, trained_on, "--trained-on")
    eval_version = _resolve(ws, evaluate_on, "--evaluate-on") if evaluate_on else None
    run_id = (
        run.id
        if run is not None
        else tracking.create_run(
            ws,
            f"import-{name}"[:64],
            kind="import",
            params={
                "source_format": candidate.source_format,
                "source_sha256": candidate.sha256,
                "model": name,
            },
        )
    )
    try:
        version = _import(
            ws,
            candidate,
            run_id,
            name=name,
            train_version=train_version,
            eval_version=eval_version,
            target=target,
            features=features,
            gates=parsed_gates,
            task=task,
            classes=classes,
            card={
                "owner": owner,
                "intended_use": intended_use,
                "limitations": limitations,
                "description": description,
                "tags": dict(tags or {}),
            },
            trainer=principal.name,
            say=say,
        )
    except BaseException as exc:
        if run is None:
            tracking.finish_run(ws, run_id, "failed", result={"error": type(exc).__name__})
        raise
    if run is None:
        tracking.finish_run(
            ws,
            run_id,
            "finished",
            result={"model_version": version.ref, "gates_passed": version.gates_passed},
        )
    return version


def _import(
    ws: Workspace,
    candidate: Candidate,
    run_id: str,
    *,
    name: str,
    train_version: DatasetVersion,
    eval_version: DatasetVersion | None,
    target: str,
    features: Sequence[str] | None,
    gates: Sequence[Any],
    task: str | None,
    classes: Sequence[Any] | None,
    card: dict[str, Any],
    trainer: str,
    say: Progress,
) -> ModelVersion:
    import polars as pl

    from aidlc.core import objects
    from aidlc.data import versions as data_versions
    from aidlc.data.profile import profile_frame
    from aidlc.registry import versions
    from aidlc.train import estimators, tracking

    contract = data_versions.contract_version(
        ws, train_version.dataset, train_version.contract_version
    ).contract()
    dtypes = {c.name: c.dtype for c in contract.columns}
    if target not in dtypes:
        raise InvalidInput(f"--target {target[:80]!r} is not a column of {train_version.ref}")
    chosen = _features(candidate, features, contract, target, train_version.ref)
    if candidate.mlflow is not None:
        from aidlc.registry import mlflowdir

        mlflowdir.check_signature(candidate.mlflow, dtypes, chosen, dataset=train_version.ref)
    kind_of_task = _task(candidate, task, contract, target)
    tracking.log_dataset(ws, run_id, train_version)
    say(f"reading {train_version.ref}")
    train_frame = data_versions.read_version(ws, train_version.ref)
    evaluation = eval_version or train_version
    if eval_version is not None:
        tracking.log_dataset(ws, run_id, eval_version)
        say(f"reading {eval_version.ref}")
        eval_frame = data_versions.read_version(ws, eval_version.ref)
        missing = [c for c in [*chosen, target] if c not in eval_frame.columns]
        if missing:
            raise InvalidInput(f"{eval_version.ref} has no column {', '.join(missing[:5])}")
        _check_disjoint(
            ws, train_version, eval_version, (train_frame, eval_frame), [*chosen, target]
        )
    else:
        eval_frame = train_frame
    before = eval_frame.height
    eval_frame = eval_frame.filter(pl.col(target).is_not_null())
    if eval_frame.height < MIN_EVALUATION_ROWS:
        raise ValidationFailed(
            f"only {eval_frame.height} rows of {evaluation.ref} have a {target}; "
            f"evaluation needs at least {MIN_EVALUATION_ROWS}"
        )
    served_classes: list[Any] | None = None
    model_classes: list[Any] | None = None
    if kind_of_task == "classification":
        labels = sorted(
            {_plain(v) for v in train_frame[target].drop_nulls().to_list()}, key=_sort_key
        )
        if candidate.model_classes is None and candidate.runtime == "onnx":
            width = _onnx_class_count(candidate, len(labels))
            if width != len(labels) and classes is None:
                raise InvalidInput(
                    f"the ONNX model scores {width} classes; {target} in {train_version.ref} has "
                    f"{len(labels)}",
                    hint="say what each output column stands for with --classes",
                )
        served_classes, model_classes = _classes(
            candidate, classes, labels, target, train_version.ref
        )
    elif classes is not None:
        raise InvalidInput("--classes is for classifiers; this model is a regressor")

    numeric = ("int", "float", "bool")
    if candidate.runtime == "aidlc" or not candidate.named_inputs:
        text = [f for f in chosen if dtypes[f] not in numeric]
        if text:
            raise InvalidInput(
                f"the model takes numbers, but {', '.join(text[:5])} in {train_version.ref} "
                "hold text",
                hint="encode them in the model (a scikit-learn pipeline or an ONNX graph)",
            )
    onnx_spec: dict[str, Any] | None = None
    if candidate.runtime == "onnx":
        say("loading the graph into ONNX Runtime")
        plan = runtime.plan_onnx(candidate.model, chosen, dtypes)
        sample = (
            _onnx_scores(candidate, plan, eval_frame.head(1000)) if plan.spec["scores"] else None
        )
        onnx_spec = runtime.finish_plan(plan, kind_of_task, sample)
    frame_schema = _frame_schema(train_frame, chosen) if candidate.runtime == "sklearn" else None
    dataset = _dataset_entry(train_version)
    imported: dict[str, Any] = {
        "format": candidate.source_format,
        "sha256": candidate.sha256,
        "producer": candidate.producer,
        "declared": candidate.declared,
        "named_inputs": candidate.named_inputs,
    }
    bundle = Bundle(
        kind=candidate.kind,
        flavor=candidate.flavor,
        task=kind_of_task,
        target=target,
        classes=served_classes,
        preprocessing=_identity(chosen),
        estimator_file=candidate.file_name,
        input_schema=_input_schema(ws, dataset, chosen, onnx_spec),
        output_schema=output_schema(kind_of_task, target, served_classes),
        runtime=candidate.runtime,
        model_classes=model_classes,
        onnx=onnx_spec,
        frame_schema=frame_schema,
        imported=imported,
    )

    say(f"evaluating on {eval_frame.height} rows of {evaluation.ref}")
    predict = _runner(candidate, bundle, eval_frame)
    out, proba = _predict_all(predict, eval_frame, kind_of_task == "classification")
    if kind_of_task == "classification":
        index = {runtime._key(c): i for i, c in enumerate(served_classes or [])}
        unknown = [v for v in eval_frame[target].to_list() if runtime._key(_plain(v)) not in index]
        if unknown:
            raise ValidationFailed(
                f"{evaluation.ref} holds {target} = {unknown[0]!r}, which the model cannot predict",
                hint="evaluate on data with the classes the model knows",
            )
        y = np.array([index[runtime._key(_plain(v))] for v in eval_frame[target].to_list()])
    else:
        try:
            y = eval_frame[target].cast(pl.Float64).to_numpy()
        except Exception:
            raise ConfigError(
                f"target {target!r} is not numeric; this model is a regressor"
            ) from None
    wanted = _metrics_wanted(kind_of_task, gates, proba is not None)
    metrics = estimators.evaluate(kind_of_task, y, out, proba, wanted)
    production = versions.production_metrics(ws, name)
    results = [g.evaluate(metrics, production) for g in gates]
    gates_passed = all(r.passed for r in results)
    tracking.log_metrics(ws, run_id, metrics)

    conversion = None
    if candidate.runtime == "sklearn":
        say("converting to ONNX and comparing on the evaluation rows")
        conversion = _convert(
            candidate, chosen, dtypes, kind_of_task, model_classes, eval_frame, (out, proba)
        )
        imported["conversion"] = conversion.record
    shown = (
        [str((served_classes or [])[int(i)]) for i in out]
        if kind_of_task == "classification"
        else out.astype(float).tolist()
    )
    baseline = {
        "features": json.loads(objects.get_ref(ws, train_version.profile_object)),
        "predictions": profile_frame(pl.DataFrame({"prediction": shown})).to_json(),
    }
    evaluation_record = {
        "dataset": evaluation.ref,
        "data_sha256": evaluation.data_sha256,
        "in_sample": eval_version is None,
        "rows": eval_frame.height,
        "dropped": before - eval_frame.height,
    }
    if conversion is not None and conversion.data is not None:
        bundle = replace(
            bundle,
            runtime="onnx",
            estimator_file=ONNX_FILE,
            reference_file=SKOPS_FILE,
            onnx=conversion.spec,
            input_schema=_input_schema(ws, dataset, chosen, conversion.spec),
        )
    say("signing and registering")
    return _register(
        ws,
        name,
        bundle,
        candidate,
        conversion,
        versions.Registration(
            kind=candidate.kind,
            task=kind_of_task,
            target=target,
            features=chosen,
            classes=served_classes,
            metrics=metrics,
            gates=[r.to_json() for r in results],
            gates_passed=gates_passed,
            datasets=[dataset],
            trained_by=trainer,
            run_id=run_id,
            description=card["description"],
            tags=card["tags"],
            intended_use=card["intended_use"],
            limitations=card["limitations"],
            owner=card["owner"],
            baseline=baseline,
            flavor=candidate.flavor,
            imported=imported,
            evaluation=evaluation_record,
        ),
    )


def _identity(features: list[str]) -> dict[str, Any]:
    from aidlc.train.preprocess import Preprocessor

    return Preprocessor(features, features, [], []).to_json()


def _predict_all(
    predict: Callable[[pl.DataFrame, bool], tuple[np.ndarray, np.ndarray | None]],
    frame: pl.DataFrame,
    classification: bool,
    batch: int = 50_000,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions for every row, in bounded batches; probabilities where the model gives them."""
    outs, probas = [], []
    for start in range(0, frame.height, batch):
        try:
            out, proba = predict(frame.slice(start, batch), classification)
        except InvalidInput as exc:
            raise ValidationFailed(
                f"the model cannot predict the evaluation rows: {exc.message}"
            ) from None
        outs.append(out)
        probas.append(proba)
    proba_all = None if any(p is None for p in probas) else np.vstack(probas)  # type: ignore[arg-type]
    return np.concatenate(outs), proba_all


def _onnx_class_count(candidate: Candidate, default: int) -> int:
    facts = candidate.model
    for out in facts.outputs:
        if out.kind == "tensor" and out.elem in ("float", "double") and len(out.shape) == 2:
            width = out.shape[1]
            if width is not None:
                return 2 if width == 1 else int(width)
    return default


def _onnx_scores(candidate: Candidate, plan: runtime.OnnxPlan, frame: pl.DataFrame) -> Any:
    """The raw class scores of the graph on some evaluation rows (to tell logits)."""
    session = candidate.session()
    graph = runtime.OnnxRuntime(session, {**plan.spec, "values": None}, "classification", None)
    feeds = graph.feeds(graph.columns_of(frame))
    try:
        return session.run([plan.spec["scores"]], feeds)[0]
    except Exception as exc:  # ONNX Runtime's error types
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValidationFailed(
            f"the ONNX model cannot score the evaluation rows: {first[:200]}"
        ) from None


def _register(
    ws: Workspace,
    name: str,
    bundle: Bundle,
    candidate: Candidate,
    conversion: _Conversion | None,
    reg: Any,
) -> ModelVersion:
    from aidlc.registry import versions

    with versions.private_dir() as tmp:
        directory = tmp / "model"
        directory.mkdir()
        if bundle.runtime == "onnx" and conversion is not None and conversion.data is not None:
            (directory / ONNX_FILE).write_bytes(conversion.data)
            (directory / SKOPS_FILE).write_bytes(candidate.data)
        else:
            (directory / bundle.estimator_file).write_bytes(candidate.data)
        write_manifest(directory, bundle)
        return versions.register_bundle(ws, name, directory, reg)
