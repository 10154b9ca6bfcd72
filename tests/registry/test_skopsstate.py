"""Fitted state that native code trusts: real models of every family whose arrays reach
scikit-learn's native code load back and predict the same; crafted trees, predictors, KD and ball
trees, SVMs, neighbors and k-means are refused naming the type and the problem, and without the
audit they crash, hang or mispredict.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import skops.io
from hypothesis import given
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.ensemble import (
    BaggingClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import (
    KernelDensity,
    KNeighborsClassifier,
    KNeighborsRegressor,
    LocalOutlierFactor,
    NearestNeighbors,
)
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeRegressor

from aidlc.errors import InvalidInput
from aidlc.registry.skopsaudit import audit_skops, load_skops
from tests.registry.skops_files import (
    FUZZ,
    X_SMALL,
    Y_CLASS,
    Y_REGRESS,
    rewrite,
    round_trip,
    schema_nodes,
)

pytestmark = pytest.mark.filterwarnings("ignore")

# -- models of every family load back and predict the same --------------------------------------

# a matrix whose last column holds categories, and classes that depend on them and on a number,
# for HistGradientBoosting's categorical and numeric splits
_XC = np.column_stack([X_SMALL[:, :3], np.arange(40) % 4])
_Y_THREE = (np.arange(40) % 4 == 1).astype(int) + (X_SMALL[:, 0] > np.median(X_SMALL[:, 0]))


def _haversine_points() -> np.ndarray:
    return np.column_stack([np.linspace(-1.2, 1.2, 40), np.linspace(-3, 3, 40) ** 2 % 3])


# Real fitted models of every family whose arrays reach native code: (model, X to predict on).
FAMILIES: dict[str, Callable[[], tuple[Any, np.ndarray]]] = {
    "decision_tree": lambda: (
        DecisionTreeClassifier(random_state=0).fit(X_SMALL, _Y_THREE),
        X_SMALL,
    ),
    "pruned_tree": lambda: (
        DecisionTreeRegressor(ccp_alpha=0.01, random_state=0).fit(X_SMALL, Y_REGRESS),
        X_SMALL,
    ),
    "best_first_extra_tree": lambda: (
        ExtraTreeRegressor(max_leaf_nodes=6, random_state=0).fit(X_SMALL, Y_REGRESS),
        X_SMALL,
    ),
    "random_forest": lambda: (
        RandomForestClassifier(5, random_state=0).fit(X_SMALL, _Y_THREE),
        X_SMALL,
    ),
    "extra_trees": lambda: (
        ExtraTreesRegressor(5, random_state=0).fit(X_SMALL, Y_REGRESS),
        X_SMALL,
    ),
    "gradient_boosting_multiclass": lambda: (
        GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X_SMALL, _Y_THREE),
        X_SMALL,
    ),
    "gradient_boosting_zero_init": lambda: (
        GradientBoostingRegressor(n_estimators=5, init="zero").fit(X_SMALL, Y_REGRESS),
        X_SMALL,
    ),
    "isolation_forest_feature_subsets": lambda: (
        IsolationForest(n_estimators=5, max_features=0.5, random_state=0).fit(X_SMALL),
        X_SMALL,
    ),
    "bagging_feature_subsets": lambda: (
        BaggingClassifier(n_estimators=3, max_features=0.5, random_state=0).fit(X_SMALL, Y_CLASS),
        X_SMALL,
    ),
    "hist_gradient_boosting_categorical": lambda: (
        HistGradientBoostingClassifier(
            max_iter=5, categorical_features=[3], min_samples_leaf=2
        ).fit(_XC, _Y_THREE),
        _XC,
    ),
    "hist_gradient_boosting_regressor": lambda: (
        HistGradientBoostingRegressor(max_iter=5).fit(X_SMALL, Y_REGRESS),
        X_SMALL,
    ),
    "k_neighbors_kd_tree": lambda: (
        KNeighborsClassifier(3, algorithm="kd_tree", leaf_size=5).fit(X_SMALL, Y_CLASS),
        X_SMALL,
    ),
    "k_neighbors_ball_tree": lambda: (
        KNeighborsRegressor(3, algorithm="ball_tree", leaf_size=5).fit(X_SMALL, Y_REGRESS),
        X_SMALL,
    ),
    "ball_tree_mahalanobis": lambda: (
        KNeighborsClassifier(
            3, algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(4)}
        ).fit(X_SMALL, Y_CLASS),
        X_SMALL,
    ),
    "ball_tree_seuclidean": lambda: (
        NearestNeighbors(
            n_neighbors=3,
            algorithm="ball_tree",
            metric="seuclidean",
            metric_params={"V": X_SMALL.var(0)},
        ).fit(X_SMALL),
        X_SMALL,
    ),
    "ball_tree_weighted_minkowski": lambda: (
        KNeighborsClassifier(
            3, algorithm="ball_tree", metric="minkowski", metric_params={"w": np.arange(1.0, 5.0)}
        ).fit(X_SMALL, Y_CLASS),
        X_SMALL,
    ),
    "ball_tree_haversine": lambda: (
        KNeighborsClassifier(3, algorithm="ball_tree", metric="haversine").fit(
            _haversine_points(), Y_CLASS
        ),
        _haversine_points(),
    ),
    "kernel_density": lambda: (KernelDensity(bandwidth=0.5).fit(X_SMALL), X_SMALL),
    "local_outlier_factor": lambda: (LocalOutlierFactor(5, novelty=True).fit(X_SMALL), X_SMALL),
    "k_neighbors_brute": lambda: (
        KNeighborsClassifier(3, algorithm="brute").fit(X_SMALL, Y_CLASS),
        X_SMALL,
    ),
    "k_means": lambda: (KMeans(3, n_init=1, random_state=0).fit(X_SMALL), X_SMALL),
    "svc_probability": lambda: (
        SVC(probability=True, random_state=0).fit(X_SMALL, _Y_THREE),
        X_SMALL,
    ),
    "svc_linear_kernel": lambda: (SVC(kernel="linear").fit(X_SMALL, _Y_THREE), X_SMALL),
    "svc_precomputed": lambda: (
        SVC(kernel="precomputed").fit(X_SMALL @ X_SMALL.T, Y_CLASS),
        X_SMALL @ X_SMALL.T,
    ),
    "nu_svc": lambda: (NuSVC(nu=0.1).fit(X_SMALL, _Y_THREE), X_SMALL),
    "svr": lambda: (SVR().fit(X_SMALL, Y_REGRESS), X_SMALL),
    "nu_svr": lambda: (NuSVR().fit(X_SMALL, Y_REGRESS), X_SMALL),
    "one_class_svm": lambda: (OneClassSVM().fit(X_SMALL), X_SMALL),
    "sparse_svc_probability": lambda: (
        SVC(probability=True, random_state=0).fit(_sparse(X_SMALL), Y_CLASS),
        _sparse(X_SMALL),
    ),
    "sparse_svr": lambda: (SVR().fit(_sparse(X_SMALL), Y_REGRESS), _sparse(X_SMALL)),
}


def _sparse(X: np.ndarray) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(np.where(X > 1, X, 0))


@functools.cache
def _family(family: str) -> tuple[Any, np.ndarray]:
    return FAMILIES[family]()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_models_whose_arrays_reach_native_code_load_back_and_predict_the_same(
    family: str,
) -> None:
    round_trip(*_family(family))


def test_the_tree_records_checked_are_those_of_a_fitted_tree() -> None:
    from sklearn.tree._tree import NODE_DTYPE

    tree = DecisionTreeClassifier().fit(X_SMALL, Y_CLASS).tree_
    assert tree.__getstate__()["nodes"].dtype == NODE_DTYPE


# -- crafted fitted state is refused naming the type and the problem ----------------------------


def _state(node: dict[str, Any]) -> dict[str, Any]:
    """The attribute nodes of an object node, by name."""
    return node["content"]["content"]


def _set(node: dict[str, Any], value: Any) -> None:
    # a fresh object: skops shares the nodes of small ints and of True and False by id
    node["content"] = json.dumps(value)
    node.pop("__id__", None)


def _tree(schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first Tree's constructor arguments, its state), as nodes."""
    tree = next(n for n in schema_nodes(schema) if n["__loader__"] == "TreeNode")
    return tree["__reduce__"]["args"]["content"], tree["content"]["content"]


