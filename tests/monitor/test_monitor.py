"""`aidlc monitor run` end to end: real predictions logged by the server's own path, the signed
baseline, drift, quality, performance from feedback, reports, alerts and retraining."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.monitor.helpers import add_principal, send_feedback, serve_rows, shifted
from tests.serve.conftest import Served

DRIFT = {"mean_radius": 1.4, "mean_perimeter": 1.4, "mean_area": 1.8}


@pytest.fixture
def all_rows() -> list[dict[str, Any]]:
    from aidlc.demo import breast_cancer

    return breast_cancer.frame().drop(["patient_id", "diagnosis"]).to_dicts()


def _labels() -> list[str]:
    from aidlc.demo import breast_cancer

    return breast_cancer.frame()["diagnosis"].to_list()


def test_traffic_like_training_is_stable(served: Served, all_rows: list[dict[str, Any]]) -> None:
    from aidlc.monitor import runner

    serve_rows(served, all_rows)
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
    doc = outcome.document
    assert outcome.report.verdict == "ok"
    assert doc["rows"] == len(all_rows) == 569
    assert doc["drift"]["drifted"] == []
    assert len(doc["drift"]["features"]) == 30
    assert doc["quality"]["ood_rate"] < 0.05  # heavy tails of the training data itself
    assert doc["quality"]["schema_violation_rate"] == 0.0
    assert doc["breaches"] == [] and outcome.alerts == []
    # the rows of the training data set: small KS statistics, large p-values everywhere
    assert max(f["statistic"] for f in doc["drift"]["features"]) < 0.1
    assert min(f["p_value"] for f in doc["drift"]["features"]) > 0.05
    assert doc["prediction_drift"]["drifted"] is False


def test_drifted_traffic_is_caught_reported_and_alerted(
    served: Served, all_rows: list[dict[str, Any]]
) -> None:
    from aidlc.core.alerts import list_alerts
    from aidlc.monitor import runner

    serve_rows(served, shifted(all_rows[:300], DRIFT))
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws, model="bc", window="1h")
        alerts = list_alerts(ws)
        html = runner.get_report(ws, outcome.report.id, html=True)
        listed = runner.list_reports(ws, model="bc")
    doc = outcome.document
    assert outcome.report.verdict == "breach"
    assert set(DRIFT) <= set(doc["drift"]["drifted"])
    for name in DRIFT:
        feature = next(f for f in doc["drift"]["features"] if f["name"] == name)
        assert feature["p_value"] < 1e-6 and feature["psi"] > 0.25
    rules = {b["rule"] for b in doc["breaches"]}
    assert "feature-drift" in rules
    assert any(a.source == "monitor" and "drift in" in a.title for a in alerts)
    assert [r.id for r in listed] == [outcome.report.id]
    assert listed[0].summary["drifted"] == doc["drift"]["drifted"]
    assert isinstance(html, str) and html.startswith("<!doctype html>")
    assert html.count("<svg") == len(doc["drift"]["features"]) + 1  # + predictions
    assert "<script" not in html and "http" not in html.split("</style>", 1)[1]


def test_monitor_reads_each_batch_once_and_merges(
    served: Served, all_rows: list[dict[str, Any]]
) -> None:
    """A second run reuses the cached batch summaries, and the merged summaries of several
    batches judge exactly like one batch of the same rows."""
    from aidlc.core.meta import BatchProfileRecord
    from aidlc.monitor import quality, runner

    serve_rows(served, all_rows, batch=50)
    with served.open("monitor") as ws:
        (first,) = runner.run(ws)
        with ws.db.reading() as session:
            cached = session.execute(select(BatchProfileRecord)).scalars().all()
        (second,) = runner.run(ws)
    assert len(cached) >= 1
    assert first.document["drift"] == second.document["drift"]
    assert first.document["quality"] == second.document["quality"]

    features = {k: "numeric" for k in all_rows[0]}
    rows = [
        {
            "version": 1,
            "inputs": json.dumps(r),
            "output": '"benign"',
            "ood": False,
            "anomaly": 0.0,
            "latency_ms": 1.0,
        }
        for r in all_rows
    ]
    whole = quality.summarise_rows(rows, features, "classification")[1]
    parts = [quality.summarise_rows(rows[i : i + 97], features, "classification")[1]
             for i in range(0, len(rows), 97)]  # fmt: skip
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.quality == whole.quality
    for name, column in whole.profile.columns.items():  # the sketches add up exactly
        assert merged.profile.columns[name].sketch == column.sketch
    from aidlc.core.config import DriftConfig
    from aidlc.monitor.drift import compare_profiles

    reference = quality.summarise_rows(rows[::2], features, "classification")[1].profile
    config = DriftConfig(small_sample=100)  # judge with both rules: tests and effect sizes
    for cfg in (DriftConfig(), config):
        assert (compare_profiles(reference, merged.profile, cfg).to_json()
                == compare_profiles(reference, whole.profile, cfg).to_json())  # fmt: skip


def test_quality_counts_nulls_type_errors_and_unknown_fields() -> None:
    from aidlc.monitor import quality

    rows = [
        {"version": 2, "inputs": json.dumps({"a": 1.0, "b": "x"}), "output": "1.5",
         "ood": True, "anomaly": 7.0, "latency_ms": 2.0},
        {"version": 2, "inputs": json.dumps({"a": None, "b": "y", "zzz": 1}), "output": "2.0",
         "ood": False, "anomaly": 1.0, "latency_ms": 4.0},
        {"version": 2, "inputs": json.dumps({"a": "oops"}), "output": "2.0",
         "ood": False, "anomaly": 0.0, "latency_ms": 0.0},
        {"version": 2, "inputs": "not json", "output": "2.0", "ood": False, "anomaly": 0.0,
         "latency_ms": 0.0},
    ]  # fmt: skip
    summary = quality.summarise_rows(rows, {"a": "numeric", "b": "categorical"}, "regression")[2]
    rates = summary.quality.rates(["a", "b"])
    assert rates["rows"] == 4
    assert rates["ood_rate"] == 0.25 and rates["anomaly_rate"] == 0.25
    assert rates["null_rates"] == {"a": 0.5, "b": 0.5}  # a: one null + one missing (bad json)
    assert rates["type_errors"] == {"a": 1}
    assert rates["unknown_fields"] == 2  # "zzz" and the unparseable row
    assert rates["schema_violation_rate"] == 0.75
    assert rates["mean_latency_ms"] == 1.5
    assert summary.profile.columns["prediction"].count == 4


def test_performance_from_feedback_labels(served: Served, all_rows: list[dict[str, Any]]) -> None:
    from aidlc.monitor import runner

    ids = serve_rows(served, all_rows)
    truth = _labels()
    send_feedback(served, dict(zip(ids, truth, strict=True)))
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
    perf = outcome.document["performance"]
    assert perf["labelled"] == 569 and perf["enough"]
    # mostly training rows: live accuracy is high, and close to the training metric
    assert perf["metrics"]["accuracy"] > 0.95
    assert set(perf["metrics"]) == {"accuracy", "precision", "recall", "f1"}
    assert perf["training"]["accuracy"] == pytest.approx(perf["training"]["accuracy"])
    assert perf["drop"] < 0.05

    # labels that contradict every prediction: a performance breach
    flipped = {"malignant": "benign", "benign": "malignant"}
    ids = serve_rows(served, all_rows[:100])
    send_feedback(served, {i: flipped[t] for i, t in zip(ids, truth[:100], strict=True)})
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws, window="1h")
    perf = outcome.document["performance"]
    assert perf["labelled"] == 669
    assert perf["drop"] > 0.1
    assert "performance-drop" in {b["rule"] for b in outcome.document["breaches"]}


def test_logged_scores_give_roc_auc(served: Served, all_rows: list[dict[str, Any]]) -> None:
    """With `serve.prediction_log.scores`, the server logs the binary classifier's probability
    of its second class, and the monitor's ROC AUC equals scikit-learn's on those scores."""
    from sklearn.metrics import roc_auc_score

    from aidlc.monitor import runner
    from aidlc.serve.predlog import read_batches

    ids = serve_rows(served, all_rows, scores=True)
    truth = _labels()
    send_feedback(served, dict(zip(ids, truth, strict=True)))
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
        logged = {r["prediction_id"]: r["score"] for r in read_batches(ws, model="bc")}
    perf = outcome.document["performance"]
    classes = sorted(set(truth))  # the model's classes, in its order
    expected = roc_auc_score([t == classes[1] for t in truth], [logged[i] for i in ids])
    assert perf["metrics"]["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert perf["metrics"]["roc_auc"] > 0.95
    assert "roc_auc" in perf["training"]


def test_too_few_rows_is_insufficient_not_drift(
    served: Served, all_rows: list[dict[str, Any]]
) -> None:
    from aidlc.monitor import runner

    serve_rows(served, shifted(all_rows[:20], DRIFT))
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
    assert outcome.report.verdict == "insufficient"
    assert outcome.document["drift"] is None
    assert [b["rule"] for b in outcome.document["breaches"]] == []


def test_window_excludes_old_batches(served: Served, all_rows: list[dict[str, Any]]) -> None:
    from aidlc.monitor import runner

    serve_rows(served, all_rows)
    later = datetime.now(UTC) + timedelta(days=3)
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws, now=later, window="24h")
    assert outcome.document["rows"] == 0
    assert outcome.report.verdict == "insufficient"


def test_monitor_needs_the_monitor_role(served: Served) -> None:
    from aidlc.errors import PermissionDenied
    from aidlc.monitor import runner

    with served.open("inference") as ws, pytest.raises(PermissionDenied):
        runner.run(ws, model="bc")
    with served.open("auditor") as ws:
        assert runner.list_reports(ws) == []
        denied = ws.audit.events(action="monitor.run")
    assert denied and denied[-1].outcome == "denied"


def test_a_drift_breach_registers_a_candidate_without_a_command(
    served: Served, all_rows: list[dict[str, Any]]
) -> None:
    """The scheduler (as a monitor-and-trainer principal) runs the monitor at its fire time; the
    breach asks for retraining under the approver's policy and the candidate is registered."""
    from aidlc.core.alerts import list_alerts
    from aidlc.monitor import jobs, retrain
    from aidlc.monitor.schedule import Scheduler
    from aidlc.registry import versions

    add_principal(served, "retrainer", ["monitor", "trainer"])
    with served.open("approver") as ws:
        policy = retrain.set_policy(ws, "bc", "canary", canary_percent=25)
    assert policy.set_by == "approver" and policy.triggers == ["drift", "performance"]
    serve_rows(served, shifted(all_rows[:300], DRIFT))
    from aidlc.core.config import ScheduleConfig

    with served.open("retrainer") as ws:
        job = jobs.monitor_job(ws, ScheduleConfig(name="hourly", cron="cron(0 * * * ? *)"))
        fire = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        scheduler = Scheduler([job], clock=lambda: fire - timedelta(minutes=1))
        assert scheduler.run_due(fire) == ["hourly"]
        assert scheduler.run_due(fire) == []  # once per fire time
        done = retrain.requests(ws, "bc")
        latest = versions.list_versions(ws, "bc")[-1]
        alerts = list_alerts(ws)
    assert [r.status for r in done] == ["registered"]
    assert done[0].candidate_version == latest.version == 4
    assert latest.trained_by == "retrainer" and latest.status == "registered"
    assert latest.tags.get("retrained-from") == "1"
    assert any("retrained candidate bc@4 registered" in a.title for a in alerts)

    # the approver's approval to staging starts the policy's canary at once
    with served.open("approver") as ws:
        outcome = retrain.approve(ws, "bc@4", to="staging", reason="retrained on fresh data")
    deployment = outcome["deployment"]
    assert deployment is not None and deployment.percent == 25.0
    assert deployment.candidate == 4 and deployment.started_by == "approver"

    # the trainer that made it cannot approve it (separation of duties still holds)
    from aidlc.errors import PermissionDenied

    with served.open("retrainer") as ws, pytest.raises(PermissionDenied):
        retrain.approve(ws, "bc@4", to="staging", reason="self")


