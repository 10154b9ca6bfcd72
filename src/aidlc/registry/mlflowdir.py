"""Reading an MLflow model directory without running it: which file to load, in which safe format,
and what the directory declares about the model. No pickle is opened and mlflow is not imported.
"""

from __future__ import annotations

import json
import os
import reprlib
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from aidlc.core.strictjson import reject_constant, unique_object
from aidlc.errors import IntegrityError, InvalidInput
from aidlc.registry.formats import refuse_pickle

MAX_MLMODEL_BYTES = 1 << 20
SUPPORTED = ("onnx", "xgboost", "lightgbm", "sklearn")  # preference order when several are present

_MAX_EXAMPLE_BYTES = 1 << 20
_MAX_REQUIREMENTS_BYTES = 1 << 20
_MAX_REQUIREMENTS = 500
_MAX_LINE = 200
_MAX_ENTRIES = 1000  # per list kept in facts (signature sides, example columns)
_MAX_TEXT = 200  # a declared version, id or class name
_HEAD_BYTES = 16  # all of the artifact that is ever read here

_VERSION_KEYS = {
    "onnx": "onnx_version",
    "xgboost": "xgb_version",
    "lightgbm": "lgb_version",
    "sklearn": "sklearn_version",
}
_PICKLE_FORMATS = ("pickle", "cloudpickle")
_LIGHTGBM_BOOSTER = "lightgbm.basic.Booster"
_LIGHTGBM_SKLEARN = ("lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor")
_SKOPS_MAGIC = b"PK\x03\x04"
_LIGHTGBM_MAGIC = b"tree\n"
# what may follow UBJSON's opening "{": a key's length marker, a typed or counted container, "}"
_UBJ_AFTER_BRACE = b"iUIlL$#}"
# aidlc's dtypes that can carry each MLflow column type without loss
_COMPATIBLE = {
    "double": ("float", "int"),
    "float": ("float", "int"),
    "long": ("int",),
    "integer": ("int",),
    "string": ("string", "category"),
    "boolean": ("bool",),
    "datetime": ("date", "datetime"),
}

_NO_FLAVOR_HINT = (
    "aidlc imports the onnx, xgboost, lightgbm and sklearn (skops) flavours; export the model to "
    "ONNX (e.g. torch.onnx.export, tf2onnx) and import the .onnx file"
)
_SKOPS_HINT = (
    're-log it with mlflow.sklearn.log_model(model, name=..., serialization_format="skops"), '
    "or export it to ONNX with skl2onnx, then import again"
)
_BOOSTER_HINT = (
    "log the Booster (model.booster_) with mlflow.lightgbm, or export to ONNX with onnxmltools"
)
_UBJ_HINT = (
    'load it with xgboost and re-save it as UBJSON (booster.save_model("model.ubj")), or re-log '
    'it with mlflow.xgboost.log_model(model, name=..., model_format="ubj")'
)
_CODE_HINT = "log the model without code_paths, or export it to ONNX and import the .onnx file"
_PICKLE_HINTS = {
    "onnx": "export the model to ONNX again and import the .onnx file",
    "xgboost": _UBJ_HINT,
    "lightgbm": _BOOSTER_HINT,
    "sklearn": _SKOPS_HINT,
}
_RESAVE_HINT = "save the model again with its library and log it with MLflow again"


@dataclass(frozen=True)
class SignatureColumn:
    """One named input column of an MLflow signature."""

    name: str
    type: str  # MLflow type: double, float, long, integer, string, boolean, datetime, binary
    required: bool


@dataclass(frozen=True)
class MlflowModel:
    """What an MLflow model directory holds: the file to load, its format, and declared facts."""

    directory: Path
    flavor: str
    artifact: Path
    artifact_format: str  # onnx, xgboost-ubj, xgboost-json, lightgbm-text, skops, lightgbm-skops
    model_class: str | None
    signature_inputs: list[SignatureColumn] | None  # None when absent, tensor-based or unnamed
    facts: dict[str, Any]


# -- files -------------------------------------------------------------------------------------


