"""Tuning: deterministic for a seed, resumable to the same trials, the same on Ray, strict about
its space, its checkpoints and its trial records."""

from __future__ import annotations

import json
import logging
import math
import warnings
from functools import partial
from typing import Any

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aidlc.errors import ConfigError, InvalidInput, UsageError
from aidlc.train.tuning import (
    NON_FINITE,
    Trial,
    TuningResult,
    best_trial,
    distributions,
    tune,
)

SPACE: dict[str, dict[str, Any]] = {
    "x": {"type": "float", "low": -4.0, "high": 4.0},
    "depth": {"type": "int", "low": 1, "high": 64, "log": True},
    "rate": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.05},
    "kind": {"type": "categorical", "choices": ["a", "b", None, 3, True]},
}
TARGET = np.array([1.5, 8.0])


def quadratic(params: dict[str, Any], payload: np.ndarray) -> float:
    """Deterministic and peaked at x = payload[0], depth = payload[1], kind = "b"."""
    x, depth = payload
    return float(
        -((params["x"] - x) ** 2)
        - ((params["depth"] - depth) / 8) ** 2
        + params["rate"]
        + (params["kind"] == "b")
    )


def flaky(params: dict[str, Any], payload: np.ndarray) -> float:
    """Fails for some parameters: raises for x > 2, returns NaN for kind None, inf for kind 3."""
    if params["x"] > 2:
        raise ValueError(f"secret data {payload.tolist()}")
    if params["kind"] is None:
        return math.nan
    if params["kind"] == 3 and not isinstance(params["kind"], bool):
        return math.inf
    return quadratic(params, payload)


def never_called(params: dict[str, Any], payload: Any) -> float:
    raise AssertionError("the objective must not run")


def record(trials: list[Trial]) -> list[tuple[Any, ...]]:
    """What must match between runs: everything but the seconds (NaN made comparable)."""
    return [
        (t.number, t.params, None if math.isnan(t.value) else t.value, t.state, t.error)
        for t in trials
    ]


class StopAfter:
    """should_stop that turns true once `on_batch` has seen `batches` batches."""

    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.saved: list[str] = []

    def on_batch(self, trials: list[Trial]) -> None:
        # As the runner does: the checkpoint is JSON on disk, so round-trip it.
        self.saved.append(json.dumps([t.to_json() for t in trials], allow_nan=False))

    def __call__(self) -> bool:
        return len(self.saved) >= self.batches

    def resumed(self) -> list[Trial]:
        return [Trial.from_json(t) for t in json.loads(self.saved[-1])]


# -- determinism and resumption -----------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 3])
def test_the_same_seed_gives_identical_trials_and_another_seed_other_params(parallelism):
    first = tune(SPACE, quadratic, TARGET, trials=14, parallelism=parallelism, seed=7)
    again = tune(SPACE, quadratic, TARGET, trials=14, parallelism=parallelism, seed=7)
    other = tune(SPACE, quadratic, TARGET, trials=14, parallelism=parallelism, seed=8)
    assert record(first.trials) == record(again.trials)
    assert record([first.best]) == record([again.best])
    assert [t.params for t in first.trials] != [t.params for t in other.trials]
    assert [t.number for t in first.trials] == list(range(14))
    assert first.complete and all(t.state == "complete" for t in first.trials)
    assert all(quadratic(t.params, TARGET) == t.value for t in first.trials)


def test_trials_explore_the_space_and_stay_inside_it():
    result = tune(SPACE, quadratic, TARGET, trials=40, parallelism=2, seed=3)
    for t in result.trials:
        assert -4.0 <= t.params["x"] <= 4.0 and type(t.params["x"]) is float
        assert 1 <= t.params["depth"] <= 64 and type(t.params["depth"]) is int
        steps = t.params["rate"] / 0.05
        assert 0 <= steps <= 20 and math.isclose(steps, round(steps))
        assert t.params["kind"] in ["a", "b", None, 3, True]
    # TPE homes in: the best of 40 beats the best of the first 10 (random start-up) trials.
    assert result.best is not None
    assert result.best.value > max(t.value for t in result.trials[:10])
    assert result.best.params["kind"] == "b"