def test_a_monitor_only_principal_queues_retraining(
    served: Served, all_rows: list[dict[str, Any]]
) -> None:
    from aidlc.monitor import retrain, runner

    with served.open("approver") as ws:
        retrain.set_policy(ws, "bc", "approval")
    serve_rows(served, shifted(all_rows[:300], DRIFT))
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
        again = runner.run(ws)[0]
    assert outcome.retraining == {"request": 1, "status": "pending"}
    assert again.retraining is not None and again.retraining["status"] == "skipped"
    with served.open("trainer") as ws:
        (done,) = retrain.run_pending(ws)
    assert done.status == "registered" and done.candidate_version == 4


def test_no_policy_means_alert_only(served: Served, all_rows: list[dict[str, Any]]) -> None:
    from aidlc.monitor import runner

    serve_rows(served, shifted(all_rows[:300], DRIFT))
    with served.open("monitor") as ws:
        (outcome,) = runner.run(ws)
    assert outcome.report.verdict == "breach" and outcome.retraining is None


def test_policy_is_an_approvers_decision(served: Served) -> None:
    from aidlc.errors import InvalidInput, PermissionDenied
    from aidlc.monitor import retrain

    with served.open("trainer") as ws, pytest.raises(PermissionDenied):
        retrain.set_policy(ws, "bc", "canary")
    with served.open("approver") as ws:
        with pytest.raises(InvalidInput, match="action must be one of"):
            retrain.set_policy(ws, "bc", "yolo")
        with pytest.raises(InvalidInput, match="unknown trigger"):
            retrain.set_policy(ws, "bc", "approval", triggers=["vibes"])
        with pytest.raises(InvalidInput, match="canary percent"):
            retrain.set_policy(ws, "bc", "canary", canary_percent=100)
        assert retrain.get_policy(ws, "bc") is None


