"""The registry end to end: registration, verification on load, tampering, approval, history."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from aidlc.core.meta import ModelVersionRecord, StoredObject
from aidlc.errors import Conflict, IntegrityError, NotFound, PermissionDenied, ValidationFailed
from aidlc.registry import approval, versions
from tests.registry.helpers import config, ingest_demo, train


@pytest.fixture
def trained(env, tmp_path):
    ingest_demo(env, tmp_path / "inbox")
    with env.open("trainer") as ws:
        outcome = train(ws, config())
    return env, outcome


def _objects(ws, ref: str) -> dict[str, str]:
    return versions.resolve(ws, ref).statement["objects"]


def _corrupt(env, object_ref: str) -> None:
    """Flip one byte in the middle of a stored object's ciphertext on disk."""
    zone, _, rest = object_ref.partition("/")
    object_id, _, version = rest.rpartition("@")
    with env.open("admin") as ws:
        with ws.db.reading() as session:
            rec = session.execute(
                select(StoredObject).where(
                    StoredObject.zone == zone,
                    StoredObject.object_id == object_id,
                    StoredObject.version == int(version),
                )
            ).scalar_one()
        path = ws.store.root / rec.storage_key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))


def _failed_events(env, action: str) -> list:
    with env.open("auditor") as ws:
        return [e for e in ws.audit.events(action=action) if e.outcome == "error"]


def _alerts(env) -> list:
    from aidlc.core.alerts import list_alerts

    with env.open("auditor") as ws:
        return [a for a in list_alerts(ws) if a.source == "registry"]


def test_training_records_the_run_and_registers_a_signed_candidate(trained):
    env, outcome = trained
    assert outcome.status == "finished"
    assert outcome.model_version == "bc@1"
    assert outcome.metrics["roc_auc"] > 0.9
    assert outcome.gates_passed
    with env.open("approver") as ws:
        from aidlc.train.tracking import get_run

        run = get_run(ws, outcome.run_id)
        version = versions.resolve(ws, "bc@candidate")
    assert run.status == "finished"
    assert run.datasets[0]["ref"] == "breast-cancer@1"
    assert len(run.datasets[0]["data_sha256"]) == 64
    assert run.environment["packages_digest"] and "git" in run.environment
    assert run.config and "xgboost" in run.config and run.seed == 3
    assert run.metrics["roc_auc"] == pytest.approx(outcome.metrics["roc_auc"])
    assert run.model_version == "bc@1"
    assert version.version == 1 and version.aliases == ["candidate"]
    assert version.status == "registered"
    assert version.model_digest == outcome.model_digest
    assert version.trained_by == "trainer"
    assert version.statement["datasets"][0]["ref"] == "breast-cancer@1"
    assert version.statement["lineage"]["run"] == outcome.run_id


def test_a_version_holds_schema_card_bom_and_baseline(trained):
    from aidlc.registry.bom import validate_ml_bom

    env, _ = trained
    with env.open("approver") as ws:
        model = versions.load_model(ws, "bc@1")
        card = versions.read_document(ws, "bc@1", "model-card.md").decode()
        card_json = json.loads(versions.read_document(ws, "bc@1", "model-card.json"))
        bom = versions.read_document(ws, "bc@1", "ml-bom.json")
        baseline = json.loads(versions.read_document(ws, "bc@1", "baseline.json"))
    schema = {c["name"]: c for c in model.bundle.input_schema}
    assert "patient_id" not in schema and "diagnosis" not in schema
    assert schema["mean_radius"]["dtype"] == "float" and "min" in schema["mean_radius"]
    assert model.bundle.output_schema["classes"] == ["benign", "malignant"]
    assert "# Model card: bc v1" in card and "breast-cancer" in card
    assert card_json["metrics"]["roc_auc"] > 0.9 and card_json["owner"] == "qa"
    validate_ml_bom(bom)
    assert json.loads(bom)["metadata"]["component"]["type"] == "machine-learning-model"
    assert "mean_radius" in {c["name"] for c in baseline["features"]["columns"]}
    assert [c["name"] for c in baseline["predictions"]["columns"]] == ["prediction"]


def test_loaded_model_predicts_like_training(trained, tmp_path):
    from aidlc.demo import breast_cancer

    env, _ = trained
    frame = breast_cancer.frame().head(400)
    with env.open("approver") as ws:
        model = versions.load_model(ws, "bc@1")
    predicted = model.predict(frame)
    accuracy = sum(p == t for p, t in zip(predicted, frame["diagnosis"].to_list())) / frame.height
    assert accuracy > 0.95
    proba = model.predict_proba(frame.head(5))
    assert proba is not None and all(abs(sum(row) - 1) < 1e-6 for row in proba)


