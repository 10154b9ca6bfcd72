"""Estimators: checked params, byte-identical resumed boosting, predictions and metrics."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from aidlc.errors import ConfigError, IntegrityError, UsageError, ValidationFailed
from aidlc.registry.formats import save_estimator
from aidlc.train import estimators
from aidlc.train.estimators import FitState, check_model, evaluate, fit, predict, predict_proba


@cache
def data(name: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    if name == "binary":
        X, y = load_breast_cancer(return_X_y=True)
        return X, y, 2
    if name == "multiclass":
        X, y = load_iris(return_X_y=True)
        return X, y, 3
    X, y = load_diabetes(return_X_y=True)
    return X, y, None


def task_of(name: str) -> str:
    return "regression" if name == "regression" else "classification"


SUBSAMPLING = {
    "xgboost": {"subsample": 0.7, "colsample_bytree": 0.7, "max_depth": 3},
    # a small bin sample: the bins must not depend on the segment a resumed fit starts in
    "lightgbm": {
        "bagging_fraction": 0.7,
        "bagging_freq": 1,
        "feature_fraction": 0.7,
        "num_leaves": 7,
        "bin_construct_sample_cnt": 100,
    },
}


def saved_bytes(kind: str, model: object, directory: Path) -> bytes:
    directory.mkdir()
    return (directory / save_estimator(kind, model, directory)).read_bytes()


# -- interruption-safe boosting ------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_resumed_boosting_saves_the_same_bytes_as_an_uninterrupted_fit(kind, problem, tmp_path):
    X, y, k = data(problem)
    common = dict(seed=11, n_classes=k, rounds=47, checkpoint_every=10)
    whole = fit(kind, SUBSAMPLING[kind], task_of(problem), X, y, **common)

    checkpoints: list[FitState] = []
    stopped = fit(
        kind,
        SUBSAMPLING[kind],
        task_of(problem),
        X,
        y,
        **common,
        on_checkpoint=checkpoints.append,
        should_stop=lambda: len(checkpoints) >= 2,
    )
    assert (stopped.finished, stopped.state.rounds_done, stopped.state.segment) == (False, 20, 2)
    state = FitState.from_bytes(stopped.state.to_bytes())
    assert state == stopped.state
    resumed = fit(kind, SUBSAMPLING[kind], task_of(problem), X, y, **common, resume=state)

    assert whole.finished and resumed.finished
    assert resumed.state.rounds_done == 47
    expected = saved_bytes(kind, whole.model, tmp_path / "whole")
    assert saved_bytes(kind, resumed.model, tmp_path / "resumed") == expected
    assert whole.state.booster == resumed.state.booster


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_subsampling_depends_on_the_seed(kind, tmp_path):
    X, y, k = data("binary")
    a = fit(kind, SUBSAMPLING[kind], "classification", X, y, seed=1, n_classes=k, rounds=10)
    b = fit(kind, SUBSAMPLING[kind], "classification", X, y, seed=2, n_classes=k, rounds=10)
    assert saved_bytes(kind, a.model, tmp_path / "a") != saved_bytes(kind, b.model, tmp_path / "b")


def test_checkpoints_and_progress_are_reported_once_per_segment():
    X, y, k = data("binary")
    checkpoints: list[FitState] = []
    progress: list[tuple[int, int]] = []
    out = fit(
        "lightgbm",
        {},
        "classification",
        X,
        y,
        seed=3,
        n_classes=k,
        rounds=47,
        checkpoint_every=10,
        on_checkpoint=checkpoints.append,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert [c.rounds_done for c in checkpoints] == [10, 20, 30, 40, 47]
    assert [c.segment for c in checkpoints] == [1, 2, 3, 4, 5]
    assert progress == [(10, 47), (20, 47), (30, 47), (40, 47), (47, 47)]
    assert out.state == checkpoints[-1]
    assert out.model.num_trees() == 47


def test_a_fit_stopped_before_its_first_segment_has_no_model_and_an_empty_state():
    X, y, k = data("binary")
    out = fit("xgboost", {}, "classification", X, y, seed=3, n_classes=k, should_stop=lambda: True)
    assert (out.finished, out.model, out.state) == (False, None, FitState("xgboost", 0, 0, None))


def test_resuming_a_finished_checkpoint_returns_its_model_without_training(tmp_path):
    X, y, k = data("binary")
    whole = fit("xgboost", {}, "classification", X, y, seed=3, n_classes=k, rounds=20)
    calls: list[FitState] = []
    again = fit(
        "xgboost",
        {},
        "classification",
        X,
        y,
        seed=3,
        n_classes=k,
        rounds=20,
        resume=whole.state,
        on_checkpoint=calls.append,
    )
    assert again.finished and calls == []
    assert saved_bytes("xgboost", again.model, tmp_path / "a") == whole.state.booster


def test_resuming_with_other_segments_or_another_kind_is_refused():
    X, y, k = data("binary")
    state = fit(
        "xgboost", {}, "classification", X, y, seed=3, n_classes=k, rounds=20, checkpoint_every=10
    ).state
    with pytest.raises(ConfigError, match="does not match 20 rounds in segments of 5"):
        fit(
            "xgboost",
            {},
            "classification",
            X,
            y,
            seed=3,
            n_classes=k,
            rounds=20,
            checkpoint_every=5,
            resume=state,
        )
    with pytest.raises(ConfigError, match="checkpoint is of a xgboost fit, not lightgbm"):
        fit("lightgbm", {}, "classification", X, y, seed=3, n_classes=k, resume=state)


def test_fit_state_bytes_are_a_json_header_and_the_raw_booster():
    state = FitState("lightgbm", 30, 3, b"tree\nversion=v4\n")
    data_ = state.to_bytes()
    assert data_.startswith(b"AIDLCFS1") and data_.endswith(b"tree\nversion=v4\n")
    assert FitState.from_bytes(data_) == state
    assert FitState.from_bytes(FitState("xgboost", 0, 0, None).to_bytes()).booster is None
    for bad in (data_[:-1], b"AIDLCFS2" + data_[8:], data_[:10], data_ + b"x"):
        with pytest.raises(IntegrityError):
            FitState.from_bytes(bad)


# -- scikit-learn --------------------------------------------------------------------------------


def test_sklearn_fits_with_the_same_seed_save_identical_bytes(tmp_path):
    X, y, k = data("multiclass")
    params = {"n_estimators": 8, "max_features": 2}
    a = fit("sklearn.RandomForestClassifier", params, "classification", X, y, seed=5, n_classes=k)
    b = fit("sklearn.RandomForestClassifier", params, "classification", X, y, seed=5, n_classes=k)
    c = fit("sklearn.RandomForestClassifier", params, "classification", X, y, seed=6, n_classes=k)
    assert a.model.random_state == 5
    kind = "sklearn.RandomForestClassifier"
    first = saved_bytes(kind, a.model, tmp_path / "a")
    assert saved_bytes(kind, b.model, tmp_path / "b") == first
    assert saved_bytes(kind, c.model, tmp_path / "c") != first


def test_a_stopped_sklearn_fit_returns_unfinished_and_a_resumed_one_starts_over():
    X, y, _ = data("regression")
    stopped = fit(
        "sklearn.Ridge", {}, "regression", X, y, seed=1, n_classes=None, should_stop=lambda: True
    )
    assert (stopped.finished, stopped.model) == (False, None)
    progress: list[tuple[int, int]] = []
    resumed = fit(
        "sklearn.Ridge",
        {"alpha": 0.5},
        "regression",
        X,
        y,
        seed=1,
        n_classes=None,
        resume=stopped.state,
        progress=lambda *p: progress.append(p),
    )
    assert resumed.finished and progress == [(1, 1)]
    assert resumed.model.alpha == 0.5


def test_sklearn_estimators_without_nan_support_say_how_to_fix_missing_values():
    X, y, _ = data("regression")
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(ConfigError, match="could not fit: Input X contains NaN") as err:
        fit("sklearn.Lasso", {}, "regression", X, y, seed=1, n_classes=None)
    assert "impute missing values" in str(err.value)


# -- check_model ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "task", "message"),
    [
        ("catboost", {}, "regression", "unknown model type 'catboost'"),
        ("sklearn.SVC", {}, "classification", "'SVC' is not on aidlc's allowlist"),
        (
            "sklearn.LogisticRegression",
            {},
            "regression",
            "sklearn.LogisticRegression is a classifier and cannot be used for regression",
        ),
        (
            "sklearn.RandomForestRegressor",
            {},
            "classification",
            "sklearn.RandomForestRegressor is a regressor and cannot be used for classification",
        ),
        (
            "sklearn.Ridge",
            {"depth": 3},
            "regression",
            "sklearn.Ridge does not accept param 'depth'",
        ),
        (
            "sklearn.Lasso",
            {"random_state": 1},
            "regression",
            "param 'random_state' is set by aidlc",
        ),
        (
            "sklearn.HistGradientBoostingClassifier",
            {"scoring": "roc_auc"},
            "classification",
            "param 'scoring' must be 'loss'",
        ),
        (
            "sklearn.HistGradientBoostingRegressor",
            {"scoring": len},
            "regression",
            "param 'scoring' must be plain data",
        ),
        (
            "lightgbm",
            {"output_model": "/tmp/m.txt"},
            "regression",
            "lightgbm param 'output_model' is not allowed",
        ),
        (
            "lightgbm",
            {"input_model": "m.txt"},
            "regression",
            "lightgbm param 'input_model' is not allowed",
        ),
        (
            "lightgbm",
            {"save_binary": True},
            "regression",
            "lightgbm param 'save_binary' is not allowed",
        ),
        (
            "lightgbm",
            {"machines": "10.0.0.1:12400"},
            "regression",
            "lightgbm param 'machines' is not allowed",
        ),
        ("lightgbm", {"mlist": "hosts.txt"}, "regression", "lightgbm param 'mlist' is not allowed"),
        (
            "lightgbm",
            {"num_threads": 8},
            "regression",
            "lightgbm param 'num_threads' is set by aidlc",
        ),
        (
            "lightgbm",
            {"bagging_seed": 8},
            "regression",
            "lightgbm param 'bagging_seed' is set by aidlc",
        ),
        (
            "lightgbm",
            {"num_iterations": 8},
            "regression",
            "lightgbm param 'num_iterations' is set by aidlc",
        ),
        (
            "lightgbm",
            {"num_class": 3},
            "classification",
            "lightgbm param 'num_class' is set by aidlc",
        ),
        (
            "lightgbm",
            {"objective": "binary"},
            "regression",
            "lightgbm objective 'binary' does not fit a regression task",
        ),
        (
            "lightgbm",
            {"device_type": "gpu"},
            "regression",
            "lightgbm param 'device_type' must be cpu",
        ),
        ("xgboost", {"callbacks": "x"}, "regression", "xgboost param 'callbacks' is not allowed"),
        (
            "xgboost",
            {"eval_metric": skm.roc_auc_score},
            "classification",
            "xgboost param 'eval_metric' must be a number",
        ),
        ("xgboost", {"seed": 1}, "regression", "xgboost param 'seed' is set by aidlc"),
        ("xgboost", {"nthread": 1}, "regression", "xgboost param 'nthread' is set by aidlc"),
        (
            "xgboost",
            {"max_depth": [3, 4]},
            "regression",
            "xgboost param 'max_depth' must be a number",
        ),
        (
            "xgboost",
            {"objective": "reg:squarederror"},
            "classification",
            "xgboost objective 'reg:squarederror' does not fit a classification task",
        ),
        ("xgboost", {}, "ranking", "unknown task 'ranking'"),
    ],
)
def test_check_model_refuses_with_a_message_naming_the_param_and_kind(kind, params, task, message):
    with pytest.raises(ConfigError) as err:
        check_model(kind, params, task)
    assert message in str(err.value)


def test_check_model_accepts_ordinary_params():
    check_model("lightgbm", {"saved_feature_importance_type": 1, "num_leaves": 15}, "regression")
    check_model("lightgbm", {"objective": "l1", "monotone_constraints": [1, 0, -1]}, "regression")
    check_model(
        "xgboost",
        {"eval_metric": "auc", "interaction_constraints": [[0, 1], [2]]},
        "classification",
    )
    check_model("xgboost", {"objective": "multi:softmax"}, "classification")
    check_model(
        "sklearn.LogisticRegression", {"C": 0.5, "class_weight": {0: 1.0, 1: 2.0}}, "classification"
    )


def test_a_binary_objective_on_three_classes_is_refused():
    X, y, k = data("multiclass")
    with pytest.raises(
        ConfigError, match="objective 'binary:logistic' needs two classes; the data has 3"
    ):
        fit(
            "xgboost", {"objective": "binary:logistic"}, "classification", X, y, seed=1, n_classes=k
        )


def test_params_the_library_rejects_become_a_config_error():
    X, y, k = data("binary")
    with pytest.raises(ConfigError, match="xgboost could not train with these params"):
        fit("xgboost", {"max_depth": "deep"}, "classification", X, y, seed=1, n_classes=k, rounds=2)


def test_labels_outside_the_class_range_are_a_usage_error():
    X, y, _ = data("binary")
    with pytest.raises(UsageError, match=r"class indices 0\.\.1"):
        fit("xgboost", {}, "classification", X, y + 1, seed=1, n_classes=2)


# -- predict -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "problem"),
    [
        ("xgboost", {}, "binary"),
        ("xgboost", {}, "multiclass"),
        ("xgboost", {"objective": "binary:logitraw"}, "binary"),
        ("xgboost", {"objective": "multi:softmax"}, "multiclass"),
        ("xgboost", {"objective": "multi:softprob"}, "binary"),
        ("lightgbm", {}, "binary"),
        ("lightgbm", {}, "multiclass"),
        ("sklearn.HistGradientBoostingClassifier", {"max_iter": 10}, "binary"),
        ("sklearn.LogisticRegression", {"max_iter": 2000}, "multiclass"),
    ],
)
def test_classifiers_predict_class_indices_and_one_probability_column_per_class(
    kind, params, problem
):
    X, y, k = data(problem)
    model = fit(kind, params, "classification", X, y, seed=2, n_classes=k, rounds=10).model
    labels = predict(kind, model, X)
    proba = predict_proba(kind, model, X)
    assert labels.dtype == np.int64 and set(labels.tolist()) <= set(range(k))
    assert proba is not None and proba.shape == (len(X), k) and proba.dtype == np.float64
    assert np.allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(proba.argmax(axis=1), labels)
    assert (labels == y).mean() > 0.9


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "sklearn.ExtraTreesRegressor"])
def test_regressors_predict_floats_and_no_probabilities(kind):
    X, y, _ = data("regression")
    model = fit(kind, {}, "regression", X, y, seed=2, n_classes=None, rounds=20).model
    values = predict(kind, model, X)
    assert values.dtype == np.float64 and values.shape == (len(X),)
    assert predict_proba(kind, model, X) is None
    assert skm.r2_score(y, values) > 0.5


# -- metrics -------------------------------------------------------------------------------------


def fixed_classification(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    y_true = rng.integers(0, k, 300)
    proba = rng.dirichlet(np.ones(k), 300)
    proba[np.arange(300), y_true] += 0.3
    proba /= proba.sum(axis=1, keepdims=True)
    return y_true, proba.argmax(axis=1), proba


def test_binary_metrics_equal_scikit_learn():
    y_true, y_pred, proba = fixed_classification(2)
    got = evaluate("classification", y_true, y_pred, proba, estimators.CLASSIFICATION_METRICS)
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true, proba[:, 1]),
        "log_loss": skm.log_loss(y_true, proba),
    }
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert type(got[name]) is float
        assert got[name] == pytest.approx(value, abs=1e-12)


def test_multiclass_metrics_equal_scikit_learn_macro_averages():
    y_true, y_pred, proba = fixed_classification(4)
    got = evaluate("classification", y_true, y_pred, proba, estimators.CLASSIFICATION_METRICS)
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, average="macro", zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, average="macro", zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y_true, proba),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12)


def test_regression_metrics_equal_scikit_learn():
    rng = np.random.default_rng(7)
    y_true = rng.normal(50, 10, 200)
    y_pred = y_true + rng.normal(0, 3, 200)
    got = evaluate("regression", y_true, y_pred, None, ["mae", "rmse", "r2"])
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), abs=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y_true, y_pred)), abs=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y_true, y_pred), abs=1e-12)
    assert all(type(v) is float for v in got.values())


def test_undefined_precision_counts_as_zero():
    got = evaluate(
        "classification", np.array([0, 1, 0]), np.array([0, 0, 0]), None, ["precision", "accuracy"]
    )
    assert got == {"precision": 0.0, "accuracy": 2 / 3}


@pytest.mark.parametrize(
    ("task", "metrics", "proba", "error", "message"),
    [
        ("classification", ["auc"], True, ConfigError, "unknown classification metric 'auc'"),
        ("classification", ["rmse"], True, ConfigError, "unknown classification metric 'rmse'"),
        ("regression", ["accuracy"], False, ConfigError, "unknown regression metric 'accuracy'"),
        ("classification", ["log_loss"], False, ConfigError, "log_loss needs class probabilities"),
    ],
)
def test_metrics_that_do_not_apply_are_refused(task, metrics, proba, error, message):
    y_true, y_pred, p = fixed_classification(2)
    with pytest.raises(error, match=message):
        evaluate(task, y_true, y_pred, p if proba else None, metrics)


def test_roc_auc_on_a_single_class_is_a_validation_failure():
    proba = np.array([[0.2, 0.8], [0.4, 0.6]])
    with pytest.raises(ValidationFailed, match="roc_auc is undefined for these 2 rows"):
        evaluate("classification", np.array([1, 1]), np.array([1, 1]), proba, ["roc_auc"])
