"""Rollouts: direct deploys, canaries judged and concluded by the server, shadows, rollback."""

from __future__ import annotations

import time

import pytest

from aidlc.core.config import CanaryPolicy
from aidlc.errors import Conflict, PermissionDenied, ValidationFailed
from aidlc.registry import approval
from aidlc.serve import rollout

POLICY = CanaryPolicy(
    promote_after=60, min_requests=20, max_error_rate=0.01, max_latency_ratio=50, max_divergence=0.2
)


def _events(served, action):
    with served.open("auditor") as ws:
        return ws.audit.events(action=action)


def _drive(client, served, records, *, until, limit=3000):
    """Send single-row predictions until `until()` holds; returns the versions that answered."""
    answered = set()
    for i in range(limit):
        body = {"records": [records[i % len(records)]]}
        r = client.post("/v1/models/bc:predict", headers=served.headers(), json=body)
        while r.status_code == 429:  # a fast machine outruns the rate limit: wait as told
            time.sleep(float(r.headers["retry-after"]))
            r = client.post("/v1/models/bc:predict", headers=served.headers(), json=body)
        assert r.status_code == 200, r.text
        answered.add(r.json()["version"])
        if i % 10 == 0 and until():
            return answered
    raise AssertionError("the rollout never concluded")


def _status(served):
    with served.open("approver") as ws:
        return rollout.deployments(ws, "bc")[0]