@pytest.mark.parametrize("parallelism", [1, 3])
def test_a_run_interrupted_after_two_batches_resumes_to_the_uninterrupted_run(parallelism):
    whole = tune(SPACE, quadratic, TARGET, trials=11, parallelism=parallelism, seed=5)
    stop = StopAfter(2)
    seen: list[tuple[int, int]] = []
    cut = tune(
        SPACE,
        quadratic,
        TARGET,
        trials=11,
        parallelism=parallelism,
        seed=5,
        on_batch=stop.on_batch,
        should_stop=stop,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert not cut.complete
    assert len(cut.trials) == 2 * parallelism
    assert seen == [(0, 11), (parallelism, 11), (2 * parallelism, 11)]
    assert record(cut.trials) == record(whole.trials[: 2 * parallelism])

    finished = stop.resumed()
    assert record(finished) == record(cut.trials)
    rest: list[tuple[int, int]] = []
    resumed = tune(
        SPACE,
        quadratic,
        TARGET,
        trials=11,
        parallelism=parallelism,
        seed=5,
        finished=finished,
        progress=lambda done, total: rest.append((done, total)),
    )
    assert resumed.complete
    assert record(resumed.trials) == record(whole.trials)
    assert record([resumed.best]) == record([whole.best])
    assert rest[0] == (2 * parallelism, 11) and rest[-1] == (11, 11)


def test_a_stop_in_the_middle_of_a_batch_abandons_it_and_resumes_to_the_same_trials():
    whole = tune(SPACE, quadratic, TARGET, trials=9, parallelism=3, seed=2)
    calls: list[dict[str, Any]] = []

    def counting(params: dict[str, Any], payload: np.ndarray) -> float:
        calls.append(params)
        return quadratic(params, payload)

    # Stop is requested while the second batch runs, after its first trial.
    cut = tune(
        SPACE, counting, TARGET, trials=9, parallelism=3, seed=2, should_stop=lambda: len(calls) > 3
    )
    assert len(calls) == 4 and not cut.complete
    assert record(cut.trials) == record(whole.trials[:3])
    resumed = tune(SPACE, quadratic, TARGET, trials=9, parallelism=3, seed=2, finished=cut.trials)
    assert record(resumed.trials) == record(whole.trials)


def test_a_checkpoint_with_every_trial_finished_runs_nothing():
    whole = tune(SPACE, quadratic, TARGET, trials=4, seed=1)
    batches: list[int] = []
    again = tune(
        SPACE,
        never_called,
        TARGET,
        trials=4,
        seed=1,
        finished=whole.trials,
        on_batch=lambda t: batches.append(len(t)),
    )
    assert again.complete and batches == []
    assert record(again.trials) == record(whole.trials)
    assert again.best == whole.best


def test_a_stop_requested_before_the_start_runs_no_trial():
    result = tune(SPACE, never_called, TARGET, trials=4, should_stop=lambda: True)
    assert result == TuningResult([], None, complete=False)


def cv_score(params: dict[str, Any], payload: dict[str, Any]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=params["C"], max_iter=params["max_iter"])
    )
    return float(cross_val_score(model, payload["X"], payload["y"], cv=3, scoring="roc_auc").mean())


@pytest.mark.slow  # about 3 s alone, over 5 s on a busy machine
def test_cross_validated_scores_on_real_data_resume_to_the_same_trials():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    payload = {"X": X, "y": y}
    space = {
        "C": {"type": "float", "low": 1e-4, "high": 10.0, "log": True},
        "max_iter": {"type": "int", "low": 100, "high": 300, "step": 100},
    }
    whole = tune(space, cv_score, payload, trials=6, parallelism=2, seed=11)
    stop = StopAfter(2)
    tune(space, cv_score, payload, trials=6, parallelism=2, seed=11, **_hooks(stop))
    resumed = tune(
        space, cv_score, payload, trials=6, parallelism=2, seed=11, finished=stop.resumed()
    )
    assert record(resumed.trials) == record(whole.trials)
    assert whole.best is not None and resumed.best is not None
    assert resumed.best.params == whole.best.params
    assert 0.9 < whole.best.value <= 1.0
    assert whole.best.value == max(t.value for t in whole.trials)