def _shown(value: Any, limit: int = 100) -> str:
    """A value from the directory, safe to put in a one-line message."""
    # reprlib stays small for a structure YAML aliases have made exponentially large
    text = value if isinstance(value, str) else reprlib.repr(value)
    cut = text[:limit]
    return "".join(c if c.isprintable() else "?" for c in cut) + (
        "..." if len(text) > limit else ""
    )


def _inside(root: Path, declared: Any, key: str) -> Path:
    """The resolved path `declared` names under `root`; InvalidInput when it leaves `root`."""
    escape = InvalidInput(
        f"MLmodel's artifact path '{_shown(declared)}' ({key}) escapes the model directory",
        hint="an MLflow model directory names its files relative to itself; log the model again",
    )
    if not isinstance(declared, str) or not declared or "\0" in declared or len(declared) > 4096:
        raise escape
    if PurePosixPath(declared).is_absolute() or PureWindowsPath(declared).anchor:
        raise escape
    if ".." in declared.replace("\\", "/").split("/"):
        raise escape
    try:
        resolved = (root / declared).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop before Python 3.13
        raise escape from exc
    if not resolved.is_relative_to(root):
        raise escape
    return resolved


def _open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file; OSError for anything else (FIFOs never block)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def _read_capped(path: Path, limit: int) -> bytes | None:
    """The whole file, or None when it holds more than `limit` bytes."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    return None if len(data) > limit else data


def _load_mlmodel(root: Path) -> dict[Any, Any]:
    path = _inside(root, "MLmodel", "MLmodel")
    try:
        data = _read_capped(path, MAX_MLMODEL_BYTES)
    except OSError as exc:
        raise InvalidInput(
            f"{_shown(str(root))} is not an MLflow model directory: it has no MLmodel file",
            hint="pass the directory mlflow.<flavour>.save_model wrote, the one holding MLmodel",
        ) from exc
    if data is None:
        raise InvalidInput(
            f"MLmodel is larger than {MAX_MLMODEL_BYTES} bytes",
            hint="an MLmodel file is a few kilobytes; pass the directory MLflow wrote",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("MLmodel is not UTF-8 text", hint=_RESAVE_HINT) from exc
    try:
        document = yaml.safe_load(text)
    # PyYAML's safe constructors fail with ValueError, KeyError, RecursionError and more besides
    # YAMLError on hostile input; every one of them means the same thing here.
    except Exception as exc:
        raise InvalidInput(
            f"MLmodel is not YAML that aidlc reads safely ({_shown(type(exc).__name__)})",
            hint="MLmodel must be plain YAML as MLflow writes it; tags such as !!python/object "
            "are refused",
        ) from exc
    if not isinstance(document, dict):
        raise InvalidInput("MLmodel is not a YAML mapping", hint=_RESAVE_HINT)
    return document


# -- MLmodel values ----------------------------------------------------------------------------


def _mapping(value: Any, key: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"MLmodel's {key} is not a mapping", hint=_RESAVE_HINT)
    return value


def _text(mapping: Mapping[Any, Any], key: str, where: str = "") -> str | None:
    """A short string value, or None when the key is absent or null."""
    value = mapping.get(key)
    if isinstance(value, date):  # an unquoted timestamp that YAML read as one
        value = value.isoformat()
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidInput(f"MLmodel's {where}{key} is not a short string", hint=_RESAVE_HINT)
    return value


def _choose(flavors: dict[Any, Any]) -> tuple[str, dict[Any, Any]]:
    for name in SUPPORTED:
        if name in flavors:
            return name, _mapping(flavors[name], f"flavors.{name}")
    present = ", ".join(_shown(name, 50) for name in list(flavors)[:10]) or "none"
    raise InvalidInput(
        f"MLmodel has no flavour aidlc imports (it has: {present})", hint=_NO_FLAVOR_HINT
    )


# Each flavour: (key naming the artifact, artifact format, model class) from its MLmodel entry.
def _sklearn(conf: dict[Any, Any]) -> tuple[str, str, str | None]:
    serialization = _text(conf, "serialization_format", "flavors.sklearn.")
    if serialization != "skops":
        # MLflow before skops wrote no serialization_format and used cloudpickle
        used = serialization or "cloudpickle"
        tail = "aidlc never loads pickle" if used in _PICKLE_FORMATS else "aidlc loads only skops"
        raise InvalidInput(
            f"MLmodel's sklearn flavour is serialized with {_shown(used)}; {tail}", hint=_SKOPS_HINT
        )
    return "pickled_model", "skops", None


def _xgboost(conf: dict[Any, Any]) -> tuple[str, str, str | None]:
    model_format = _text(conf, "model_format", "flavors.xgboost.")
    formats = {"ubj": "xgboost-ubj", "json": "xgboost-json"}
    if model_format not in formats:
        saved = _shown(model_format) if model_format else "the legacy binary format"
        raise InvalidInput(
            f"MLmodel's xgboost flavour is saved as {saved}, which aidlc does not load",
            hint=_UBJ_HINT,
        )
    return "data", formats[model_format], _text(conf, "model_class", "flavors.xgboost.")


def _lightgbm(conf: dict[Any, Any]) -> tuple[str, str, str | None]:
    model_class = _text(conf, "model_class", "flavors.lightgbm.")
    # MLflow saves a Booster as LightGBM text whatever serialization_format says; MLflow 1.x
    # wrote no model_class and could save nothing else
    if model_class in (None, _LIGHTGBM_BOOSTER):
        return "data", "lightgbm-text", model_class
    if model_class not in _LIGHTGBM_SKLEARN:
        raise InvalidInput(
            f"MLmodel's lightgbm flavour holds a {_shown(model_class)}, which aidlc does not load",
            hint=_BOOSTER_HINT,
        )
    serialization = _text(conf, "serialization_format", "flavors.lightgbm.") or "cloudpickle"
    if serialization != "skops":
        raise InvalidInput(
            f"MLmodel's lightgbm flavour is serialized with {_shown(serialization)}; "
            "aidlc never loads pickle",
            hint=_BOOSTER_HINT,
        )
    return "data", "lightgbm-skops", model_class


def _onnx(conf: dict[Any, Any]) -> tuple[str, str, str | None]:
    return "data", "onnx", None


_FLAVORS: dict[str, Callable[[dict[Any, Any]], tuple[str, str, str | None]]] = {
    "onnx": _onnx,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "sklearn": _sklearn,
}


# -- the artifact ------------------------------------------------------------------------------


def _xgboost_content(head: bytes) -> str | None:
    """The XGBoost format the first bytes show ("xgboost-json", "xgboost-ubj"), or None."""
    text = head.lstrip()
    if text.startswith(b"{") and text[1:].lstrip().startswith(b'"'):
        return "xgboost-json"
    if head[:1] == b"{" and head[1:2] and head[1:2] in _UBJ_AFTER_BRACE:
        return "xgboost-ubj"
    return None


def _check_artifact(path: Path, declared: str, flavor: str, artifact_format: str) -> int:
    """The artifact's size, after its name and first bytes show no pickle and fit its format."""
    try:
        # by name first: a file that announces pickle is refused before it is opened
        refuse_pickle(declared, b"")
        refuse_pickle(path.name, b"")
        try:
            fd = _open_regular(path)
        except OSError as exc:
            raise InvalidInput(
                f"MLmodel's artifact path '{_shown(declared)}' is missing or not a regular file",
                hint=_RESAVE_HINT,
            ) from exc
        with os.fdopen(fd, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(_HEAD_BYTES)
        refuse_pickle(declared, head)
    except IntegrityError as exc:
        raise InvalidInput(f"MLmodel's artifact {exc.message}", hint=_PICKLE_HINTS[flavor]) from exc
    if artifact_format.startswith("xgboost-"):
        fits = _xgboost_content(head) == artifact_format
    elif artifact_format == "lightgbm-text":
        fits = head.startswith(_LIGHTGBM_MAGIC)
    elif artifact_format in ("skops", "lightgbm-skops"):
        fits = head.startswith(_SKOPS_MAGIC)
    else:  # ONNX is a bare protobuf message: nothing to recognise in its first bytes
        fits = True
    if not fits:
        raise InvalidInput(
            f"MLmodel says '{_shown(declared)}' is {artifact_format}, but the file does not "
            "start like one",
            hint=_RESAVE_HINT,
        )
    return size


# -- signature ---------------------------------------------------------------------------------


def _schema(value: Any, side: str) -> list[dict[str, Any]] | None:
    """One side of `signature`: MLflow's JSON string parsed into column or tensor specs."""
    key = f"signature.{side}"
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"MLmodel's {key} is not a string", hint=_RESAVE_HINT)
    try:
        parsed = json.loads(value, object_pairs_hook=unique_object, parse_constant=reject_constant)
    except (InvalidInput, ValueError, RecursionError) as exc:
        raise InvalidInput(f"MLmodel's {key} is not JSON", hint=_RESAVE_HINT) from exc
    if not isinstance(parsed, list) or not all(
        isinstance(spec, dict) and isinstance(spec.get("type"), str) for spec in parsed
    ):
        raise InvalidInput(f"MLmodel's {key} is not an MLflow schema", hint=_RESAVE_HINT)
    return parsed


