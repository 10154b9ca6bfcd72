"""The training runner: from a training config to a fitted, evaluated, gated model bundle.

`train` reads only validated data (through `data.versions`), records a run, tunes, fits, scores
and checks the quality gates; the caller's `register` callback (the registry's) signs and stores
the result. On SIGTERM or SIGINT the run checkpoints its finished tuning trials and boosting
rounds and stops with `Interrupted`; `resume` continues it to the same model an uninterrupted
run would have made, because boosting runs in checkpoint segments that start from serialized
state either way (see `train.estimators.fit`).
"""

from __future__ import annotations

import json
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from aidlc.errors import ConfigError, IntegrityError, Interrupted, ValidationFailed
from aidlc.train import estimators, tracking
from aidlc.train.config import TrainConfig, config_digest, default_metrics, parse_train_config

if TYPE_CHECKING:
    import polars as pl

    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import Contract
    from aidlc.train.preprocess import Preprocessor
    from aidlc.train.tuning import Trial

Progress = Callable[[str, int, int], None]
Register = Callable[[str, Any, "Preprocessor", dict[str, Any]], tuple[str, str]]
ProductionMetrics = Callable[[str], "dict[str, float] | None"]
Checkpoint = tuple[list["Trial"], estimators.FitState | None]

_MAGIC = b"AIDLCCK1"
CHECKPOINT_SECONDS = 60.0
_MAX_CLASSES = 1000


