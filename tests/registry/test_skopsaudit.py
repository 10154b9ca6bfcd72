"""skops files users bring: scikit-learn compositions load back and predict the same; custom code,
function references, pickle, zip bombs and malformed archives are refused without running anything.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import tracemalloc
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse
import skops.io
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import is_classifier, is_regressor
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestRegressor,
)
from sklearn.feature_selection import (
    GenericUnivariateSelect,
    SelectKBest,
    SelectPercentile,
    chi2,
    f_classif,
    mutual_info_classif,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils import all_estimators

from aidlc.errors import InvalidInput
from aidlc.registry import skopsaudit
from aidlc.registry.skopsaudit import (
    audit_skops,
    lightgbm_from_skops,
    load_skops,
    trusted_functions,
    trusted_types,
)
from tests.registry.skops_files import (
    FUZZ,
    X_SMALL,
    Y_CLASS,
    Y_REGRESS,
    rewrite,
    rezip,
    round_trip,
    schema_nodes,
)

pytestmark = pytest.mark.filterwarnings("ignore")


def _frame() -> tuple[pl.DataFrame, np.ndarray]:
    """A small frame with numeric (some missing) and string columns, and binary labels."""
    rng = np.random.default_rng(3)
    n = 80
    income = rng.normal(50, 10, n)
    age = rng.integers(18, 80, n).astype(float)
    age[::9] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], n)
    y = ((income > 50) ^ (plan == "pro")).astype(int)
    return pl.DataFrame({"income": income, "age": age, "plan": plan}), y


def _refusal(data: bytes) -> str:
    """The message of the InvalidInput that both audit_skops and load_skops raise."""
    with pytest.raises(InvalidInput) as audited:
        audit_skops(data, name="model.skops")
    with pytest.raises(InvalidInput) as loaded:
        load_skops(data, name="model.skops")
    assert str(audited.value) == str(loaded.value)
    return audited.value.message


def _edit_schema(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    edit(schema)
    return rezip(data, {"schema.json": json.dumps(schema).encode()})


def _node_of(schema: dict[str, Any], type_name: str) -> dict[str, Any]:
    return next(
        n for n in schema_nodes(schema) if f"{n['__module__']}.{n['__class__']}" == type_name
    )


def _raw_zip(entries: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A zip archive written by hand: (name, method, payload, crc, declared size) per entry, so
    headers can declare what a test needs."""
    out, central = bytearray(), bytearray()
    for name, method, payload, crc, size in entries:
        encoded, offset = name.encode(), len(out)
        sizes = (crc, len(payload), size, len(encoded))
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, *sizes, 0)
        out += encoded + payload
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, *sizes, 0, 0, 0, 0, 0, offset
        )
        central += encoded
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0
    )
    return bytes(out + central + end)


