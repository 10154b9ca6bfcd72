"""Fitted state that scikit-learn's native code trusts, checked in a skops schema and its .npy
entries before skops builds anything; the archive, the schema and the types are skopsaudit's.

The families checked: decision trees and the ensembles of them, HistGradientBoosting's
predictors, KD and ball trees with their distance metrics, brute-force neighbors, k-means and
libsvm's SVMs. Refused rather than checked, because aidlc cannot bound what their native code
reads: GradientBoosting* whose init_ is an estimator other than scikit-learn's Dummy* or "zero",
SVMs with a callable kernel, and SVMs fitted on sparse input with a precomputed kernel.
"""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

# A trusted type can still hold hostile arrays: scikit-learn's Cython code and libsvm index
# memory with the child, feature, point and support vector numbers of a fitted model and do not
# check them, so a crafted file crashes the process or reads and writes out of bounds when it is
# loaded or predicts. These checks read the schema and the .npy entries, never building an
# object, and refuse a fitted state that scikit-learn itself would not have written.

_STATE_HINT = (
    "save the model again with scikit-learn and skops.io.dump; aidlc refuses fitted state "
    "that scikit-learn would not have written"
)
_ONNX_HINT = "export the model to ONNX (skl2onnx) instead"
_COUNT_LIMIT = 2**31 - 1  # libsvm and the tree code count in C ints and intp
_TREE_LEAF = -1  # sklearn.tree._tree.TREE_LEAF
_LIBSVM_KERNELS = ("linear", "poly", "rbf", "sigmoid", "precomputed")
# What the vector or matrix of a distance metric must match, by class (its 32- and 64-bit
# versions): the Cython code of these reads them up to the number of features of the data it
# measures; other metrics ignore both.
_METRIC_SIZES = {
    "MahalanobisDistance": "matrix",
    "SEuclideanDistance": "vector",
    "MinkowskiDistance": "weights",  # vec holds the weights, or nothing
    "HaversineDistance": "two features",
}
_T = TypeVar("_T")