class StopFlag:
    """Set by SIGTERM or SIGINT while training runs (the Spot-instance interruption notice).

    Work checks it between segments and trials, checkpoints, and stops cleanly.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal: str | None = None

    def __call__(self) -> bool:
        return self.requested

    def set(self, name: str = "request") -> None:
        self.requested = True
        self.signal = self.signal or name

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Route SIGTERM and SIGINT to this flag (main thread only) and restore them after."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.set(signal.Signals(signum).name)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


@dataclass
class TrainOutcome:
    run_id: str
    name: str
    status: str
    task: str
    metrics: dict[str, float]
    gates: list[dict[str, Any]]
    gates_passed: bool
    model_version: str | None
    model_digest: str | None
    durations: dict[str, float]
    tuning: dict[str, Any] | None = None
    resumed: bool = False
    dataset: str = ""
    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- checkpoints --------------------------------------------------------------------------------


def _pack(trials: list[Trial], fit_state: estimators.FitState | None) -> bytes:
    header = json.dumps({"trials": [t.to_json() for t in trials]}).encode()
    body = fit_state.to_bytes() if fit_state is not None else b""
    return _MAGIC + struct.pack(">I", len(header)) + header + body


def _unpack(data: bytes) -> Checkpoint:
    from aidlc.train.tuning import Trial

    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
        raise IntegrityError("the run's checkpoint is not an aidlc checkpoint")
    (size,) = struct.unpack(">I", data[len(_MAGIC) : len(_MAGIC) + 4])
    start = len(_MAGIC) + 4
    try:
        header = json.loads(data[start : start + size])
        trials = [Trial.from_json(t) for t in header["trials"]]
    except (ValueError, KeyError, TypeError):
        raise IntegrityError("the run's checkpoint is malformed") from None
    body = data[start + size :]
    return trials, (estimators.FitState.from_bytes(body) if body else None)


class _Checkpointer:
    """Persists progress when stopping, and otherwise at most every CHECKPOINT_SECONDS."""

    def __init__(self, ws: Workspace, run_id: str, stop: StopFlag) -> None:
        self.ws, self.run_id, self.stop = ws, run_id, stop
        self.trials: list[Trial] = []
        self.fit_state: estimators.FitState | None = None
        self._last = time.monotonic()

    def update(self, *, trials: list[Trial] | None = None, fit: Any = None) -> None:
        if trials is not None:
            self.trials = list(trials)
        if fit is not None:
            self.fit_state = fit
        if self.stop.requested or time.monotonic() - self._last >= CHECKPOINT_SECONDS:
            self.save()

    def save(self) -> None:
        tracking.save_checkpoint(self.ws, self.run_id, _pack(self.trials, self.fit_state))
        self._last = time.monotonic()


# -- data ---------------------------------------------------------------------------------------


@dataclass
class _Data:
    frame: pl.DataFrame
    features: list[str]
    target: str
    task: str
    classes: list[Any] | None
    y: np.ndarray
    contract: Contract
    dropped: int


def _infer_task(cfg: TrainConfig, contract: Contract, frame: pl.DataFrame) -> str:
    if cfg.task:
        return cfg.task
    spec = next((c for c in contract.columns if c.name == cfg.target), None)
    dtype = spec.dtype if spec else "float"
    if dtype == "float":
        return "regression"
    if dtype == "int":
        return "classification" if frame[cfg.target].n_unique() <= 20 else "regression"
    return "classification"


def _prepare(cfg: TrainConfig, frame: pl.DataFrame, contract: Contract) -> _Data:
    if cfg.target not in frame.columns:
        raise ConfigError(f"target {cfg.target!r} is not a column of the dataset")
    subject_ids = {c.name for c in contract.columns if c.subject_id}
    if cfg.features is not None:
        missing = [f for f in cfg.features if f not in frame.columns]
        if missing:
            raise ConfigError(f"features not in the dataset: {', '.join(missing[:10])}")
        features = list(cfg.features)
    else:
        excluded = set(cfg.exclude) | subject_ids | {cfg.target}
        features = [c for c in frame.columns if c not in excluded]
    if not features:
        raise ConfigError("no features left to train on")
    before = frame.height
    frame = frame.filter(frame[cfg.target].is_not_null())
    dropped = before - frame.height
    if frame.height < 10:
        raise ValidationFailed(
            f"only {frame.height} rows have a {cfg.target}; training needs at least 10"
        )
    task = _infer_task(cfg, contract, frame)
    if task == "classification":
        values = frame[cfg.target].to_list()
        classes = sorted(set(values), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise ValidationFailed(f"{cfg.target} has a single class; nothing to learn")
        if len(classes) > _MAX_CLASSES:
            raise ConfigError(f"{cfg.target} has more than {_MAX_CLASSES} classes")
        index = {v: i for i, v in enumerate(classes)}
        y = np.array([index[v] for v in values], dtype=np.int64)
    else:
        classes = None
        try:
            y = frame[cfg.target].cast(float).to_numpy().astype(np.float64)
        except Exception:
            raise ConfigError(
                f"target {cfg.target!r} is not numeric; use task: classification"
            ) from None
    return _Data(frame, features, cfg.target, task, classes, y, contract, dropped)


def _split(cfg: TrainConfig, data: _Data) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(data.frame.height)
    stratify = data.y if data.task == "classification" and cfg.validation.stratify else None
    try:
        train, test = train_test_split(
            rows, test_size=cfg.validation.test_size, random_state=cfg.seed, stratify=stratify
        )
    except ValueError as exc:
        raise ValidationFailed(f"cannot split the data: {exc}") from None
    return np.sort(train), np.sort(test)


def _folds(task: str, y: np.ndarray, folds: int, seed: int, stratify: bool) -> list[Any]:
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter: Any = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if task == "classification" and stratify
        else KFold(folds, shuffle=True, random_state=seed)
    )
    try:
        return list(splitter.split(np.zeros(len(y)), y))
    except ValueError as exc:
        raise ValidationFailed(f"cannot make {folds} folds: {exc}") from None


def _scores(
    kind: str, task: str, model: Any, X: np.ndarray, y: np.ndarray, metrics: list[str]
) -> dict[str, float]:
    pred = estimators.predict(kind, model, X)
    proba = estimators.predict_proba(kind, model, X)
    return estimators.evaluate(task, y, pred, proba, metrics)


def tuning_objective(params: dict[str, Any], payload: Mapping[str, Any]) -> float:
    """Mean cross-validated score of one trial's parameters (runs in process or on Ray)."""
    X, y = payload["X"], payload["y"]
    scores = []
    for train, valid in payload["folds"]:
        outcome = estimators.fit(
            payload["kind"],
            {**payload["params"], **params},
            payload["task"],
            X[train],
            y[train],
            seed=payload["seed"],
            n_classes=payload["n_classes"],
            rounds=payload["rounds"],
            checkpoint_every=payload["rounds"],
        )
        metric = payload["metric"]
        scores.append(
            _scores(payload["kind"], payload["task"], outcome.model, X[valid], y[valid], [metric])[
                metric
            ]
        )
    return float(np.mean(scores))