def _tensor_width(spec: dict[str, Any]) -> int | None:
    """A tensor's declared last dimension; None when it is variable."""
    tensor = spec.get("tensor-spec")
    shape = tensor.get("shape") if isinstance(tensor, dict) else None
    if not isinstance(tensor, dict) or not isinstance(tensor.get("dtype"), str):
        raise InvalidInput("MLmodel's signature.inputs has a tensor without a dtype")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in shape
    ):
        raise InvalidInput("MLmodel's signature.inputs has a tensor without a shape")
    return shape[-1] if shape and shape[-1] > 0 else None


def _columns(inputs: list[dict[str, Any]]) -> list[SignatureColumn] | None:
    """Named column specs as SignatureColumns; None for tensors or unnamed (positional) columns."""
    tensors = sum(spec["type"] == "tensor" for spec in inputs)
    named = sum("name" in spec for spec in inputs)
    if tensors:
        if tensors != len(inputs):
            raise InvalidInput("MLmodel's signature.inputs mixes tensors and columns")
        for spec in inputs:
            _tensor_width(spec)
        return None
    if not named:
        return None
    if named != len(inputs):
        raise InvalidInput("MLmodel's signature.inputs names some columns but not all")
    columns: list[SignatureColumn] = []
    for spec in inputs:
        name, required = spec["name"], spec.get("required", True)
        if not isinstance(name, str) or not isinstance(required, bool):
            raise InvalidInput(
                f"MLmodel's signature.inputs has a malformed column '{_shown(name)}'"
            )
        columns.append(SignatureColumn(name=name, type=spec["type"], required=required))
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise InvalidInput(f"MLmodel's signature.inputs repeats column '{_shown(repeated)}'")
    return columns