@functools.cache
def _spaces_deflated(gib: int = 1) -> tuple[bytes, int]:
    """(raw deflate stream, crc32) of `gib` GiB of spaces, about 1 MB per GiB.

    After a full flush deflate starts afresh, so one compressed 16 MiB segment repeated is a
    valid stream of the whole; building it takes a fraction of a second.
    """
    chunk = b" " * (16 * 2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = gib * 64
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    return segment * count + compressor.flush(zlib.Z_FINISH), crc


def _peak_memory(action: Callable[[], Any]) -> tuple[Any, int]:
    """What `action` returns and the peak of memory Python and NumPy allocated meanwhile."""
    tracemalloc.start()
    try:
        return action(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@functools.cache
def _small_model_file() -> bytes:
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_SMALL, Y_CLASS)
    return skops.io.dumps(model)


# -- compositions load back and predict the same ------------------------------------------------


def _preprocess(numeric: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", numeric, ["income", "age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )


def _scaled() -> Pipeline:
    return make_pipeline(SimpleImputer(), StandardScaler())


COMPOSITIONS: dict[str, Callable[[], Any]] = {
    "column_transformer_logistic": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", LogisticRegression())]
    ),
    "column_transformer_hist_gradient_boosting": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", HistGradientBoostingClassifier(max_iter=10))]
    ),
    # categorical features make HistGradientBoosting keep partial(check_array, ...)
    "ordinal_encoder_categorical_hist_gradient_boosting": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", "passthrough", ["income", "age"]), ("cat", OrdinalEncoder(), ["plan"])]
                ),
            ),
            ("model", HistGradientBoostingClassifier(categorical_features=[2], max_iter=10)),
        ]
    ),
    "random_forest_regressor": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", RandomForestRegressor(n_estimators=5))]
    ),
    "gradient_boosting": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", GradientBoostingClassifier(n_estimators=5))]
    ),
    "feature_union": lambda: Pipeline(
        [
            ("prep", _preprocess(_scaled())),
            ("union", FeatureUnion([("pca", PCA(2)), ("scale", StandardScaler(with_mean=False))])),
            ("model", LogisticRegression()),
        ]
    ),
    "transformed_target_ridge": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", TransformedTargetRegressor(Ridge()))]
    ),
    "svc_probability": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", SVC(probability=True, random_state=0))]
    ),
    "k_neighbors": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", KNeighborsClassifier(3))]
    ),
    "sgd": lambda: Pipeline([("prep", _preprocess(_scaled())), ("model", SGDClassifier())]),
    "mlp": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("model", MLPClassifier((8,), max_iter=50))]
    ),
    "pca_logistic": lambda: Pipeline(
        [("prep", _preprocess(_scaled())), ("pca", PCA(2)), ("model", LogisticRegression())]
    ),
    "nan_imputer_ordinal_encoder": lambda: Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(missing_values=np.nan), ["income", "age"]),
                        ("cat", OrdinalEncoder(), ["plan"]),
                    ]
                ),
            ),
            ("model", DecisionTreeClassifier(max_depth=3)),
        ]
    ),
}


@pytest.mark.parametrize("composition", list(COMPOSITIONS))
def test_scikit_learn_compositions_load_back_and_predict_the_same(composition: str) -> None:
    X, y = _frame()
    model = COMPOSITIONS[composition]().fit(X, y)
    round_trip(model, X)


def test_a_model_fitted_on_sparse_input_loads_back_with_its_sparse_state() -> None:
    X = scipy.sparse.csr_matrix(np.where(X_SMALL > 1, X_SMALL, 0))
    model = SVC().fit(X, Y_CLASS)
    assert scipy.sparse.issparse(model.support_vectors_)
    audit = audit_skops(skops.io.dumps(model))
    assert "scipy.sparse._csr.csr_matrix" in audit.types
    round_trip(model, X)


def test_audit_reports_the_root_and_every_type_without_loading() -> None:
    X, y = _frame()
    model = COMPOSITIONS["ordinal_encoder_categorical_hist_gradient_boosting"]().fit(X, y)
    data = skops.io.dumps(model)
    audit = audit_skops(data)
    assert audit.root == "sklearn.pipeline.Pipeline"
    assert {
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.utils.validation.check_array",
        "functools.partial",
    } <= audit.types
    assert audit.types <= trusted_types() | trusted_functions()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert audit.entries == len(archive.infolist())
        assert audit.expanded == sum(i.file_size for i in archive.infolist())


def test_trusted_types_are_derived_from_the_libraries_and_hold_no_callables() -> None:
    types = trusted_types()
    assert {
        "sklearn.pipeline.Pipeline",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.tree._tree.Tree",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.random.PCG64",
        "scipy.sparse._csr.csr_matrix",
        "builtins.dict",
    } <= types
    public = {f"{c.__module__}.{c.__qualname__}" for _, c in all_estimators()}
    assert public <= types
    assert not types & {"builtins.eval", "builtins.exec", "os.system", "numpy.load"}
    assert not types & trusted_functions()


# -- every public estimator that fits on a small numeric matrix round-trips ---------------------