@pytest.mark.parametrize("target", ["model/estimator.ubj", "model.sig", "model-card.md"])
def test_an_altered_file_signature_or_card_is_refused_at_load_audited_and_alerted(trained, target):
    env, _ = trained
    with env.open("approver") as ws:
        ref = _objects(ws, "bc@1")[target]
    _corrupt(env, ref)
    with env.open("approver") as ws, pytest.raises(IntegrityError):
        versions.load_model(ws, "bc@1")
    assert _failed_events(env, "model.load")
    assert any(a.severity == "CRITICAL" and "bc@1" in a.title for a in _alerts(env))


def test_a_registry_row_edited_in_the_database_is_refused(trained):
    env, _ = trained
    with env.open("admin") as ws, ws.db.transaction() as session:
        session.execute(update(ModelVersionRecord).values(gates_passed=False, trained_by="someone"))
    with env.open("approver") as ws, pytest.raises(IntegrityError, match="altered"):
        versions.load_model(ws, "bc@1")


def test_a_statement_rewritten_in_the_database_fails_its_signature(trained):
    env, _ = trained
    with env.open("admin") as ws, ws.db.transaction() as session:
        rec = session.execute(select(ModelVersionRecord)).scalar_one()
        statement = json.loads(rec.statement)
        statement["files"]["estimator.ubj"] = "0" * 64
        rec.statement = json.dumps(statement, sort_keys=True)
    with env.open("approver") as ws, pytest.raises(IntegrityError, match="not signed"):
        versions.verify(ws, "bc@1")


def _forge(env, ws, ref: str, *, statement_key=None, signature: bytes | None = None) -> None:
    """As a holder of the workspace's keys would: store `signature` as the version's model.sig
    (digest and object updated in the statement), and re-sign the statement with
    `statement_key` (default: the workspace's own model-signing key)."""
    from aidlc.core import objects

    with ws.db.reading() as session:
        _, rec = versions.version_record(session, *versions.parse_model_ref(ref))
    statement = json.loads(rec.statement)
    if signature is not None:
        name, number = versions.parse_model_ref(ref)
        stored = objects.put_bytes(ws, "models", f"{name}/v{number}/model.sig", signature)
        statement["objects"]["model.sig"] = f"models/{stored.object_id}@{stored.version}"
        statement["documents"]["model.sig"] = versions._sha256(signature)
    key = statement_key or versions.signing_key(ws)
    with env.open("admin") as admin, admin.db.transaction() as session:
        row = session.get(ModelVersionRecord, rec.id)
        row.statement = json.dumps(statement, sort_keys=True)
        row.statement_signature = versions._sign_statement(key, statement)


def test_a_statement_signed_by_another_key_is_refused(trained):
    from aidlc.registry import signing

    env, _ = trained
    with env.open("trainer") as ws:
        _forge(env, ws, "bc@1", statement_key=signing.new_signing_key())
    with env.open("approver") as ws, pytest.raises(IntegrityError, match="not signed"):
        versions.load_model(ws, "bc@1")


def test_a_model_sig_by_another_key_is_refused_even_with_every_digest_right(trained, tmp_path):
    """The OpenSSF signature is checked on its own: a model.sig made with another key over the
    very same files, in a statement re-signed by the workspace key (so every digest agrees),
    still fails to load; trusting the statement's file list instead would load it."""
    from aidlc.registry import signing

    env, _ = trained
    with env.open("trainer") as ws:
        versions.export(ws, "bc@1", tmp_path / "export")
        other = signing.sign_model(tmp_path / "export" / "model", signing.new_signing_key())
        assert signing.signed_files(other) == versions.resolve(ws, "bc@1").statement["files"]
        _forge(env, ws, "bc@1", signature=other)
    with env.open("approver") as ws:
        with pytest.raises(IntegrityError, match="signed with another key"):
            versions.load_model(ws, "bc@1")
        with pytest.raises(IntegrityError):
            versions.verify(ws, "bc@1")
    assert _failed_events(env, "model.load")


def test_the_forgery_helper_changes_nothing_when_it_forges_nothing(trained):
    """The two tests above fail for the reason they name, not because re-signing broke the row."""
    env, _ = trained
    with env.open("trainer") as ws:
        _forge(env, ws, "bc@1")
    with env.open("approver") as ws:
        assert versions.load_model(ws, "bc@1").predict_proba is not None


