"""The estimators aidlc trains: allowed kinds, checked params, interruption-safe boosting, metrics.

Boosting runs in segments that always restart from the previous segment's serialized booster, so
a fit stopped and resumed from its `FitState` makes the same bytes as one that never stopped.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import struct
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aidlc.errors import ConfigError, IntegrityError, InvalidInput, UsageError, ValidationFailed

TASKS = ("classification", "regression")
BOOSTING = ("xgboost", "lightgbm")

# name -> import path. Only these are trained, stored (skops) and loaded.
SKLEARN_ESTIMATORS: dict[str, str] = {
    "LogisticRegression": "sklearn.linear_model.LogisticRegression",
    "LinearRegression": "sklearn.linear_model.LinearRegression",
    "Ridge": "sklearn.linear_model.Ridge",
    "Lasso": "sklearn.linear_model.Lasso",
    "ElasticNet": "sklearn.linear_model.ElasticNet",
    "DecisionTreeClassifier": "sklearn.tree.DecisionTreeClassifier",
    "DecisionTreeRegressor": "sklearn.tree.DecisionTreeRegressor",
    "RandomForestClassifier": "sklearn.ensemble.RandomForestClassifier",
    "RandomForestRegressor": "sklearn.ensemble.RandomForestRegressor",
    "ExtraTreesClassifier": "sklearn.ensemble.ExtraTreesClassifier",
    "ExtraTreesRegressor": "sklearn.ensemble.ExtraTreesRegressor",
    "GradientBoostingClassifier": "sklearn.ensemble.GradientBoostingClassifier",
    "GradientBoostingRegressor": "sklearn.ensemble.GradientBoostingRegressor",
    "HistGradientBoostingClassifier": "sklearn.ensemble.HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor": "sklearn.ensemble.HistGradientBoostingRegressor",
}

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")

# Rounds per segment. Each segment costs a save and load of the booster and a prediction of the
# training rows by all trees so far (the loaded booster's starting scores), so the cost grows with
# the number of segments. 200 rounds on 100,000 x 30, 2 cores, over one uninterrupted call:
# xgboost +10-20% at 50, +25-50% at 25, +70-110% at 10; lightgbm (slower to predict) +35-45%,
# +85-110%, +265-290%. An interruption loses at most one segment.
CHECKPOINT_EVERY = 50

# -- objectives ---------------------------------------------------------------------------------

_XGB_BINARY = ("binary:logistic", "binary:logitraw")
_XGB_MULTI = ("multi:softprob", "multi:softmax")
_XGB_REGRESSION = (
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "reg:logistic",
    "reg:gamma",
    "reg:tweedie",
    "count:poisson",
)
# LightGBM accepts many spellings of an objective; a model file names the canonical one.
_LGB_OBJECTIVES = {
    "binary": "binary",
    "multiclass": "multiclass",
    "softmax": "multiclass",
    "regression": "regression",
    "regression_l2": "regression",
    "l2": "regression",
    "mean_squared_error": "regression",
    "mse": "regression",
    "l2_root": "regression",
    "root_mean_squared_error": "regression",
    "rmse": "regression",
    "regression_l1": "regression_l1",
    "l1": "regression_l1",
    "mean_absolute_error": "regression_l1",
    "mae": "regression_l1",
    "huber": "huber",
    "fair": "fair",
    "poisson": "poisson",
    "quantile": "quantile",
    "mape": "mape",
    "mean_absolute_percentage_error": "mape",
    "gamma": "gamma",
    "tweedie": "tweedie",
}
_LGB_CLASSIFICATION = ("binary", "multiclass")


def _objectives(kind: str, task: str) -> tuple[str, ...]:
    if kind == "xgboost":
        return _XGB_BINARY + _XGB_MULTI if task == "classification" else _XGB_REGRESSION
    if task == "classification":
        return tuple(k for k, v in _LGB_OBJECTIVES.items() if v in _LGB_CLASSIFICATION)
    return tuple(k for k, v in _LGB_OBJECTIVES.items() if v not in _LGB_CLASSIFICATION)


def _canonical_objective(kind: str, name: str) -> str:
    return _LGB_OBJECTIVES.get(name, name) if kind == "lightgbm" else name


def _default_objective(kind: str, task: str, n_classes: int | None) -> str:
    if task == "regression":
        return "reg:squarederror" if kind == "xgboost" else "regression"
    if n_classes == 2:
        return "binary:logistic" if kind == "xgboost" else "binary"
    return "multi:softprob" if kind == "xgboost" else "multiclass"


# -- params -------------------------------------------------------------------------------------

_SEED = "aidlc derives it from the config's `seed`"
_THREADS = "aidlc uses every available core"
_CLASSES = "aidlc counts the classes in the data"
_ROUNDS = "set `model.rounds` instead"
_QUIET = "aidlc keeps LightGBM quiet and reproducible"


def _aliases(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


_SET_BY_AIDLC: dict[str, dict[str, str]] = {
    "xgboost": {
        **_aliases(_SEED, "seed", "random_state", "seed_per_iteration"),
        **_aliases(_THREADS, "nthread", "n_jobs"),
        **_aliases(_CLASSES, "num_class"),
        **_aliases(_ROUNDS, "num_boost_round", "n_estimators", "num_round", "num_rounds"),
    },
    "lightgbm": {
        **_aliases(
            _SEED,
            "seed",
            "random_seed",
            "random_state",
            "data_random_seed",
            "data_seed",
            "bagging_seed",
            "bagging_fraction_seed",
            "feature_fraction_seed",
            "extra_seed",
            "drop_seed",
            "objective_seed",
        ),
        **_aliases(_THREADS, "num_threads", "num_thread", "nthread", "nthreads", "n_jobs"),
        **_aliases(_CLASSES, "num_class", "num_classes"),
        **_aliases(
            _ROUNDS,
            "num_iterations",
            "num_iteration",
            "n_iter",
            "num_tree",
            "num_trees",
            "num_round",
            "num_rounds",
            "nrounds",
            "num_boost_round",
            "n_estimators",
            "max_iter",
        ),
        **_aliases(
            _QUIET, "verbose", "verbosity", "deterministic", "force_row_wise", "force_col_wise"
        ),
        **_aliases("use `objective`", "objective_type", "app", "application", "loss"),
    },
}

# Params that read or write files, open connections, or take code: never passed through.
_DENIED: dict[str, frozenset[str]] = {
    "xgboost": frozenset(
        {
            "callbacks",
            "obj",
            "custom_metric",
            "feval",
            "xgb_model",
            "evals",
            "process_type",
            "updater",
            # parameters of the xgboost command line program, which reads and writes files
            "task",
            "data",
            "test:data",
            "model_in",
            "model_out",
            "model_dir",
            "save_period",
            "name_dump",
            "name_pred",
            "fmap",
            "dump_format",
        }
    ),
    "lightgbm": frozenset(
        {
            "task",
            "task_type",
            "config",
            "config_file",
            "data",
            "train",
            "train_data",
            "train_data_file",
            "data_filename",
            "valid",
            "test",
            "valid_data",
            "valid_data_file",
            "test_data",
            "test_data_file",
            "valid_filenames",
            "input_model",
            "model_input",
            "model_in",
            "output_model",
            "model_output",
            "model_out",
            "save_binary",
            "is_save_binary",
            "is_save_binary_file",
            "snapshot_freq",
            "save_period",
            "output_result",
            "predict_result",
            "prediction_result",
            "predict_name",
            "prediction_name",
            "pred_name",
            "name_prediction",
            "initscore_filename",
            "init_score_filename",
            "init_score_file",
            "init_score",
            "input_init_score",
            "forcedsplits_filename",
            "fs",
            "forced_splits_filename",
            "forced_splits_file",
            "forced_splits",
            "forcedbins_filename",
            "parser_config_file",
            "convert_model",
            "convert_model_file",
            "convert_model_language",
            "machines",
            "workers",
            "nodes",
            "machine_list_filename",
            "machine_list_file",
            "machine_list",
            "mlist",
            "local_listen_port",
            "local_port",
            "port",
            "num_machines",
            "num_machine",
            "time_out",
            "pre_partition",
            "is_pre_partition",
            "two_round",
            "two_round_loading",
            "use_two_round_loading",
            "header",
            "has_header",
            "label_column",
            "label",
            "weight_column",
            "weight",
            "group_column",
            "group",
            "group_id",
            "query_column",
            "query",
            "query_id",
            "ignore_column",
            "ignore_feature",
            "blacklist",
            "fobj",
            "feval",
            "callbacks",
        }
    ),
}

_LGB_CATEGORICAL = (
    "categorical_feature",
    "cat_feature",
    "categorical_column",
    "cat_column",
    "categorical_features",
)
# Boosting params whose value may be a list (of numbers, or of lists of numbers).
_LIST_PARAMS = frozenset(
    {
        "monotone_constraints",
        "monotone_constraint",
        "monotonic_cst",
        "mc",
        "interaction_constraints",
        "max_bin_by_feature",
        "categorical_feature",
        "cat_feature",
        "categorical_column",
        "cat_column",
        "categorical_features",
        "feature_contri",
        "feature_contrib",
        "fc",
        "fp",
        "feature_penalty",
        "cegb_penalty_feature_lazy",
        "cegb_penalty_feature_coupled",
    }
)


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | np.integer | np.floating | np.bool_)


def _plain(value: Any, depth: int, mappings: bool) -> bool:
    """Data a config file could hold: scalars and shallow lists (and dicts, for sklearn)."""
    if _scalar(value):
        return True
    if depth == 0:
        return False
    if isinstance(value, list | tuple):
        return all(_plain(v, depth - 1, mappings) for v in value)
    if mappings and isinstance(value, dict):
        return all(_scalar(k) and _plain(v, depth - 1, mappings) for k, v in value.items())
    return False


def _check_value(kind: str, key: str, value: Any) -> None:
    if kind in BOOSTING:
        ok = _plain(value, 2 if key in _LIST_PARAMS else 0, mappings=False)
        shape = "a number, string or boolean"
        if key in _LIST_PARAMS:
            shape += " (or a list of them)"
    else:
        ok = _plain(value, 2, mappings=True)
        shape = "plain data: numbers, strings, booleans, null, lists or mappings of them"
    if not ok:
        raise ConfigError(
            f"{kind} param {key!r} must be {shape}, not {type(value).__name__}",
            hint="callables and objects are never accepted as model params",
        )


def _check_boosting(kind: str, params: Mapping[str, Any], task: str) -> None:
    for key, value in params.items():
        if key in _SET_BY_AIDLC[kind]:
            raise ConfigError(
                f"{kind} param {key!r} is set by aidlc", hint=_SET_BY_AIDLC[kind][key]
            )
        if key in _DENIED[kind]:
            raise ConfigError(
                f"{kind} param {key!r} is not allowed: it touches files, the network or code",
                hint="remove it from model.params",
            )
        _check_value(kind, key, value)
    for key in ("device", "device_type"):
        if str(params.get(key, "cpu")).lower() != "cpu":
            raise ConfigError(
                f"{kind} param {key!r} must be cpu", hint="aidlc trains on CPUs, reproducibly"
            )
    objective = params.get("objective")
    if objective is not None and objective not in _objectives(kind, task):
        raise ConfigError(
            f"{kind} objective {objective!r} does not fit a {task} task",
            hint=f"use one of: {', '.join(_objectives(kind, task))}, or leave it out",
        )


def sklearn_estimator(name: str) -> type:
    """The class of the allowlisted scikit-learn estimator `name`.

    >>> sklearn_estimator("Ridge").__name__
    'Ridge'
    """
    path = SKLEARN_ESTIMATORS.get(name)
    if path is None:
        raise ConfigError(
            f"scikit-learn estimator {name!r} is not on aidlc's allowlist",
            hint=f"use one of: {', '.join(SKLEARN_ESTIMATORS)}",
        )
    module, _, attr = path.rpartition(".")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


def _check_sklearn(kind: str, params: Mapping[str, Any], task: str) -> None:
    from sklearn.base import is_classifier

    name = kind.removeprefix("sklearn.")
    cls = sklearn_estimator(name)
    classifier = is_classifier(cls())
    if classifier != (task == "classification"):
        role, other = (
            ("classifier", "regression") if classifier else ("regressor", "classification")
        )
        raise ConfigError(
            f"{kind} is a {role} and cannot be used for {other}",
            hint=f"pick a {'regressor' if classifier else 'classifier'} or change the task",
        )
    accepted = cls().get_params(deep=False)
    for key, value in params.items():
        if key == "random_state":
            raise ConfigError(f"{kind} param 'random_state' is set by aidlc", hint=_SEED)
        if key not in accepted:
            raise ConfigError(
                f"{kind} does not accept param {key!r}",
                hint=f"it accepts: {', '.join(sorted(accepted))}",
            )
        _check_value(kind, key, value)
    # A scorer object cannot be stored in skops: the model could not be registered.
    if name.startswith("HistGradientBoosting") and params.get("scoring", "loss") not in (
        "loss",
        None,
    ):
        raise ConfigError(
            f"{kind} param 'scoring' must be 'loss'",
            hint="early stopping on another score cannot be saved in a safe format",
        )


def check_model(kind: str, params: Mapping[str, Any], task: str) -> None:
    """Refuse a model kind, task and params that aidlc will not train, naming what is wrong.

    >>> check_model("xgboost", {"max_depth": 3}, "classification")
    >>> check_model("sklearn.Ridge", {"alpha": 2.0}, "classification")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aidlc.errors.ConfigError: sklearn.Ridge is a regressor and cannot be used for classification...
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}", hint="use classification or regression")
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ConfigError(f"{kind} params must be a mapping of names to values")
    if kind in BOOSTING:
        _check_boosting(kind, params, task)
    elif kind.startswith("sklearn."):
        _check_sklearn(kind, params, task)
    else:
        raise ConfigError(
            f"unknown model type {kind!r}",
            hint="use xgboost, lightgbm or sklearn.<Name> with Name one of: "
            + ", ".join(SKLEARN_ESTIMATORS),
        )


