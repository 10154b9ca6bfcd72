"""Estimators stored only in formats that cannot run code on load: XGBoost UBJSON, LightGBM text,
and skops with an explicit list of trusted types. Pickle is refused before anything is parsed.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidlc.errors import AidlcError, ConfigError, IntegrityError, InvalidInput
from aidlc.train import estimators

FLAVOR_FILES = {
    "xgboost": "estimator.ubj",
    "lightgbm": "estimator.txt",
    "sklearn": "estimator.skops",
}
# The files an imported booster may be kept as: its own format, as the user gave it.
BOOSTER_FILES = {
    "xgboost": ("estimator.ubj", "estimator.json"),
    "lightgbm": ("estimator.txt",),
}
MAX_XGBOOST_JSON_BYTES = 512 * 1024**2

MAX_ESTIMATOR_BYTES = 2 * 1024**3

# What skops may construct beyond its own defaults (builtins, numpy, scikit-learn estimators):
# the allowlisted estimators and exactly the helpers they hold, found with
# `skops.io.get_untrusted_types` over every allowlisted estimator fitted on small data.
TRUSTED_SKOPS_TYPES: tuple[str, ...] = (
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._gb.GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    # the trees of every tree model
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # HistGradientBoosting with categorical_features keeps a FunctionTransformer whose function
    # is partial(check_array, ...); skops checks a partial's function and arguments separately
    "functools.partial",
    "sklearn.utils.validation.check_array",
)

# Names that announce a pickle; `refuse_pickle` rejects them before reading (this list is what
# is refused, nothing here ever loads one).
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".dill", ".cloudpickle")
# (signature, offset of the name, offset of the name's length) of zip local and central headers
_ZIP_HEADERS = ((b"PK\x03\x04", 30, 26), (b"PK\x01\x02", 46, 28))
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# How each flavor's file starts (UBJSON and JSON models both open an object). Checked first:
# XGBoost aborts the process on an empty buffer.
_MAGIC = {"xgboost": b"{", "lightgbm": b"tree\n", "sklearn": b"PK\x03\x04"}
# skops nodes of immutable values: whether two of them were one Python object is chance
# (interning, caching), so their ids are dropped rather than renumbered.
_VALUE_LOADERS = frozenset({"JsonNode", "TypeNode", "TupleNode"})


def flavor_of(kind: str) -> str:
    """The storage flavor of a model kind.

    >>> flavor_of("sklearn.RandomForestClassifier"), flavor_of("lightgbm")
    ('sklearn', 'lightgbm')
    """
    if kind in estimators.BOOSTING:
        return kind
    if (
        kind.startswith("sklearn.")
        and kind.removeprefix("sklearn.") in estimators.SKLEARN_ESTIMATORS
    ):
        return "sklearn"
    raise ConfigError(
        f"unknown model kind {kind!r}",
        hint="use xgboost, lightgbm or sklearn.<Name> with an allowlisted Name",
    )


# -- pickle -------------------------------------------------------------------------------------


def _zip_entry_names(data: bytes) -> Iterator[str]:
    # Read names from every local and central header found, so a prefixed or truncated archive
    # (the registry passes the first 4 KiB) is still seen.
    for signature, name_at, size_at in _ZIP_HEADERS:
        start = data.find(signature)
        while start != -1 and start + name_at <= len(data):
            (size,) = struct.unpack_from("<H", data, start + size_at)
            yield data[start + name_at : start + name_at + size].decode("utf-8", "replace")
            start = data.find(signature, start + 4)


def refuse_pickle(name: str, data: bytes) -> None:
    """IntegrityError for a pickle file name, a pickle stream, or a zip holding a pickle.

    >>> refuse_pickle("estimator.ubj", b"{")
    >>> refuse_pickle("model.joblib", b"")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aidlc.errors.IntegrityError: model.joblib is a pickle file; aidlc never loads pickle (...)
    """
    hint = "store the model as XGBoost UBJSON, LightGBM text or skops"
    if name.lower().endswith(_PICKLE_SUFFIXES):
        raise IntegrityError(f"{name} is a pickle file; aidlc never loads pickle", hint=hint)
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise IntegrityError(f"{name} holds a pickle stream; aidlc never loads pickle", hint=hint)
    for entry in _zip_entry_names(data):
        if entry.lower().endswith(_PICKLE_SUFFIXES):
            raise IntegrityError(
                f"{name} is an archive holding a pickle ({entry[:100]}); aidlc never loads pickle",
                hint=hint,
            )


# -- save ---------------------------------------------------------------------------------------


def _canonical_skops(data: bytes) -> bytes:
    """The same skops archive with no timestamps and no memory addresses in it.

    skops names each array file and `__id__` after `id(obj)` and stamps entries with the
    current time; both are renumbered in schema order (ids from 1: skops ignores id 0), ids of
    immutable values are dropped (skops then builds each on its own), and the
    archive is rebuilt with sorted entries and a fixed date, so equal models give equal bytes.
    Record arrays (a tree's nodes) are rewritten with zeroed padding, which is otherwise
    whatever memory the tree was built in.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
        payloads = {n: archive.read(n) for n in archive.namelist() if n != "schema.json"}
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def renumber(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("__loader__") in _VALUE_LOADERS:
                node.pop("__id__", None)
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    node[key] = ids.setdefault(value, len(ids) + 1)
                elif key == "file" and isinstance(value, str) and value in payloads:
                    node[key] = files.setdefault(value, f"{len(files) + 1}{Path(value).suffix}")
                else:
                    renumber(value)
        elif isinstance(node, list):
            for value in node:
                renumber(value)

    renumber(schema)
    entries = {
        new: _zero_padding(payloads[old]) if new.endswith(".npy") else payloads[old]
        for old, new in files.items()
    }
    entries["schema.json"] = json.dumps(schema, separators=(",", ":")).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for entry in sorted(entries):
            info = zipfile.ZipInfo(entry, date_time=_ZIP_TIME)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[entry])
    return out.getvalue()


def _zero_padding(payload: bytes) -> bytes:
    import numpy as np

    array = np.load(io.BytesIO(payload), allow_pickle=False)
    if array.dtype.names is None:
        return payload
    clean = np.zeros(array.shape, dtype=array.dtype)
    for field in array.dtype.names:
        clean[field] = array[field]
    out = io.BytesIO()
    np.save(out, clean, allow_pickle=False)
    return out.getvalue()


def _untrusted(data: bytes) -> list[str]:
    import skops.io

    return [t for t in skops.io.get_untrusted_types(data=data) if t not in TRUSTED_SKOPS_TYPES]


def _serialize(kind: str, model: Any) -> bytes:
    flavor = flavor_of(kind)
    if flavor == "xgboost":
        import xgboost as xgb

        if not isinstance(model, xgb.Booster):
            raise InvalidInput(f"an xgboost model must be a Booster, not {type(model).__name__}")
        return bytes(model.save_raw("ubj"))
    if flavor == "lightgbm":
        import lightgbm as lgb

        if not isinstance(model, lgb.Booster):
            raise InvalidInput(f"a lightgbm model must be a Booster, not {type(model).__name__}")
        return str(model.model_to_string()).encode("utf-8")
    import skops.io

    expected = estimators.sklearn_estimator(kind.removeprefix("sklearn."))
    if type(model) is not expected:
        raise InvalidInput(
            f"a {kind} model must be a {expected.__name__}, not {type(model).__name__}"
        )
    try:
        data = _canonical_skops(skops.io.dumps(model))
    except Exception as exc:  # skops raises many kinds, RecursionError among them
        raise InvalidInput(
            f"{kind} cannot be stored in skops format: {type(exc).__name__}"
        ) from None
    untrusted = _untrusted(data)
    if untrusted:
        raise InvalidInput(
            f"{kind} holds types aidlc will not load back: {', '.join(untrusted[:5])}",
            hint="fit it with plain-data params (no callables or custom objects)",
        )
    return data


def save_estimator(kind: str, model: Any, directory: Path) -> str:
    """Write `model` as the one estimator file of its flavor into `directory`; return its name.

    The bytes are a pure function of the fitted model: saved twice, or in another process,
    the file is the same.
    """
    name = FLAVOR_FILES[flavor_of(kind)]
    (directory / name).write_bytes(_serialize(kind, model))
    return name


# -- load ---------------------------------------------------------------------------------------


def _read(directory: Path, name: str) -> bytes:
    path = directory / name
    try:
        size = path.stat().st_size
        if size > MAX_ESTIMATOR_BYTES:
            raise IntegrityError(f"{name} is larger than {MAX_ESTIMATOR_BYTES} bytes")
        return path.read_bytes()
    except OSError:
        raise IntegrityError(f"the model has no readable {name}") from None


_NUMBER = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan"
_TREE_LINE = re.compile(rb"[a-z_]+= *(?:(?:%s)(?: +(?:%s))*)? *" % (_NUMBER, _NUMBER))
_PARAMETER = re.compile(rb"\[[a-z0-9_]+: [^\n]*\]")
_LGB_NODE_ARRAYS = (
    b"split_feature",
    b"split_gain",
    b"threshold",
    b"decision_type",
    b"left_child",
    b"right_child",
    b"internal_value",
    b"internal_weight",
    b"internal_count",
)


def _ints(fields: dict[bytes, bytes], key: bytes) -> list[int]:
    return [int(v) for v in fields[key].split()]


def _check_lightgbm_tree(block: bytes, max_feature: int) -> bool:
    lines = block.splitlines()[1:]
    # every field of a tree is numbers; LightGBM aborts on any other token
    if not all(line == b"" or _TREE_LINE.fullmatch(line) for line in lines):
        return False
    fields = dict(line.split(b"=", 1) for line in lines if line)
    leaves, cats = int(fields[b"num_leaves"]), int(fields[b"num_cat"])
    if leaves < 1 or cats < 0:
        return False
    if any(len(fields[key].split()) != leaves - 1 for key in _LGB_NODE_ARRAYS):
        return False
    if len(fields[b"leaf_value"].split()) != leaves:
        return False
    if any(
        len(fields.get(k, b"").split()) not in (0, leaves) for k in (b"leaf_weight", b"leaf_count")
    ):
        return False
    children = _ints(fields, b"left_child") + _ints(fields, b"right_child")
    if not all(-leaves <= c < leaves - 1 for c in children):
        return False
    if not all(0 <= f <= max_feature for f in _ints(fields, b"split_feature")):
        return False
    categorical = [
        int(float(t))
        for t, d in zip(fields[b"threshold"].split(), _ints(fields, b"decision_type"), strict=True)
        if d & 1
    ]
    if cats:
        bounds = _ints(fields, b"cat_boundaries")
        ordered = bounds[0] == 0 and all(a <= b for a, b in itertools.pairwise(bounds))
        if len(bounds) != cats + 1 or not ordered:
            return False
        if len(fields[b"cat_threshold"].split()) != bounds[-1]:
            return False
    if not all(0 <= t < cats for t in categorical):
        return False
    if fields.get(b"is_linear", b"0").strip() == b"1":
        per_leaf = _ints(fields, b"num_features")
        if len(per_leaf) != leaves or len(fields[b"leaf_const"].split()) != leaves:
            return False
        if any(len(fields[k].split()) != sum(per_leaf) for k in (b"leaf_features", b"leaf_coeff")):
            return False
    return True


def _check_lightgbm_text(name: str, data: bytes) -> None:
    """Check a model text's layout before LightGBM parses it.

    LightGBM reads tree blocks at the offsets its header claims and, on some malformed trees,
    aborts the process instead of raising; a file must not be able to do either.
    """
    bad = IntegrityError(f"{name} is not a valid LightGBM model")
    end = data.find(b"\nend of trees\n")
    if not data.startswith(b"tree\n") or end == -1:
        raise bad
    first = data.find(b"\nTree=", 0, end)
    position = (first if first != -1 else end) + 1
    try:
        header = dict(line.split(b"=", 1) for line in data[:position].splitlines() if b"=" in line)
        sizes = [int(v) for v in header.get(b"tree_sizes", b"").split()]
        max_feature = int(header[b"max_feature_idx"])
        for index, size in enumerate(sizes):
            block = data[position : position + size]
            if len(block) != size or not block.startswith(b"Tree=%d\n" % index):
                raise bad
            if not _check_lightgbm_tree(block, max_feature):
                raise bad
            position += size
    except (ValueError, KeyError, IndexError):
        raise bad from None
    if position != end + 1 or not _lightgbm_trailer_ok(data[end + 1 :]):
        raise bad


def _lightgbm_trailer_ok(tail: bytes) -> bool:
    # "end of trees", feature importances, "[key: value]" parameters, pandas_categorical JSON.
    # LightGBM crashes on a cut parameter line, so the whole trailer must be there.
    lines = tail.split(b"\n")
    try:
        start, stop = lines.index(b"parameters:"), lines.index(b"end of parameters")
        json.loads(lines[-2].removeprefix(b"pandas_categorical:"))
    except ValueError:
        return False
    parameters = lines[start + 1 : stop]
    return (
        lines[0] == b"end of trees"
        and all(line == b"" or _PARAMETER.fullmatch(line) for line in parameters)
        and lines[stop + 1 :] == [b"", lines[-2], b""]
        and lines[-2].startswith(b"pandas_categorical:")
    )


_UBJ_NUMBERS = {"i": ">i1", "U": ">u1", "I": ">i2", "l": ">i4", "L": ">i8", "d": ">f4", "D": ">f8"}
_UBJ_CONSTANTS = {"Z": None, "N": None, "T": True, "F": False}
_UBJ_MAX_DEPTH = 64


def _ubj_decode(
    data: bytes, pos: int, marker: str | None = None, depth: int = 0
) -> tuple[Any, int]:
    """(value, end) of the UBJSON value at `pos`; typed number arrays come back as numpy arrays."""
    import numpy as np

    if marker is None:
        marker, pos = chr(data[pos]), pos + 1
    if marker in _UBJ_NUMBERS or marker == "C":
        dtype = np.dtype(_UBJ_NUMBERS.get(marker, ">u1"))
        return np.frombuffer(data, dtype, 1, pos)[0].item(), pos + dtype.itemsize
    if marker in _UBJ_CONSTANTS:
        return _UBJ_CONSTANTS[marker], pos
    if marker in ("S", "H"):
        size, pos = _ubj_decode(data, pos)
        if not isinstance(size, int) or not 0 <= size <= len(data) - pos:
            raise ValueError("bad string length")
        return data[pos : pos + size].decode("utf-8"), pos + size
    if marker not in ("[", "{") or depth > _UBJ_MAX_DEPTH:
        raise ValueError(f"not a UBJSON value: {marker!r}")
    typed = count = None
    if data[pos] == ord("$"):
        typed, pos = chr(data[pos + 1]), pos + 2
        if data[pos] != ord("#"):
            raise ValueError("a typed container needs a count")
    if data[pos] == ord("#"):
        count, pos = _ubj_decode(data, pos + 1)
        if not isinstance(count, int) or not 0 <= count <= len(data):
            raise ValueError("bad container count")
    if marker == "[" and count is not None and typed in _UBJ_NUMBERS:
        dtype = np.dtype(_UBJ_NUMBERS[typed])
        return np.frombuffer(data, dtype, count, pos), pos + count * dtype.itemsize
    items: list[Any] = []
    keys: list[str] = []
    while count is None or len(items) < count:
        if count is None and data[pos] == ord("]" if marker == "[" else "}"):
            pos += 1
            break
        if marker == "{":
            key, pos = _ubj_decode(data, pos, "S")
            keys.append(key)
        value, pos = _ubj_decode(data, pos, typed, depth + 1)
        items.append(value)
    if len(set(keys)) != len(keys):
        raise ValueError("a repeated key")  # which one would XGBoost read?
    return (items if marker == "[" else dict(zip(keys, items, strict=True))), pos


_NO_PARENT = 2**31 - 1  # a root's parent in XGBoost's trees
_TREE_ARRAYS = (
    "left_children",
    "right_children",
    "parents",
    "split_indices",
    "split_conditions",
    "default_left",
    "split_type",
    "loss_changes",
    "sum_hessian",
)


def _xgboost_trees_ok(document: dict[str, Any]) -> bool:
    # XGBoost trusts the sizes and indices in a model: a wrong num_nodes, child or parent index
    # crashes it. Check each tree's arrays against its size and its links against each other.
    import numpy as np

    learner = document["learner"]
    params = learner["learner_model_param"]
    features = int(params["num_feature"])
    booster = learner["gradient_booster"]
    if booster["name"] == "dart":
        booster = booster["gbtree"]
    groups = max(1, int(params["num_class"]), int(params["num_target"]))
    if booster["name"] == "gblinear":
        return len(booster["model"]["weights"]) == (features + 1) * groups
    if booster["name"] != "gbtree":
        return False
    model = booster["model"]
    trees, indptr = model["trees"], [int(i) for i in model["iteration_indptr"]]
    if not int(model["gbtree_model_param"]["num_trees"]) == len(trees) == len(model["tree_info"]):
        return False
    if indptr[:1] != [0] or indptr[-1] != len(trees) or indptr != sorted(indptr):
        return False
    if not all(isinstance(g, int) and 0 <= g < groups for g in model["tree_info"]):
        return False
    for tree in trees:
        nodes = int(tree["tree_param"]["num_nodes"])
        leaf_size = max(1, int(tree["tree_param"]["size_leaf_vector"]))
        if any(len(tree[key]) != nodes for key in _TREE_ARRAYS):
            return False
        if len(tree["base_weights"]) != nodes * leaf_size:
            return False
        parents = tree["parents"]
        if nodes and parents[0] not in (-1, _NO_PARENT):
            return False
        left, right = tree["left_children"], tree["right_children"]
        leaf = left == -1
        inner = np.flatnonzero(~leaf)
        for children in (left[inner], right[inner]):
            if ((children <= 0) | (children >= nodes)).any() or (parents[children] != inner).any():
                return False
        # a multi-target tree's leaf keeps the index of its weights in right_children
        leaves = int(leaf.sum())
        weights = tree.get("leaf_weights")
        if weights is None and (right[leaf] != -1).any():
            return False
        if weights is not None and (
            len(weights) != leaves * leaf_size
            or ((right[leaf] < 0) | (right[leaf] >= leaves)).any()
        ):
            return False
        if ((tree["split_indices"] < 0) | (tree["split_indices"] >= features)).any():
            return False
        segments, sizes = tree["categories_segments"], tree["categories_sizes"]
        if len(segments) != len(sizes) or len(tree["categories_nodes"]) != len(segments):
            return False
        if len(segments) and ((segments < 0) | (segments + sizes > len(tree["categories"]))).any():
            return False
        if ((tree["categories_nodes"] < 0) | (tree["categories_nodes"] >= nodes)).any():
            return False
    return True


def _check_xgboost_model(name: str, data: bytes) -> None:
    """XGBoost reads UBJSON without bounds checks: check the layout and every tree first."""
    try:
        document, end = _ubj_decode(data, 0)
        ok = end == len(data) and isinstance(document, dict) and _xgboost_trees_ok(document)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise IntegrityError(f"{name} is not a complete, consistent XGBoost UBJSON model")


def _load_skops(name: str, data: bytes) -> Any:
    import skops.io

    try:
        untrusted = _untrusted(data)
    except Exception:  # a malformed archive or schema, whatever skops makes of it
        raise IntegrityError(f"{name} is not a valid skops file") from None
    if untrusted:
        raise IntegrityError(
            f"{name}: untrusted type {untrusted[0]} refused"
            + (f" (and {len(untrusted) - 1} more)" if len(untrusted) > 1 else ""),
            hint="aidlc loads only its allowlisted scikit-learn estimators",
        )
    try:
        model = skops.io.loads(data, trusted=list(TRUSTED_SKOPS_TYPES))
    except Exception:
        raise IntegrityError(f"{name} is not a valid skops file") from None
    allowed = {estimators.sklearn_estimator(n) for n in estimators.SKLEARN_ESTIMATORS}
    if type(model) not in allowed:
        raise IntegrityError(f"{name} holds a {type(model).__name__}, not an allowlisted estimator")
    return model


# Arrays of a tree that `_xgboost_trees_ok` checks as numbers (JSON gives them as lists).
_XGB_JSON_ARRAYS = (
    *_TREE_ARRAYS,
    "base_weights",
    "leaf_weights",
    "categories",
    "categories_nodes",
    "categories_segments",
    "categories_sizes",
)


def _check_xgboost_json(name: str, data: bytes) -> None:
    """The same layout and tree checks as for UBJSON, on a model saved as JSON."""
    import numpy as np

    from aidlc.core.strictjson import unique_object

    bad = IntegrityError(f"{name} is not a complete, consistent XGBoost JSON model")
    if len(data) > MAX_XGBOOST_JSON_BYTES:
        raise IntegrityError(f"{name} is larger than {MAX_XGBOOST_JSON_BYTES} bytes")
    try:
        document = json.loads(data, object_pairs_hook=unique_object)
        booster = document["learner"]["gradient_booster"]
        model = (booster["gbtree"] if booster["name"] == "dart" else booster).get("model", {})
        for tree in model.get("trees", []):
            for key in _XGB_JSON_ARRAYS:
                if key in tree:
                    values = tree[key]
                    if not isinstance(values, list) or not all(
                        isinstance(v, int | float) for v in values
                    ):
                        raise bad
                    kind = (
                        np.float64
                        if key
                        in (
                            "split_conditions",
                            "loss_changes",
                            "sum_hessian",
                            "base_weights",
                            "leaf_weights",
                        )
                        else np.int64
                    )
                    tree[key] = np.asarray(values, dtype=kind)
        ok = isinstance(document, dict) and _xgboost_trees_ok(document)
    except IntegrityError:
        raise
    except (
        AidlcError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        RecursionError,
        OverflowError,
    ):
        ok = False
    if not ok:
        raise bad


def load_booster(flavor: str, name: str, data: bytes) -> Any:
    """An XGBoost or LightGBM booster from the bytes of its model file, checked before the
    library parses them (both trust what a model file says and can crash on a bad one)."""
    refuse_pickle(name, data)
    if flavor not in BOOSTER_FILES:
        raise IntegrityError(f"unknown booster flavor {flavor!r}")
    if not data.startswith(_MAGIC[flavor]):
        raise IntegrityError(f"{name} is not a {flavor} model file")
    if flavor == "xgboost":
        import xgboost as xgb

        if name.endswith(".json"):
            _check_xgboost_json(name, data)
        else:
            _check_xgboost_model(name, data)
        try:
            booster = xgb.Booster(model_file=bytearray(data))
            booster.save_config()  # the learner is configured lazily: make it check itself now
            return booster
        except (xgb.core.XGBoostError, ValueError, TypeError):
            raise IntegrityError(f"{name} is not a valid XGBoost model") from None
    import lightgbm as lgb

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise IntegrityError(f"{name} is not UTF-8 LightGBM model text") from None
    _check_lightgbm_text(name, data)
    try:
        return lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError, TypeError):
        raise IntegrityError(f"{name} is not a valid LightGBM model") from None