# Public estimators whose fitted state holds a function reference or a type aidlc does not load.
# aidlc loads check_array and, as the score_func of SelectKBest and its siblings, the score
# functions of sklearn.feature_selection; these four stay refused, named by the function or type
# that holds them: FeatureAgglomeration's pooling_func=numpy.mean (a NumPy function),
# BisectingKMeans' private k-means routine, SplineTransformer's SciPy BSpline objects and
# TunedThresholdClassifierCV's private curve scorer.
_HOLD_FUNCTIONS = {
    "BisectingKMeans": "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "FeatureAgglomeration": "numpy.mean",
    "SplineTransformer": "scipy.interpolate._bsplines.BSpline",
    "TunedThresholdClassifierCV": "sklearn.metrics._scorer._CurveScorer",
}
_SKIPPED = {
    "Birch": "skops 0.16 cannot save Birch",
    "DictVectorizer": "fits on dicts, not a matrix",
    "FeatureHasher": "hashes dicts or strings, not a matrix",
    "HashingVectorizer": "fits on text",
    "LabelBinarizer": "fits on labels only",
    "LabelEncoder": "fits on labels only",
    "MultiLabelBinarizer": "fits on label sets only",
}
# estimators that fit on another matrix than X_SMALL
_MATRICES = {"IsotonicRegression": X_SMALL[:, :1], "KernelCenterer": X_SMALL @ X_SMALL.T}
_MULTI_OUTPUT = {
    "ClassifierChain",
    "MultiOutputClassifier",
    "MultiOutputRegressor",
    "MultiTaskElasticNet",
    "MultiTaskElasticNetCV",
    "MultiTaskLasso",
    "MultiTaskLassoCV",
    "RegressorChain",
}
_PARAMS: dict[str, Callable[[], dict[str, Any]]] = {
    "ColumnTransformer": lambda: {
        "transformers": [("scale", StandardScaler(), [0, 1]), ("keep", "passthrough", [2, 3])]
    },
    "FeatureUnion": lambda: {"transformer_list": [("scale", StandardScaler()), ("pca", PCA(2))]},
    "StackingClassifier": lambda: {
        "estimators": [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2))]
    },
    "VotingClassifier": lambda: {
        "estimators": [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2))]
    },
    "StackingRegressor": lambda: {
        "estimators": [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=2))]
    },
    "VotingRegressor": lambda: {
        "estimators": [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=2))]
    },
    "RegressorChain": lambda: {"estimator": Ridge()},
    "MultiOutputRegressor": lambda: {"estimator": Ridge()},
    "SelfTrainingClassifier": lambda: {"estimator": LogisticRegression()},
    "CCA": lambda: {"n_components": 1},
    "PLSCanonical": lambda: {"n_components": 1},
    "PLSSVD": lambda: {"n_components": 1},
    "GaussianRandomProjection": lambda: {"n_components": 2},
    "SparseRandomProjection": lambda: {"n_components": 2},
    "SparseCoder": lambda: {"dictionary": X_SMALL[:3]},
}
_SWEEP = sorted(
    name for name, _ in all_estimators(type_filter=["classifier", "regressor", "transformer"])
)


@functools.cache
def _fitted(name: str) -> Any:
    """The estimator `name` fitted on the small matrix, or why it cannot be (a str)."""
    if name in _SKIPPED:
        return _SKIPPED[name]
    cls = dict(all_estimators())[name]
    params = _PARAMS.get(name, dict)()
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.default is inspect.Parameter.empty and parameter.name not in params:
            if parameter.name != "estimator":
                return f"needs {parameter.name}"
            params["estimator"] = LogisticRegression()
    model = cls(**params)
    y = np.column_stack([Y_CLASS, 1 - Y_CLASS]) if name in _MULTI_OUTPUT else Y_CLASS
    if is_regressor(model) and not is_classifier(model):
        y = y * 1.5 + X_SMALL[:, :1] if name in _MULTI_OUTPUT else Y_REGRESS
    try:
        return model.fit(_MATRICES.get(name, X_SMALL), y)
    except Exception as exc:
        return f"cannot fit on a small matrix: {type(exc).__name__}: {exc}"


@pytest.mark.parametrize("name", _SWEEP)
def test_public_estimator_round_trips_or_is_refused_for_a_function(name: str) -> None:
    model = _fitted(name)
    if isinstance(model, str):
        pytest.skip(model)
    if name in _HOLD_FUNCTIONS:
        assert _HOLD_FUNCTIONS[name] in _refusal(skops.io.dumps(model))
    else:
        round_trip(model, _MATRICES.get(name, X_SMALL))