def _hooks(stop: StopAfter) -> dict[str, Any]:
    return {"on_batch": stop.on_batch, "should_stop": stop}


# -- failures and the best trial -----------------------------------------------------------------


def test_failed_trials_are_recorded_without_their_message_and_never_chosen_as_best():
    result = tune(SPACE, flaky, TARGET, trials=30, parallelism=3, seed=4)
    failed = [t for t in result.trials if t.state == "failed"]
    errors = {t.error for t in failed}
    assert errors == {"ValueError", NON_FINITE}
    assert all(math.isnan(t.value) for t in failed)
    for t in failed:
        expected = "ValueError" if t.params["x"] > 2 else NON_FINITE
        assert t.error == expected
    assert "secret" not in json.dumps(result.to_json())
    complete = [t for t in result.trials if t.state == "complete"]
    assert result.best is not None and result.best.state == "complete"
    assert result.best.value == max(t.value for t in complete)
    # Strict JSON: a failed trial's value is null, never NaN.
    text = json.dumps(result.to_json(), allow_nan=False)
    assert all(t["value"] is None for t in json.loads(text)["trials"] if t["state"] == "failed")


def test_failed_trials_resume_to_the_same_trials():
    whole = tune(SPACE, flaky, TARGET, trials=12, parallelism=2, seed=9)
    assert any(t.state == "failed" for t in whole.trials)
    stop = StopAfter(3)
    tune(SPACE, flaky, TARGET, trials=12, parallelism=2, seed=9, **_hooks(stop))
    resumed = tune(SPACE, flaky, TARGET, trials=12, parallelism=2, seed=9, finished=stop.resumed())
    assert record(resumed.trials) == record(whole.trials)


def always_fails(params: dict[str, Any], payload: Any) -> float:
    raise RuntimeError("boom")


def test_when_every_trial_fails_there_is_no_best():
    result = tune(SPACE, always_fails, None, trials=5, parallelism=2)
    assert result.complete and result.best is None
    assert [t.error for t in result.trials] == ["RuntimeError"] * 5
    assert result.to_json()["best"] is None


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_best_trial_follows_the_direction(direction):
    result = tune(SPACE, flaky, TARGET, trials=16, parallelism=2, direction=direction)
    values = [t.value for t in result.trials if t.state == "complete"]
    assert result.best is not None
    assert result.best.value == (max(values) if direction == "maximize" else min(values))


def test_a_tie_goes_to_the_lowest_numbered_trial():
    def t(number: int, value: float, state: str = "complete") -> Trial:
        return Trial(number, {}, value, state, 0.0, None if state == "complete" else "ValueError")

    trials = [t(0, 2.0), t(1, math.nan, "failed"), t(2, 1.0), t(3, 2.0), t(4, 1.0)]
    assert best_trial(trials, "maximize") == trials[0]
    assert best_trial(trials, "minimize") == trials[2]
    assert best_trial([trials[1]], "maximize") is None
    constant = tune(SPACE, partial(_constant, 0.5), None, trials=6, parallelism=3)
    assert constant.best is not None and constant.best.number == 0


def _constant(value: float, params: dict[str, Any], payload: Any) -> float:
    return value


# -- Optuna stays quiet ------------------------------------------------------------------------------


def test_tuning_is_silent_and_restores_optunas_verbosity(caplog):
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
            warnings.simplefilter("always")
            tune(SPACE, quadratic, TARGET, trials=12, parallelism=3)
        assert [str(w.message) for w in caught] == []
        assert [r for r in caplog.records if r.name.startswith("optuna")] == []
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- the space, the arguments and checkpoints -----------------------------------------------------