class Entries(Protocol):
    """The entries of a skops archive, read under the limits the audit holds the archive to."""

    def read(self, entry: str) -> bytes:
        """The bytes of `entry`."""

    def members(self, entry: str) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of each entry of the .npz archive in `entry`, one at a time."""


def type_name(cls: type) -> str:
    """The name skops writes for a class: its module and qualified name.

    >>> type_name(dict)
    'builtins.dict'
    """
    return f"{cls.__module__}.{cls.__qualname__}"


def type_of(node: Any) -> str:
    """The type name a schema node gives, or the Python type of what stands in its place."""
    if not isinstance(node, dict):
        return type(node).__name__
    return f"{node.get('__module__')}.{node.get('__class__')}"


class _Flaw(Exception):
    """A fitted state that native code would trust but that does not hold together."""

    def __init__(self, problem: str, hint: str = _STATE_HINT) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


@dataclass(frozen=True)
class _Families:
    """Type names of the estimators whose fitted state reaches native code, by family."""

    tree: str
    tree_owners: frozenset[str]  # DecisionTree*, ExtraTree*: hold a Tree as tree_
    tree_ensembles: frozenset[str]  # call their trees on X they validated themselves
    gradient_boosting: dict[str, bool]  # GradientBoosting*: type -> is a classifier
    isolation_forest: str
    hist_gradient_boosting: frozenset[str]
    predictor: str  # one tree of a HistGradientBoosting model
    bin_mapper: str
    libsvm: dict[str, str]  # type -> libsvm implementation (c_svc, ..., nu_svr)
    binary_trees: dict[str, int]  # KDTree, BallTree -> bounds kept per node
    metrics: frozenset[str]
    dummies: dict[str, bool]  # DummyClassifier, DummyRegressor -> is a classifier
    multiclass_losses: frozenset[str]
    fitted_matrices: dict[str, str]  # type -> attribute of shape (*, n_features_in_)
    hist_preprocessing: frozenset[str]  # what HistGradientBoosting's own preprocessor holds
    column_transformer: str


@functools.cache
def _families() -> _Families:
    import sklearn._loss.loss
    import sklearn.metrics._dist_metrics as dist_metrics
    from sklearn.base import ClassifierMixin
    from sklearn.cluster._kmeans import _BaseKMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.neighbors._base import NeighborsBase
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree._classes import BaseDecisionTree
    from sklearn.tree._tree import Tree
    from sklearn.utils import all_estimators

    estimators = [cls for _, cls in all_estimators()]

    def kind(base: type) -> frozenset[str]:
        return frozenset(type_name(c) for c in estimators if issubclass(c, base))

    losses = [c for c in vars(sklearn._loss.loss).values() if isinstance(c, type)]
    gradient_boosting = [c for c in estimators if issubclass(c, BaseGradientBoosting)]
    return _Families(
        tree=type_name(Tree),
        tree_owners=kind(BaseDecisionTree),
        tree_ensembles=kind(BaseForest) | kind(BaseGradientBoosting) | kind(IsolationForest),
        gradient_boosting={type_name(c): issubclass(c, ClassifierMixin) for c in gradient_boosting},
        isolation_forest=type_name(IsolationForest),
        hist_gradient_boosting=kind(BaseHistGradientBoosting),
        predictor=type_name(TreePredictor),
        bin_mapper=type_name(_BinMapper),
        libsvm={type_name(c): c._impl for c in estimators if issubclass(c, BaseLibSVM)},
        binary_trees={type_name(KDTree): 2, type_name(BallTree): 1},
        metrics=frozenset(
            type_name(c)
            for c in vars(dist_metrics).values()
            if isinstance(c, type) and issubclass(c, dist_metrics.DistanceMetric)
        ),
        dummies={type_name(DummyClassifier): True, type_name(DummyRegressor): False},
        multiclass_losses=frozenset(
            type_name(c) for c in losses if getattr(c, "is_multiclass", False) is True
        ),
        # brute-force neighbors and k-means read as many columns of these as X has
        fitted_matrices=dict.fromkeys(kind(NeighborsBase), "_fit_X")
        | dict.fromkeys(kind(_BaseKMeans), "cluster_centers_"),
        hist_preprocessing=frozenset({type_name(OrdinalEncoder), type_name(FunctionTransformer)}),
        column_transformer=type_name(ColumnTransformer),
    )


def check_fitted_state(
    entries: Entries, nodes: list[dict[str, Any]], parents: list[int], name: str
) -> None:
    """Refuse, as InvalidInput naming the type and the problem, a fitted state that
    scikit-learn's native code would take out of bounds.

    `nodes` are every node of the schema in pre-order and `parents` the position of each one's
    parent (-1 for the root), from a schema whose object ids each stand for one object.
    """
    state = _State(entries, nodes, parents, name)
    families = _families()
    checks: dict[str, Callable[[_State, dict[str, Any]], None]] = {
        families.tree: _check_tree,
        families.predictor: _check_predictor,
        families.isolation_forest: _check_isolation_forest,
    }
    checks |= dict.fromkeys(families.binary_trees, _check_binary_tree)
    checks |= dict.fromkeys(families.metrics, _check_metric)
    checks |= dict.fromkeys(families.gradient_boosting, _check_gradient_boosting)
    checks |= dict.fromkeys(families.libsvm, _check_libsvm)
    checks |= dict.fromkeys(families.fitted_matrices, _check_fitted_matrix)
    for node in nodes:
        named = type_of(node)
        check = checks.get(named)
        if check is None:
            continue
        try:
            check(state, node)
        except _Flaw as flaw:
            raise InvalidInput(f"{name}: {named} {flaw.problem}", hint=flaw.hint) from None


class _State:
    """The values a schema gives its nodes, read from the schema and the archive's .npy entries
    without building anything.
    """

    def __init__(
        self, entries: Entries, nodes: list[dict[str, Any]], parents: list[int], name: str
    ) -> None:
        self.entries = entries
        self.nodes = nodes
        self.parents = parents
        self.name = name
        self._positions = {id(node): position for position, node in enumerate(nodes)}
        self._checked: dict[tuple[str, int], Any] = {}

    def once(self, node: dict[str, Any], check: Callable[[_State, dict[str, Any]], _T]) -> _T:
        """What `check` finds in `node`, found once per object id: skops builds one object per
        id, and the audit has made every node of one id describe the same object.
        """
        node_id = node.get("__id__")
        if not node_id:
            return check(self, node)
        key = (check.__name__, node_id)
        if key not in self._checked:
            self._checked[key] = check(self, node)
        found: _T = self._checked[key]
        return found

    def owner(self, node: dict[str, Any]) -> dict[str, Any] | None:
        """The nearest object whose state holds `node`, or None."""
        position = self.parents[self._positions[id(node)]]
        while position >= 0 and self.nodes[position].get("__loader__") != "ObjectNode":
            position = self.parents[position]
        return self.nodes[position] if position >= 0 else None

    def attrs(self, node: Any) -> dict[str, Any]:
        """The attribute nodes of an object, by name."""
        if _loader(node) != "ObjectNode":
            raise _Flaw("holds something other than an object where scikit-learn keeps one")
        return _mapping(node.get("content"), str(node.get("__class__")))

    def value(self, node: Any, what: str) -> Any:
        """The plain value of a JSON node or of a NumPy scalar."""
        if _loader(node) == "JsonNode" and isinstance(node.get("content"), str):
            try:
                return json.loads(node["content"])
            except (ValueError, RecursionError):
                pass
        elif _is_npy(node) and type_of(node) != "numpy.ndarray":
            scalar = _load_npy(self.entries.read(node["file"]), what)
            if scalar.ndim == 0:
                return scalar.item()
        raise _Flaw(f"has {what} that is not a plain value")

    def integer(self, node: Any, what: str, low: int = 0) -> int:
        value = self.value(node, what)
        if type(value) is not int or not low <= value <= _COUNT_LIMIT:
            raise _Flaw(f"has {what} {str(value)[:20]}, not a whole number from {low}")
        return value

    def flag(self, node: Any, what: str) -> bool:
        value = self.value(node, what)
        if type(value) is not bool:
            raise _Flaw(f"has {what} that is not true or false")
        return value

    def array(self, node: Any, what: str) -> np.ndarray:
        if not (_is_npy(node) and type_of(node) == "numpy.ndarray"):
            raise _Flaw(f"has {what} that is not a NumPy array")
        return _load_npy(self.entries.read(node["file"]), what)

    def csr(self, node: Any, what: str) -> dict[str, np.ndarray]:
        """The arrays of a CSR matrix by name, refused unless they hold together."""
        import numpy as np

        if not (_loader(node) == "SparseMatrixNode" and isinstance(node.get("file"), str)):
            raise _Flaw(f"has {what} that is not a sparse matrix")
        members = {
            member.removesuffix(".npy"): _load_npy(data, what)
            for member, data in self.entries.members(node["file"])
        }
        try:
            data, indices, indptr = members["data"], members["indices"], members["indptr"]
            layout, shape = members["format"].item(), members["shape"].tolist()
        except (KeyError, ValueError):
            raise _Flaw(f"has {what} that is not a saved sparse matrix") from None
        if not (
            layout == b"csr"
            and isinstance(shape, list)
            and len(shape) == 2
            and all(type(size) is int and size >= 0 for size in shape)
            and indices.dtype.kind == indptr.dtype.kind == "i"
            and data.ndim == 1
            and indices.shape == data.shape
            and indptr.shape == (shape[0] + 1,)
            and indptr[0] == 0
            and indptr[-1] == len(data)
            and not np.any(np.diff(indptr) < 0)
            and not np.any((indices < 0) | (indices >= shape[1]))
        ):
            raise _Flaw(f"has {what} that is not a well-formed CSR matrix")
        return members


def _loader(node: Any) -> str | None:
    loader = node.get("__loader__") if isinstance(node, dict) else None
    return loader if isinstance(loader, str) else None


def _is_json(node: Any) -> bool:
    return _loader(node) == "JsonNode"


def _is_npy(node: Any) -> bool:
    return (
        _loader(node) == "NdArrayNode"
        and node.get("type") == "numpy"
        and isinstance(node.get("file"), str)
    )


def _load_npy(data: bytes, what: str) -> np.ndarray:
    """The array of an .npy entry, refused unless its header declares what the entry holds."""
    import numpy as np

    buffer = io.BytesIO(data)
    headers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    try:
        shape, _, dtype = headers[np.lib.format.read_magic(buffer)](buffer)
        if dtype.hasobject or math.prod(shape) * dtype.itemsize > len(data) - buffer.tell():
            raise ValueError("the header declares more than the entry holds")
        buffer.seek(0)
        array: np.ndarray = np.load(buffer, allow_pickle=False)
    except (KeyError, ValueError, TypeError, EOFError, OSError):
        raise _Flaw(f"has {what} that is not a readable .npy array") from None
    return array


def _mapping(node: Any, whose: str) -> dict[str, Any]:
    """The items of a dict node whose keys skops rebuilds as the same strings."""
    is_dict = _loader(node) == "DictNode"
    content = node["content"] if is_dict and "content" in node else None
    key_types = node.get("key_types") if is_dict else None
    keys = key_types.get("content") if isinstance(key_types, dict) else None
    # skops zips key types with items, dropping items past the shorter, and converts each key
    # by its type (bool("tree_") is True): only str keys, one per item, name what was read
    if not (
        isinstance(content, dict)
        and _loader(key_types) == "ListNode"
        and isinstance(keys, list)
        and len(keys) == len(content)
        and all(_loader(k) == "TypeNode" and type_of(k) == "builtins.str" for k in keys)
    ):
        raise _Flaw(f"has a {whose} state that is not a dict of named attributes")
    return content


def _items(node: Any, what: str) -> list[Any]:
    """The item nodes of a list, a tuple or a NumPy array of objects."""
    if _loader(node) in ("ListNode", "TupleNode") or (
        _loader(node) == "NdArrayNode" and node.get("type") == "json"
    ):
        content = node.get("content")
        if isinstance(content, list):
            return content
    raise _Flaw(f"has {what} that is not a list")


def _expect_records(array: np.ndarray, dtype: np.dtype[Any], what: str) -> None:
    # scikit-learn converts records saved on another platform (other bitness or byte order)
    # itself; what matters here is that every field is there with its kind of number
    names = dtype.names or ()
    if (
        array.ndim != 1
        or array.dtype.names != names
        or any(array.dtype[n].kind != dtype[n].kind for n in names)
    ):
        raise _Flaw(f"has {what} whose records are not scikit-learn's {dtype.names}")


def _depth(left: np.ndarray, right: np.ndarray, internal: np.ndarray) -> int:
    """How deep a tree of nodes is, refused unless every split's children are nodes after it and
    the root reaches each node exactly once: no cycle, no shared node, no index out of range.
    """
    import numpy as np

    count = len(left)
    splits = np.flatnonzero(internal)
    children = np.concatenate([left[splits], right[splits]])
    if np.any((children <= np.tile(splits, 2)) | (children >= count)):
        raise _Flaw("has a split whose child is out of range or not after it")
    # with children after their parent, one parent for every node but the root is a tree
    if np.any(np.bincount(children, minlength=count)[1:] != 1):
        raise _Flaw("has nodes that the root does not reach exactly once")
    depth, level = 0, np.zeros(1, dtype=np.int64)
    while (level := level[internal[level]]).size:
        level = np.concatenate([left[level], right[level]])
        depth += 1
    return depth


def _width(state: _State, estimator: dict[str, Any]) -> int:
    """The number of features an estimator checks X against before its native code runs."""
    attrs = state.attrs(estimator)
    short = estimator.get("__class__")
    if "n_features_in_" not in attrs:
        # scikit-learn skips the check of X when the attribute is missing
        raise _Flaw(f"is held by a {short} without n_features_in_")
    return state.integer(attrs["n_features_in_"], f"a {short} with n_features_in_", low=1)


# decision trees ---------------------------------------------------------------------------------


def _check_tree(state: _State, node: dict[str, Any]) -> None:
    features = state.once(node, _tree_features)
    families = _families()
    owner = state.owner(node)
    if (
        owner is None
        or type_of(owner) not in families.tree_owners
        or state.attrs(owner).get("tree_") is not node
    ):
        raise _Flaw("is refused outside the tree_ of a decision tree estimator")
    width = _width(state, owner)
    if width != features:
        raise _Flaw(f"has {features} features but its {owner.get('__class__')} takes {width}")
    ensemble = state.owner(owner)
    # forests, GradientBoosting* and IsolationForest run their trees on X they checked themselves
    if ensemble is not None and type_of(ensemble) in families.tree_ensembles:
        width = _width(state, ensemble)
        if width < features:
            raise _Flaw(
                f"has {features} features but its {ensemble.get('__class__')} takes {width}"
            )


def _tree_features(state: _State, node: dict[str, Any]) -> int:
    """The number of features of a Tree whose arrays hold together."""
    import numpy as np
    from sklearn.tree._tree import NODE_DTYPE

    reduce = node.get("__reduce__")
    args = _items(reduce.get("args") if isinstance(reduce, dict) else None, "constructor arguments")
    if len(args) != 3:
        raise _Flaw("has constructor arguments other than (n_features, n_classes, n_outputs)")
    n_features = state.integer(args[0], "n_features", low=1)
    n_classes = state.array(args[1], "n_classes")
    n_outputs = state.integer(args[2], "n_outputs", low=1)
    if (
        n_classes.dtype.kind != "i"
        or n_classes.shape != (n_outputs,)
        or n_classes.min() < 1
        or n_classes.max() > _COUNT_LIMIT
    ):
        raise _Flaw(f"has n_classes that are not {n_outputs} positive counts")
    attrs = _mapping(node.get("content"), "Tree")
    node_count = state.integer(attrs.get("node_count"), "node_count", low=1)
    max_depth = state.integer(attrs.get("max_depth"), "max_depth")
    nodes = state.array(attrs.get("nodes"), "nodes")
    values = state.array(attrs.get("values"), "values")
    _expect_records(nodes, NODE_DTYPE, "nodes")
    if len(nodes) != node_count:
        raise _Flaw(f"has {len(nodes)} nodes but node_count {node_count}")
    shape = (node_count, n_outputs, int(n_classes.max()))
    if values.dtype.str[1:] != "f8" or values.shape != shape or not values.flags.c_contiguous:
        raise _Flaw(f"has values of shape {values.shape}, not float64 {shape}")
    left, right, feature = (
        nodes[field].astype(np.int64) for field in ("left_child", "right_child", "feature")
    )
    internal = left != _TREE_LEAF
    if np.any(right[~internal] != _TREE_LEAF):
        raise _Flaw("has a leaf with a right child")
    depth = _depth(left, right, internal)
    if np.any((feature[internal] < 0) | (feature[internal] >= n_features)):
        raise _Flaw(f"splits on a feature outside its {n_features}")
    # decision_path allocates max_depth + 1 nodes a sample and writes every node on its path
    if not depth <= max_depth < node_count:
        raise _Flaw(f"has max_depth {max_depth} but is {depth} deep")
    return n_features


def _check_isolation_forest(state: _State, node: dict[str, Any]) -> None:
    # a tree fitted on a subset of the features gets X[:, subset] and reads that many columns
    attrs = state.attrs(node)
    if "estimators_" not in attrs:
        return
    trees = _items(attrs["estimators_"], "estimators_")
    subsets = _items(attrs.get("estimators_features_"), "estimators_features_")
    for tree, subset in zip(trees, subsets, strict=False):
        features = state.array(subset, "estimators_features_")
        if features.shape != (_width(state, tree),):
            raise _Flaw("gives a tree another number of features than it was fitted on")


def _check_gradient_boosting(state: _State, node: dict[str, Any]) -> None:
    # predict_stages adds tree (i, k) of estimators_ to column k of the initial predictions
    # without checking k against their width
    attrs = state.attrs(node)
    if "estimators_" not in attrs:
        return
    rows = _items(attrs["estimators_"], "estimators_")
    columns = {len(_items(row, "a row of estimators_")) for row in rows}
    if not columns:
        return
    per_iteration = state.integer(
        attrs.get("n_trees_per_iteration_"), "n_trees_per_iteration_", low=1
    )
    if columns != {per_iteration}:
        raise _Flaw(
            f"has rows of {sorted(columns)} trees but n_trees_per_iteration_ {per_iteration}"
        )
    width = _initial_width(
        state, attrs, per_iteration, _families().gradient_boosting[type_of(node)]
    )
    if width < per_iteration:
        raise _Flaw(f"adds {per_iteration} trees an iteration to {width} initial predictions")


def _initial_width(
    state: _State, attrs: dict[str, Any], per_iteration: int, classifier: bool
) -> int:
    """The number of columns of a GradientBoosting model's initial predictions."""
    init = attrs.get("init_")
    if _is_json(init) and state.value(init, "init_") == "zero":
        return per_iteration
    families = _families()
    dummies = families.dummies
    if not (_loader(init) == "ObjectNode" and type_of(init) in dummies):
        raise _Flaw(
            "with an init estimator other than a Dummy* or 'zero' is refused: aidlc cannot "
            "check the width of its predictions",
            hint=_ONNX_HINT,
        )
    dummy = state.attrs(init)
    outputs = state.integer(dummy.get("n_outputs_"), "an init_ with n_outputs_", low=1)
    if not (classifier and dummies[type_of(init)]):
        return outputs  # predict, one column an output
    loss = attrs.get("_loss")
    loss_attrs = state.attrs(loss)
    multiclass = type_of(loss) in families.multiclass_losses
    if "is_multiclass" in loss_attrs:  # it would hide the class attribute
        multiclass = state.flag(loss_attrs["is_multiclass"], "a loss with is_multiclass")
    if not multiclass:
        return 1  # the probability of the positive class
    classes = state.integer(dummy.get("n_classes_"), "an init_ with n_classes_", low=1)
    prior = state.array(dummy.get("class_prior_"), "an init_ with class_prior_")
    if outputs != 1 or prior.shape != (classes,):
        raise _Flaw("has an init_ whose class counts disagree")
    return classes