# -- fit state ----------------------------------------------------------------------------------

_STATE_MAGIC = b"AIDLCFS1"
_MAX_STATE_HEADER = 4096


@dataclass(frozen=True)
class FitState:
    """Where a fit stands: rounds and segments done, and the booster they made (raw bytes)."""

    kind: str
    rounds_done: int
    segment: int
    booster: bytes | None

    def to_bytes(self) -> bytes:
        """A small JSON header, then the booster's own bytes (UBJSON or LightGBM text)."""
        header = json.dumps(
            {
                "kind": self.kind,
                "rounds_done": self.rounds_done,
                "segment": self.segment,
                "booster_size": None if self.booster is None else len(self.booster),
            },
            sort_keys=True,
        ).encode()
        return _STATE_MAGIC + struct.pack(">I", len(header)) + header + (self.booster or b"")

    @classmethod
    def from_bytes(cls, data: bytes) -> FitState:
        """Read `to_bytes` output back; IntegrityError if it is not exactly that.

        >>> FitState.from_bytes(FitState("xgboost", 20, 2, b"{}").to_bytes())
        FitState(kind='xgboost', rounds_done=20, segment=2, booster=b'{}')
        """
        start = len(_STATE_MAGIC) + 4
        if not data.startswith(_STATE_MAGIC) or len(data) < start:
            raise IntegrityError("the fit checkpoint is not an aidlc fit state")
        (size,) = struct.unpack(">I", data[len(_STATE_MAGIC) : start])
        try:
            if size > _MAX_STATE_HEADER:
                raise ValueError
            header = json.loads(data[start : start + size])
            kind, rounds, segment = header["kind"], header["rounds_done"], header["segment"]
            booster_size = header["booster_size"]
        except (ValueError, KeyError, TypeError):
            raise IntegrityError("the fit checkpoint's header is malformed") from None
        body = data[start + size :]
        counts_ok = all(type(v) is int and v >= 0 for v in (rounds, segment))
        size_ok = len(body) == 0 if booster_size is None else len(body) == booster_size
        if not isinstance(kind, str) or not counts_ok or not size_ok:
            raise IntegrityError("the fit checkpoint is malformed or truncated")
        return cls(kind, rounds, segment, None if booster_size is None else bytes(body))