def test_the_sweep_round_trips_at_least_120_public_estimators() -> None:
    loadable = [n for n in _SWEEP if not isinstance(_fitted(n), str) and n not in _HOLD_FUNCTIONS]
    assert len(loadable) >= 120, len(loadable)


# -- custom code, functions and pickle are refused without running anything ---------------------

_CUSTOM_MODULE = """\
import pathlib
pathlib.Path(__file__).with_name("imported.marker").write_text("imported")

from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2


def double(X):
    return X * 2
"""
_SAVE_CUSTOM = """\
import sys
import numpy as np, skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
import {module} as custom

X, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
models = {{
    "class": make_pipeline(custom.Doubler(), LogisticRegression()),
    "function": make_pipeline(FunctionTransformer(custom.double), LogisticRegression()),
}}
for kind, model in models.items():
    skops.io.dump(model.fit(X, y), sys.argv[1] + "/" + kind + ".skops")
"""


@pytest.fixture
def custom_files(tmp_path: Path) -> tuple[str, dict[str, bytes], Path]:
    """(module name, skops files of a custom class and a custom function, import marker)."""
    module = f"aidlc_custom_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{module}.py").write_text(_CUSTOM_MODULE)
    subprocess.run(
        [sys.executable, "-c", _SAVE_CUSTOM.format(module=module), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        check=True,
        capture_output=True,
    )
    marker = tmp_path / "imported.marker"
    assert marker.exists()  # the module did run, in the subprocess
    marker.unlink()
    files = {kind: (tmp_path / f"{kind}.skops").read_bytes() for kind in ("class", "function")}
    return module, files, marker


def test_a_custom_class_is_refused_by_name_and_its_module_never_imported(custom_files) -> None:
    module, files, marker = custom_files
    message = _refusal(files["class"])
    assert f"untrusted type {module}.Doubler refused" in message
    assert not marker.exists()
    assert module not in sys.modules


def test_a_function_from_custom_code_is_refused_by_name(custom_files) -> None:
    module, files, marker = custom_files
    assert f"function reference {module}.double refused" in _refusal(files["function"])
    assert not marker.exists()
    assert module not in sys.modules


def test_function_transformer_of_a_numpy_function_is_refused_naming_it() -> None:
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(X_SMALL, Y_CLASS)
    message = _refusal(skops.io.dumps(model))
    assert message == (
        "model.skops: function reference numpy.log1p refused "
        "(FunctionTransformer(func=...) and other callables cannot be loaded safely)"
    )


def test_the_score_functions_of_feature_selection_are_trusted_by_their_defining_module() -> None:
    from sklearn import feature_selection as selection
    from sklearn.utils.validation import check_array

    scorers = ("chi2", "f_classif", "f_regression", "r_regression")
    scorers += ("mutual_info_classif", "mutual_info_regression")
    named = {f"{f.__module__}.{f.__qualname__}" for f in map(selection.__dict__.get, scorers)}
    assert trusted_functions() == named | {f"{check_array.__module__}.check_array"}


@pytest.mark.parametrize(
    "selector",
    [
        SelectKBest(k=2),
        SelectPercentile(chi2, percentile=50),
        SelectKBest(mutual_info_classif, k=2),
        GenericUnivariateSelect(f_classif, mode="k_best", param=2),
    ],
    ids=lambda s: type(s).__name__,
)
def test_feature_selectors_with_scikit_learns_score_functions_load(selector: Any) -> None:
    round_trip(make_pipeline(selector, LogisticRegression()).fit(X_SMALL, Y_CLASS), X_SMALL)


def test_a_score_function_anywhere_but_a_selectors_score_func_is_refused() -> None:
    model = make_pipeline(FunctionTransformer(f_classif), LogisticRegression())
    message = _refusal(skops.io.dumps(model))
    assert "function reference sklearn.feature_selection._univariate_selection.f_classif" in message
    assert "trusted only as the score_func of a univariate feature selector" in message


def test_a_pickle_renamed_skops_is_refused_as_pickle() -> None:
    data = pickle.dumps(LogisticRegression().fit(X_SMALL, Y_CLASS))
    assert _refusal(data) == "model.skops holds a pickle stream; aidlc never loads pickle"


class _TouchOnUnpickle:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_pickle_that_would_write_a_file_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    for protocol in (2, 5):
        data = pickle.dumps(_TouchOnUnpickle(marker), protocol=protocol)
        assert "pickle" in _refusal(data)
    assert not marker.exists()


@pytest.mark.parametrize(
    "loader",
    [
        "MethodNode",
        "ReduceNode",
        "ConstructorFromReduceNode",
        "OperatorFuncNode",
        "DefaultDictNode",
        "CachedNode",
    ],
)
def test_a_loader_aidlc_does_not_allow_is_refused_naming_it(loader: str) -> None:
    scaler = "sklearn.preprocessing._data.StandardScaler"

    def edit(schema: dict[str, Any]) -> None:
        _node_of(schema, scaler)["__loader__"] = loader

    message = _refusal(_edit_schema(_small_model_file(), edit))
    assert f"loader {loader} (for {scaler}) refused" in message


@pytest.mark.parametrize(
    ("loader", "type_name", "expected"),
    [
        ("FunctionNode", "os.system", "function reference os.system refused"),
        ("FunctionNode", "builtins.eval", "function reference builtins.eval refused"),
        ("ObjectNode", "subprocess.Popen", "untrusted type subprocess.Popen refused"),
        ("TypeNode", "builtins.exec", "untrusted type builtins.exec refused"),
        # trusted types, but not for what skops would do with them as this loader
        (
            "TypeNode",
            "sklearn.linear_model._logistic.LogisticRegression",
            "LogisticRegression refused as a TypeNode",
        ),
        ("NdArrayNode", "sklearn.tree._tree.Tree", "Tree refused as a NdArrayNode"),
    ],
)
def test_a_node_naming_a_dangerous_callable_or_type_is_refused(
    loader: str, type_name: str, expected: str
) -> None:
    module, _, cls = type_name.rpartition(".")

    def edit(schema: dict[str, Any]) -> None:
        node = next(n for n in schema_nodes(schema) if n["__loader__"] == "JsonNode")
        node.clear()
        node.update({"__class__": cls, "__module__": module, "__loader__": loader})

    assert expected in _refusal(_edit_schema(_small_model_file(), edit))


def test_an_old_protocol_whose_function_nodes_import_their_content_is_refused() -> None:
    # protocol 0 imports content.module_path.function, not __module__.__class__
    def edit(schema: dict[str, Any]) -> None:
        schema["protocol"] = 0
        node = next(n for n in schema_nodes(schema) if n["__loader__"] == "JsonNode")
        node.clear()
        node.update(
            {
                "__class__": "check_array",
                "__module__": "sklearn.utils.validation",
                "__loader__": "FunctionNode",
                "content": {"module_path": "os", "function": "system"},
            }
        )

    assert "skops protocol 0 is not supported" in _refusal(_edit_schema(_small_model_file(), edit))


def test_a_generator_naming_a_numpy_function_as_its_bit_generator_is_refused() -> None:
    data = skops.io.dumps({"rng": np.random.default_rng(5)})
    loaded = load_skops(data)
    assert loaded["rng"].random() == np.random.default_rng(5).random()

    def edit(schema: dict[str, Any]) -> None:
        generator = _node_of(schema, "numpy.random._generator.Generator")
        name = generator["content"]["bit_generator"]["content"]["bit_generator"]
        name["content"] = json.dumps("seed")

    assert "untrusted type numpy.random.seed refused" in _refusal(_edit_schema(data, edit))


def test_a_small_stub_reusing_a_big_objects_id_is_refused_in_linear_time() -> None:
    # skops' own audit walks shared subtrees again at every reference: 2**depth steps
    node: dict[str, Any] = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode"}
    node |= {"content": "1", "__id__": 1}
    for i in range(2, 60):
        stub = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode"}
        stub |= {"__id__": i - 1, "content": []}
        parent = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode"}
        node = parent | {"__id__": i, "content": [node, stub]}
    node |= {"protocol": 2, "_skops_version": "0.16.0"}
    start = time.perf_counter()
    assert "reuses the object id" in _refusal(
        rezip(_small_model_file(), {"schema.json": json.dumps(node).encode()})
    )
    assert time.perf_counter() - start < 5


def test_a_shared_tree_written_twice_loads_but_one_id_for_two_states_is_refused() -> None:
    # skops writes a shared object in full at each reference, its temporaries (the tree's node
    # array among them) under fresh ids and entry names
    tree = DecisionTreeClassifier(random_state=0).fit(X_SMALL, Y_CLASS)
    data = skops.io.dumps({"a": tree, "b": tree})
    loaded = load_skops(data)
    assert loaded["a"] is loaded["b"]

    def edit(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        copies = [n for n in schema_nodes(schema) if n["__loader__"] == "TreeNode"]
        assert (
            copies[0]["content"]["content"]["nodes"]["file"]
            != (copies[1]["content"]["content"]["nodes"]["file"])
        )
        later = arrays[copies[1]["content"]["content"]["nodes"]["file"]]
        later["threshold"] += 1.0

    assert "reuses the object id" in _refusal(rewrite(data, edit))


def test_an_entry_named_by_many_nodes_counts_once_per_node_against_the_limit(monkeypatch) -> None:
    data = skops.io.dumps({"a": np.zeros(1000)})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        npy = next(i for i in archive.infolist() if i.filename.endswith(".npy"))
    monkeypatch.setattr(skopsaudit, "MAX_EXPANDED_BYTES", 20 * npy.file_size)
    assert audit_skops(data).types >= {"numpy.ndarray"}

    def edit(schema: dict[str, Any]) -> None:
        array = _node_of(schema, "numpy.ndarray")
        content = schema["content"]
        for i in range(50):
            content[f"copy{i}"] = {**array, "__id__": 10_000 + i}
        schema["key_types"]["content"] += [schema["key_types"]["content"][0]] * 50

    assert "makes skops read more than" in _refusal(_edit_schema(data, edit))


# -- zip bombs and archive limits ---------------------------------------------------------------


def test_a_gigabyte_schema_deflated_to_a_megabyte_is_refused_without_reading_it() -> None:
    stream, crc = _spaces_deflated()
    bomb = _raw_zip([("schema.json", zipfile.ZIP_DEFLATED, stream, crc, 2**30)])
    assert len(bomb) < 2 * 2**20
    start = time.perf_counter()
    message, peak = _peak_memory(lambda: _refusal(bomb))
    assert "zip bomb" in message
    assert time.perf_counter() - start < 2
    assert peak < 50 * 2**20


@pytest.mark.parametrize("entry", ["schema.json", "123.npy"])
@pytest.mark.parametrize("honest_crc", [False, True], ids=["crc-of-the-gigabyte", "crc-of-1000"])
def test_an_entry_whose_header_understates_its_size_is_refused_in_bounded_memory(
    entry: str, honest_crc: bool
) -> None:
    # Declares 1000 bytes, within the ratio; the data inflates to a gigabyte. zipfile would
    # return 1000 bytes (with a matching CRC, without error) but inflate it all in one call
    # first, so skops reading this entry would hold the gigabyte.
    stream, crc = _spaces_deflated()
    if honest_crc:
        crc = zlib.crc32(b" " * 1000)
    with zipfile.ZipFile(io.BytesIO(_small_model_file())) as archive:
        entries = {n: archive.read(n) for n in archive.namelist() if n != entry}
    stored = [(n, zipfile.ZIP_STORED, b, zlib.crc32(b), len(b)) for n, b in entries.items()]
    liar = _raw_zip([*stored, (entry, zipfile.ZIP_DEFLATED, stream, crc, 1000)])
    message, peak = _peak_memory(lambda: _refusal(liar))
    assert f"entry '{entry}' does not inflate to its declared size" in message
    assert peak < 50 * 2**20


def test_a_sparse_matrix_whose_npz_is_a_zip_bomb_is_refused() -> None:
    data = skops.io.dumps({"m": scipy.sparse.csr_matrix(np.eye(3))})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        npz = next(n for n in archive.namelist() if n.endswith(".npz"))
    zeros = b"\0" * 2**20
    packed = zlib.compress(zeros, 9)[2:-4]  # raw deflate
    bomb = _raw_zip([("data.npy", zipfile.ZIP_DEFLATED, packed, zlib.crc32(zeros), len(zeros))])
    assert audit_skops(data).types >= {"scipy.sparse._csr.csr_matrix"}
    assert "zip bomb" in _refusal(rezip(data, {npz: bomb}))


def test_too_many_entries_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(skopsaudit, "MAX_ENTRIES", 20)
    data = rezip(_small_model_file(), {f"{i}.bin": b"x" for i in range(20)})
    assert "more than 20 entries" in _refusal(data)


def test_a_repeated_entry_name_is_refused() -> None:
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(io.BytesIO(_small_model_file())) as source:
            for name in source.namelist():
                archive.writestr(name, source.read(name))
        archive.writestr("schema.json", b"{}")
    assert "holds the entry 'schema.json' twice" in _refusal(out.getvalue())


@pytest.mark.parametrize("entry", ["../escape.npy", "dir/x.npy", "/abs.npy", "back\\slash.npy"])
def test_an_entry_name_with_a_path_is_refused(entry: str) -> None:
    # written by hand: zipfile may tidy names it writes
    archive = _raw_zip([(entry, zipfile.ZIP_STORED, b"x", zlib.crc32(b"x"), 1)])
    with zipfile.ZipFile(io.BytesIO(archive)) as parsed:
        assert parsed.namelist() == [entry]
    assert "an entry with a path" in _refusal(archive)


def test_an_archive_larger_than_the_limit_is_refused_before_parsing(monkeypatch) -> None:
    monkeypatch.setattr(skopsaudit, "MAX_SKOPS_BYTES", 1000)
    assert "is larger than 1000 bytes" in _refusal(_small_model_file())


def test_a_schema_larger_than_the_limit_is_refused_before_it_is_parsed(monkeypatch) -> None:
    # parsed, a schema takes ten to twenty times its size in memory
    assert skopsaudit.MAX_SCHEMA_BYTES == 64 * 2**20
    monkeypatch.setattr(skopsaudit, "MAX_SCHEMA_BYTES", 1000)
    assert "schema.json is larger than 1000 bytes" in _refusal(_small_model_file())


def test_a_compression_method_other_than_deflate_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_LZMA) as archive:
        archive.writestr("schema.json", b"{}")
    assert "compression method 14" in _refusal(out.getvalue())


# -- malformed input ----------------------------------------------------------------------------


def _schema_file(text: str | bytes) -> bytes:
    return rezip(
        _small_model_file(), {"schema.json": text.encode() if isinstance(text, str) else text}
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is not a skops file (a zip archive)"),
        (os.urandom(4096), "is not a skops file (a zip archive)"),
        (b"PK\x03\x04" + bytes(range(256)) * 8, "is not a valid zip archive"),
        (b"{}", "is not a skops file (a zip archive)"),
    ],
)
def test_bytes_that_are_not_an_archive_are_refused(data: bytes, expected: str) -> None:
    assert expected in _refusal(data)


