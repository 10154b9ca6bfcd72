"""The load path: every read of a version checks the signed statement, each stored object's
digest and the OpenSSF signature before anything is deserialized, and a failure is audited
and alerted."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from aidlc.core.meta import ModelVersionRecord
from aidlc.errors import Conflict, IntegrityError, PermissionDenied, UsageError
from aidlc.registry import approval, signing, versions
from tests.registry import trained


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    return trained.build(tmp_path_factory.mktemp("load"))


@pytest.fixture
def env(built, tmp_path):
    return trained.copy(built, tmp_path)


def _refused(env, call, action: str) -> str:
    """The reason `call` was refused, after checking it was audited and alerted."""
    from aidlc.core.alerts import list_alerts

    with env.open("approver") as ws, pytest.raises(IntegrityError) as caught:
        call(ws)
    with env.open("auditor") as ws:
        errors = [e for e in ws.audit.events(action=action) if e.outcome == "error"]
        alerts = [a for a in list_alerts(ws) if a.source == "registry"]
    assert [(e.resource, e.details["reason"]) for e in errors] == [
        ("model:bc@1", caught.value.message)
    ]
    assert [(a.severity, a.title) for a in alerts] == [
        ("CRITICAL", "model bc@1 failed verification")
    ]
    return caught.value.message


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        ("kind", "sklearn.Ridge", "kind"),
        ("task", "regression", "task"),
        ("model_digest", "0" * 64, "model_digest"),
        ("gates_passed", False, "gates_passed"),
        ("trained_by", "approver", "trained_by"),
        ("created_by", "approver", "registered_by"),
        ("metrics", '{"roc_auc": 1.0}', "metrics"),
    ],
)
def test_a_registry_column_edited_in_the_database_is_named(env, column, value, field):
    with env.open("admin") as ws, ws.db.transaction() as session:
        session.execute(
            update(ModelVersionRecord)
            .where(ModelVersionRecord.version == 1)
            .values({column: value})
        )
    message = _refused(env, lambda ws: versions.verify(ws, "bc@1"), "model.verify")
    assert message == f"bc@1: its registry record was altered ({field})"


def test_several_edited_columns_are_all_named(env):
    with env.open("admin") as ws, ws.db.transaction() as session:
        session.execute(
            update(ModelVersionRecord)
            .where(ModelVersionRecord.version == 1)
            .values(trained_by="approver", task="regression")
        )
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "bc@1: its registry record was altered (task, trained_by)"


def test_a_statement_signed_by_another_key_is_not_the_workspace_s(env):
    trained.restate(env, "bc@1", lambda s: None, key=signing.new_signing_key())
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "bc@1: its registry record is not signed by this workspace"


def test_an_unreadable_statement_is_not_the_workspace_s(env):
    with env.open("admin") as ws, ws.db.transaction() as session:
        session.execute(
            update(ModelVersionRecord).where(ModelVersionRecord.version == 1).values(statement="{")
        )
    message = _refused(env, lambda ws: versions.verify(ws, "bc@1"), "model.verify")
    assert message == "bc@1: its registry record is not signed by this workspace"


def test_the_workspace_re_signing_an_unchanged_statement_loads(env):
    trained.restate(env, "bc@1", lambda s: None)
    with env.open("approver") as ws:
        checked = versions.verify(ws, "bc@1")
        loaded = versions.load_model(ws, "bc@1")
        statement = versions.resolve(ws, "bc@1").statement
    assert checked.ref == "bc@1" and checked.files == statement["files"]
    assert checked.model_digest == statement["model_digest"]
    assert checked.documents == sorted(versions.DOCUMENTS)
    assert loaded.bundle.task == "classification"


def test_a_model_file_swapped_for_another_stored_object_fails_its_digest(env):
    ref = trained.store(env, "bc/v1/model/estimator.ubj", b"{}")

    def swap(statement):
        statement["objects"]["model/estimator.ubj"] = ref

    trained.restate(env, "bc@1", swap)
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "bc@1: estimator.ubj does not match its digest"


def test_a_document_swapped_for_another_stored_object_fails_its_digest(env):
    ref = trained.store(env, "bc/v1/model-card.md", b"# a better card\n")
    trained.restate(env, "bc@1", lambda s: s["objects"].update({"model-card.md": ref}))
    message = _refused(env, lambda ws: versions.verify(ws, "bc@1"), "model.verify")
    assert message == "bc@1: model-card.md does not match its signed digest"
    with env.open("auditor") as ws, pytest.raises(IntegrityError, match="signed digest"):
        versions.read_document(ws, "bc@1", "model-card.md")


def test_an_object_outside_the_models_zone_is_never_read(env):
    with env.open("steward") as ws:
        from aidlc.core import objects

        ref = objects.put_bytes(ws, "raw", "elsewhere", b"# card\n").ref
    trained.restate(env, "bc@1", lambda s: s["objects"].update({"model-card.md": ref}))
    message = _refused(env, lambda ws: versions.verify(ws, "bc@1"), "model.verify")
    assert message == f"the statement names an object outside models: {ref!r}"


def test_a_file_path_cannot_escape_the_model_directory(env):
    def escape(statement):
        statement["files"]["../escaped.txt"] = "0" * 64
        statement["objects"]["model/../escaped.txt"] = statement["objects"]["model.sig"]

    trained.restate(env, "bc@1", escape)
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "bc@1: a file path escapes the model directory"


def test_a_model_sig_by_another_key_fails_though_every_digest_agrees(env, tmp_path):
    with env.open("approver") as ws:
        versions.export(ws, "bc@1", tmp_path / "export")
    other = signing.sign_model(tmp_path / "export" / "model", signing.new_signing_key())
    ref = trained.store(env, "bc/v1/model.sig", other)

    def resign(statement):
        statement["objects"]["model.sig"] = ref
        statement["documents"]["model.sig"] = versions._sha256(other)

    trained.restate(env, "bc@1", resign)
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "model was signed with another key than the one given"


def test_a_statement_listing_fewer_files_than_the_signature_fails(env):
    def drop(statement):
        del statement["files"]["aidlc-model.json"]

    trained.restate(env, "bc@1", drop)
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "model lacks signed files: aidlc-model.json"


def test_a_model_digest_other_than_the_signed_files_fails(env):
    with env.open("admin") as ws, ws.db.transaction() as session:
        session.execute(
            update(ModelVersionRecord)
            .where(ModelVersionRecord.version == 1)
            .values(model_digest="0" * 64)
        )
    trained.restate(env, "bc@1", lambda s: s.update(model_digest="0" * 64))
    message = _refused(env, lambda ws: versions.load_model(ws, "bc@1"), "model.load")
    assert message == "bc@1: the signature covers other files"


def test_serving_loads_only_approved_versions(env):
    with env.open("inference") as ws, pytest.raises(IntegrityError) as caught:
        versions.load_model(ws, "bc@1", require_approved=True)
    assert caught.value.message == "bc@1 is registered, not approved; it cannot be served"
    with env.open("approver") as ws:
        approval.approve(ws, "bc@1", reason="ok")
    with env.open("inference") as ws:
        assert versions.load_model(ws, "bc@1", require_approved=True).bundle.task
    with env.open("auditor") as ws:
        loads = [e for e in ws.audit.events(action="model.load") if e.outcome == "ok"]
        digest = versions.resolve(ws, "bc@1").statement["model_digest"]
    assert [(e.actor, e.resource, e.details) for e in loads] == [
        ("inference", "model:bc@1", {"model_digest": digest})
    ]


def test_descriptive_documents_are_readable_without_the_model(env):
    with env.open("auditor") as ws:
        card = versions.read_document(ws, "bc@1", "model-card.md")
        assert json.loads(versions.read_document(ws, "bc@1", "baseline.json"))
        with pytest.raises(PermissionDenied):
            versions.read_document(ws, "bc@1", "model.sig")
        with pytest.raises(PermissionDenied):
            versions.load_model(ws, "bc@1")
        with pytest.raises(UsageError, match=r"^unknown document 'weights'; one of model\.sig, "):
            versions.read_document(ws, "bc@1", "weights")
    assert card.startswith(b"#")
    with env.open("approver") as ws:
        sig = versions.read_document(ws, "bc@1", "model.sig")
    assert signing.signed_files(sig) == versions_files(env)


def versions_files(env) -> dict[str, str]:
    with env.open("approver") as ws:
        return dict(versions.resolve(ws, "bc@1").statement["files"])


def test_export_writes_a_verified_version_into_an_empty_directory(env, tmp_path):
    with env.open("approver") as ws:
        written = versions.export(ws, "bc@1", tmp_path / "out")
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        with pytest.raises(Conflict, match="is not empty"):
            versions.export(ws, "bc@1", tmp_path / "full")
        pem = versions.public_key_pem(ws)
    assert written == [
        "model/",
        "model.sig",
        "model-card.md",
        "model-card.json",
        "ml-bom.json",
        "signing-key.pub.pem",
    ]
    out = tmp_path / "out"
    assert (out / "signing-key.pub.pem").read_bytes() == pem
    sig = (out / "model.sig").read_bytes()
    assert signing.verify_model(out / "model", sig, pem) == versions_files(env)
    with env.open("auditor") as ws:
        [event] = [e for e in ws.audit.events(action="model.export")]
    assert event.details == {"files": written}