# -- the run ------------------------------------------------------------------------------------


def train(
    ws: Workspace,
    config_text: str,
    *,
    source: str = "config",
    directory: Path | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: Progress | None = None,
    stop: StopFlag | None = None,
    register: Register | None = None,
    production_metrics: ProductionMetrics | None = None,
) -> TrainOutcome:
    """Run the training config `config_text` as a new run."""
    cfg = parse_train_config(config_text, source)
    ws.authorize("train.run", f"config:{source[:100]}")
    run_id = tracking.create_run(
        ws,
        _run_name(cfg),
        kind="config",
        config=config_text,
        config_digest=config_digest(cfg),
        params={"model": cfg.model.type, **cfg.model.params},
        seed=cfg.seed,
        directory=directory,
    )
    options = _Options(
        engine, ray_address, progress, stop or StopFlag(), register, production_metrics
    )
    return _execute(ws, run_id, cfg, None, options)


def _run_name(cfg: TrainConfig) -> str:
    return cfg.name or (cfg.register.model if cfg.register else "train")


def resume(
    ws: Workspace,
    run_id: str,
    *,
    engine: str = "local",
    ray_address: str | None = None,
    progress: Progress | None = None,
    stop: StopFlag | None = None,
    register: Register | None = None,
    production_metrics: ProductionMetrics | None = None,
) -> TrainOutcome:
    """Continue an interrupted run from its checkpoint, on the exact data version it read."""
    info = tracking.reopen_run(ws, run_id)
    if info.config is None:
        raise ConfigError(f"run {info.id} was not started by `aidlc train`; it cannot resume")
    cfg = parse_train_config(info.config, f"run {info.id}")
    if info.datasets:  # pin the version the run started on, not whatever is latest now
        cfg = cfg.model_copy(update={"dataset": info.datasets[0]["ref"]})
    data = tracking.load_checkpoint(ws, info.id)
    checkpoint = _unpack(data) if data is not None else ([], None)
    options = _Options(
        engine, ray_address, progress, stop or StopFlag(), register, production_metrics
    )
    return _execute(ws, info.id, cfg, checkpoint, options)


@dataclass(frozen=True)
class _Options:
    """How a run executes, as `train` and `resume` were asked."""

    engine: str
    ray_address: str | None
    progress: Progress | None
    stop: StopFlag
    register: Register | None
    production_metrics: ProductionMetrics | None


def _execute(
    ws: Workspace, run_id: str, cfg: TrainConfig, checkpoint: Checkpoint | None, options: _Options
) -> TrainOutcome:
    with options.stop.installed():
        try:
            return _run(ws, run_id, cfg, checkpoint, options)
        except Interrupted:
            raise
        except BaseException as exc:
            tracking.finish_run(ws, run_id, "failed", result={"error": type(exc).__name__})
            raise