def load_estimator(flavor: str, directory: Path, name: str | None = None) -> Any:
    """Read the estimator file of `flavor` (`name`, by default the flavor's file) from
    `directory`, refusing pickle and unknown types.

    Call it only on files whose signature has been verified; it reads nothing else.
    """
    if name is None:
        name = FLAVOR_FILES.get(flavor)
    elif name not in BOOSTER_FILES.get(flavor, ()):
        raise IntegrityError(f"{name!r} is not a {flavor} model file aidlc reads")
    if name is None:
        raise IntegrityError(f"unknown model flavor {flavor!r}")
    data = _read(directory, name)
    refuse_pickle(name, data)
    if flavor == "sklearn":
        if not data.startswith(_MAGIC[flavor]):
            raise IntegrityError(f"{name} is not a {flavor} model file")
        return _load_skops(name, data)
    return load_booster(flavor, name, data)


# -- models trained by users' own code ------------------------------------------------------------


def _unfitted(what: str) -> InvalidInput:
    return InvalidInput(f"the {what} is not fitted", hint="fit it before registering it")


def from_xgboost_object(model: Any) -> Any:
    """The booster of a user's fitted XGBoost model, cut at its best iteration."""
    import xgboost as xgb

    if isinstance(model, xgb.XGBModel):
        try:
            booster = model.get_booster()
        except Exception:  # NotFittedError, whichever module it comes from
            raise _unfitted(type(model).__name__) from None
    else:
        booster = model
    best = booster.attr("best_iteration")
    if best is not None and int(best) + 1 < booster.num_boosted_rounds():
        # early stopping: keep the trees the user's own predictions use
        try:
            booster = booster[: int(best) + 1]
        except xgb.core.XGBoostError as exc:
            raise InvalidInput(f"cannot keep the best iteration of this model: {exc}") from None
    return booster


def from_lightgbm_object(model: Any) -> Any:
    """A plain booster of a user's fitted LightGBM model, through its text."""
    import lightgbm as lgb

    if isinstance(model, lgb.LGBMModel):
        try:
            booster = model.booster_
        except Exception:
            raise _unfitted(type(model).__name__) from None
    else:
        booster = model
    # Through its text (up to the best iteration, if early stopped): a plain, loaded booster.
    return lgb.Booster(model_str=booster.model_to_string())