def test_a_planted_pickle_never_executes(trained, tmp_path):
    """An attacker with write access to the store and the database swaps the estimator for a
    pickle that would create a file; the load is refused and the payload never runs."""
    import pickle

    from aidlc.core import objects

    env, _ = trained
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Payload(), protocol=4)
    with env.open("trainer") as ws:
        ref = _objects(ws, "bc@1")["model/estimator.ubj"]
        object_id = ref.partition("/")[2].rpartition("@")[0]
        planted = objects.put_bytes(ws, "models", object_id, payload)
    with env.open("admin") as ws, ws.db.transaction() as session:
        recs = {
            r.version: r
            for r in session.execute(
                select(StoredObject).where(StoredObject.object_id == object_id)
            ).scalars()
        }
        old, new = recs[1], recs[planted.version]
        old.storage_key, old.wrapped_key = new.storage_key, new.wrapped_key
        old.sha256, old.size = new.sha256, new.size
    with env.open("approver") as ws, pytest.raises(IntegrityError):
        versions.load_model(ws, "bc@1")
    assert not marker.exists()


def test_registering_a_pickle_is_refused(env, tmp_path):
    import pickle

    from aidlc.registry.versions import Registration, register_bundle

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "estimator.skops").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    reg = Registration(
        kind="sklearn.LogisticRegression",
        task="classification",
        target="y",
        features=["x"],
        classes=[0, 1],
        metrics={},
        gates=[],
        gates_passed=True,
        datasets=[],
        trained_by="trainer",
    )
    with env.open("trainer") as ws, pytest.raises(IntegrityError, match="pickle"):
        register_bundle(ws, "m", bundle, reg)


def test_the_trainer_cannot_approve_their_own_version(make_env, tmp_path):
    from aidlc.core import principals

    env = make_env(users={"steward": "data-steward", "approver": "approver"})
    with env.open("admin") as admin:
        _, env.tokens["lead"] = principals.add(admin, "lead", ["trainer", "approver"])
    ingest_demo(env, tmp_path / "inbox")
    with env.open("lead") as ws:
        train(ws, config())
        with pytest.raises(PermissionDenied, match="separation of duties"):
            approval.approve(ws, "bc@1", reason="mine")
        assert versions.resolve(ws, "bc@1").status == "registered"
    with env.open("admin") as ws:
        denied = [e for e in ws.audit.events(action="model.approve") if e.outcome == "denied"]
    assert denied and denied[0].actor == "lead"
    with env.open("approver") as ws:
        approved = approval.approve(ws, "bc@1", reason="reviewed")
    assert approved.status == "approved" and "production" in approved.aliases


def test_failed_gates_block_approval_and_production(trained):
    env, _ = trained
    with env.open("trainer") as ws:
        failing = train(ws, config(gate=1.01))
    assert not failing.gates_passed and failing.model_version == "bc@2"
    with env.open("approver") as ws:
        with pytest.raises(ValidationFailed, match="quality gates"):
            approval.approve(ws, "bc@2", reason="try")
        with pytest.raises(ValidationFailed, match="not approved"):
            approval.set_alias(ws, "bc@2", "production", reason="try")
        with pytest.raises(ValidationFailed, match="not approved"):
            approval.set_alias(ws, "bc@1", "staging", reason="unapproved")
        assert versions.resolve(ws, "bc@2").aliases == ["candidate"]
        with pytest.raises(NotFound):
            versions.resolve(ws, "bc@production")


def test_relative_gate_compares_with_production(trained):
    env, first = trained
    with env.open("approver") as ws:
        approval.approve(ws, "bc@1", reason="ok")
    with env.open("trainer") as ws:
        worse = train(ws, config(rounds=1, every=1, gate=0.5))
    relative = next(g for g in worse.gates if "production" in g["text"])
    assert relative["threshold"] == pytest.approx(first.metrics["roc_auc"] - 0.01)
    assert relative["passed"] == (worse.metrics["roc_auc"] >= relative["threshold"])


def test_rejected_versions_cannot_be_approved(trained):
    env, _ = trained
    with env.open("approver") as ws:
        rejected = approval.reject(ws, "bc@1", reason="bias review failed")
        assert rejected.status == "rejected" and rejected.aliases == []
        with pytest.raises(Conflict):
            approval.approve(ws, "bc@1", reason="changed my mind")