def test_distributions_follow_the_space_in_order():
    dists = distributions(
        {
            "b": {"type": "int", "low": 2.0, "high": 10, "step": 2, "log": None, "choices": None},
            "a": {"type": "float", "low": 1e-3, "high": 1, "log": True, "step": None},
            "c": {"type": "categorical", "choices": ["x", 1, 1.5, None], "log": False},
        }
    )
    assert list(dists) == ["b", "a", "c"]
    assert dists["b"] == optuna.distributions.IntDistribution(2, 10, step=2)
    assert dists["a"] == optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    assert dists["c"] == optuna.distributions.CategoricalDistribution(["x", 1, 1.5, None])


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "the tuning space must map parameter names"),
        ([("x", {})], "the tuning space must map parameter names"),
        ({"x y": {"type": "int", "low": 1, "high": 2}}, "name 'x y' is not valid"),
        ({"x": "int"}, "'x': must be a mapping with a type"),
        ({"x": {"type": "normal", "low": 0, "high": 1}}, "type must be int, float or categorical"),
        ({"x": {"low": 0, "high": 1}}, "type must be int, float or categorical"),
        ({"x": {"type": "int", "low": 0, "high": 1, "q": 1}}, "unknown key 'q'"),
        ({"x": {"type": "int", "low": 0.5, "high": 1}}, "low must be a whole number"),
        ({"x": {"type": "int", "low": 0, "high": True}}, "high must be a whole number"),
        ({"x": {"type": "int", "low": 3, "high": 1}}, "low must not exceed high"),
        ({"x": {"type": "int", "low": 0, "high": 9, "step": 0}}, "step must be at least 1"),
        ({"x": {"type": "int", "low": 0, "high": 9, "step": 2}}, "multiple of step"),
        ({"x": {"type": "int", "low": 0, "high": 9, "log": True}}, "log-scaled int needs low >= 1"),
        ({"x": {"type": "int", "low": 1, "high": 9, "log": "yes"}}, "log must be true or false"),
        ({"x": {"type": "float", "low": 0, "high": math.inf}}, "high must be a finite number"),
        ({"x": {"type": "float", "low": "0", "high": 1}}, "low must be a finite number"),
        ({"x": {"type": "float", "low": 0, "high": 1, "log": True}}, "log-scaled float needs"),
        ({"x": {"type": "float", "low": 0, "high": 1, "step": -0.1}}, "step must be positive"),
        ({"x": {"type": "float", "low": 0, "high": 1, "step": 0.3}}, "multiple of step"),
        ({"x": {"type": "float", "low": 0, "high": 1, "choices": [1]}}, "choices does not apply"),
        ({"x": {"type": "categorical", "choices": []}}, "choices must be a list of 1 to"),
        ({"x": {"type": "categorical", "choices": "ab"}}, "choices must be a list of 1 to"),
        ({"x": {"type": "categorical", "choices": [[1]]}}, "numbers, strings, booleans or null"),
        ({"x": {"type": "categorical", "choices": [math.nan]}}, "numbers, strings, booleans"),
        ({"x": {"type": "categorical", "choices": [1, True]}}, "choice True is repeated"),
        ({"x": {"type": "categorical", "choices": ["a"], "low": 0}}, "low does not apply"),
        ({"x": {"type": "categorical", "choices": ["a"], "log": True}}, "log does not apply"),
    ],
)
def test_a_bad_space_is_a_config_error(space, message):
    with pytest.raises(ConfigError) as info:
        tune(space, never_called, None, trials=1)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"trials": 0}, "trials must be a whole number from 1 to"),
        ({"trials": 3, "parallelism": 0}, "parallelism must be a whole number from 1 to"),
        ({"trials": 3, "direction": "up"}, "direction must be one of maximize, minimize"),
        ({"trials": 3, "engine": "spark"}, "unknown engine 'spark'; use one of local, ray"),
        ({"trials": 3, "seed": 1.5}, "seed must be a whole number"),
    ],
)
def test_bad_arguments_are_a_usage_error(arguments, message):
    with pytest.raises(UsageError) as info:
        tune(SPACE, never_called, None, **arguments)
    assert str(info.value).startswith(message)