def _tree_nodes(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    return arrays[_tree(schema)[1]["nodes"]["file"]]


def _predictors(
    schema: dict[str, Any], arrays: dict[str, np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(nodes, raw_left_cat_bitsets) of every TreePredictor."""
    return [
        (arrays[_state(n)["nodes"]["file"]], arrays[_state(n)["raw_left_cat_bitsets"]["file"]])
        for n in schema_nodes(schema)
        if n["__class__"] == "TreePredictor"
    ]


def _binary_tree_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    tree = next(n for n in schema_nodes(schema) if n["__class__"] in ("KDTree", "BallTree"))
    return tree["content"]["content"]


def _internal(nodes: np.ndarray) -> np.ndarray:
    return nodes["left_child"] != -1


def _edit_tree_arrays(field: str, value: int) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        nodes = _tree_nodes(schema, arrays)
        nodes[field][_internal(nodes)] = value

    return edit


def _root_left_is_root(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    _tree_nodes(schema, arrays)["left_child"][0] = 0


def _root_children_shared(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    nodes = _tree_nodes(schema, arrays)
    nodes["right_child"][0] = nodes["left_child"][0]


def _tree_node_count(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    _set(_tree(schema)[1]["node_count"], 10**8)


def _tree_max_depth(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    _set(_tree(schema)[1]["max_depth"], 0)


def _tree_values_cut(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    entry = _tree(schema)[1]["values"]["file"]
    arrays[entry] = np.ascontiguousarray(arrays[entry][:3])


def _tree_wider_than_its_estimator(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    _set(_tree(schema)[0][0], 10**9)
    _tree_nodes(schema, arrays)["feature"][0] = 10**9 - 1


def _forest_without_n_features_in(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    state = schema["content"]
    del state["content"]["n_features_in_"]
    state["key_types"]["content"].pop()


def _tree_state_key_types_cut(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    schema["content"]["key_types"]["content"].pop()


def _three_trees_an_iteration(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    for row in _state(schema)["estimators_"]["content"]:
        row["content"] = row["content"] * 3


def _three_trees_an_iteration_declared(
    schema: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    _three_trees_an_iteration(schema, arrays)
    _set(_state(schema)["n_trees_per_iteration_"], 3)


def _edit_predictor(field: str, value: int) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for nodes, _ in _predictors(schema, arrays):
            nodes[field][nodes["is_leaf"] == 0] = value

    return edit


def _categorical_bitset_out_of_range(schema: dict[str, Any], arrays: dict[str, Any]) -> None:
    for nodes, _ in _predictors(schema, arrays):
        nodes["bitset_idx"][nodes["is_categorical"] == 1] = 10**9


def _numeric_split_made_categorical(schema: dict[str, Any], arrays: dict[str, Any]) -> None:
    for nodes, bitsets in _predictors(schema, arrays):
        numeric = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
        if len(bitsets):
            nodes["is_categorical"][numeric] = 1
            nodes["bitset_idx"][numeric] = 0


def _preprocessor_drops_a_column(schema: dict[str, Any], arrays: dict[str, Any]) -> None:
    steps = _state(_state(schema)["_preprocessor"])["transformers_"]["content"]
    numerical = steps[1]["content"][2]
    arrays[numerical["file"]][0] = False


def _points_out_of_range(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    arrays[_binary_tree_fields(schema)[1]["file"]][:] = 10**12


def _node_points_out_of_range(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    arrays[_binary_tree_fields(schema)[2]["file"]]["idx_end"] = 10**9


def _node_bounds_cut(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    entry = _binary_tree_fields(schema)[3]["file"]
    arrays[entry] = np.ascontiguousarray(arrays[entry][:, :, :1])


def _one_by_one_mahalanobis(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    metric = _binary_tree_fields(schema)[11]["content"]["content"]
    arrays[metric[2]["file"]] = np.eye(1)


def _narrow(key: str) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    def edit(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        entry = _state(schema)[key]["file"]
        arrays[entry] = np.ascontiguousarray(arrays[entry][:, :1])

    return edit


def _support_counts_that_lie(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    counts = arrays[_state(schema)["_n_support"]["file"]]
    counts[:] = [10**8, counts.sum() - 10**8, 0][: len(counts)]


def _no_intercept(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    arrays[_state(schema)["_intercept_"]["file"]] = np.zeros(0)


def _fewer_support_vectors(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    entry = _state(schema)["support_vectors_"]["file"]
    arrays[entry] = np.ascontiguousarray(arrays[entry][:5])


def _support_out_of_range(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    arrays[_state(schema)["support_"]["file"]] += 10**9


def _callable_kernel(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    kernel = _state(schema)["kernel"]
    kernel.clear()
    kernel.update(
        {"__class__": "check_array", "__module__": "sklearn.utils.validation"}
        | {"__loader__": "FunctionNode", "content": {"module_path": "", "function": ""}}
    )


def _precomputed_kernel(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    _set(_state(schema)["kernel"], "precomputed")


def _probability_without_probabilities(schema: dict[str, Any], arrays: dict[str, Any]) -> None:
    _set(_state(schema)["_effective_probability"], True)
    for key in ("_probA", "_probB"):
        arrays[_state(schema)[key]["file"]] = np.zeros(0)


def _impl_on_the_instance(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    state = schema["content"]
    state["content"]["_impl"] = {"__class__": "str", "__module__": "builtins"} | {
        "__loader__": "JsonNode",
        "content": json.dumps("epsilon_svr"),
        "is_json": True,
    }
    state["key_types"]["content"].append(state["key_types"]["content"][0])


def _feature_subset_grown(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    entry = _state(schema)["estimators_features_"]["content"][0]["file"]
    arrays[entry] = np.concatenate([arrays[entry], arrays[entry]])


_TREE_TYPE = "sklearn.tree._tree.Tree"
_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
_MODELS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "tree": lambda: (DecisionTreeClassifier(random_state=0).fit(X_SMALL, Y_CLASS), X_SMALL),
    "forest": lambda: (RandomForestClassifier(3, random_state=0).fit(X_SMALL, Y_CLASS), X_SMALL),
    "boosting": lambda: (GradientBoostingClassifier(n_estimators=3).fit(X_SMALL, Y_CLASS), X_SMALL),
    "boosting_logistic_init": lambda: (
        GradientBoostingClassifier(n_estimators=3, init=LogisticRegression()).fit(X_SMALL, Y_CLASS),
        X_SMALL,
    ),
    "hist": lambda: (HistGradientBoostingClassifier(max_iter=3).fit(X_SMALL, Y_CLASS), X_SMALL),
    "hist_categorical": functools.partial(_family, "hist_gradient_boosting_categorical"),
    "kd_tree": functools.partial(_family, "k_neighbors_kd_tree"),
    "mahalanobis": functools.partial(_family, "ball_tree_mahalanobis"),
    "brute": functools.partial(_family, "k_neighbors_brute"),
    "k_means": functools.partial(_family, "k_means"),
    "svc": lambda: (SVC().fit(X_SMALL, Y_CLASS), X_SMALL),
    "svc_precomputed": functools.partial(_family, "svc_precomputed"),
    "sparse_svc": lambda: (SVC().fit(_sparse(X_SMALL), Y_CLASS), _sparse(X_SMALL)),
    "isolation_forest": functools.partial(_family, "isolation_forest_feature_subsets"),
    # fitted parts saved outside the estimators that hold them
    "loose_tree": lambda: ({"part": DecisionTreeClassifier().fit(X_SMALL, Y_CLASS).tree_}, X_SMALL),
    "loose_predictor": lambda: (
        {
            "part": HistGradientBoostingClassifier(max_iter=2)
            .fit(X_SMALL, Y_CLASS)
            ._predictors[0][0]
        },
        X_SMALL,
    ),
}
# case: (model, edit of its file or None for the file as saved, the type refused, what the
# refusal says)
_Edit = Callable[[dict[str, Any], dict[str, Any]], None]
CRAFTED: dict[str, tuple[str, _Edit | None, str, str]] = {
    "tree_child_out_of_range": (
        "tree",
        _edit_tree_arrays("left_child", 10**9),
        _TREE_TYPE,
        "has a split whose child is out of range or not after it",
    ),
    "tree_cycle": (
        "tree",
        _root_left_is_root,
        _TREE_TYPE,
        "has a split whose child is out of range or not after it",
    ),
    "tree_shared_node": (
        "tree",
        _root_children_shared,
        _TREE_TYPE,
        "has nodes that the root does not reach exactly once",
    ),
    "tree_feature_out_of_range": (
        "tree",
        _edit_tree_arrays("feature", 10**9),
        _TREE_TYPE,
        "splits on a feature outside its 4",
    ),
    # scikit-learn's Tree clamps node_count to its nodes when built afresh: refused as a lie
    "tree_node_count_beyond_its_nodes": (
        "tree",
        _tree_node_count,
        _TREE_TYPE,
        "nodes but node_count 100000000",
    ),
    # decision_path writes max_depth + 1 nodes a sample into a buffer and the path past it: a
    # heap overflow that crashes or raises from damaged memory, depending on the heap
    "tree_max_depth_below_its_depth": (
        "tree",
        _tree_max_depth,
        _TREE_TYPE,
        "has max_depth 0 but is",
    ),
    "tree_values_cut": ("tree", _tree_values_cut, _TREE_TYPE, "has values of shape (3, 1, 2)"),
    "tree_wider_than_its_estimator": (
        "tree",
        _tree_wider_than_its_estimator,
        _TREE_TYPE,
        "has 1000000000 features but its DecisionTreeClassifier takes 4",
    ),
    "tree_state_key_types_cut": (
        "tree",
        _tree_state_key_types_cut,
        _TREE_TYPE,
        "has a DecisionTreeClassifier state that is not a dict of named attributes",
    ),
    "forest_without_n_features_in": (
        "forest",
        _forest_without_n_features_in,
        _TREE_TYPE,
        "is held by a RandomForestClassifier without n_features_in_",
    ),
    "tree_outside_a_tree_estimator": (
        "loose_tree",
        None,
        _TREE_TYPE,
        "is refused outside the tree_ of a decision tree estimator",
    ),
    "boosting_more_trees_than_n_trees_per_iteration": (
        "boosting",
        _three_trees_an_iteration,
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "has rows of [3] trees but n_trees_per_iteration_ 1",
    ),
    "boosting_more_trees_than_initial_predictions": (
        "boosting",
        _three_trees_an_iteration_declared,
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "adds 3 trees an iteration to 1 initial predictions",
    ),
    "boosting_with_an_estimator_as_init": (
        "boosting_logistic_init",
        None,
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "with an init estimator other than a Dummy* or 'zero' is refused",
    ),
    "predictor_child_out_of_range": (
        "hist",
        _edit_predictor("left", 10**9),
        _PREDICTOR,
        "has a split whose child is out of range or not after it",
    ),
    "predictor_feature_out_of_range": (
        "hist",
        _edit_predictor("feature_idx", 10**9),
        _PREDICTOR,
        "splits on feature 1000000000 of a model that takes 4",
    ),
    "predictor_bitset_out_of_range": (
        "hist_categorical",
        _categorical_bitset_out_of_range,
        _PREDICTOR,
        "has a categorical split without its bitset",
    ),
    "predictor_categorical_split_of_a_numeric_feature": (
        "hist_categorical",
        _numeric_split_made_categorical,
        _PREDICTOR,
        "splits a feature as categorical that its bin mapper does not treat so",
    ),
    "hist_preprocessor_dropping_a_column": (
        "hist_categorical",
        _preprocessor_drops_a_column,
        _PREDICTOR,
        "preprocesses 4 features into 3 columns",
    ),
    "predictor_outside_hist_gradient_boosting": (
        "loose_predictor",
        None,
        _PREDICTOR,
        "is refused outside a HistGradientBoosting model",
    ),
    "kd_tree_points_out_of_range": (
        "kd_tree",
        _points_out_of_range,
        "sklearn.neighbors._kd_tree.KDTree",
        "has an idx_array that is not an order of its 40 points",
    ),
    "kd_tree_node_points_out_of_range": (
        "kd_tree",
        _node_points_out_of_range,
        "sklearn.neighbors._kd_tree.KDTree",
        "has a node whose points are out of range",
    ),
    "kd_tree_node_bounds_cut": (
        "kd_tree",
        _node_bounds_cut,
        "sklearn.neighbors._kd_tree.KDTree",
        "has node_bounds of shape (2, 7, 1), not float64 (2, 7, 4)",
    ),
    "ball_tree_mahalanobis_of_one_feature": (
        "mahalanobis",
        _one_by_one_mahalanobis,
        "sklearn.neighbors._ball_tree.BallTree",
        "has a MahalanobisDistance64 for other than its 4 features",
    ),
    # 20 points of 200 000 features narrowed to one column crash the brute-force search
    # (SIGSEGV); with 4 features it reads past the narrowed matrix silently
    "brute_neighbors_narrow_training_data": (
        "brute",
        _narrow("_fit_X"),
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "has _fit_X of shape (40, 1) for 4 features",
    ),
    "k_means_narrow_centers": (
        "k_means",
        _narrow("cluster_centers_"),
        "sklearn.cluster._kmeans.KMeans",
        "has cluster_centers_ of shape (3, 1) for 4 features",
    ),
    "svc_support_counts_that_lie": (
        "svc",
        _support_counts_that_lie,
        "sklearn.svm._classes.SVC",
        "support vectors but _n_support [100000000, -",
    ),
    "svc_without_intercepts": (
        "svc",
        _no_intercept,
        "sklearn.svm._classes.SVC",
        "has _intercept_ of shape (0,), not float64 (1,)",
    ),
    "svc_fewer_support_vectors_than_support": (
        "svc",
        _fewer_support_vectors,
        "sklearn.svm._classes.SVC",
        "has 5 support_vectors_ but",
    ),
    "svc_with_a_function_as_kernel": (
        "svc",
        _callable_kernel,
        "sklearn.svm._classes.SVC",
        "with a kernel other than 'linear', 'poly', 'rbf', 'sigmoid' or 'precomputed' is refused",
    ),
    "svc_implementation_on_the_instance": (
        "svc",
        _impl_on_the_instance,
        "sklearn.svm._classes.SVC",
        "sets _impl, which scikit-learn keeps on the class",
    ),
    "svc_precomputed_support_out_of_range": (
        "svc_precomputed",
        _support_out_of_range,
        "sklearn.svm._classes.SVC",
        "has support_ out of the range of its 40 training samples",
    ),
    "sparse_svc_precomputed": (
        "sparse_svc",
        _precomputed_kernel,
        "sklearn.svm._classes.SVC",
        "fitted on sparse input with a precomputed kernel is refused",
    ),
    "sparse_svc_probability_without_probabilities": (
        "sparse_svc",
        _probability_without_probabilities,
        "sklearn.svm._classes.SVC",
        "has _probA and _probB that are not 1 float64 numbers",
    ),
    "isolation_forest_feature_subset_grown": (
        "isolation_forest",
        _feature_subset_grown,
        "sklearn.ensemble._iforest.IsolationForest",
        "gives a tree another number of features than it was fitted on",
    ),
}
# refused for what aidlc cannot check rather than for an inconsistency
_UNCHECKABLE = {
    "boosting_with_an_estimator_as_init",
    "svc_with_a_function_as_kernel",
    "sparse_svc_precomputed",
}


@functools.cache
def _model_file(model: str) -> tuple[bytes, Any, Any]:
    """(skops file, fitted model, X) of a model in _MODELS."""
    fitted, X = _MODELS[model]()
    return skops.io.dumps(fitted), fitted, X


@functools.cache
def _crafted(case: str) -> bytes:
    model, edit, _, _ = CRAFTED[case]
    data = _model_file(model)[0]
    return data if edit is None else rewrite(data, edit)


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_fitted_state_is_refused_naming_the_type_and_the_problem(case: str) -> None:
    model, edit, type_name, problem = CRAFTED[case]
    if edit is not None:
        audit_skops(_model_file(model)[0])  # the file as scikit-learn wrote it passes
    with pytest.raises(InvalidInput) as refused:
        audit_skops(_crafted(case), name="model.skops")
    assert refused.value.message.startswith(f"model.skops: {type_name} ")
    assert problem in refused.value.message
    hint = "export the model to ONNX" if case in _UNCHECKABLE else "save the model again"
    assert hint in (refused.value.hint or "")
    with pytest.raises(InvalidInput):
        load_skops(_crafted(case))


# -- without the audit, crafted files crash, hang or mispredict ---------------------------------

# What skops and scikit-learn do with these files unaudited, each in a child process of one
# runner: a signal, 3 when the child predicted something else than the model it was made from.
_UNPROTECTED = """\
import gc, json, os, signal, sys, warnings
import numpy as np, scipy.sparse, skops.io

warnings.simplefilter("ignore")
children = {}
for case in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        try:
            with open(case["file"], "rb") as file:
                data = file.read()
            model = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
            X = (scipy.sparse.load_npz if case["X"].endswith(".npz") else np.load)(case["X"])
            signal.alarm(3)  # a prediction on 40 rows that takes longer never ends
            out = getattr(model, case["method"])(X)
            same = np.array_equal(out, np.load(case["expected"]))
            del model
            gc.collect()  # frees, so glibc meets what a heap overflow damaged
        except Exception:
            os._exit(4)
        os._exit(0 if same else 3)
    children[case["name"]] = pid
outcomes = {}
for name, pid in children.items():
    _, status = os.waitpid(pid, 0)
    outcomes[name] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
print(json.dumps(outcomes))
"""
_CRASH = {-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT}
_HANG = {-signal.SIGALRM}
_CRASH_OR_WRONG = _CRASH | {3}
# case: (method called on the loaded model, the outcomes that show the harm)
_DEMONSTRATED: dict[str, tuple[str, set[int]]] = {
    "tree_child_out_of_range": ("predict", _CRASH),
    "tree_feature_out_of_range": ("predict", _CRASH),
    "tree_cycle": ("predict", _HANG),
    "tree_wider_than_its_estimator": ("predict", _CRASH),
    "boosting_more_trees_than_n_trees_per_iteration": ("decision_function", _CRASH_OR_WRONG),
    "predictor_child_out_of_range": ("predict", _CRASH),
    "predictor_feature_out_of_range": ("predict", _CRASH),
    "predictor_bitset_out_of_range": ("predict", _CRASH),
    "kd_tree_points_out_of_range": ("predict", _CRASH),
    "kd_tree_node_points_out_of_range": ("predict", _CRASH),
    "ball_tree_mahalanobis_of_one_feature": ("predict", _CRASH_OR_WRONG),
    "svc_support_counts_that_lie": ("predict", _CRASH),
    "svc_precomputed_support_out_of_range": ("predict", _CRASH),
    "sparse_svc_probability_without_probabilities": ("predict", _CRASH),
}


@pytest.fixture(scope="module")
def unprotected_outcomes(tmp_path_factory) -> dict[str, int]:
    """How each demonstrated file ends when skops loads it without the audit and it predicts."""
    folder = tmp_path_factory.mktemp("unprotected")
    cases = []
    for case, (method, _) in _DEMONSTRATED.items():
        _, model, X = _model_file(CRAFTED[case][0])
        sparse = scipy.sparse.issparse(X)
        expected = getattr(model, method)(X)
        paths = {"file": folder / f"{case}.skops", "expected": folder / f"{case}.expected.npy"}
        paths["X"] = folder / f"{case}.X.{'npz' if sparse else 'npy'}"
        paths["file"].write_bytes(_crafted(case))
        np.save(paths["expected"], expected)
        (scipy.sparse.save_npz if sparse else np.save)(paths["X"], X)
        files = {key: str(path) for key, path in paths.items()}
        cases.append({"name": case, "method": method, **files})
    # one OpenMP and BLAS thread: the children are forked after NumPy started
    threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _UNPROTECTED, json.dumps(cases)],
        env={**os.environ, **threads},
        capture_output=True,
        check=True,
        text=True,
        timeout=120,
    )
    outcomes: dict[str, int] = json.loads(run.stdout.splitlines()[-1])
    return outcomes


@pytest.mark.parametrize("case", list(_DEMONSTRATED))
def test_without_the_audit_a_crafted_file_crashes_hangs_or_mispredicts(
    unprotected_outcomes: dict[str, int], case: str
) -> None:
    # the audit refuses each of these: test_a_crafted_fitted_state_is_refused_naming_...
    assert unprotected_outcomes[case] in _DEMONSTRATED[case][1]


# -- a tree passes exactly when its structure is sound ------------------------------------------


def _tree_structure_is_sound(nodes: np.ndarray, features: int, max_depth: int) -> bool:
    """What scikit-learn's tree builders guarantee, walked from the root in plain Python."""
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    seen: set[int] = set()
    pending, deepest = [(0, 0)], 0
    while pending:
        node, depth = pending.pop()
        if node in seen or not 0 <= node < len(nodes):
            return False
        seen.add(node)
        if left[node] == -1:
            if right[node] != -1:
                return False
            deepest = max(deepest, depth)
            continue
        if not (0 <= feature[node] < features and left[node] > node and right[node] > node):
            return False
        pending += [(int(left[node]), depth + 1), (int(right[node]), depth + 1)]
    return len(seen) == len(nodes) and deepest <= max_depth


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 20),
            st.sampled_from(["left_child", "right_child", "feature"]),
            st.integers(-3, 24),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_tree_is_accepted_exactly_when_the_root_reaches_each_node_once_in_order(edits) -> None:
    data, model, _ = _model_file("tree")
    nodes = model.tree_.__getstate__()["nodes"].copy()
    for index, field, value in edits:
        nodes[field][index % len(nodes)] = value

    def edit(schema: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays[_tree(schema)[1]["nodes"]["file"]] = nodes

    crafted = rewrite(data, edit)
    try:
        audit_skops(crafted)
    except InvalidInput as refused:
        assert "sklearn.tree._tree.Tree" in refused.message
        assert not _tree_structure_is_sound(nodes, 4, model.tree_.max_depth)
    else:
        assert _tree_structure_is_sound(nodes, 4, model.tree_.max_depth)
