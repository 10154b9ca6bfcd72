"""The training runner: validated data only, runs recorded, interruption and resume, engines."""

from __future__ import annotations

import pytest

from aidlc.errors import ConfigError, Interrupted, NotFound, ValidationFailed
from aidlc.train import runner
from aidlc.train.tracking import get_run, list_runs
from tests.registry.helpers import config, ingest_demo, train

TUNING = """\
tuning:
  trials: 6
  parallelism: 2
  objective: roc_auc
  folds: 2
  space:
    max_depth: {type: int, low: 2, high: 5}
    learning_rate: {type: float, low: 0.05, high: 0.3, log: true}
"""


@pytest.fixture
def data_env(local_env, tmp_path):
    ingest_demo(local_env, tmp_path / "inbox")
    return local_env


class StopAt(runner.StopFlag):
    """A stop request that arrives when a stage reaches `at` (as SIGTERM would, mid-run)."""

    def __init__(self, stage: str, at: int) -> None:
        super().__init__()
        self.stage, self.at = stage, at

    def progress(self, stage: str, done: int, total: int) -> None:
        if stage == self.stage and done >= self.at:
            self.set("SIGTERM")


def _interrupted(ws, text: str, stage: str, at: int) -> str:
    stop = StopAt(stage, at)
    with pytest.raises(Interrupted, match="--resume") as caught:
        train(ws, text, stop=stop, progress=stop.progress)
    return caught.value.message.split()[1]


def _resume(ws, run_id: str):
    from aidlc.registry import versions

    return runner.resume(
        ws,
        run_id,
        register=versions.registrar(ws),
        production_metrics=lambda name: versions.production_metrics(ws, name),
    )


def test_a_run_stopped_mid_boosting_resumes_to_the_same_model(data_env):
    text = config(rounds=60, every=10)
    with data_env.open("trainer") as ws:
        run_id = _interrupted(ws, text, "rounds", 20)
        info = get_run(ws, run_id)
        assert info.status == "interrupted" and info.result["stage"] == "fit"
        resumed = _resume(ws, run_id)
        straight = train(ws, text)
    assert resumed.resumed and resumed.run_id == run_id
    assert resumed.model_digest == straight.model_digest
    assert resumed.metrics == straight.metrics


def test_a_run_stopped_during_tuning_keeps_finished_trials_and_resumes_identically(data_env):
    text = config(rounds=20, every=10, extra=TUNING)
    with data_env.open("trainer") as ws:
        run_id = _interrupted(ws, text, "tuning", 2)
        assert get_run(ws, run_id).result["stage"] == "tuning"
        resumed = _resume(ws, run_id)
        straight = train(ws, text)
    assert [t["params"] for t in resumed.tuning["trials"]] == [
        t["params"] for t in straight.tuning["trials"]
    ]
    assert resumed.model_digest == straight.model_digest


def test_only_an_interrupted_run_resumes(data_env):
    from aidlc.errors import Conflict

    with data_env.open("trainer") as ws:
        done = train(ws, config())
        with pytest.raises(Conflict, match="finished"):
            _resume(ws, done.run_id)


def test_training_reads_only_validated_data(local_env, tmp_path):
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest
    from aidlc.demo import breast_cancer

    _, bad = breast_cancer.write_files(tmp_path)
    contract = parse_contract(breast_cancer.contract(breast_cancer.frame()), source="demo")
    with local_env.open("steward") as steward:
        assert ingest(steward, bad, "breast-cancer", contract=contract).outcome == "rejected"
    with local_env.open("trainer") as ws:
        with pytest.raises(NotFound, match="no validated version"):
            train(ws, config())
        failed = list_runs(ws, status="failed")
    assert failed and failed[0].result["error"] == "NotFound"


def test_a_bad_config_starts_no_run(data_env):
    with data_env.open("trainer") as ws:
        with pytest.raises(ConfigError):
            train(ws, config().replace("type: xgboost", "type: sklearn.NotAnEstimator"))
        with pytest.raises((ConfigError, ValidationFailed)):
            train(ws, config().replace("target: diagnosis", "target: nope"))
        names = [r.status for r in list_runs(ws)]
    assert "finished" not in names


def test_sklearn_with_cross_validation_and_a_regressor(data_env):
    cv = (
        config()
        .replace(
            "validation: {method: holdout, test_size: 0.25}", "validation: {method: cv, folds: 3}"
        )
        .replace("type: xgboost", "type: sklearn.RandomForestClassifier")
        .replace(
            "params: {max_depth: 3, learning_rate: 0.2, subsample: 0.8}",
            "params: {n_estimators: 30, max_depth: 4}",
        )
    )
    regression = """\
format: 1
dataset: breast-cancer
target: mean_area
exclude: [patient_id, diagnosis, mean_radius, mean_perimeter, worst_area, worst_radius, worst_perimeter]
model: {type: sklearn.Ridge, params: {alpha: 1.0}}
preprocessing:
  - impute: {columns: numeric, strategy: mean}
  - scale: {columns: numeric, method: standard}
metrics: [r2, rmse]
gates: [r2 >= 0.5]
register: {model: area}
"""
    with data_env.open("trainer") as ws:
        forest = train(ws, cv)
        ridge = train(ws, regression)
    assert forest.rows["test"] == 0 and forest.metrics["roc_auc"] > 0.9
    assert ridge.task == "regression" and ridge.metrics["r2"] > 0.5 and ridge.gates_passed
    assert ridge.model_version == "area@1"


def test_lightgbm_trains_and_registers(data_env):
    text = (
        config()
        .replace("type: xgboost", "type: lightgbm")
        .replace(
            "params: {max_depth: 3, learning_rate: 0.2, subsample: 0.8}",
            "params: {num_leaves: 8, learning_rate: 0.2, bagging_fraction: 0.8, bagging_freq: 1}",
        )
    )
    with data_env.open("trainer") as ws:
        outcome = train(ws, text)
    assert outcome.model_version == "bc@1" and outcome.metrics["roc_auc"] > 0.9


@pytest.mark.slow
def test_tuning_on_a_real_ray_cluster_matches_local(data_env):
    text = config(rounds=20, every=10, extra=TUNING)
    with data_env.open("trainer") as ws:
        local = train(ws, text)
        on_ray = train(ws, text, engine="ray")
    assert on_ray.tuning["trials"] and [t["params"] for t in on_ray.tuning["trials"]] == [
        t["params"] for t in local.tuning["trials"]
    ]
    assert on_ray.model_digest == local.model_digest