def test_a_truncated_archive_is_refused() -> None:
    data = _small_model_file()
    for cut in (len(data) // 2, len(data) - 10, 40):
        assert "model.skops" in _refusal(data[:cut])


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("not json", "schema.json is not UTF-8 JSON"),
        (b"\xff\xfe{}", "schema.json is not UTF-8 JSON"),
        ("[1, 2]", "is not a skops schema"),
        ('{"protocol": 2, "protocol": 2}', "repeats the key 'protocol'"),
        ("[" * 100_000 + "]" * 100_000, "nests too deep"),
        ("{}", "skops protocol None is not supported"),
        ('{"protocol": 2, "__loader__": "ObjectNode"}', "without loader, module or class"),
    ],
)
def test_a_malformed_schema_is_refused(schema: str | bytes, expected: str) -> None:
    assert expected in _refusal(_schema_file(schema))


def test_an_archive_without_a_schema_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("model.npy", b"x")
    assert "has no schema.json" in _refusal(out.getvalue())


def test_nodes_nested_deeper_than_the_limit_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(skopsaudit, "MAX_DEPTH", 5)
    data = skops.io.dumps([[[[[[1]]]]]])
    assert "nests deeper than 5 nodes" in _refusal(data)


_FLIPS = st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=4)


def _damage(data: bytes, flips: list[tuple[int, int]], cut: int | None = None) -> bytes:
    damaged = bytearray(data)
    for position, mask in flips:
        damaged[position % len(damaged)] ^= mask
    return bytes(damaged if cut is None else damaged[: cut % (len(damaged) + 1)])


