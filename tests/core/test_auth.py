"""Default deny and least privilege: every role and every action, as DESIGN.md's role table says."""

from __future__ import annotations

import io

import pytest

from aidlc.core import auth, objects, principals
from aidlc.errors import AuthenticationFailed, PermissionDenied

# Written out by hand from the role table of DESIGN.md, independently of auth.GRANTS.
EXPECTED: dict[str, set[str]] = {
    "admin": {
        "principal.manage",
        "key.manage",
        "config.manage",
        "retention.manage",
        "retention.apply",
        "legal_hold.manage",
        "posture.read",
        "backup.create",
        "backup.restore",
    },
    "data-steward": {
        "data.ingest",
        "data.validate",
        "object.read:raw",
        "object.write:raw",
        "object.delete:raw",
        "object.read:validated",
        "object.write:validated",
        "object.delete:validated",
        "object.read:quarantine",
        "object.write:quarantine",
        "object.delete:quarantine",
        "object.delete:predictions",
        "object.write:reports",
        "alert.read",
        "subject.erase",
    },
    "trainer": {
        "object.read:validated",
        "train.run",
        "model.register",
        "object.write:models",
        "object.read:models",
        "model.read",
        "run.read",
        "lineage.read",
    },
    "approver": {
        "model.approve",
        "model.reject",
        "model.alias",
        "model.deploy",
        "object.read:models",
        "model.read",
        "run.read",
        "monitor.read",
        "retrain.policy",  # what a breach sets in motion is an approver's decision
        "lineage.read",
        "compliance.read",  # an approver answers for what reaches production
    },
    "inference": {
        "object.read:models",
        "model.read",
        "model.predict",
        "object.write:predictions",
        "deployment.conclude",
        "kpi.write",  # applications push business KPIs with their inference token
    },
    "monitor": {
        "object.read:predictions",
        "object.write:reports",
        "object.read:reports",
        "alert.send",
        "alert.read",
        "model.read",
        "monitor.run",
        "monitor.read",
        "retrain.request",
        "kpi.write",
        "run.read",  # to price a version's training run in the cost report
        "lineage.read",
    },
    "auditor": {
        "audit.read",
        "audit.verify",
        "lineage.read",
        "compliance.read",
        "object.read:reports",
        "alert.read",
        "model.read",
        "run.read",
        "monitor.read",
        "posture.read",
    },
}

ROLE_OF = {
    "admin": "admin",
    **{
        "steward": "data-steward",
        "trainer": "trainer",
        "approver": "approver",
        "inference": "inference",
        "monitor": "monitor",
        "auditor": "auditor",
    },
}


def test_the_grant_table_matches_the_design_role_table():
    assert set(auth.ROLES) == set(EXPECTED)
    for role in auth.ROLES:
        granted = {a for a in auth.ACTIONS if auth.allowed({role}, a)}
        assert granted == EXPECTED[role], role


def test_auditor_changes_nothing():
    writes = [a for a in auth.ACTIONS if auth.allowed({"auditor"}, a)]
    assert all(a.endswith((".read", ".verify")) or a.startswith("object.read:") for a in writes)


def test_unknown_action_is_denied_for_every_role():
    assert not auth.allowed(set(auth.ROLES), "anything.else")


def test_every_role_and_action_is_allowed_or_denied_and_denials_are_audited(env):
    denied = 0
    for user, role in ROLE_OF.items():
        ws = env.open(user)
        for action in auth.ACTIONS:
            if action in EXPECTED[role]:
                assert ws.authorize(action, "r").name == user
            else:
                with pytest.raises(PermissionDenied):
                    ws.authorize(action, "r")
                denied += 1
        ws.close()
    auditor = env.open("auditor")
    events = auditor.audit.events()
    denials = [e for e in events if e.outcome == "denied"]
    assert len(denials) == denied
    assert {(e.actor, e.action) for e in denials} == {
        (u, a) for u, r in ROLE_OF.items() for a in auth.ACTIONS if a not in EXPECTED[r]
    }
    assert auditor.audit.verify().ok