def _run(
    ws: Workspace, run_id: str, cfg: TrainConfig, checkpoint: Checkpoint | None, options: _Options
) -> TrainOutcome:
    import polars as pl

    from aidlc.core import objects
    from aidlc.data import versions
    from aidlc.data.profile import profile_frame
    from aidlc.train.preprocess import fit_preprocessor

    durations: dict[str, float] = {}
    clock = time.perf_counter()
    stop, register, production_metrics = options.stop, options.register, options.production_metrics
    report = options.progress or (lambda _stage, _done, _total: None)
    trials, fit_state = checkpoint or ([], None)
    saver = _Checkpointer(ws, run_id, stop)
    saver.trials, saver.fit_state = list(trials), fit_state

    version = versions.resolve(ws, cfg.dataset)  # validated versions only
    tracking.log_dataset(ws, run_id, version)
    frame = versions.read_version(ws, version.ref)
    contract = versions.contract_version(ws, version.dataset, version.contract_version).contract()
    data = _prepare(cfg, frame, contract)
    estimators.check_model(cfg.model.type, cfg.model.params, data.task)
    metrics_wanted = list(cfg.metrics or default_metrics(data.task))
    n_classes = len(data.classes) if data.classes else None
    durations["load"] = time.perf_counter() - clock

    if cfg.validation.method == "holdout":
        train_rows, test_rows = _split(cfg, data)
    else:
        train_rows, test_rows = np.arange(data.frame.height), np.array([], dtype=np.int64)
    train_frame = data.frame[train_rows.tolist()]
    preprocessor: Preprocessor = fit_preprocessor(cfg.preprocessing, train_frame, data.features)
    X_train = preprocessor.transform(train_frame)
    y_train = data.y[train_rows]

    params = dict(cfg.model.params)
    tuning_json: dict[str, Any] | None = None
    if cfg.tuning is not None:
        from aidlc.train.tuning import tune

        clock = time.perf_counter()
        spec = cfg.tuning
        payload = {
            "X": X_train,
            "y": y_train,
            "folds": _folds(data.task, y_train, spec.folds, cfg.seed, cfg.validation.stratify),
            "kind": cfg.model.type,
            "params": params,
            "task": data.task,
            "n_classes": n_classes,
            "metric": spec.objective,
            "seed": cfg.seed,
            "rounds": cfg.model.rounds,
        }
        tuned = tune(
            {k: v.model_dump() for k, v in spec.space.items()},
            tuning_objective,
            payload,
            trials=spec.trials,
            parallelism=spec.parallelism,
            seed=cfg.seed,
            direction=spec.resolved_direction(),
            engine=options.engine,
            ray_address=options.ray_address,
            finished=trials,
            on_batch=lambda done: saver.update(trials=done),
            should_stop=stop,
            progress=lambda done, total: report("tuning", done, total),
        )
        durations["tuning"] = time.perf_counter() - clock
        if not tuned.complete:
            saver.save()
            tracking.finish_run(ws, run_id, "interrupted", result={"stage": "tuning"})
            raise Interrupted(
                f"run {run_id} stopped ({stop.signal}) after {len(tuned.trials)} of "
                f"{spec.trials} tuning trials",
                hint=f"continue it with: aidlc train --resume {run_id}",
            )
        if tuned.best is None:
            raise ValidationFailed("every tuning trial failed; see the run's tuning record")
        params.update(tuned.best.params)
        tuning_json = tuned.to_json()
        tracking.log_params(ws, run_id, {f"tuned.{k}": v for k, v in tuned.best.params.items()})

    metrics: dict[str, float]
    clock = time.perf_counter()
    if cfg.validation.method == "cv":
        fold_scores = []
        for fold_train, fold_test in _folds(
            data.task, data.y, cfg.validation.folds, cfg.seed, cfg.validation.stratify
        ):
            fold_frame = data.frame[fold_train.tolist()]
            fold_pre = fit_preprocessor(cfg.preprocessing, fold_frame, data.features)
            fitted = estimators.fit(
                cfg.model.type,
                params,
                data.task,
                fold_pre.transform(fold_frame),
                data.y[fold_train],
                seed=cfg.seed,
                n_classes=n_classes,
                rounds=cfg.model.rounds,
                checkpoint_every=cfg.model.rounds,
            )
            fold_scores.append(
                _scores(
                    cfg.model.type,
                    data.task,
                    fitted.model,
                    fold_pre.transform(data.frame[fold_test.tolist()]),
                    data.y[fold_test],
                    metrics_wanted,
                )
            )
        metrics = {m: float(np.mean([s[m] for s in fold_scores])) for m in metrics_wanted}
        durations["cross_validation"] = time.perf_counter() - clock
        clock = time.perf_counter()

    outcome = estimators.fit(
        cfg.model.type,
        params,
        data.task,
        X_train,
        y_train,
        seed=cfg.seed,
        n_classes=n_classes,
        rounds=cfg.model.rounds,
        checkpoint_every=cfg.model.checkpoint_every,
        resume=fit_state,
        on_checkpoint=lambda state: saver.update(fit=state),
        should_stop=stop,
        progress=lambda done, total: report("rounds", done, total),
    )
    durations["fit"] = time.perf_counter() - clock
    if not outcome.finished:
        saver.fit_state = outcome.state
        saver.save()
        tracking.finish_run(ws, run_id, "interrupted", result={"stage": "fit"})
        raise Interrupted(
            f"run {run_id} stopped ({stop.signal}) after {outcome.state.rounds_done} of "
            f"{cfg.model.rounds} rounds",
            hint=f"continue it with: aidlc train --resume {run_id}",
        )

    clock = time.perf_counter()
    if cfg.validation.method == "holdout":
        test_frame = data.frame[test_rows.tolist()]
        X_eval, y_eval = preprocessor.transform(test_frame), data.y[test_rows]
        metrics = _scores(cfg.model.type, data.task, outcome.model, X_eval, y_eval, metrics_wanted)
    else:
        X_eval = X_train
    tracking.log_metrics(ws, run_id, metrics)
    production = (
        production_metrics(cfg.register.model) if production_metrics and cfg.register else None
    )
    gates = [g.evaluate(metrics, production) for g in cfg.gates]
    gates_passed = all(g.passed for g in gates)
    durations["evaluate"] = time.perf_counter() - clock

    model_ref: str | None = None
    model_digest: str | None = None
    if register is not None and cfg.register is not None:
        clock = time.perf_counter()
        predictions = estimators.predict(cfg.model.type, outcome.model, X_eval)
        shown = (
            [str(data.classes[int(i)]) for i in predictions]
            if data.classes
            else predictions.astype(float).tolist()
        )
        baseline = {
            "features": json.loads(objects.get_ref(ws, version.profile_object)),
            "predictions": profile_frame(pl.DataFrame({"prediction": shown})).to_json(),
        }
        principal = ws.principal.name if ws.principal else "unknown"
        model_ref, model_digest = register(
            cfg.register.model,
            outcome.model,
            preprocessor,
            {
                "kind": cfg.model.type,
                "task": data.task,
                "target": data.target,
                "features": preprocessor.input_features,
                "classes": data.classes,
                "metrics": metrics,
                "gates": [g.to_json() for g in gates],
                "gates_passed": gates_passed,
                "datasets": tracking.get_run(ws, run_id).datasets,  # as the run recorded them
                "trained_by": principal,
                "run_id": run_id,
                "description": cfg.register.description,
                "tags": dict(cfg.register.tags),
                "intended_use": cfg.card.intended_use,
                "limitations": cfg.card.limitations,
                "owner": cfg.card.owner,
                "baseline": baseline,
            },
        )
        durations["register"] = time.perf_counter() - clock

    rows = {"train": len(train_rows), "test": len(test_rows), "dropped": data.dropped}
    result = {
        "task": data.task,
        "metrics": metrics,
        "gates": [g.to_json() for g in gates],
        "gates_passed": gates_passed,
        "durations": durations,
        "rows": {
            "train": len(train_rows),
            "test": len(test_rows),
            "dropped": data.dropped,
        },
        "tuning": tuning_json,
        "model_digest": model_digest,
        "model_version": model_ref,
        "params": params,
    }
    tracking.finish_run(ws, run_id, "finished", result=result)
    return TrainOutcome(
        run_id=run_id,
        name=_run_name(cfg),
        status="finished",
        task=data.task,
        metrics=metrics,
        gates=[g.to_json() for g in gates],
        gates_passed=gates_passed,
        model_version=model_ref,
        model_digest=model_digest,
        durations=durations,
        tuning=tuning_json,
        resumed=checkpoint is not None,
        dataset=version.ref,
        rows=rows,
    )