def _signature(document: dict[Any, Any]) -> tuple[list[SignatureColumn] | None, dict[str, Any]]:
    """The named input columns and the `signature` fact (each side cut to _MAX_ENTRIES)."""
    if document.get("signature") is None:
        return None, {}
    signature = _mapping(document["signature"], "signature")
    fact: dict[str, Any] = {}
    columns = None
    for side in ("inputs", "outputs"):
        specs = _schema(signature.get(side), side)
        if specs is None:
            continue
        if side == "inputs":
            columns = _columns(specs)
        fact[side] = specs[:_MAX_ENTRIES]
        if len(specs) > _MAX_ENTRIES:
            fact[f"{side}_count"] = len(specs)
    return columns, fact


def _positional_width(facts: Mapping[str, Any]) -> tuple[int | None, int]:
    """(values per row, tensors) of an input signature without named columns."""
    signature = facts.get("signature") or {}
    inputs = signature.get("inputs") or []
    tensors = [spec for spec in inputs if spec.get("type") == "tensor"]
    if tensors:
        return (_tensor_width(tensors[0]) if len(tensors) == 1 else None), len(tensors)
    return (signature.get("inputs_count", len(inputs)) or None), 0


# -- optional files ----------------------------------------------------------------------------


def _optional(root: Path, declared: str, key: str, limit: int) -> bytes | None:
    """An optional file's bytes; None when it is missing or too large (escaping is refused)."""
    path = _inside(root, declared, key)
    try:
        return _read_capped(path, limit)
    except OSError:
        return None


def _requirements(root: Path) -> list[str] | None:
    data = _optional(root, "requirements.txt", "requirements.txt", _MAX_REQUIREMENTS_BYTES)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = (line.strip() for line in text.splitlines())
    kept = [
        line
        for line in lines
        if line and not line.startswith("#") and len(line) <= _MAX_LINE and line.isprintable()
    ]
    return kept[:_MAX_REQUIREMENTS]