def test_service_functions_check_permission_before_doing_anything(env):
    steward = env.open("steward")
    trainer = env.open("trainer")
    with pytest.raises(PermissionDenied):
        principals.add(steward, "mallory", ["admin"])
    with pytest.raises(PermissionDenied):
        objects.put(trainer, "raw", "x.csv", io.BytesIO(b"a,b\n"))
    info = objects.put(steward, "raw", "x.csv", io.BytesIO(b"a,b\n"))
    assert info.version == 1
    with pytest.raises(PermissionDenied):
        objects.get_bytes(trainer, "raw", "x.csv")
    admin = env.open("admin")
    assert "mallory" not in {p.name for p in principals.list_all(admin)}
    assert objects.list_objects(steward, "raw")[0].object_id == "x.csv"


def test_tokens_are_random_hashed_and_shown_once(env):
    admin = env.open("admin")
    _, token = principals.add(admin, "carol", ["trainer"])
    assert token.startswith("aidlc_") and len(token) >= 43 + 6
    from sqlalchemy import select

    from aidlc.core.meta import TokenRecord

    with admin.db.reading() as s:
        hashes = list(s.execute(select(TokenRecord.token_hash)).scalars())
    assert auth.hash_token(token) in hashes
    assert all(token not in h for h in hashes)


def test_revoked_expired_and_disabled_tokens_fail(env):
    from datetime import UTC, datetime, timedelta

    from aidlc.core.meta import TokenRecord

    admin = env.open("admin")
    _, token = principals.add(admin, "dave", ["monitor"])
    tokens = principals.list_tokens(admin, "dave")
    assert env.open("admin") and len(tokens) == 1
    principals.revoke_token(admin, tokens[0].id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        type(admin).open(env.root, token=token)

    _, token2 = principals.create_token(admin, "dave", label="ci")
    with admin.db.transaction() as s:
        rec = s.query(TokenRecord).filter(TokenRecord.label == "ci").one()
        rec.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        type(admin).open(env.root, token=token2)

    _, token3 = principals.create_token(admin, "dave")
    principals.disable(admin, "dave")
    with pytest.raises(AuthenticationFailed, match="disabled"):
        type(admin).open(env.root, token=token3)
    with pytest.raises(AuthenticationFailed, match="unknown"):
        type(admin).open(env.root, token="aidlc_" + "x" * 43)

    denials = [
        e
        for e in env.open("auditor").audit.events(action="auth.authenticate")
        if e.outcome == "denied"
    ]
    assert len(denials) == 4
    assert all(token not in str(e.details) for e in denials)


def test_roles_may_repeat_and_unknown_roles_are_refused(env):
    from aidlc.errors import InvalidInput

    admin = env.open("admin")
    info, _ = principals.add(admin, "erin", ["trainer", "monitor"])
    assert info.roles == ("monitor", "trainer")
    with pytest.raises(InvalidInput, match="unknown role"):
        principals.add(admin, "frank", ["root"])
    with pytest.raises(InvalidInput):
        principals.add(admin, "Bad Name!", ["trainer"])


def test_last_used_time_is_recorded(env):
    env.open("monitor")
    admin = env.open("admin")
    monitor = next(p for p in principals.list_all(admin) if p.name == "monitor")
    assert monitor.last_used_at is not None


def test_acting_as_shares_the_workspace_and_checks_the_other_principal(tmp_path):
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.errors import PermissionDenied

    ws, _ = Workspace.init(tmp_path / "ws")
    _, auditor_token = principals.add(ws, "aud", roles=["auditor"])
    auditor = ws.identify(auditor_token)
    twin = ws.acting_as(auditor)
    assert (twin.db is ws.db, twin.principal.name, ws.principal.name) == (True, "aud", "admin")
    with pytest.raises(PermissionDenied):
        twin.authorize("principal.manage", "principal:x")
    twin.close()  # the copy does not dispose the shared database
    assert ws.audit.verify().ok is True
    denied = [e for e in ws.audit.events() if e.outcome == "denied"]
    assert [(e.actor, e.action) for e in denied] == [("aud", "principal.manage")]
    ws.close()