@pytest.mark.postgres
def test_the_monitoring_loop_on_postgresql(make_env: Any, tmp_path: Any) -> None:
    """Reports, cached batch summaries, alert repeats, schedule claims, KPIs and retraining on a
    real PostgreSQL, not only SQLite."""
    from aidlc.core import principals
    from aidlc.core.alerts import list_alerts
    from aidlc.demo import breast_cancer
    from aidlc.monitor import jobs, retrain, runner
    from aidlc.registry import approval
    from aidlc.serve.kpis import push_kpis
    from tests.registry.helpers import ingest_demo, train
    from tests.serve.conftest import RECIPE

    env = make_env("postgres")
    with env.open("admin") as admin:
        for name, roles in {
            "service": ["inference", "monitor"],
            "retrainer": ["monitor", "trainer"],
        }.items():
            _, env.tokens[name] = principals.add(admin, name, roles)
    ingest_demo(env, tmp_path / "data")
    with env.open("trainer") as ws:
        train(ws, RECIPE.format(features="exclude: [patient_id]", seed=3))
    with env.open("approver") as ws:
        approval.approve(ws, "bc@1", reason="first")
        retrain.set_policy(ws, "bc", "approval")
    rows = breast_cancer.frame().drop(["patient_id", "diagnosis"]).to_dicts()
    serve_rows(env, shifted(rows[:300], DRIFT))  # type: ignore[arg-type]
    with env.open("inference") as ws:
        assert push_kpis(ws, "bc", [{"name": "revenue", "value": 5}]) == 1
    fire = datetime.now(UTC).replace(second=0, microsecond=0)
    with env.open("retrainer") as ws:
        assert jobs.claim(ws, "pg", fire) and not jobs.claim(ws, "pg", fire)
        (first,) = runner.run(ws)
        (second,) = runner.run(ws)
        alerts = [a for a in list_alerts(ws) if a.source == "monitor"]
        done = retrain.requests(ws, "bc")
        reports = runner.list_reports(ws)
    assert first.report.verdict == second.report.verdict == "breach"
    assert first.document["drift"] == second.document["drift"]  # second from cached summaries
    assert first.document["kpis"]["revenue"]["last"] == 5.0
    assert [r.id for r in reports] == [second.report.id, first.report.id]
    drift_alert = next(a for a in alerts if "drift in" in a.title)
    assert drift_alert.occurrences == 2  # the repeat within the cooldown was counted, not sent
    assert [(r.status, r.candidate_version) for r in done] == [("registered", 2)]
    assert second.retraining is not None and second.retraining["status"] == "skipped"


def test_memory_does_not_grow_with_the_window(
    served: Served, all_rows: list[dict[str, Any]]
) -> None:
    """A run holds one batch and the merged profiles: four times the batches (same size) in the
    window barely moves its peak of traced allocations."""
    import tracemalloc

    from aidlc.monitor import runner

    def peak_for(batches: int) -> int:
        for _ in range(batches):
            serve_rows(served, all_rows[:150], batch=150)
        with served.open("monitor") as ws:
            tracemalloc.start()
            try:
                (outcome,) = runner.run(ws, retrain=False, window="2h")
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                assert outcome.document["window"]["batches"] >= batches

    small = peak_for(3)
    large = peak_for(9)  # the window now holds 12 batches, 9 of them new
    assert large < small * 1.5, (small, large)