def _read_or_refuse(data: bytes, *reads: Callable[..., Any]) -> None:
    for read in reads:
        try:
            read(data)
        except InvalidInput:
            pass


@FUZZ
@given(flips=_FLIPS, cut=st.none() | st.integers(0, 10**9))
def test_damaged_skops_files_load_or_raise_invalid_input(flips, cut) -> None:
    _read_or_refuse(_damage(_small_model_file(), flips, cut), audit_skops, load_skops)


@FUZZ
@given(flips=_FLIPS)
def test_damaged_schemas_load_or_raise_invalid_input(flips) -> None:
    # re-zipped, so the damage gets past the CRC to the JSON and the schema walk
    with zipfile.ZipFile(io.BytesIO(_small_model_file())) as archive:
        schema = archive.read("schema.json")
    _read_or_refuse(_schema_file(_damage(schema, flips)), audit_skops, load_skops)


# -- LightGBM saved by MLflow -------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_lightgbm(tmp_path_factory) -> Callable[[Any], bytes]:
    import mlflow.lightgbm

    def save(model: Any) -> bytes:
        path = tmp_path_factory.mktemp("mlflow") / "model"
        # naming the requirements skips MLflow's inference of them, seconds per model
        mlflow.lightgbm.save_model(model, str(path), pip_requirements=["lightgbm"])
        return (path / "model.skops").read_bytes()

    return save


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["no", "yes"]),
        np.array(["no", "yes"], dtype=object),  # an object array: skops stores one node a label
        np.array([3, 8]),
    ],
    ids=["strings", "objects", "ints"],
)
def test_lightgbm_classifier_text_and_classes_come_out_of_mlflow_skops(
    mlflow_lightgbm, labels
) -> None:
    import lightgbm as lgb

    X = np.random.default_rng(11).normal(size=(200, 3))
    y = labels[(X[:, 0] + X[:, 1] > 0).astype(int)]
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    text, classes = lightgbm_from_skops(mlflow_lightgbm(model), name="model.skops")
    assert classes == model.classes_.tolist()
    booster = lgb.Booster(model_str=text)
    np.testing.assert_allclose(booster.predict(X), model.booster_.predict(X))