@dataclass
class FitOutcome:
    """A fit's result: the model (None if stopped before training any), finished, and state."""

    model: Any
    finished: bool
    state: FitState


# -- fit ----------------------------------------------------------------------------------------


def _never() -> bool:
    return False


def _derived_seed(seed: int, label: str) -> int:
    digest = hashlib.sha256(f"aidlc:{seed}:{label}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# Below this many cells a fit runs on one thread: OpenMP threads save little there, and on a
# busy machine (parallel tuning trials, CI) their barriers can make a small fit 100x slower.
_SMALL_DATA = 250_000


def _threads(X: np.ndarray) -> int:
    """Threads for a fit: one for small data, else OMP_NUM_THREADS (Ray sets it per task) or
    every core this process may use. The models do not depend on it."""
    if X.size < _SMALL_DATA:
        return 1
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class _XGBoostSegments:
    """Trains xgboost a segment at a time, each from the previous segment's UBJSON bytes."""

    def __init__(self, params: dict[str, Any], X: np.ndarray, y: np.ndarray, seed: int) -> None:
        import xgboost as xgb

        self.xgb = xgb
        self.params = {**params, "nthread": _threads(X)}
        self.seed = seed
        # Built once: hist cuts are a pure function of the data, the same after a resume.
        self.dtrain = xgb.DMatrix(X, label=y, missing=np.nan, nthread=self.params["nthread"])

    def load(self, raw: bytes) -> Any:
        return self.xgb.Booster(model_file=bytearray(raw))

    def train(self, raw: bytes | None, segment: int, rounds: int) -> tuple[Any, bytes]:
        start = self.load(raw) if raw is not None else None
        params = {**self.params, "seed": _derived_seed(self.seed, f"segment:{segment}")}
        booster = self.xgb.train(params, self.dtrain, num_boost_round=rounds, xgb_model=start)
        return booster, bytes(booster.save_raw("ubj"))


class _LightGBMSegments:
    """Trains lightgbm a segment at a time, each from the previous segment's model text."""

    def __init__(self, params: dict[str, Any], X: np.ndarray, y: np.ndarray, seed: int) -> None:
        import lightgbm as lgb

        self.lgb = lgb
        # categorical columns are the Dataset's business; LightGBM ignores them among params
        categorical = [params[k] for k in _LGB_CATEGORICAL if k in params]
        self.params = {
            **{k: v for k, v in params.items() if k not in _LGB_CATEGORICAL},
            "verbose": -1,
            "deterministic": True,
            "force_row_wise": True,
            # The model text records num_threads: 0 ("as OpenMP decides") keeps the machine's
            # core count out of it.
            "num_threads": 1 if X.size < _SMALL_DATA else 0,
            # The bins must not depend on the segment a (resumed) fit starts in.
            "data_random_seed": _derived_seed(seed, "data"),
        }
        self.seed = seed
        # Kept raw so each segment can score it with the loaded booster (its init score).
        self.dataset = lgb.Dataset(
            X,
            label=y,
            params=self.params,
            categorical_feature=categorical[0] if categorical else "auto",
            free_raw_data=False,
        )

    def load(self, raw: bytes) -> Any:
        return self.lgb.Booster(model_str=raw.decode("utf-8"))

    def train(self, raw: bytes | None, segment: int, rounds: int) -> tuple[Any, bytes]:
        start = self.load(raw) if raw is not None else None
        params = {**self.params, "seed": _derived_seed(self.seed, f"segment:{segment}")}
        booster = self.lgb.train(
            params,
            self.dataset,
            num_boost_round=rounds,
            init_model=start,
            keep_training_booster=True,
        )
        return booster, booster.model_to_string().encode("utf-8")


def _library_errors(kind: str) -> tuple[type[BaseException], ...]:
    if kind == "xgboost":
        import xgboost as xgb

        return (xgb.core.XGBoostError, ValueError, TypeError)
    import lightgbm as lgb

    return (lgb.basic.LightGBMError, ValueError, TypeError)


def _fit_boosting(
    kind: str,
    params: Mapping[str, Any],
    task: str,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    n_classes: int | None,
    rounds: int,
    every: int,
    resume: FitState | None,
    on_checkpoint: Callable[[FitState], None] | None,
    should_stop: Callable[[], bool],
    progress: Callable[[int, int], None] | None,
) -> FitOutcome:
    state = resume or FitState(kind, 0, 0, None)
    if state.rounds_done != min(state.segment * every, rounds) or (state.booster is None) != (
        state.segment == 0
    ):
        raise ConfigError(
            f"the checkpoint ({state.rounds_done} rounds in {state.segment} segments) does not "
            f"match {rounds} rounds in segments of {every}",
            hint="resume with the model.rounds and model.checkpoint_every the run started with",
        )
    objective = _canonical_objective(
        kind, params.get("objective") or _default_objective(kind, task, n_classes)
    )
    if task == "classification" and n_classes != 2 and objective in (*_XGB_BINARY, "binary"):
        raise ConfigError(
            f"{kind} objective {objective!r} needs two classes; the data has {n_classes}",
            hint="use multi:softprob (xgboost) or multiclass (lightgbm)",
        )
    full = {**params, "objective": objective}
    if objective in (*_XGB_MULTI, "multiclass"):
        full["num_class"] = n_classes
    errors = _library_errors(kind)
    try:
        segments: _XGBoostSegments | _LightGBMSegments = (
            _XGBoostSegments(full, X, y, seed)
            if kind == "xgboost"
            else _LightGBMSegments(full, X, y, seed)
        )
    except errors as exc:
        raise ConfigError(f"{kind} cannot use this data: {_first_line(exc)}") from None
    model: Any = None
    while state.rounds_done < rounds:
        if should_stop():
            return FitOutcome(model, False, state)
        n = min(every, rounds - state.rounds_done)
        try:
            model, raw = segments.train(state.booster, state.segment, n)
        except errors as exc:
            raise ConfigError(
                f"{kind} could not train with these params: {_first_line(exc)}",
                hint="check model.params against the library's documentation",
            ) from None
        state = FitState(kind, state.rounds_done + n, state.segment + 1, raw)
        if on_checkpoint is not None:
            on_checkpoint(state)
        if progress is not None:
            progress(state.rounds_done, rounds)
    if model is None and state.booster is not None:  # resumed from a checkpoint of a done fit
        model = segments.load(state.booster)
    return FitOutcome(model, True, state)


def _fit_sklearn(
    kind: str,
    params: Mapping[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    should_stop: Callable[[], bool],
    progress: Callable[[int, int], None] | None,
) -> FitOutcome:
    # A scikit-learn fit is one atomic call with no state to save part way, so a stopped or
    # resumed fit simply starts over (seeded, it makes the same model).
    state = FitState(kind, 0, 0, None)
    if should_stop():
        return FitOutcome(None, False, state)
    estimator = sklearn_estimator(kind.removeprefix("sklearn."))(**params)
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=seed)
    try:
        estimator.fit(X, y)
    except (ValueError, TypeError) as exc:
        message = _first_line(exc)
        raise ConfigError(
            f"{kind} could not fit: {message}",
            hint="impute missing values in preprocessing, or use xgboost, lightgbm or a tree"
            if "NaN" in message
            else None,
        ) from None
    if progress is not None:
        progress(1, 1)
    return FitOutcome(estimator, True, state)


def fit(
    kind: str,
    params: Mapping[str, Any],
    task: str,
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    n_classes: int | None,
    rounds: int = 100,
    checkpoint_every: int = CHECKPOINT_EVERY,
    resume: FitState | None = None,
    on_checkpoint: Callable[[FitState], None] | None = None,
    should_stop: Callable[[], bool] = _never,
    progress: Callable[[int, int], None] | None = None,
) -> FitOutcome:
    """Fit `kind` on encoded data; stop cleanly when `should_stop()` and resume from the state.

    `y` holds class indices 0..n_classes-1 (classification) or floats; `X` is float64 with NaN
    for missing values. Boosting trains `rounds` rounds in segments of `checkpoint_every`, each
    started from the previous segment's serialized booster with a seed derived from (`seed`,
    segment index): neither XGBoost nor LightGBM stores its random state in a model and both
    reseed on load, so only this makes a resumed fit byte-identical to an uninterrupted one
    (with subsampling too). After each segment: `on_checkpoint(state)`, `progress(done, rounds)`,
    and if `should_stop()` a return with `finished=False`. The model is the Booster.

    >>> import numpy as np
    >>> X = np.arange(40.0).reshape(20, 2); y = (X[:, 0] > 19).astype(int)
    >>> out = fit("xgboost", {}, "classification", X, y, seed=1, n_classes=2, rounds=4)
    >>> out.finished, out.state.rounds_done, predict("xgboost", out.model, X[:3]).tolist()
    (True, 4, [0, 0, 0])
    """
    check_model(kind, params, task)
    if rounds < 1 or checkpoint_every < 1:
        raise UsageError("rounds and checkpoint_every must be at least 1")
    X = _matrix(X)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X) or len(y) == 0:
        raise UsageError(f"y must be one label per row of X ({len(X)} rows), got shape {y.shape}")
    if task == "classification":
        if n_classes is None or n_classes < 2:
            raise UsageError("a classification fit needs n_classes >= 2")
        if not np.array_equal(y, y.astype(np.int64)) or y.min() < 0 or y.max() >= n_classes:
            raise UsageError(f"y must hold class indices 0..{n_classes - 1}")
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float64)
    if resume is not None and resume.kind != kind:
        raise ConfigError(f"the checkpoint is of a {resume.kind} fit, not {kind}")
    if kind.startswith("sklearn."):
        return _fit_sklearn(kind, params, X, y, seed, should_stop, progress)
    return _fit_boosting(
        kind,
        params,
        task,
        X,
        y,
        seed,
        n_classes,
        rounds,
        checkpoint_every,
        resume,
        on_checkpoint,
        should_stop,
        progress,
    )