def test_history_answers_which_version_held_an_alias_at_any_time(trained):
    env, _ = trained
    with env.open("trainer") as ws:
        train(ws, config(rounds=40))
    with env.open("approver") as ws:
        t0 = datetime.now(UTC)
        time.sleep(0.02)
        approval.approve(ws, "bc@1", reason="first")
        time.sleep(0.02)
        t1 = datetime.now(UTC)
        time.sleep(0.02)
        approval.approve(ws, "bc@2", reason="better")
        time.sleep(0.02)
        t2 = datetime.now(UTC)
        time.sleep(0.02)
        approval.set_alias(ws, "bc@1", "production", reason="rollback")
        time.sleep(0.02)
        t3 = datetime.now(UTC)
        assert approval.alias_at(ws, "bc", "production", t0) is None
        assert approval.alias_at(ws, "bc", "production", t1).version == 1
        event = approval.alias_at(ws, "bc", "production", t2)
        assert (event.version, event.previous, event.by, event.reason) == (
            2,
            1,
            "approver",
            "better",
        )
        assert approval.alias_at(ws, "bc", "production", t3).version == 1
        assert approval.alias_at(ws, "bc", "production", t3 + timedelta(days=1)).version == 1
        moves = [(e.alias, e.version) for e in approval.history(ws, "bc")]
    assert moves == [
        ("candidate", 1),
        ("candidate", 2),
        ("production", 1),
        ("production", 2),
        ("production", 1),
    ]


def test_export_is_accepted_by_the_openssf_verifier(trained, tmp_path):
    from aidlc.registry.bom import validate_ml_bom

    env, _ = trained
    out = tmp_path / "export"
    with env.open("approver") as ws:
        written = versions.export(ws, "bc@1", out)
    assert sorted(written) == sorted(
        [
            "model/",
            "model.sig",
            "model-card.md",
            "model-card.json",
            "ml-bom.json",
            "signing-key.pub.pem",
        ]
    )
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "aidlc-model.json",
        "estimator.ubj",
    ]
    validate_ml_bom((out / "ml-bom.json").read_bytes())
    cmd = [
        sys.executable,
        "-m",
        "model_signing",
        "verify",
        "key",
        "--signature",
        str(out / "model.sig"),
        "--public_key",
        str(out / "signing-key.pub.pem"),
        str(out / "model"),
    ]
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    (out / "model" / "aidlc-model.json").write_text("{}")
    assert subprocess.run(cmd, capture_output=True, check=False).returncode != 0


def test_serving_loads_only_approved_versions(trained):
    env, _ = trained
    with env.open("inference") as ws, pytest.raises(IntegrityError, match="not approved"):
        versions.load_model(ws, "bc@1", require_approved=True)
    with env.open("approver") as ws:
        approval.approve(ws, "bc@1", reason="ok")
    with env.open("inference") as ws:
        model = versions.load_model(ws, "bc@production", require_approved=True)
    assert model.bundle.task == "classification"


def test_roles_the_registry_refuses(trained):
    env, _ = trained
    with env.open("steward") as ws, pytest.raises(PermissionDenied):
        versions.resolve(ws, "bc@1")
    with env.open("trainer") as ws, pytest.raises(PermissionDenied):
        approval.approve(ws, "bc@1", reason="x")
    with env.open("auditor") as ws, pytest.raises(PermissionDenied):
        versions.load_model(ws, "bc@1")


def test_python_api_records_a_custom_run_and_registers_its_model(local_env, tmp_path):
    from sklearn.linear_model import LogisticRegression

    ingest_demo(local_env, tmp_path / "inbox")
    with local_env.open("trainer") as ws:
        with ws.start_run("custom-lr", params={"C": 0.5}) as run:
            frame = run.read_dataset("breast-cancer@latest")
            features = ["mean_radius", "mean_texture", "worst_area"]
            X = frame.select(features).to_numpy()
            y = (frame["diagnosis"] == "malignant").to_numpy().astype(int)
            model = LogisticRegression(C=0.5, max_iter=2000).fit(X, y)
            run.log_metrics({"train_accuracy": model.score(X, y)})
            run.log_metrics({"loss": 0.5}, step=1)
            version = run.register_model(
                "custom",
                model,
                features=features,
                target="diagnosis",
                classes=["benign", "malignant"],
            )
        info = run.info()
        loaded = versions.load_model(ws, version.ref)
    assert info.status == "finished" and info.params == {"C": 0.5}
    assert info.datasets[0]["ref"] == "breast-cancer@1"
    assert info.model_version == "custom@1" and version.run_id == info.id
    assert loaded.bundle.input_schema[0]["name"] == "mean_radius"
    expected = ["malignant" if p else "benign" for p in model.predict(X)]
    assert loaded.predict(frame.select(features)) == expected


def test_a_failing_custom_run_is_recorded_as_failed(local_env):
    from aidlc.train.tracking import get_run

    with local_env.open("trainer") as ws:
        with pytest.raises(ZeroDivisionError), ws.start_run("broken") as run:
            run.log_params({"lr": 0.1})
            1 / 0
        info = get_run(ws, run.id)
    assert info.status == "failed" and info.result["error"] == "ZeroDivisionError"
