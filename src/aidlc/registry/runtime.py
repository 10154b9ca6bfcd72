"""How imported models run: an audited scikit-learn object on a polars frame of the feature
columns, or ONNX Runtime on tensors built from them. Both answer class indices (into the bundle's
`classes`) or values, and class probabilities in the same order.

Models trained by `aidlc train` (and imported boosters) run through `train.preprocess` and
`train.estimators` instead; nothing here runs for them.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from aidlc.errors import AidlcError, IntegrityError, InvalidInput

if TYPE_CHECKING:
    import polars as pl

    from aidlc.registry.model import Bundle
    from aidlc.registry.onnxfile import OnnxFacts

# A feature column's values: a list (one request's rows) or a numpy array / polars Series.
Columns = Mapping[str, Any]
Outputs = tuple[np.ndarray, "np.ndarray | None"]

MAX_FILE_BYTES = 2 * 1024**3
# aidlc dtype of a contract column -> the polars type a scikit-learn model is given it as
_CONTRACT_POLARS = {
    "int": "Int64",
    "float": "Float64",
    "bool": "Boolean",
    "string": "String",
    "category": "String",
    "date": "Date",
    "datetime": "Datetime",
}
# ONNX tensor element types aidlc can feed, and the numpy type of each
_ELEM_NUMPY: dict[str, Any] = {
    "float": np.float32,
    "double": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
    "string": np.object_,
}
_NUMERIC_ELEMS = ("float", "double")


class Runtime(Protocol):
    """What a loaded imported model offers the registry and the server."""

    model: Any

    def columns_of(self, frame: pl.DataFrame) -> dict[str, Any]: ...

    def run(self, columns: Columns, *, probabilities: bool) -> Outputs: ...


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _cannot_predict(exc: BaseException) -> InvalidInput:
    return InvalidInput(f"the model cannot predict this input: {_first_line(exc)}")


def polars_type(name: str) -> Any:
    """The polars data type named `name` (as `str(dtype)` prints it, or a contract dtype)."""
    import polars as pl

    name = _CONTRACT_POLARS.get(name, name)
    simple = {
        "Int8": pl.Int8,
        "Int16": pl.Int16,
        "Int32": pl.Int32,
        "Int64": pl.Int64,
        "UInt8": pl.UInt8,
        "UInt16": pl.UInt16,
        "UInt32": pl.UInt32,
        "UInt64": pl.UInt64,
        "Float32": pl.Float32,
        "Float64": pl.Float64,
        "Boolean": pl.Boolean,
        "String": pl.String,
        "Date": pl.Date,
    }
    if name in simple:
        return simple[name]
    if name.startswith("Datetime"):
        return pl.Datetime("us")
    raise IntegrityError(f"the model's frame schema names an unknown column type {name[:40]!r}")


def frame_type(dtype: Any) -> str:
    """How a frame schema records a polars column type (categories are given as strings)."""
    text = str(dtype)
    if text.startswith(("Categorical", "Enum")):
        return "String"
    return "Datetime" if text.startswith("Datetime") else text


class _Labels:
    """Turns a model's own class labels into indices of the bundle's classes."""

    def __init__(self, model_classes: Sequence[Any] | None) -> None:
        self.labels = list(model_classes or [])
        self._index = {_key(label): i for i, label in enumerate(self.labels)}

    def indices(self, labels: Any) -> np.ndarray:
        try:
            return np.fromiter(
                (self._index[_key(v)] for v in np.asarray(labels).reshape(-1).tolist()),
                dtype=np.int64,
            )
        except KeyError as exc:
            raise IntegrityError(
                f"the model predicted a class it does not list: {str(exc)[:60]}"
            ) from None


def _key(label: Any) -> Any:
    # 1 and 1.0 and numpy scalars are one class; text labels stay text
    if isinstance(label, bytes):
        return label.decode("utf-8", "replace")
    if isinstance(label, bool | np.bool_):
        return bool(label)
    if isinstance(label, int | float | np.integer | np.floating):
        number = float(label)
        return int(number) if number.is_integer() else number
    return str(label)


# -- scikit-learn -------------------------------------------------------------------------------


@functools.cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _thread_limit() -> Any:
    """One OpenMP and BLAS thread for the calling thread while it predicts (a context manager;
    about 15 µs with a controller made once, against milliseconds for `threadpool_limits`)."""
    return _controller().limit(limits=1)


class SklearnRuntime:
    """An audited scikit-learn estimator or pipeline, given the features as a polars frame with
    the column types of the data set it was evaluated on."""

    def __init__(
        self,
        model: Any,
        features: Sequence[str],
        frame_schema: Mapping[str, str],
        task: str,
        model_classes: Sequence[Any] | None,
        *,
        named: bool = True,
        single_threaded: bool = False,
    ) -> None:
        self.model = model
        self.features = list(features)
        self.task = task
        self.named = named  # fitted on a frame with these column names, or on a bare matrix
        # A server answers many requests at once: scikit-learn's OpenMP and BLAS pools on every
        # core for each one (HistGradientBoosting opens a parallel region per tree) collapse its
        # throughput on a busy machine. Evaluation at import keeps every core.
        self.single_threaded = single_threaded
        self._types = {f: polars_type(frame_schema[f]) for f in self.features}
        self._labels = _Labels(model_classes)

    def columns_of(self, frame: pl.DataFrame) -> dict[str, Any]:
        return {f: frame[f] for f in self.features}

    def frame(self, columns: Columns) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(
            [pl.Series(f, columns[f], dtype=self._types[f], strict=False) for f in self.features]
        )

    def run(self, columns: Columns, *, probabilities: bool) -> Outputs:
        frame = self.frame(columns)
        X: Any = frame if self.named else frame.to_numpy().astype(np.float64)
        # The user's estimator may raise anything on input it cannot take: that is the input's
        # fault as far as the caller is concerned, never a server error.
        try:
            with _thread_limit() if self.single_threaded else contextlib.nullcontext():
                out = np.asarray(self.model.predict(X))
                proba = None
                if probabilities and self.task == "classification":
                    proba = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        except AidlcError:
            raise
        except Exception as exc:
            raise _cannot_predict(exc) from None
        if self.task == "classification":
            return self._labels.indices(out), proba
        return out.astype(np.float64).reshape(-1), None


# -- ONNX ---------------------------------------------------------------------------------------


def _tensor(values: Any, elem: str, column: str) -> np.ndarray:
    dtype = _ELEM_NUMPY[elem]
    if elem == "string":
        array = np.asarray(values, dtype=object).reshape(-1)
        if any(v is None for v in array):
            raise InvalidInput(f"field {column!r} is required by the model (it takes no null)")
        return np.asarray([str(v) for v in array], dtype=object)
    if elem in _NUMERIC_ELEMS:
        return np.asarray(values, dtype=np.float64).astype(dtype).reshape(-1)
    array = np.asarray(values, dtype=object).reshape(-1)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in array):
        raise InvalidInput(f"field {column!r} is required by the model (it takes no null)")
    return np.asarray(array.tolist(), dtype=dtype)


class OnnxRuntime:
    """An ONNX graph in ONNX Runtime: each graph input takes one feature column (as skl2onnx
    writes pipelines) or several as one matrix (as PyTorch and Keras export); the outputs named
    in `spec` give labels, class scores or values."""

    def __init__(
        self,
        session: Any,
        spec: Mapping[str, Any],
        task: str,
        model_classes: Sequence[Any] | None,
    ) -> None:
        self.model = session
        self.spec = dict(spec)
        self.task = task
        self._labels = _Labels(model_classes)
        self._wanted = [o for o in (spec.get("label"), spec.get("scores"), spec.get("values")) if o]

    def columns_of(self, frame: pl.DataFrame) -> dict[str, Any]:
        import polars as pl

        out: dict[str, Any] = {}
        for item in self.spec["inputs"]:
            for column in item["columns"]:
                series = frame[column]
                if item["elem"] in _NUMERIC_ELEMS:
                    out[column] = series.cast(pl.Float64).to_numpy()
                else:
                    out[column] = series.to_list()
        return out

    def feeds(self, columns: Columns) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        for item in self.spec["inputs"]:
            parts = [_tensor(columns[c], item["elem"], c) for c in item["columns"]]
            matrix = parts[0].reshape(-1, 1) if len(parts) == 1 else np.column_stack(parts)
            feeds[item["name"]] = matrix.reshape(-1) if item.get("rank") == 1 else matrix
        return feeds

    def run(self, columns: Columns, *, probabilities: bool) -> Outputs:
        feeds = self.feeds(columns)
        try:
            results = dict(zip(self._wanted, self.model.run(self._wanted, feeds), strict=True))
        except Exception as exc:  # ONNX Runtime's own error types; input it cannot take
            raise _cannot_predict(exc) from None
        spec = self.spec
        if self.task == "regression":
            return np.asarray(results[spec["values"]], dtype=np.float64).reshape(-1), None
        if spec.get("label") is not None:
            proba = None
            if probabilities and spec.get("scores") is not None:
                proba = self._probabilities(results[spec["scores"]])
            return self._labels.indices(results[spec["label"]]), proba
        raw = results[spec["scores"]]  # the manifest check makes one of label and scores present
        proba = self._probabilities(raw) if probabilities or isinstance(raw, list) else None
        if isinstance(raw, list) and proba is not None:  # a ZipMap's maps: no raw matrix
            return np.asarray(proba.argmax(axis=1), dtype=np.int64), proba
        # The class is read from the raw scores, asked for probabilities or not (no softmax to
        # compute, and no row whose rounded probabilities tie can get another class).
        scores = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
        if scores.shape[1] == 1:
            cut = 0.0 if self.spec.get("scores_are") == "logits" else 0.5
            return np.asarray(scores[:, 0] > cut, dtype=np.int64), proba
        return np.asarray(scores.argmax(axis=1), dtype=np.int64), proba

    def _probabilities(self, raw: Any) -> np.ndarray:
        labels = self._labels.labels
        if isinstance(raw, list):  # a ZipMap's list of {label: probability}
            keyed = [{_key(k): v for k, v in row.items()} for row in raw]
            scores = np.array([[row[_key(c)] for c in labels] for row in keyed], np.float64)
        else:
            scores = np.asarray(raw, dtype=np.float64)
            scores = scores.reshape(len(scores), -1)
        logits = self.spec.get("scores_are") == "logits"
        if scores.shape[1] == 1:  # one column: the second class's score
            p = 1.0 / (1.0 + np.exp(-scores[:, 0])) if logits else scores[:, 0]
            return np.column_stack([1.0 - p, p])
        if logits:
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        # float32 probabilities: renormalised in float64 so that rows sum to 1 (metrics check)
        return np.asarray(scores / scores.sum(axis=1, keepdims=True))


# -- deciding how an ONNX graph is fed and read ---------------------------------------------------


@dataclass(frozen=True)
class OnnxPlan:
    """How the graph takes the features and which outputs say what (the manifest's `onnx`)."""

    spec: dict[str, Any]
    task: str | None  # what the graph itself says: a label output makes it a classifier


def _feedable(elem: str, dtype: str) -> bool:
    if elem in _NUMERIC_ELEMS:
        return dtype in ("int", "float", "bool")
    if elem == "string":
        return dtype in ("string", "category")
    if elem in ("int64", "int32"):
        return dtype in ("int", "bool")
    return elem == "bool" and dtype == "bool"


def plan_onnx(facts: OnnxFacts, features: Sequence[str], dtypes: Mapping[str, str]) -> OnnxPlan:
    """Match a graph's inputs to the feature columns and pick its outputs, or say why not.

    One input per feature (named after it), or one matrix input whose width is the number of
    features (taken in the order given)."""
    features = list(features)
    inputs = facts.inputs
    names = [i.name for i in inputs]
    items: list[dict[str, Any]] = []
    if sorted(names) == sorted(features) and all(i.kind == "tensor" for i in inputs):
        for i in inputs:
            width = i.shape[1] if len(i.shape) == 2 else None
            if len(i.shape) not in (1, 2) or width not in (None, 1):
                raise InvalidInput(f"the ONNX input {i.name!r} is not one column (shape {i.shape})")
            items.append(
                {"name": i.name, "columns": [i.name], "elem": i.elem, "rank": len(i.shape)}
            )
    elif len(inputs) == 1 and inputs[0].kind == "tensor" and len(inputs[0].shape) == 2:
        only = inputs[0]
        width = only.shape[1]
        if width is not None and width != len(features):
            raise InvalidInput(
                f"the ONNX input {only.name!r} takes {width} values per row but "
                f"{len(features)} features were given",
                hint="name the features in the model's input order with --features",
            )
        if width is None and len(features) == 1 and only.name != features[0]:
            raise InvalidInput(f"cannot tell how the ONNX input {only.name!r} takes the features")
        items.append({"name": only.name, "columns": features, "elem": only.elem, "rank": 2})
    else:
        raise InvalidInput(
            f"the ONNX model's inputs ({', '.join(names[:8])}) are neither one per feature nor "
            f"one matrix of all {len(features)} features",
            hint="name the features with --features (as the graph's inputs, or in the order of "
            "its one matrix input)",
        )
    for item in items:
        if item["elem"] not in _ELEM_NUMPY:
            raise InvalidInput(f"the ONNX input {item['name']!r} takes {item['elem']} values")
        for column in item["columns"]:
            if not _feedable(item["elem"], dtypes.get(column, "float")):
                raise InvalidInput(
                    f"the ONNX input {item['name']!r} takes {item['elem']} values but column "
                    f"{column!r} holds {dtypes.get(column)} values"
                )
    outputs = facts.outputs
    label = next(
        (o.name for o in outputs if o.kind == "tensor" and o.elem in ("int64", "int32", "string")),
        None,
    )
    # class scores: a numeric tensor if there is one (cheaper to read), else a ZipMap's maps
    scores = next(
        (o.name for o in outputs if o.kind == "tensor" and o.elem in _NUMERIC_ELEMS), None
    ) or next((o.name for o in outputs if o.kind == "sequence_map"), None)
    if label is not None:
        return OnnxPlan({"inputs": items, "label": label, "scores": scores}, "classification")
    if scores is None:
        raise InvalidInput("the ONNX model has no numeric output aidlc can read")
    return OnnxPlan({"inputs": items, "label": None, "scores": scores}, None)


def finish_plan(plan: OnnxPlan, task: str, sample: np.ndarray | None) -> dict[str, Any]:
    """The spec for `task`: a regressor's one output is its values; a classifier without a label
    output has scores that are probabilities when every row of `sample` (the graph's output on
    evaluation rows) lies in [0, 1] and, with two or more columns, sums to 1; else logits."""
    spec = dict(plan.spec)
    if task == "regression":
        if spec["label"] is not None:
            raise InvalidInput("the ONNX model outputs class labels; it is not a regressor")
        return {"inputs": spec["inputs"], "label": None, "scores": None, "values": spec["scores"]}
    spec["values"] = None
    if spec["scores"] is None:
        return spec
    if sample is None or isinstance(sample, list):
        spec["scores_are"] = "probabilities"
        return spec
    scores = np.asarray(sample, dtype=np.float64).reshape(len(sample), -1)
    bounded = bool(np.all((scores >= -1e-6) & (scores <= 1 + 1e-6)))
    sums = scores.shape[1] == 1 or bool(np.allclose(scores.sum(axis=1), 1.0, atol=1e-4))
    spec["scores_are"] = "probabilities" if bounded and sums else "logits"
    return spec


# -- loading from a verified bundle --------------------------------------------------------------


def _read(directory: Path, name: str) -> bytes:
    path = directory / name
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise IntegrityError(f"{name} is larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()
    except OSError:
        raise IntegrityError(f"the model has no readable {name}") from None


def _stored(work: Any, name: str) -> Any:
    """Run a check on a stored, signed file: a refusal there is an integrity failure."""
    try:
        return work()
    except InvalidInput as exc:
        raise IntegrityError(f"{name}: {exc.message}") from None


def load(bundle: Bundle, directory: Path) -> Runtime:
    """The runtime of a verified format-2 bundle. Call only on files whose signature verified."""
    from aidlc.registry import onnxfile, skopsaudit

    data = _read(directory, bundle.estimator_file)
    if bundle.runtime == "sklearn":
        model = _stored(lambda: skopsaudit.load_skops(data, name=bundle.estimator_file), "skops")
        schema = bundle.frame_schema or {}
        named = bool((bundle.imported or {}).get("named_inputs", True))
        return SklearnRuntime(
            model,
            bundle.features,
            schema,
            bundle.task,
            bundle.model_classes,
            named=named,
            single_threaded=True,
        )
    facts = _stored(lambda: onnxfile.inspect_onnx(data), bundle.estimator_file)
    spec = bundle.onnx or {}
    have = {i.name: i.elem for i in facts.inputs}
    if {i["name"]: i["elem"] for i in spec["inputs"]} != have:
        raise IntegrityError(
            f"{bundle.estimator_file}: the graph's inputs disagree with the manifest"
        )
    outputs = {o.name for o in facts.outputs}
    if not {o for o in (spec.get("label"), spec.get("scores"), spec.get("values")) if o} <= outputs:
        raise IntegrityError(f"{bundle.estimator_file}: the manifest names outputs the graph lacks")
    session = _stored(lambda: onnxfile.onnx_session(data), bundle.estimator_file)
    return OnnxRuntime(session, spec, bundle.task, bundle.model_classes)