# -- predict ------------------------------------------------------------------------------------

_OBJECTIVE_CACHE: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _lightgbm_objective(booster: Any) -> str:
    # The model text's header names the canonical objective; one iteration keeps it short.
    for line in booster.model_to_string(num_iteration=1).splitlines():
        if line.startswith("objective="):
            return str(line).removeprefix("objective=").split(" ")[0]
        if line.startswith("Tree="):
            break
    return ""


def objective_of(kind: str, booster: Any) -> str:
    """The objective an XGBoost or LightGBM booster was trained with (cached per booster)."""
    objective = _OBJECTIVE_CACHE.get(booster)
    if objective is None:
        errors: tuple[type[BaseException], ...] = (*_library_errors(kind), KeyError)
        try:
            if kind == "xgboost":
                config = json.loads(booster.save_config())
                objective = str(config["learner"]["objective"]["name"])
            else:
                objective = _LGB_OBJECTIVES.get(_lightgbm_objective(booster), "")
        except errors:
            raise InvalidInput(f"the {kind} model names no usable objective") from None
        _OBJECTIVE_CACHE[booster] = objective
    return objective


def task_of(kind: str, model: Any) -> str:
    """classification or regression for a fitted model; InvalidInput if aidlc cannot serve it."""
    if kind.startswith("sklearn."):
        from sklearn.base import is_classifier

        return "classification" if is_classifier(model) else "regression"
    objective = objective_of(kind, model)
    for task in TASKS:
        if objective in _objectives(kind, task):
            return task
    raise InvalidInput(
        f"a {kind} model with objective {objective or 'unknown'!r} cannot be served by aidlc",
        hint="supported: "
        + ", ".join(_objectives(kind, "classification") + _objectives(kind, "regression")),
    )