def _wait_for_candidate(client, version, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        slot = client.server.slots.get("bc")
        if slot is not None and slot.candidate is not None and slot.candidate.version == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never loaded candidate {version}")


def test_good_canary_is_promoted_and_audited(served, client_for, records):
    client = client_for(poll_seconds=0.1)
    with served.open("approver") as ws:
        started = rollout.deploy(ws, "bc@2", canary=50, policy=POLICY, reason="try v2")
    assert started.status == "active" and started.production == 1
    _wait_for_candidate(client, 2)
    answered = _drive(client, served, records, until=lambda: _status(served).status != "active")
    done = _status(served)
    assert done.status == "promoted", done.verdict
    assert done.verdict["requests"] >= POLICY.promote_after
    assert done.verdict["breaches"] == []
    assert done.ended_by == "service"
    assert answered == {1, 2}
    with served.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 2
    promote = _events(served, "deploy.promote")
    assert promote and promote[-1].actor == "service"
    assert promote[-1].details["started_by"] == "approver"
    assert _events(served, "deploy.canary")[-1].actor == "approver"
    r = client.post(
        "/v1/models/bc:predict", headers=served.headers(), json={"records": records[:1]}
    )
    assert r.json()["version"] == 2


def test_broken_canary_is_rolled_back_and_alerts(served, client_for, records):
    from aidlc.core.alerts import list_alerts

    client = client_for(poll_seconds=0.1)
    with served.open("approver") as ws:
        rollout.deploy(ws, "bc@3", canary=50, policy=POLICY, reason="try the weak model")
    _wait_for_candidate(client, 3)
    _drive(client, served, records, until=lambda: _status(served).status != "active")
    done = _status(served)
    assert done.status == "rolled_back"
    assert any("divergence" in b for b in done.verdict["breaches"])
    with served.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 1
    assert _events(served, "deploy.rolled_back")[-1].details["deployment"] == done.id
    with served.open("monitor") as ws:
        assert any("rolled back" in a.title for a in list_alerts(ws))
    # after the verdict every answer comes from production again
    for row in records[:20]:
        r = client.post("/v1/models/bc:predict", headers=served.headers(), json={"records": [row]})
        assert r.json()["version"] == 1


def test_shadow_answers_nobody_and_is_judged(served, client_for, records):
    client = client_for(poll_seconds=0.1)
    with served.open("approver") as ws:
        rollout.deploy(ws, "bc@3", shadow=True, policy=POLICY)
    _wait_for_candidate(client, 3)
    answered = _drive(client, served, records, until=lambda: _status(served).status != "active")
    assert answered == {1}
    done = _status(served)
    assert done.mode == "shadow" and done.status == "rolled_back"
    with served.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 1


def test_clean_shadow_completes_without_promotion(served, client_for, records):
    client = client_for(poll_seconds=0.1)
    with served.open("approver") as ws:
        rollout.deploy(ws, "bc@2", shadow=True, policy=POLICY)
    _wait_for_candidate(client, 2)
    answered = _drive(client, served, records, until=lambda: _status(served).status != "active")
    assert answered == {1}
    assert _status(served).status == "completed"
    with served.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 1


def test_deploy_refuses_what_it_must(served):
    with served.open("trainer") as ws, pytest.raises(PermissionDenied):
        rollout.deploy(ws, "bc@2", canary=10)
    with served.open("approver") as ws:
        with pytest.raises(Conflict, match="already in production"):
            rollout.deploy(ws, "bc@1", canary=10)
        rollout.deploy(ws, "bc@2", canary=10)
        with pytest.raises(Conflict, match="already has an active canary"):
            rollout.deploy(ws, "bc@3", canary=10)
        with pytest.raises(Exception, match="percentage"):
            rollout.deploy(ws, "bc@3", canary=150)
        stopped = rollout.stop(ws, "bc", reason="changed my mind")
        assert stopped.status == "stopped"
        with pytest.raises(Conflict):
            rollout.stop(ws, "bc")
    denied = [e for e in _events(served, "model.deploy") if e.outcome == "denied"]
    assert denied and denied[-1].actor == "trainer"


def test_unapproved_version_cannot_be_deployed(served):
    from tests.registry.helpers import train
    from tests.serve.conftest import RECIPE

    with served.open("trainer") as ws:
        train(ws, RECIPE.format(features="exclude: [patient_id]", seed=9))
    with served.open("approver") as ws, pytest.raises(ValidationFailed, match="approved"):
        rollout.deploy(ws, "bc@4", canary=10)


def test_server_may_conclude_only_an_active_rollout(served):
    with served.open("approver") as ws:
        started = rollout.deploy(ws, "bc@2", canary=10)
    with served.open("trainer") as ws, pytest.raises(PermissionDenied):
        rollout.conclude(ws, started, "promoted", {})
    with served.open("service") as ws:
        assert rollout.conclude(ws, started, "rolled_back", {"breaches": ["test"]}) is True
        assert rollout.conclude(ws, started, "promoted", {}) is False
    with served.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 1


def test_rollback_restores_the_previous_production_version(served):
    with served.open("approver") as ws:
        with pytest.raises(Conflict, match="no earlier production"):
            rollout.rollback(ws, "bc")
        assert rollout.deploy(ws, "bc@2").ref == "bc@2"
        rollout.deploy(ws, "bc@3", canary=5)
        restored = rollout.rollback(ws, "bc", reason="v2 misbehaves")
        assert restored.version == 1
        assert approval.aliases(ws, "bc")["production"] == 1
        assert rollout.deployments(ws, "bc")[0].status == "stopped"
    event = _events(served, "deploy.rollback")[-1]
    assert (event.details["from"], event.details["to"]) == (2, 1)


def test_deploy_cli(served):
    from tests.cli.test_cli import run

    root = served.root
    approver = served.tokens["approver"]
    p = run("deploy", "bc@2", "--canary", "10", "--promote-after", "100", "--json",
            token=approver, workspace=root)  # fmt: skip
    assert p.returncode == 0, p.stderr
    import json

    doc = json.loads(p.stdout)
    assert (
        doc["mode"] == "canary" and doc["percent"] == 10 and doc["policy"]["promote_after"] == 100
    )
    p = run("deploy", "status", "bc", "--json", token=approver, workspace=root)
    assert json.loads(p.stdout)[0]["status"] == "active"
    assert run("deploy", "bc@3", "--canary", "10", token=approver, workspace=root).returncode == 6
    assert run("deploy", "stop", "bc", token=approver, workspace=root).returncode == 0
    assert run("deploy", "bc@2", "--canary", "5", "--shadow", token=approver,
               workspace=root).returncode == 2  # fmt: skip
    assert run("deploy", "bc@2", "--max-error-rate", "7", "--canary", "5", token=approver,
               workspace=root).returncode == 2  # fmt: skip
    assert run("deploy", "rollback", token=approver, workspace=root).returncode == 2
    p = run("deploy", "bc@2", token=served.tokens["trainer"], workspace=root)
    assert p.returncode == 4
    p = run("deploy", "bc@2", token=approver, workspace=root)
    assert p.returncode == 0 and "now production" in p.stdout
    p = run("deploy", "rollback", "bc", token=approver, workspace=root)
    assert p.returncode == 0 and "bc@1" in p.stdout


@pytest.mark.postgres
def test_rollouts_and_prediction_batches_on_postgresql(make_env, tmp_path):
    """The serving tables and their transactions on a real PostgreSQL, not only SQLite."""
    from datetime import UTC, datetime

    from aidlc.core import principals
    from aidlc.serve import predlog
    from tests.registry.helpers import ingest_demo, train
    from tests.serve.conftest import RECIPE

    env = make_env("postgres")
    with env.open("admin") as admin:
        _, env.tokens["service"] = principals.add(admin, "service", ["inference", "monitor"])
    ingest_demo(env, tmp_path / "data")
    with env.open("trainer") as ws:
        for seed in (3, 4):
            train(ws, RECIPE.format(features="exclude: [patient_id]", seed=seed))
    with env.open("approver") as ws:
        approval.approve(ws, "bc@1", reason="first")
        approval.approve(ws, "bc@2", to="staging", reason="second")
        started = rollout.deploy(ws, "bc@2", canary=20, policy=POLICY)
    with env.open("service") as ws:
        assert rollout.active(ws, "bc").id == started.id
        assert rollout.conclude(ws, started, "promoted", {"requests": 60, "breaches": []})
        at = datetime.now(UTC)
        ref = predlog.write_batch(
            ws, "predictions", "bc", [{"prediction_id": "a" * 32, "at": at, "model": "bc"}]
        )
        assert ref.startswith("predictions/predictions/bc/")
        rows = predlog.read_batches(ws, "predictions", model="bc")
        assert [r["prediction_id"] for r in rows] == ["a" * 32]
    with env.open("approver") as ws:
        assert approval.aliases(ws, "bc")["production"] == 2
        assert rollout.rollback(ws, "bc", reason="back").version == 1
        assert [d.status for d in rollout.deployments(ws, "bc")] == ["promoted"]