def _finished() -> list[Trial]:
    return tune(SPACE, quadratic, TARGET, trials=3, seed=1).trials


def _with(trial: Trial, **params: Any) -> Trial:
    return Trial(trial.number, {**trial.params, **params}, trial.value, trial.state, trial.seconds)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: Trial(
            t.number, {k: v for k, v in t.params.items() if k != "x"}, 1.0, "complete", 0
        ),
        lambda t: _with(t, extra=1),
        lambda t: _with(t, x=4.5),
        lambda t: _with(t, depth=0),
        lambda t: _with(t, depth=2.0),
        lambda t: _with(t, rate=0.33),
        lambda t: _with(t, kind="c"),
        lambda t: _with(t, kind=3.0),
        lambda t: _with(t, kind=1),
    ],
    ids=[
        "missing",
        "extra",
        "above",
        "below",
        "float-int",
        "off-step",
        "no-such-choice",
        "float-for-int-choice",
        "int-for-bool-choice",
    ],
)
def test_a_checkpoint_that_does_not_match_the_space_is_invalid_input(change):
    finished = _finished()
    finished[1] = change(finished[1])
    with pytest.raises(InvalidInput, match="checkpoint does not match the tuning space"):
        tune(SPACE, never_called, TARGET, trials=5, seed=1, finished=finished)


def test_a_checkpoint_longer_than_the_run_or_misnumbered_is_invalid_input():
    finished = _finished()
    with pytest.raises(InvalidInput, match="the checkpoint holds 3 trials but the run asks for 2"):
        tune(SPACE, never_called, TARGET, trials=2, finished=finished)
    swapped = [finished[1], finished[0], finished[2]]
    with pytest.raises(InvalidInput, match=r"numbered 0, 1, 2, \.\.\. in order"):
        tune(SPACE, never_called, TARGET, trials=5, finished=swapped)
    with pytest.raises(InvalidInput, match="checkpoint trials must be Trial records"):
        tune(SPACE, never_called, TARGET, trials=5, finished=[finished[0].to_json()])  # type: ignore[list-item]
    broken = Trial(0, finished[0].params, math.inf, "complete", 0.0)
    with pytest.raises(InvalidInput, match="a complete trial needs a finite value"):
        tune(SPACE, never_called, TARGET, trials=5, finished=[broken])


# -- trial records ---------------------------------------------------------------------------------


def test_a_trial_round_trips_through_json_exactly():
    complete = Trial(
        3, {"x": 0.1, "n": 7, "k": None, "b": True, "s": "gini"}, -0.25, "complete", 1.5
    )
    failed = Trial(4, {"x": 0.2}, math.nan, "failed", 0.01, "ValueError")
    assert Trial.from_json(json.loads(json.dumps(complete.to_json()))) == complete
    back = Trial.from_json(json.loads(json.dumps(failed.to_json(), allow_nan=False)))
    assert record([back]) == record([failed]) and back.seconds == 0.01
    old = {k: v for k, v in complete.to_json().items() if k != "error"}
    assert Trial.from_json(old) == complete


GOOD = {"number": 0, "params": {"x": 1}, "value": 0.5, "state": "complete", "seconds": 0.1}