def _matrix(X: Any) -> np.ndarray:
    try:
        matrix = np.asarray(X, dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidInput("the model input must be a numeric matrix") from None
    if matrix.ndim != 2:
        raise InvalidInput(f"the model input must be 2-dimensional, not {matrix.ndim}")
    return matrix


def _boosting_output(kind: str, model: Any, X: np.ndarray, margin: bool = False) -> np.ndarray:
    errors = _library_errors(kind)
    try:
        if kind == "xgboost":
            import xgboost as xgb

            # a DMatrix, not inplace_predict, which linear boosters lack; an imported booster
            # that names its features gets the columns under those names (aidlc built the
            # matrix in that order)
            matrix = xgb.DMatrix(X, missing=np.nan, feature_names=model.feature_names)
            out = model.predict(matrix, output_margin=margin)
        else:
            out = model.predict(X)
    except errors as exc:
        raise InvalidInput(
            f"the {kind} model cannot predict this input: {_first_line(exc)}"
        ) from None
    return np.asarray(out, dtype=np.float64)


def _softmax(margin: np.ndarray) -> np.ndarray:
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def _sklearn_call(kind: str, method: Callable[[np.ndarray], Any], X: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(method(X))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"the {kind} model cannot predict this input: {_first_line(exc)}"
        ) from None


def predict(kind: str, model: Any, X: np.ndarray) -> np.ndarray:
    """Class indices (int64) for classifiers, float64 values for regressors."""
    X = _matrix(X)
    if kind.startswith("sklearn."):
        out = _sklearn_call(kind, model.predict, X)
        return out.astype(np.int64 if task_of(kind, model) == "classification" else np.float64)
    task = task_of(kind, model)
    out = _boosting_output(kind, model, X)
    if task == "regression":
        return out
    objective = objective_of(kind, model)
    if objective == "binary:logitraw":
        return (out > 0).astype(np.int64)
    if objective == "multi:softmax":
        return out.astype(np.int64)
    if out.ndim == 2:
        return np.asarray(out.argmax(axis=1), dtype=np.int64)
    return np.asarray(out > 0.5, dtype=np.int64)


def predict_proba(kind: str, model: Any, X: np.ndarray) -> np.ndarray | None:
    """Class probabilities, shape (n, k) (two columns for binary); None for regressors."""
    X = _matrix(X)
    if task_of(kind, model) == "regression":
        return None
    if kind.startswith("sklearn."):
        proba = _sklearn_call(kind, model.predict_proba, X).astype(np.float64)
        classes = np.asarray(model.classes_).astype(np.int64)
        if np.array_equal(classes, np.arange(len(classes))):
            return proba
        # a fit on rows missing some class: put each column at its class index
        full = np.zeros((len(X), int(classes.max()) + 1))
        full[:, classes] = proba
        return full
    objective = objective_of(kind, model)
    if objective == "multi:softmax":
        return _softmax(_boosting_output(kind, model, X, margin=True))
    out = _boosting_output(kind, model, X)
    if objective == "binary:logitraw":
        out = 1.0 / (1.0 + np.exp(-out))
    if out.ndim == 1:
        return np.column_stack([1.0 - out, out])
    # float32 probabilities: renormalize in float64 so rows sum to 1 within float64 precision
    return np.asarray(out / out.sum(axis=1, keepdims=True))


# -- metrics ------------------------------------------------------------------------------------


def _classes(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None) -> int:
    if proba is not None:
        return int(proba.shape[1])
    return int(max(y_true.max(), y_pred.max())) + 1


def evaluate(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    metrics: Sequence[str],
) -> dict[str, float]:
    """Compute `metrics` with scikit-learn; binary scores treat class 1 as positive.

    Multiclass precision, recall, f1 and roc_auc (one-vs-rest) are macro averages;
    undefined precision or recall counts as 0.

    >>> import numpy as np
    >>> evaluate("regression", np.array([1.0, 2.0]), np.array([1.5, 2.0]), None, ["mae"])
    {'mae': 0.25}
    """
    from sklearn.exceptions import UndefinedMetricWarning

    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}", hint="use classification or regression")
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    unknown = [name for name in metrics if name not in allowed]
    if unknown:
        raise ConfigError(
            f"unknown {task} metric {unknown[0]!r}", hint=f"use one of: {', '.join(allowed)}"
        )
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValidationFailed(
            f"cannot score {len(y_pred)} predictions against {len(y_true)} labels"
        )
    with warnings.catch_warnings():
        # an undefined score (one class, one row) comes back as NaN and is refused below
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        out = _scores(task, y_true, y_pred, proba, metrics)
    undefined = [name for name, value in out.items() if math.isnan(value)]
    if undefined:
        raise ValidationFailed(
            f"{undefined[0]} is undefined for these {len(y_true)} rows",
            hint="evaluate on more rows, holding every class",
        )
    return out


