"""The workspace's authentication: resolving a token, re-checking it later, the permission check
and acting for another caller; every refusal audited with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from aidlc.core import auth, principals, workspace
from aidlc.core.meta import PrincipalRecord, TokenRecord
from aidlc.core.workspace import Workspace, credential_problem
from aidlc.errors import AuthenticationFailed, PermissionDenied

# Before any token made today expires: the tokens themselves are issued on the real clock.
NOW = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return NOW


@pytest.fixture
def ws(tmp_path: Any) -> Iterator[Workspace]:
    """A fresh SQLite workspace acting as its first admin."""
    opened, _ = Workspace.init(tmp_path / "ws")
    yield opened
    opened.close()


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The workspace's clock stopped at NOW."""
    monkeypatch.setattr(workspace, "datetime", _FrozenDatetime)
    return NOW


def _token(ws: Workspace, name: str, roles: list[str]) -> tuple[str, str]:
    """A new principal's token value and public id."""
    _, value = principals.add(ws, name, roles)
    (info,) = principals.list_tokens(ws, name)
    return value, info.id


def _set_token(ws: Workspace, token_id: str, **values: Any) -> None:
    with ws.db.transaction() as session:
        session.execute(update(TokenRecord).where(TokenRecord.id == token_id).values(**values))


def _last_used(ws: Workspace, token_id: str) -> datetime | None:
    with ws.db.reading() as session:
        return session.execute(
            select(TokenRecord.last_used_at).where(TokenRecord.id == token_id)
        ).scalar_one()


def _denials(ws: Workspace, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.actor, e.resource, e.details)
        for e in ws.audit.events(action=action)
        if e.outcome == "denied"
    ]


# -- credential_problem: the rule a server and the console re-check with -----------------------


def _records(**token: Any) -> tuple[TokenRecord, PrincipalRecord]:
    owner = PrincipalRecord(id=7, name="dave", kind="user", disabled=False, created_by="admin")
    fields = {"id": "t1", "principal_id": 7, "revoked_at": None, "expires_at": None, **token}
    return TokenRecord(token_hash="h", label="", **fields), owner


def test_a_live_token_of_an_enabled_principal_has_no_problem():
    token, owner = _records(expires_at=NOW + timedelta(microseconds=1))
    assert credential_problem(token, owner, NOW) is None


def test_a_token_gone_or_moved_to_another_principal_no_longer_exists():
    token, owner = _records()
    moved, _ = _records(principal_id=8)
    for args in ((None, owner), (token, None), (None, None), (moved, owner)):
        assert credential_problem(*args, NOW) == "its token no longer exists"


def test_revoked_expired_and_disabled_are_each_named():
    revoked, owner = _records(revoked_at=NOW - timedelta(days=1))
    assert credential_problem(revoked, owner, NOW) == "token t1 was revoked"
    expired, _ = _records(expires_at=NOW)
    assert credential_problem(expired, owner, NOW) == "token t1 expired on 2020-06-01 12:00 UTC"
    live, _ = _records()
    owner.disabled = True
    assert credential_problem(live, owner, NOW) == "principal dave is disabled"


# -- identify and authenticate --------------------------------------------------------------------


def test_a_token_resolves_to_its_principal_and_records_its_use(ws, frozen):
    value, token_id = _token(ws, "dave", ["trainer", "monitor"])
    with ws.db.reading() as session:
        dave_id = session.execute(
            select(PrincipalRecord.id).where(PrincipalRecord.name == "dave")
        ).scalar_one()
    found = ws.identify(value)
    assert found == auth.Principal(
        id=dave_id,
        name="dave",
        kind="user",
        roles=frozenset({"trainer", "monitor"}),
        token_id=token_id,
    )
    assert ws.principal is not None and ws.principal.name == "admin"  # identify acts as nobody
    assert _last_used(ws, token_id) == NOW
    assert ws.authenticate(value) == found and ws.principal == found


def test_last_use_is_written_at_most_once_a_minute(ws, frozen):
    value, token_id = _token(ws, "dave", ["monitor"])
    minute_ago = NOW - timedelta(minutes=1)
    _set_token(ws, token_id, last_used_at=minute_ago)
    ws.identify(value)
    assert _last_used(ws, token_id) == minute_ago
    _set_token(ws, token_id, last_used_at=minute_ago - timedelta(microseconds=1))
    ws.identify(value)
    assert _last_used(ws, token_id) == NOW


HINT = "check AIDLC_TOKEN or your credentials file; an admin can issue a new token"


def test_malformed_and_unknown_tokens_are_refused_and_audited_as_anonymous(ws):
    for value, reason in (
        ("not-a-token", "malformed token"),
        ("aidlc_" + "x" * 43, "unknown token"),
    ):
        with pytest.raises(AuthenticationFailed) as refused:
            ws.identify(value)
        assert (refused.value.message, refused.value.hint) == (
            f"authentication failed: {reason}",
            HINT,
        )
    assert _denials(ws, "auth.authenticate") == [
        ("anonymous", "token", {"reason": "malformed token"}),
        ("anonymous", "token", {"reason": "unknown token"}),
    ]