@pytest.mark.parametrize(
    ("junk", "message"),
    [
        (None, "needs number, params, value, state and seconds"),
        ([], "needs number, params, value, state and seconds"),
        ({**GOOD, "extra": 1}, "unknown field 'extra'"),
        ({**GOOD, "number": -1}, "number must be a non-negative integer"),
        ({**GOOD, "number": True}, "number must be a non-negative integer"),
        ({**GOOD, "number": 1.0}, "number must be a non-negative integer"),
        ({**GOOD, "params": [1]}, "params must be an object"),
        ({**GOOD, "params": {"": 1}}, "a parameter name is not a valid name"),
        ({**GOOD, "params": {"x": [1]}}, "parameter 'x' is not a number"),
        ({**GOOD, "params": {"x": 10**400}}, "parameter 'x' is not a number"),
        ({**GOOD, "state": "running"}, "state must be one of complete, failed"),
        ({**GOOD, "value": None}, "a complete trial needs a finite value and no error"),
        ({**GOOD, "value": "0.5"}, "a complete trial needs a finite value and no error"),
        ({**GOOD, "value": math.nan}, "a complete trial needs a finite value and no error"),
        ({**GOOD, "error": "ValueError"}, "a complete trial needs a finite value and no error"),
        ({**GOOD, "state": "failed", "value": 1.0}, "a failed trial's value must be null"),
        ({**GOOD, "state": "failed", "value": None}, "a failed trial needs an error type name"),
        (
            {**GOOD, "state": "failed", "value": None, "error": "bad: secret"},
            "a failed trial needs an error type name",
        ),
        ({**GOOD, "seconds": -1}, "seconds must be a non-negative number"),
        ({**GOOD, "seconds": math.inf}, "seconds must be a non-negative number"),
    ],
)
def test_a_junk_trial_record_is_invalid_input(junk, message):
    with pytest.raises(InvalidInput) as info:
        Trial.from_json(junk)
    assert str(info.value).startswith(f"not a tuning trial record: {message}")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["complete", "failed", "ValueError", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
trial_like = st.fixed_dictionaries(
    {},
    optional={
        k: json_values for k in ("number", "params", "value", "state", "seconds", "error", "x")
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, trial_like))
def test_reading_any_json_either_gives_a_trial_or_invalid_input(obj):
    try:
        trial = Trial.from_json(obj)
    except InvalidInput:
        return
    assert Trial.from_json(trial.to_json()).to_json() == trial.to_json()
    json.dumps(trial.to_json(), allow_nan=False)


# -- Ray -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster(ray_local):
    """The shared local Ray: tune() must use it and leave it running."""
    return ray_local


@pytest.mark.slow
def test_ray_gives_the_same_trials_as_in_process(ray_cluster):
    local = tune(SPACE, flaky, TARGET, trials=10, parallelism=2, seed=6)
    on_ray = tune(SPACE, flaky, TARGET, trials=10, parallelism=2, seed=6, engine="ray")
    assert record(on_ray.trials) == record(local.trials)
    assert {t.error for t in on_ray.trials} - {None} == {"ValueError", NON_FINITE}
    assert record([on_ray.best]) == record([local.best])
    assert ray_cluster.is_initialized()  # the caller's cluster is left running


@pytest.mark.slow
def test_a_run_interrupted_on_ray_resumes_to_the_uninterrupted_local_run(ray_cluster):
    whole = tune(SPACE, quadratic, TARGET, trials=9, parallelism=3, seed=12)
    stop = StopAfter(2)
    cut = tune(
        SPACE, quadratic, TARGET, trials=9, parallelism=3, seed=12, engine="ray", **_hooks(stop)
    )
    assert not cut.complete and len(cut.trials) == 6
    resumed = tune(
        SPACE,
        partial(quadratic),
        TARGET,
        trials=9,
        parallelism=3,
        seed=12,
        engine="ray",
        finished=stop.resumed(),
    )
    assert record(resumed.trials) == record(whole.trials)
    assert record([resumed.best]) == record([whole.best])


@pytest.mark.slow
def test_an_unpicklable_payload_on_ray_is_a_usage_error(ray_cluster):
    import threading

    with pytest.raises(UsageError, match="the ray engine needs a picklable objective and payload"):
        tune(SPACE, quadratic, threading.Lock(), trials=2, engine="ray")
