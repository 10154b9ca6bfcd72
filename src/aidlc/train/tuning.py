"""Hyperparameter tuning: Optuna's TPE sampler asked in batches, trials run in this process or as
Ray tasks, deterministic for a seed and resumable from the finished trials of a checkpoint.

Each batch is asked from a fresh study holding exactly the finished trials, with a fresh sampler
seeded from the seed and the batch's position, so the sampler's state is a pure function of
(seed, position, history): a resumed run and an uninterrupted one ask the same parameters, and so
do the local and Ray engines when the objective is deterministic.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import TrialState

from aidlc.core.compute import ray_session
from aidlc.errors import ConfigError, InvalidInput, UsageError

ENGINES = ("local", "ray")
DIRECTIONS = ("maximize", "minimize")
STATES = ("complete", "failed")
MAX_TRIALS = 10_000
MAX_PARALLELISM = 1024
NON_FINITE = "non-finite"  # the error of a trial whose objective returned NaN or +-inf
_MAX_PARAMS = 100
_MAX_CHOICES = 1000
_MAX_TEXT = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}\Z")
_ERROR = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z")
_KEYS = {"type", "low", "high", "log", "step", "choices"}
_TRIAL_KEYS = {"number", "params", "value", "state", "seconds", "error"}
_POLL_SECONDS = 0.2  # how often a Ray batch checks should_stop while its tasks run

Objective = Callable[[dict[str, Any], Any], float]
Evaluate = Callable[[list[dict[str, Any]], Callable[[], bool]], "list[_Outcome] | None"]
_Outcome = tuple[float, float, str | None]  # value, seconds, error type name


@dataclass(frozen=True)
class Trial:
    """One finished trial: its parameters and objective value, or `nan` and state "failed" when
    the objective raised (`error` is then the exception's type name, never its message) or
    returned NaN or +-inf (`error` is "non-finite")."""

    number: int
    params: dict[str, Any]
    value: float
    state: str
    seconds: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Strict JSON: a failed trial's value is null.

        >>> Trial(0, {"depth": 3}, 0.5, "complete", 1.25).to_json()["value"]
        0.5
        """
        return {
            "number": self.number,
            "params": dict(self.params),
            "value": self.value if self.state == "complete" else None,
            "state": self.state,
            "seconds": self.seconds,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Trial:
        """Read a trial written by `to_json`; anything else raises InvalidInput.

        >>> t = Trial(1, {"lr": 0.1}, math.nan, "failed", 0.5, "ValueError")
        >>> Trial.from_json(t.to_json()).error
        'ValueError'
        """
        if not isinstance(obj, Mapping) or not _TRIAL_KEYS - {"error"} <= set(obj):
            raise _bad_trial("needs number, params, value, state and seconds")
        extra = sorted(str(k)[:40] for k in obj if k not in _TRIAL_KEYS)
        if extra:
            raise _bad_trial(f"unknown field {extra[0]!r}")
        number, params, value = obj["number"], obj["params"], obj["value"]
        state, seconds, error = obj["state"], obj["seconds"], obj.get("error")
        if not _is_int(number) or number < 0:
            raise _bad_trial("number must be a non-negative integer")
        if not isinstance(params, Mapping) or len(params) > _MAX_PARAMS:
            raise _bad_trial(f"params must be an object of at most {_MAX_PARAMS} parameters")
        for name, param in params.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise _bad_trial("a parameter name is not a valid name")
            if not _is_param_value(param):
                raise _bad_trial(f"parameter {name!r} is not a number, string, boolean or null")
        if state not in STATES:
            raise _bad_trial(f"state must be one of {', '.join(STATES)}")
        if state == "complete":
            if not _is_finite(value) or error is not None:
                raise _bad_trial("a complete trial needs a finite value and no error")
            value = float(value)
        else:
            if not (value is None or (isinstance(value, float) and math.isnan(value))):
                raise _bad_trial("a failed trial's value must be null")
            if not isinstance(error, str) or not _ERROR.match(error):
                raise _bad_trial("a failed trial needs an error type name")
            value = math.nan
        if not _is_finite(seconds) or seconds < 0:
            raise _bad_trial("seconds must be a non-negative number")
        return cls(int(number), dict(params), value, state, float(seconds), error)


@dataclass(frozen=True)
class TuningResult:
    """The trials of a tuning run, the best complete one, and whether it ran to the end."""

    trials: list[Trial]
    best: Trial | None
    complete: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": [t.to_json() for t in self.trials],
            "best": self.best.to_json() if self.best is not None else None,
            "complete": self.complete,
        }


def distributions(space: Mapping[str, Mapping[str, Any]]) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a tuning space, in the space's order; a bad spec raises
    ConfigError saying which parameter and what to change.

    A parameter is `{"type": "int" | "float", "low", "high", "log"?, "step"?}` or
    `{"type": "categorical", "choices": [...]}`; keys that do not apply may be null.

    >>> distributions({"depth": {"type": "int", "low": 2, "high": 8}})
    {'depth': IntDistribution(high=8, log=False, low=2, step=1)}
    >>> distributions({"depth": {"type": "int", "low": 8, "high": 2}})
    Traceback (most recent call last):
    aidlc.errors.ConfigError: tuning parameter 'depth': low must not exceed high
    """
    if not isinstance(space, Mapping) or not space:
        raise ConfigError("the tuning space must map parameter names to their ranges")
    if len(space) > _MAX_PARAMS:
        raise ConfigError(f"the tuning space has more than {_MAX_PARAMS} parameters")
    out: dict[str, BaseDistribution] = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"tuning parameter name {str(name)[:64]!r} is not valid",
                hint="use letters, digits, '_' and '.', starting with a letter or '_'",
            )
        out[name] = _distribution(name, spec)
    return out


def tune(
    space: Mapping[str, Mapping[str, Any]],
    objective: Objective,
    payload: Any,
    *,
    trials: int,
    parallelism: int = 1,
    seed: int = 0,
    direction: str = "maximize",
    engine: str = "local",
    ray_address: str | None = None,
    finished: Sequence[Trial] = (),
    on_batch: Callable[[list[Trial]], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
) -> TuningResult:
    """Run `trials` trials of `objective(params, payload)`, `parallelism` at a time, after the
    `finished` trials of a checkpoint, and return them all with the best complete one.

    Batches start at multiples of `parallelism`. After each batch `on_batch` receives every
    finished trial (checkpoint them) and `progress` gets (finished, trials); when `should_stop()`
    turns true, the batch in flight is abandoned and the result is incomplete: pass its trials
    back as `finished` to carry on exactly where an uninterrupted run would have been.
    `engine="ray"` runs each trial as a Ray task on the cluster already initialised in this
    process, else on the one at `ray_address` or `$RAY_ADDRESS`, else on a local one started for
    this call; the objective must then be a picklable top-level function (or a partial of one),
    and the payload is put in the object store once.

    >>> def score(params, payload):
    ...     return -((params["x"] - payload) ** 2)
    >>> result = tune({"x": {"type": "float", "low": -4.0, "high": 4.0}}, score, 1.0, trials=12)
    >>> len(result.trials), result.complete, abs(result.best.params["x"] - 1.0) < 1.5
    (12, True, True)
    """
    dists = distributions(space)
    _check_arguments(trials, parallelism, seed, direction, engine)
    done = _check_finished(finished, dists, trials)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings(), ExitStack() as stack:
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if progress is not None:
                progress(len(done), trials)
            evaluate: Evaluate | None = None
            while len(done) < trials and not should_stop():
                # Ray starts only when there is work: a finished checkpoint costs nothing.
                evaluate = evaluate or stack.enter_context(
                    _evaluator(engine, ray_address, objective, payload)
                )
                size = min(parallelism - len(done) % parallelism, trials - len(done))
                asked = _ask(dists, done, size, seed, direction, trials)
                outcomes = evaluate(asked, should_stop)
                if outcomes is None:
                    break
                for params, (value, seconds, error) in zip(asked, outcomes, strict=True):
                    state = "complete" if error is None else "failed"
                    done.append(Trial(len(done), params, value, state, seconds, error))
                if on_batch is not None:
                    on_batch(list(done))
                if progress is not None:
                    progress(len(done), trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return TuningResult(done, best_trial(done, direction), complete=len(done) == trials)


def best_trial(trials: Sequence[Trial], direction: str = "maximize") -> Trial | None:
    """The best complete trial for the direction, the lowest-numbered one on a tie; None if no
    trial completed.

    >>> ts = [Trial(0, {}, 1.0, "complete", 0.0), Trial(1, {}, 3.0, "complete", 0.0)]
    >>> best_trial(ts, "minimize").number, best_trial(ts, "maximize").number
    (0, 1)
    """
    sign = -1.0 if direction == "maximize" else 1.0
    complete = [t for t in trials if t.state == "complete"]
    return min(complete, key=lambda t: (sign * t.value, t.number)) if complete else None


# -- the space and the arguments ----------------------------------------------------------------


def _distribution(name: str, spec: Any) -> BaseDistribution:
    def bad(problem: str) -> ConfigError:
        return ConfigError(f"tuning parameter {name!r}: {problem}")

    if not isinstance(spec, Mapping):
        raise bad("must be a mapping with a type")
    unknown = sorted(str(k)[:40] for k in spec if k not in _KEYS)
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; use {', '.join(sorted(_KEYS))}")
    kind = spec.get("type")
    if kind == "categorical":
        _unused(spec, ("low", "high", "step"), bad)
        if spec.get("log") not in (None, False):
            raise bad("log does not apply to a categorical parameter")
        return CategoricalDistribution(_choices(spec.get("choices"), bad))
    if kind not in ("int", "float"):
        raise bad("type must be int, float or categorical")
    _unused(spec, ("choices",), bad)
    log = spec.get("log")
    if log is None:
        log = False
    if not isinstance(log, bool):
        raise bad("log must be true or false")
    if kind == "int":
        low, high = _integer(spec.get("low"), "low", bad), _integer(spec.get("high"), "high", bad)
        step = 1 if spec.get("step") is None else _integer(spec.get("step"), "step", bad)
        if low > high:
            raise bad("low must not exceed high")
        if step < 1:
            raise bad("step must be at least 1")
        if log and (low < 1 or step != 1):
            raise bad("a log-scaled int needs low >= 1 and no step")
        if (high - low) % step:
            raise bad("high - low must be a multiple of step")
        return IntDistribution(low, high, log=log, step=step)
    flow, fhigh = _real(spec.get("low"), "low", bad), _real(spec.get("high"), "high", bad)
    fstep = None if spec.get("step") is None else _real(spec.get("step"), "step", bad)
    if flow > fhigh:
        raise bad("low must not exceed high")
    if log and (flow <= 0 or fstep is not None):
        raise bad("a log-scaled float needs low > 0 and no step")
    if fstep is not None:
        if fstep <= 0:
            raise bad("step must be positive")
        if not _on_grid(fhigh, flow, fstep):
            raise bad("high - low must be a multiple of step")
    return FloatDistribution(flow, fhigh, log=log, step=fstep)


def _unused(spec: Mapping[str, Any], keys: Sequence[str], bad: Callable[[str], Exception]) -> None:
    for key in keys:
        if spec.get(key) is not None:
            raise bad(f"{key} does not apply to a {spec.get('type')} parameter")


def _integer(value: Any, key: str, bad: Callable[[str], Exception]) -> int:
    # Config models may dump int bounds as floats (2.0): accept whole numbers.
    if _is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise bad(f"{key} must be a whole number")


def _real(value: Any, key: str, bad: Callable[[str], Exception]) -> float:
    if not _is_finite(value):
        raise bad(f"{key} must be a finite number")
    return float(value)


def _choices(choices: Any, bad: Callable[[str], Exception]) -> tuple[Any, ...]:
    if not isinstance(choices, list | tuple) or not choices or len(choices) > _MAX_CHOICES:
        raise bad(f"choices must be a list of 1 to {_MAX_CHOICES} values")
    seen: list[Any] = []
    for choice in choices:
        if not _is_param_value(choice):
            raise bad("choices must be numbers, strings, booleans or null")
        # Optuna finds a choice by ==, so 1, 1.0 and True would be one choice.
        if any(choice == other for other in seen):
            raise bad(f"choice {repr(choice)[:40]} is repeated (1, 1.0 and true count as equal)")
        seen.append(choice)
    return tuple(seen)


def _check_arguments(trials: int, parallelism: int, seed: int, direction: str, engine: str) -> None:
    if not _is_int(trials) or not 1 <= trials <= MAX_TRIALS:
        raise UsageError(f"trials must be a whole number from 1 to {MAX_TRIALS}")
    if not _is_int(parallelism) or not 1 <= parallelism <= MAX_PARALLELISM:
        raise UsageError(f"parallelism must be a whole number from 1 to {MAX_PARALLELISM}")
    if not _is_int(seed):
        raise UsageError("seed must be a whole number")
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {str(engine)[:20]!r}; use one of {', '.join(ENGINES)}")


def _check_finished(
    finished: Sequence[Trial], dists: Mapping[str, BaseDistribution], trials: int
) -> list[Trial]:
    if len(finished) > trials:
        raise InvalidInput(
            f"the checkpoint holds {len(finished)} trials but the run asks for {trials}",
            hint="resume with the configuration the run started with",
        )
    out = []
    for number, trial in enumerate(finished):
        if not isinstance(trial, Trial):
            raise InvalidInput("checkpoint trials must be Trial records")
        trial = Trial.from_json(trial.to_json())  # the same strict checks as a loaded file
        if trial.number != number:
            raise InvalidInput("checkpoint trials must be numbered 0, 1, 2, ... in order")
        if set(trial.params) != set(dists) or not all(
            _inside(dists[name], value) for name, value in trial.params.items()
        ):
            raise InvalidInput(
                "checkpoint does not match the tuning space",
                hint="resume with the configuration the run started with",
            )
        out.append(trial)
    return out


def _inside(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, IntDistribution):
        return (
            _is_int(value)
            and dist.low <= value <= dist.high
            and (value - dist.low) % dist.step == 0
        )
    if isinstance(dist, FloatDistribution):
        return (
            _is_finite(value)
            and dist.low <= value <= dist.high
            and (dist.step is None or _on_grid(value, dist.low, dist.step))
        )
    if isinstance(dist, CategoricalDistribution):
        # JSON keeps 1 and 1.0 and true apart, and so must a resumed run.
        return any(type(c) is type(value) and c == value for c in dist.choices)
    return False


def _on_grid(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return abs(steps - round(steps)) <= 1e-8 * max(1.0, abs(steps))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float's range
        return False


def _is_param_value(value: Any) -> bool:
    if value is None or isinstance(value, str | bool):
        return not isinstance(value, str) or len(value) <= _MAX_TEXT
    return _is_finite(value)


def _bad_trial(problem: str) -> InvalidInput:
    return InvalidInput(f"not a tuning trial record: {problem}")


# -- asking ---------------------------------------------------------------------------------------


def _ask(
    dists: Mapping[str, BaseDistribution],
    history: Sequence[Trial],
    size: int,
    seed: int,
    direction: str,
    trials: int,
) -> list[dict[str, Any]]:
    """The parameters of the next `size` trials: a pure function of its arguments."""
    sampler = optuna.samplers.TPESampler(
        seed=_batch_seed(seed, len(history)),
        # Random start-up trials: a quarter of the budget, between 2 and Optuna's usual 10.
        n_startup_trials=min(10, max(2, trials // 4)),
        multivariate=True,
        constant_liar=True,  # trials asked earlier in the batch count as bad, so they spread out
    )
    study = optuna.create_study(
        direction=StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE,
        sampler=sampler,
    )
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=t.params,
                distributions=dict(dists),
                value=t.value if t.state == "complete" else None,
                state=TrialState.COMPLETE if t.state == "complete" else TrialState.FAIL,
            )
            for t in history
        ]
    )
    return [dict(study.ask(fixed_distributions=dict(dists)).params) for _ in range(size)]


def _batch_seed(seed: int, start: int) -> int:
    digest = hashlib.sha256(f"aidlc.tuning:{seed}:{start}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


# -- evaluating -----------------------------------------------------------------------------------


def _evaluate(objective: Objective, params: dict[str, Any], payload: Any) -> _Outcome:
    """Run one trial (in process or as a Ray task): its value, seconds and error type name."""
    clock = time.perf_counter()
    try:
        value = float(objective(params, payload))
    except Exception as exc:  # a trial's failure is its result; only the type is kept (no data)
        return math.nan, time.perf_counter() - clock, type(exc).__name__
    seconds = time.perf_counter() - clock
    if not math.isfinite(value):
        return math.nan, seconds, NON_FINITE
    return value, seconds, None


@contextmanager
def _evaluator(
    engine: str, address: str | None, objective: Objective, payload: Any
) -> Iterator[Evaluate]:
    if engine == "local":

        def local(asked: list[dict[str, Any]], stop: Callable[[], bool]) -> list[_Outcome] | None:
            outcomes = []
            for k, params in enumerate(asked):
                if k and stop():
                    return None
                outcomes.append(_evaluate(objective, params, payload))
            return outcomes

        yield local
        return
    with ray_session(address):
        yield _ray_evaluator(objective, payload)


def _ray_evaluator(objective: Objective, payload: Any) -> Evaluate:
    import ray

    try:
        refs = ray.put(objective), ray.put(payload)
    except TypeError:
        raise UsageError(
            "the ray engine needs a picklable objective and payload",
            hint="use a top-level function (or a functools.partial of one) and plain data",
        ) from None
    task = ray.remote(num_cpus=1)(_evaluate)

    def run(asked: list[dict[str, Any]], stop: Callable[[], bool]) -> list[_Outcome] | None:
        pending = [task.remote(refs[0], params, refs[1]) for params in asked]
        waiting = list(pending)
        while waiting:
            _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=_POLL_SECONDS)
            if waiting and stop():
                for ref in waiting:
                    ray.cancel(ref)
                return None
        outcomes: list[_Outcome] = []
        for ref in pending:
            try:
                outcomes.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                # The worker died (e.g. out of memory) after Ray's retries: the trial failed.
                outcomes.append((math.nan, 0.0, type(exc).__name__))
        return outcomes

    return run