def test_revoked_expired_and_disabled_tokens_are_refused_in_their_owners_name(ws, frozen):
    revoked, revoked_id = _token(ws, "rita", ["monitor"])
    expired, expired_id = _token(ws, "eric", ["monitor"])
    disabled, _ = _token(ws, "dora", ["monitor"])
    _set_token(ws, revoked_id, revoked_at=NOW - timedelta(days=1))
    _set_token(ws, expired_id, expires_at=NOW)
    principals.disable(ws, "dora")
    reasons = {
        revoked: f"token {revoked_id} was revoked",
        expired: f"token {expired_id} expired on 2020-06-01 12:00 UTC",
        disabled: "principal dora is disabled",
    }
    for value, reason in reasons.items():
        with pytest.raises(AuthenticationFailed) as refused:
            ws.authenticate(value)
        assert refused.value.message == f"authentication failed: {reason}"
        assert ws.principal is not None and ws.principal.name == "admin"
    assert _denials(ws, "auth.authenticate") == [
        ("rita", "token", {"reason": reasons[revoked]}),
        ("eric", "token", {"reason": reasons[expired]}),
        ("dora", "token", {"reason": reasons[disabled]}),
    ]
    _set_token(ws, expired_id, expires_at=NOW + timedelta(microseconds=1))
    assert ws.identify(expired).name == "eric"


def test_a_token_whose_principal_vanished_is_unknown(ws):
    import sqlite3

    value, _ = _token(ws, "gone", ["monitor"])
    # The foreign key forbids this; a hand-edited or half-restored database need not keep it.
    with sqlite3.connect(ws.db.engine.url.database) as raw:
        raw.execute(
            "DELETE FROM principal_roles WHERE principal_id IN "
            "(SELECT id FROM principals WHERE name = 'gone')"
        )
        raw.execute("DELETE FROM principals WHERE name = 'gone'")
    with pytest.raises(AuthenticationFailed) as refused:
        ws.identify(value)
    assert refused.value.message == "authentication failed: unknown token"
    assert _denials(ws, "auth.authenticate") == [
        ("anonymous", "token", {"reason": "unknown token"})
    ]


# -- recheck ---------------------------------------------------------------------------------


def test_recheck_keeps_a_good_token_and_drops_a_revoked_one(ws):
    value, token_id = _token(ws, "sam", ["inference"])
    server = Workspace.open(ws.root, token=value)
    try:
        assert server.recheck().name == "sam"
        assert server.principal is not None
        principals.revoke_token(ws, token_id)
        with pytest.raises(AuthenticationFailed) as refused:
            server.recheck()
        assert (refused.value.message, refused.value.hint) == (
            f"authentication failed: token {token_id} was revoked",
            "an admin can issue a new token",
        )
        assert server.principal is None
    finally:
        server.close()
    assert _denials(ws, "auth.recheck") == [
        ("sam", "token", {"reason": f"token {token_id} was revoked"})
    ]


def test_recheck_without_a_token_fails(ws):
    for principal in (None, auth.SYSTEM):
        twin = ws.acting_as(principal)
        with pytest.raises(AuthenticationFailed) as refused:
            twin.recheck()
        assert refused.value.message == "no token given"
    assert _denials(ws, "auth.recheck") == []


def test_recheck_notices_an_expiry_with_the_same_rule(ws):
    value, token_id = _token(ws, "sam", ["inference"])
    ws.authenticate(value)
    _set_token(ws, token_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed, match=f"token {token_id} expired on"):
        ws.recheck()


# -- authorize and acting_as -------------------------------------------------------------------


def test_authorize_returns_the_caller_a_role_grants_the_action(ws):
    assert ws.authorize("principal.manage", "principals") == ws.principal
    value, _ = _token(ws, "ian", ["inference"])
    caller = ws.identify(value)
    assert ws.authorize("model.predict", "model:bc", principal=caller) == caller
    with pytest.raises(PermissionDenied):
        ws.authorize("model.predict", "model:bc")


def test_a_denial_is_audited_with_the_roles_and_says_which_role_would_do(ws):
    value, _ = _token(ws, "ian", ["inference", "monitor"])
    caller = ws.identify(value)
    with pytest.raises(PermissionDenied) as refused:
        ws.authorize("model.approve", "model:bc@2", principal=caller)
    assert refused.value.message == "ian may not model.approve (needs role: approver)"
    with pytest.raises(PermissionDenied) as unknown:
        ws.authorize("nothing.known", "x", principal=caller)
    assert unknown.value.message == "ian may not nothing.known (unknown action)"
    with pytest.raises(PermissionDenied, match=r"needs role: approver, auditor\)$"):
        ws.authorize("compliance.read", "x", principal=caller)
    roles = {"reason": "no role grants this action", "roles": ["inference", "monitor"]}
    assert _denials(ws, "model.approve") == [("ian", "model:bc@2", roles)]
    assert _denials(ws, "nothing.known") == [("ian", "x", roles)]
    with pytest.raises(PermissionDenied):
        ws.authorize("audit.verify", principal=caller)
    assert _denials(ws, "audit.verify") == [("ian", "", roles)]  # no resource named


def test_nobody_signed_in_is_refused_and_audited_as_anonymous(ws):
    nobody = ws.acting_as(None)
    with pytest.raises(AuthenticationFailed) as refused:
        nobody.authorize("model.read", "model:bc")
    assert (refused.value.message, refused.value.hint) == (
        "no token given",
        "set AIDLC_TOKEN or use `aidlc login`-style credentials file",
    )
    assert _denials(ws, "model.read") == [
        ("anonymous", "model:bc", {"reason": "not authenticated"})
    ]


def test_a_copy_acting_for_another_caller_leaves_the_original_as_it_was(ws):
    value, _ = _token(ws, "aud", ["auditor"])
    auditor = ws.identify(value)
    twin = ws.acting_as(auditor)
    assert twin is not ws and twin.db is ws.db
    assert (twin.principal, ws.principal.name) == (auditor, "admin")
    twin.close()
    assert twin._borrowed and not ws._borrowed