def test_lightgbm_regressor_comes_out_of_mlflow_skops_without_classes(mlflow_lightgbm) -> None:
    import lightgbm as lgb

    model = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X_SMALL, Y_REGRESS)
    text, classes = lightgbm_from_skops(mlflow_lightgbm(model))
    assert classes is None
    np.testing.assert_allclose(lgb.Booster(model_str=text).predict(X_SMALL), model.predict(X_SMALL))


def test_a_scikit_learn_skops_file_is_not_a_lightgbm_model() -> None:
    with pytest.raises(InvalidInput, match="not a LightGBM model saved by MLflow"):
        lightgbm_from_skops(_small_model_file())


def test_lightgbm_extraction_applies_the_archive_limits() -> None:
    stream, crc = _spaces_deflated()
    bomb = _raw_zip([("schema.json", zipfile.ZIP_DEFLATED, stream, crc, 2**30)])
    with pytest.raises(InvalidInput, match="zip bomb"):
        lightgbm_from_skops(bomb)
    with pytest.raises(InvalidInput, match="pickle"):
        lightgbm_from_skops(pickle.dumps([1]))


@pytest.fixture(scope="module")
def lightgbm_file(mlflow_lightgbm) -> bytes:
    import lightgbm as lgb

    y = np.array(["no", "yes"])[Y_CLASS]
    return mlflow_lightgbm(lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X_SMALL, y))


@FUZZ
@given(flips=_FLIPS, cut=st.none() | st.integers(0, 10**9))
def test_damaged_lightgbm_files_give_the_model_or_invalid_input(lightgbm_file, flips, cut) -> None:
    _read_or_refuse(_damage(lightgbm_file, flips, cut), lightgbm_from_skops)