def _scores(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    metrics: Sequence[str],
) -> dict[str, float]:
    from sklearn import metrics as m

    if task == "regression":
        regression = {
            "mae": m.mean_absolute_error,
            "rmse": m.root_mean_squared_error,
            "r2": m.r2_score,
        }
        return {name: float(regression[name](y_true, y_pred)) for name in metrics}
    k = _classes(y_true, y_pred, proba)
    average = "binary" if k <= 2 else "macro"
    labels = list(range(k))
    out: dict[str, float] = {}
    for name in metrics:
        if name in ("roc_auc", "log_loss") and proba is None:
            raise ConfigError(f"{name} needs class probabilities and this model gives none")
        try:
            if name == "accuracy":
                value = m.accuracy_score(y_true, y_pred)
            elif name in ("precision", "recall", "f1"):
                score = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}
                value = score[name](y_true, y_pred, average=average, zero_division=0)
            elif name == "roc_auc" and proba is not None:
                value = (
                    m.roc_auc_score(y_true, proba[:, 1])
                    if k == 2
                    else m.roc_auc_score(
                        y_true, proba, multi_class="ovr", average="macro", labels=labels
                    )
                )
            else:
                value = m.log_loss(y_true, proba, labels=labels)
        except ValueError as exc:
            raise ValidationFailed(f"{name} is undefined here: {_first_line(exc)}") from None
        out[name] = float(value)
    return out