def _names(value: Any) -> list[str | int] | None:
    if not isinstance(value, list) or not all(
        isinstance(name, str | int) and not isinstance(name, bool) for name in value
    ):
        return None
    return [name[:_MAX_LINE] if isinstance(name, str) else name for name in value[:_MAX_ENTRIES]]


def _example_shape(document: Any) -> dict[str, Any] | None:
    """Column names and row count of an input example; never any of its values."""
    if isinstance(document, dict) and len(document) == 1:
        wrapped = next(iter(document))
        if wrapped in ("inputs", "instances", "dataframe_split", "dataframe_records"):
            document = document[wrapped]
    if isinstance(document, dict) and isinstance(document.get("data"), list):  # pandas "split"
        shape: dict[str, Any] = {"rows": len(document["data"])}
        if (columns := _names(document.get("columns"))) is not None:
            shape = {"columns": columns} | shape
        return shape
    if isinstance(document, list):  # records, or rows of a tensor
        shape = {"rows": len(document)}
        if document and all(isinstance(row, dict) for row in document):
            keys = dict.fromkeys(key for row in document for key in row)
            shape = {"columns": _names(list(keys))} | shape
        return shape
    if isinstance(document, dict) and document:  # columnar: name -> values
        first = next(iter(document.values()))
        return {
            "columns": _names(list(document)),
            "rows": len(first) if isinstance(first, list) else 1,
        }
    return None


def _input_example(root: Path, document: dict[Any, Any]) -> dict[str, Any] | None:
    if document.get("saved_input_example_info") is None:
        return None
    info = _mapping(document["saved_input_example_info"], "saved_input_example_info")
    declared = info.get("artifact_path")
    if declared is None:
        return None
    if not isinstance(declared, str):
        raise InvalidInput(
            "MLmodel's saved_input_example_info.artifact_path is not a string", hint=_RESAVE_HINT
        )
    data = _optional(root, declared, "saved_input_example_info.artifact_path", _MAX_EXAMPLE_BYTES)
    if data is None:
        return None
    try:
        # only names and a count are kept, so NaN among the values costs nothing
        parsed = json.loads(
            data.decode("utf-8"), object_pairs_hook=unique_object, parse_constant=lambda _: None
        )
    except (InvalidInput, ValueError, RecursionError):
        return None
    shape = _example_shape(parsed)
    if shape is not None and shape.get("columns") is None:
        shape.pop("columns", None)
    return shape


def _python_version(flavors: dict[Any, Any]) -> str | None:
    if flavors.get("python_function") is None:
        return None
    return _text(
        _mapping(flavors["python_function"], "flavors.python_function"),
        "python_version",
        "flavors.python_function.",
    )


# -- public ------------------------------------------------------------------------------------


def is_mlflow_dir(path: Path) -> bool:
    """Whether `path` is a directory holding a regular file named MLmodel.

    >>> is_mlflow_dir(Path("/nonexistent"))
    False
    """
    try:
        return path.is_dir() and (path / "MLmodel").is_file()
    except OSError:
        return False