# HistGradientBoosting ---------------------------------------------------------------------------


def _check_predictor(state: _State, node: dict[str, Any]) -> None:
    features, categorical = state.once(node, _predictor_splits)
    owner = state.owner(node)
    if owner is None or type_of(owner) not in _families().hist_gradient_boosting:
        raise _Flaw("is refused outside a HistGradientBoosting model")
    width, is_categorical = state.once(owner, _hist_features)
    if features.size and features.max() >= width:
        raise _Flaw(f"splits on feature {features.max()} of a model that takes {width}")
    if not is_categorical[categorical].all():
        raise _Flaw("splits a feature as categorical that its bin mapper does not treat so")


def _predictor_splits(state: _State, node: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The features a TreePredictor whose arrays hold together splits on, and those of them it
    splits as categorical.
    """
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.common import (
        PREDICTOR_RECORD_DTYPE,
        X_BITSET_INNER_DTYPE,
    )

    attrs = state.attrs(node)
    nodes = state.array(attrs.get("nodes"), "nodes")
    _expect_records(nodes, PREDICTOR_RECORD_DTYPE, "nodes")
    if not len(nodes):
        raise _Flaw("has no nodes")
    for flag in ("is_leaf", "is_categorical", "missing_go_to_left"):
        if np.any(nodes[flag] > 1):
            raise _Flaw(f"has {flag} values other than 0 and 1")
    internal = nodes["is_leaf"] == 0
    _depth(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), internal)
    features = nodes["feature_idx"].astype(np.int64)
    if np.any(features[internal] < 0):
        raise _Flaw("splits on a negative feature")
    categorical = internal & (nodes["is_categorical"] == 1)
    rows = []
    for key in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = state.array(attrs.get(key), key)
        # a row holds one bit for each of the 256 values of a binned feature
        if bitsets.dtype != X_BITSET_INNER_DTYPE or bitsets.ndim != 2 or bitsets.shape[1] != 8:
            raise _Flaw(f"has {key} that are not rows of 8 uint32 words")
        rows.append(len(bitsets))
    if np.any(nodes["bitset_idx"][categorical].astype(np.int64) >= min(rows)):
        raise _Flaw("has a categorical split without its bitset")
    return features[internal], features[categorical]


def _hist_features(state: _State, node: dict[str, Any]) -> tuple[int, np.ndarray]:
    """How many features the predictors of a HistGradientBoosting model get, and which of them
    its bin mapper treats as categorical.
    """
    families = _families()
    attrs = state.attrs(node)
    if "_in_fit" in attrs and state.value(attrs["_in_fit"], "_in_fit") is not False:
        raise _Flaw("was saved in the middle of fit, when it predicts on unchecked binned data")
    width = _width(state, node)
    preprocessor = attrs.get("_preprocessor")
    if not (_is_json(preprocessor) and state.value(preprocessor, "_preprocessor") is None):
        _expect_preprocessor(state, preprocessor, width)
    mapper = attrs.get("_bin_mapper")
    if not (_loader(mapper) == "ObjectNode" and type_of(mapper) == families.bin_mapper):
        raise _Flaw("has no _BinMapper")
    is_categorical = state.array(state.attrs(mapper).get("is_categorical_"), "is_categorical_")
    if is_categorical.shape != (width,) or is_categorical.dtype.kind not in "biu":
        raise _Flaw(f"has a bin mapper for other than its {width} features")
    return width, is_categorical.astype(bool)


def _expect_preprocessor(state: _State, node: Any, width: int) -> None:
    """Refuse a preprocessor that would hand the predictors another number of columns than the
    model's n_features_in_: with one, HistGradientBoosting checks X no further.
    """
    import numpy as np

    families = _families()
    if not (_loader(node) == "ObjectNode" and type_of(node) == families.column_transformer):
        raise _Flaw("has a _preprocessor other than scikit-learn's ColumnTransformer")
    columns = 0
    for step in _items(state.attrs(node).get("transformers_"), "preprocessing steps"):
        parts = _items(step, "a preprocessing step")
        if len(parts) != 3:
            raise _Flaw("has a preprocessing step that is not (name, transformer, columns)")
        transformer = parts[1]
        if _is_json(transformer) and state.value(transformer, "a preprocessing step") == "drop":
            continue
        # scikit-learn's own steps: an OrdinalEncoder and a FunctionTransformer of check_array,
        # each giving back as many columns as it takes
        if not (
            _loader(transformer) == "ObjectNode"
            and type_of(transformer) in families.hist_preprocessing
        ):
            raise _Flaw("has a preprocessing step that may change the number of columns")
        mask = state.array(parts[2], "preprocessing columns")
        if mask.dtype != np.bool_ or mask.shape != (width,):
            raise _Flaw(f"has preprocessing columns that are not a mask of its {width} features")
        columns += int(mask.sum())
    if columns != width:
        raise _Flaw(f"preprocesses {width} features into {columns} columns")


# neighbors --------------------------------------------------------------------------------------


def _check_binary_tree(state: _State, node: dict[str, Any]) -> None:
    state.once(node, _binary_tree_points)


def _binary_tree_points(state: _State, node: dict[str, Any]) -> int:
    """The number of points of a KDTree or BallTree whose arrays hold together."""
    import numpy as np
    from sklearn.neighbors._kd_tree import NodeData

    fields = _items(node.get("content"), "state")
    if len(fields) != 13:
        raise _Flaw("has a state that is not the 13 values scikit-learn saves")
    data = state.array(fields[0], "data")
    if data.dtype != np.float64 or data.ndim != 2 or not data.flags.c_contiguous or not data.size:
        raise _Flaw("has data that is not a C-ordered float64 matrix")
    points, features = int(data.shape[0]), int(data.shape[1])
    order = state.array(fields[1], "idx_array")
    if order.dtype != np.intp or not np.array_equal(np.sort(order), np.arange(points)):
        raise _Flaw(f"has an idx_array that is not an order of its {points} points")
    records = state.array(fields[2], "node_data")
    if records.dtype != NodeData or records.ndim != 1:
        raise _Flaw("has node_data whose records are not scikit-learn's")
    levels = state.integer(fields[5], "n_levels", low=1)
    count = state.integer(fields[6], "n_nodes", low=1)
    if len(records) != count or levels > 62 or count != 2**levels - 1:
        raise _Flaw(f"has {len(records)} nodes, n_nodes {count} and n_levels {levels}")
    bounds = state.array(fields[3], "node_bounds")
    shape = (_families().binary_trees[type_of(node)], count, features)
    if bounds.dtype != np.float64 or bounds.shape != shape or not bounds.flags.c_contiguous:
        raise _Flaw(f"has node_bounds of shape {bounds.shape}, not float64 {shape}")
    state.integer(fields[4], "leaf_size", low=1)
    start, end, leaf = records["idx_start"], records["idx_end"], records["is_leaf"]
    if np.any((start < 0) | (start > end) | (end > points)):
        raise _Flaw("has a node whose points are out of range")
    if np.any((leaf != 0) & (leaf != 1)):
        raise _Flaw("has is_leaf values other than 0 and 1")
    splits = np.flatnonzero(leaf == 0)
    # the children of node i are nodes 2i + 1 and 2i + 2
    if splits.size and 2 * splits.max() + 2 >= count:
        raise _Flaw("has a node whose children are out of range")
    _metric_size(state, fields[11], features)
    weights = fields[12]
    if not (_is_json(weights) and state.value(weights, "sample_weight") is None):
        weight = state.array(weights, "sample_weight")
        if weight.dtype != np.float64 or weight.shape != (points,):
            raise _Flaw(f"has sample_weight that are not {points} float64 numbers")
    return points


def _check_metric(state: _State, node: dict[str, Any]) -> None:
    state.once(node, _metric_arrays)


def _metric_arrays(state: _State, node: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The vector and matrix of a distance metric, as its Cython code expects them."""
    import numpy as np

    fields = _items(node.get("content"), "state")
    if len(fields) < 3:
        raise _Flaw("has a state without (p, vector, matrix)")
    vector, matrix = state.array(fields[1], "a vector"), state.array(fields[2], "a matrix")
    if (
        vector.dtype != np.float64
        or vector.ndim != 1
        or matrix.dtype != np.float64
        or matrix.ndim != 2
    ):
        raise _Flaw("has a vector or matrix of another shape or type than float64")
    if _metric_size_kind(node) == "matrix" and len(set(matrix.shape)) != 1:
        raise _Flaw(f"has a matrix of shape {matrix.shape} that is not square")
    return vector, matrix


def _metric_size(state: _State, node: Any, features: int) -> None:
    # a tree measures distances without the metric's own check of the data width
    if not (_loader(node) == "ObjectNode" and type_of(node) in _families().metrics):
        raise _Flaw("has a distance metric that is not scikit-learn's")
    vector, matrix = state.once(node, _metric_arrays)
    size = _metric_size_kind(node)
    if (
        (size == "matrix" and matrix.shape != (features, features))
        or (size == "vector" and vector.shape != (features,))
        or (size == "weights" and len(vector) not in (0, features))
        or (size == "two features" and features != 2)
    ):
        raise _Flaw(f"has a {node.get('__class__')} for other than its {features} features")


def _metric_size_kind(node: dict[str, Any]) -> str | None:
    metric = str(node.get("__class__")).removesuffix("64").removesuffix("32")
    return _METRIC_SIZES.get(metric)


def _check_fitted_matrix(state: _State, node: dict[str, Any]) -> None:
    attrs = state.attrs(node)
    key = _families().fitted_matrices[type_of(node)]
    if key not in attrs:
        return
    matrix = attrs[key]
    if _loader(matrix) == "SparseMatrixNode":
        shape = tuple(state.csr(matrix, key)["shape"].tolist())
    else:
        shape = state.array(matrix, key).shape
    width = _width(state, node)
    if len(shape) != 2 or shape[1] != width:
        raise _Flaw(f"has {key} of shape {shape} for {width} features")


# libsvm -----------------------------------------------------------------------------------------


def _check_libsvm(state: _State, node: dict[str, Any]) -> None:
    """Refuse an SVM whose arrays libsvm would read past: it sizes its model by the numbers of
    classes and support vectors and trusts every array to match them.
    """
    import numpy as np

    attrs = state.attrs(node)
    if "support_" not in attrs:
        return  # not fitted: scikit-learn refuses to predict
    for key in ("_impl", "_sparse_kernels"):
        if key in attrs:
            raise _Flaw(f"sets {key}, which scikit-learn keeps on the class")
    kernel = state.value(attrs["kernel"], "kernel") if _is_json(attrs.get("kernel")) else None
    if kernel not in _LIBSVM_KERNELS:
        raise _Flaw(
            "with a kernel other than 'linear', 'poly', 'rbf', 'sigmoid' or 'precomputed' is "
            "refused: aidlc cannot check what it reads",
            hint=_ONNX_HINT,
        )
    sparse = state.flag(attrs.get("_sparse"), "_sparse")
    if sparse and kernel == "precomputed":
        raise _Flaw(
            "fitted on sparse input with a precomputed kernel is refused: aidlc cannot check "
            "what it reads",
            hint=_ONNX_HINT,
        )
    support = state.array(attrs["support_"], "support_")
    counts = state.array(attrs.get("_n_support"), "_n_support")
    if (
        support.dtype != np.int32
        or support.ndim != 1
        or counts.dtype != np.int32
        or counts.ndim != 1
    ):
        raise _Flaw("has support_ or _n_support that are not int32 vectors")
    vectors, classes = len(support), len(counts)
    if _families().libsvm[type_of(node)] in ("c_svc", "nu_svc"):
        if classes < 2 or counts.min() < 0 or counts.sum() != vectors:
            raise _Flaw(f"has {vectors} support vectors but _n_support {counts.tolist()[:10]}")
    elif classes != 2:  # regression and one-class models keep two counts
        raise _Flaw(f"has _n_support of {classes} entries, not 2")
    pairs = classes * (classes - 1) // 2
    dual = (classes - 1, vectors)
    for key, shape in (("_intercept_", (pairs,)), ("intercept_", (pairs,))):
        _expect_floats(state, attrs.get(key), key, shape)
    probability = "_effective_probability" in attrs and state.flag(
        attrs["_effective_probability"], "_effective_probability"
    )
    # libsvm copies pairs numbers from each when it computes probabilities (the sparse path
    # whenever _effective_probability is set), and scikit-learn checks only that they exist
    shapes = [(pairs,)] if probability else [(0,), (pairs,)]
    prob_a, prob_b = (state.array(attrs.get(key), key) for key in ("_probA", "_probB"))
    if not (
        prob_a.dtype == prob_b.dtype == np.float64
        and prob_a.shape == prob_b.shape
        and prob_a.shape in shapes
    ):
        raise _Flaw(f"has _probA and _probB that are not {pairs} float64 numbers")
    if sparse:
        for key in ("_dual_coef_", "dual_coef_"):
            _expect_libsvm_csr(state, attrs.get(key), key, *dual)
        _expect_libsvm_csr(state, attrs.get("support_vectors_"), "support_vectors_", vectors)
        return
    for key in ("_dual_coef_", "dual_coef_"):
        _expect_floats(state, attrs.get(key), key, dual)
    matrix = state.array(attrs.get("support_vectors_"), "support_vectors_")
    if matrix.dtype != np.float64 or matrix.ndim != 2 or not matrix.flags.c_contiguous:
        raise _Flaw("has support_vectors_ that are not a C-ordered float64 matrix")
    if kernel != "precomputed" and len(matrix) != vectors:
        raise _Flaw(f"has {len(matrix)} support_vectors_ but {vectors} support_")
    if kernel == "precomputed":
        # libsvm reads column support_[i] of each row of the kernel matrix X, whose width
        # scikit-learn checks against shape_fit_[0]
        fit = _items(attrs.get("shape_fit_"), "shape_fit_")
        samples = state.integer(fit[0] if fit else None, "shape_fit_")
        if vectors and (support.min() < 0 or support.max() >= samples):
            raise _Flaw(f"has support_ out of the range of its {samples} training samples")


def _expect_floats(state: _State, node: Any, what: str, shape: tuple[int, ...]) -> None:
    import numpy as np

    array = state.array(node, what)
    if array.dtype != np.float64 or array.shape != shape or not array.flags.c_contiguous:
        raise _Flaw(f"has {what} of shape {array.shape}, not float64 {shape}")


def _expect_libsvm_csr(
    state: _State, node: Any, what: str, rows: int, columns: int | None = None
) -> None:
    """Refuse a sparse matrix libsvm would misread: it takes support vectors as float64 CSR with
    int32 indices, and only the data of the coefficients, as a dense (rows, columns) block.
    """
    import numpy as np

    matrix = state.csr(node, what)
    if columns is None:
        fits = matrix["indices"].dtype == matrix["indptr"].dtype == np.int32
    else:
        fits = matrix["shape"].tolist() == [rows, columns] and len(matrix["data"]) == rows * columns
    if not (fits and matrix["shape"][0] == rows and matrix["data"].dtype == np.float64):
        raise _Flaw(f"has {what} that libsvm cannot read as {rows} rows")