def read_mlflow_dir(directory: Path) -> MlflowModel:
    """What an MLflow model directory holds, read without opening any pickle or running its code.

    >>> read_mlflow_dir(Path("/nonexistent"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aidlc.errors.InvalidInput: /nonexistent is not an MLflow model directory... (...)
    """
    try:
        root = directory.resolve()
    except (OSError, RuntimeError) as exc:
        raise InvalidInput(f"{_shown(str(directory))} cannot be resolved") from exc
    if not root.is_dir():
        raise InvalidInput(
            f"{_shown(str(directory))} is not an MLflow model directory",
            hint="pass the directory mlflow.<flavour>.save_model wrote, the one holding MLmodel",
        )
    document = _load_mlmodel(root)
    if document.get("flavors") is None:
        raise InvalidInput("MLmodel has no flavors", hint=_RESAVE_HINT)
    flavor, conf = _choose(_mapping(document["flavors"], "flavors"))
    if conf.get("code") is not None:
        raise InvalidInput(
            f"MLmodel's {flavor} flavour ships its own Python code (code: "
            f"{_shown(conf['code'], 50)}), which aidlc never runs",
            hint=_CODE_HINT,
        )
    key, artifact_format, model_class = _FLAVORS[flavor](conf)
    declared = conf.get(key)
    if declared is None:
        raise InvalidInput(f"MLmodel's flavors.{flavor}.{key} names no file", hint=_RESAVE_HINT)
    artifact = _inside(root, declared, f"flavors.{flavor}.{key}")
    size = _check_artifact(artifact, str(declared), flavor, artifact_format)
    signature_inputs, signature = _signature(document)

    facts: dict[str, Any] = {}
    for name in ("mlflow_version", "run_id", "model_uuid", "utc_time_created"):
        if (value := _text(document, name)) is not None:
            facts[name] = value
    facts["flavor"] = flavor
    serialization = _text(conf, "serialization_format", f"flavors.{flavor}.")
    if artifact_format == "lightgbm-text":  # MLflow writes a Booster as text, yet records skops
        serialization = None
    declared_facts = {
        "flavor_version": _text(conf, _VERSION_KEYS[flavor], f"flavors.{flavor}."),
        "python_version": _python_version(document["flavors"]),
        "model_class": model_class,
        "serialization_format": serialization,
        "signature": signature or None,
        "input_example": _input_example(root, document),
        "requirements": _requirements(root),
    }
    facts |= {name: value for name, value in declared_facts.items() if value is not None}
    facts["artifact"] = artifact.relative_to(root).as_posix()
    facts["artifact_size"] = size
    return MlflowModel(
        directory=root,
        flavor=flavor,
        artifact=artifact,
        artifact_format=artifact_format,
        model_class=model_class,
        signature_inputs=signature_inputs,
        facts=facts,
    )


def check_signature(
    model: MlflowModel, columns: Mapping[str, str], features: Sequence[str], *, dataset: str
) -> None:
    """Refuse an MLflow signature that disagrees with the features aidlc will send the model.

    `columns` maps the data contract's columns to aidlc dtypes; `features` are the columns sent.

    >>> from pathlib import Path
    >>> model = MlflowModel(Path("m"), "onnx", Path("m/model.onnx"), "onnx", None,
    ...                     [SignatureColumn("age", "long", True)], {})
    >>> check_signature(model, {"age": "int"}, ["age"], dataset="crm")
    >>> check_signature(model, {"age": "string"}, ["age"], dataset="crm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aidlc.errors.InvalidInput: MLflow's signature says 'age' is long, but crm's contract says ...
    """
    hint = (
        f"make the model take exactly the features of {dataset}'s contract, or log it again "
        "with a signature inferred from that data"
    )
    if model.signature_inputs is None:
        width, tensors = _positional_width(model.facts)
        if tensors > 1:
            raise InvalidInput(
                f"MLflow's signature takes {tensors} input tensors, but aidlc sends the model one "
                f"table of {len(features)} features of {dataset}",
                hint=hint,
            )
        if width is not None and width != len(features):
            raise InvalidInput(
                f"MLflow's signature takes {width} values per row, but aidlc sends "
                f"{len(features)} features of {dataset}",
                hint=hint,
            )
        return
    declared = {column.name: column for column in model.signature_inputs}
    sent = set(features)
    for column in model.signature_inputs:
        if column.name not in sent:
            raise InvalidInput(
                f"MLflow's signature takes '{_shown(column.name)}', which is not among the "
                f"features aidlc sends from {dataset}",
                hint=hint,
            )
    for feature in features:
        if feature not in declared:
            raise InvalidInput(
                f"feature '{_shown(feature)}' of {dataset} is not in MLflow's signature", hint=hint
            )
        if feature not in columns:
            raise InvalidInput(
                f"feature '{_shown(feature)}' is not a column of {dataset}'s contract"
            )
        mlflow_type, dtype = declared[feature].type, columns[feature]
        if dtype not in _COMPATIBLE.get(mlflow_type, ()):
            raise InvalidInput(
                f"MLflow's signature says '{_shown(feature)}' is {_shown(mlflow_type, 50)}, but "
                f"{dataset}'s contract says {dtype}",
                hint=hint,
            )
