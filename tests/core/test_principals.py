"""Managing principals and tokens: who may, what is refused, what the audit log and an access
review show (core.principals)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from aidlc.core import principals
from aidlc.core.meta import TokenRecord
from aidlc.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied


@pytest.fixture
def admin(tmp_path: Any) -> Iterator[Any]:
    """A fresh SQLite workspace acting as its first admin."""
    from aidlc.core.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


def _events(ws: Any, action: str) -> list[Any]:
    """The events of `action` after the workspace was set up (its first admin is the system's)."""
    return [e for e in ws.audit.events(action=action) if e.actor != "system"]


def _set_token(ws: Any, token_id: str, **values: Any) -> None:
    with ws.db.transaction() as session:
        session.execute(update(TokenRecord).where(TokenRecord.id == token_id).values(**values))


def test_adding_a_principal_records_who_what_and_gives_a_working_token(admin):
    info, token = principals.add(admin, "carol", ["trainer", "monitor"], kind="service")
    assert (info.name, info.kind, info.roles, info.disabled) == (
        "carol",
        "service",
        ("monitor", "trainer"),
        False,
    )
    assert (info.created_by, info.active_tokens, info.last_used_at) == ("admin", 1, None)
    assert admin.identify(token).roles == {"trainer", "monitor"}
    (created,) = _events(admin, "principal.create")
    assert (created.actor, created.resource, created.outcome) == ("admin", "principal:carol", "ok")
    assert created.details == {"roles": ["monitor", "trainer"], "kind": "service"}
    (issued,) = _events(admin, "token.create")
    assert issued.details == {"principal": "carol", "label": "first token", "expires_days": 90}
    (listed,) = principals.list_tokens(admin, "carol")
    assert issued.resource == f"token:{listed.id}"
    assert listed.label == "first token" and listed.principal == "carol"
    assert listed.expires_at is not None
    assert timedelta(days=89) < listed.expires_at - datetime.now(UTC) <= timedelta(days=90)


def test_a_principal_is_a_user_unless_told_otherwise(admin):
    info, _ = principals.add(admin, "dave", ["auditor"])
    assert info.kind == "user"
    with pytest.raises(InvalidInput, match="kind must be one of user, service"):
        principals.add(admin, "erin", ["auditor"], kind="robot")


def test_names_roles_and_duplicates_are_refused_before_anything_is_written(admin):
    principals.add(admin, "dave", ["auditor"])
    with pytest.raises(Conflict, match="a principal named 'dave' already exists"):
        principals.add(admin, "dave", ["trainer"])
    with pytest.raises(InvalidInput, match="invalid principal name"):
        principals.add(admin, "Dave", ["trainer"])
    with pytest.raises(InvalidInput, match="at least one role"):
        principals.add(admin, "erin", [])
    assert [p.name for p in principals.list_all(admin)] == ["admin", "dave"]
    assert len(_events(admin, "principal.create")) == 1


def test_token_lifetimes_default_to_the_policy_and_zero_means_never(admin):
    principals.add(admin, "dave", ["auditor"], expires_days=0)
    principals.create_token(admin, "dave", label="one day", expires_days=1)
    principals.create_token(admin, "dave", label="policy")
    principals.create_token(admin, "dave", label="minus", expires_days=-5)
    issued = {e.details["label"]: e.details["expires_days"] for e in _events(admin, "token.create")}
    assert issued == {"first token": None, "one day": 1, "policy": 90, "minus": None}
    expires = {t.label: t.expires_at for t in principals.list_tokens(admin, "dave")}
    assert expires["first token"] is None and expires["minus"] is None
    now = datetime.now(UTC)
    assert timedelta(hours=23) < expires["one day"] - now <= timedelta(days=1)
    assert timedelta(days=89) < expires["policy"] - now <= timedelta(days=90)


def test_a_token_label_is_kept_to_100_characters(admin):
    principals.add(admin, "dave", ["auditor"])
    info, _ = principals.create_token(admin, "dave", label="L" * 150)
    assert (info.label, info.principal) == ("L" * 100, "dave")
    assert _events(admin, "token.create")[-1].details["label"] == "L" * 100


def test_only_an_admin_manages_principals_and_the_denial_names_the_target(admin):
    _, token = principals.add(admin, "tess", ["trainer"])
    trainer = admin.acting_as(admin.identify(token))
    for attempt in (
        lambda: principals.add(trainer, "m" * 150, ["admin"]),
        lambda: principals.list_all(trainer),
        lambda: principals.disable(trainer, "d" * 150),
        lambda: principals.create_token(trainer, "c" * 150),
        lambda: principals.list_tokens(trainer),
        lambda: principals.revoke_token(trainer, "f" * 60),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    denied = [
        (e.actor, e.resource) for e in _events(admin, "principal.manage") if e.outcome == "denied"
    ]
    assert denied == [
        ("tess", "principal:" + "m" * 100),
        ("tess", "principals"),
        ("tess", "principal:" + "d" * 100),
        ("tess", "principal:" + "c" * 100),
        ("tess", "tokens"),
        ("tess", "token:" + "f" * 40),
    ]
    assert [p.name for p in principals.list_all(admin)] == ["admin", "tess"]


def test_disabling_stops_every_token_and_is_audited_once(admin):
    _, token = principals.add(admin, "dave", ["monitor"])
    principals.disable(admin, "dave")
    principals.disable(admin, "dave")
    (event,) = _events(admin, "principal.disable")
    assert (event.actor, event.resource) == ("admin", "principal:dave")
    with pytest.raises(AuthenticationFailed, match="disabled"):
        admin.identify(token)
    (dave,) = [p for p in principals.list_all(admin) if p.name == "dave"]
    assert dave.disabled is True
    with pytest.raises(Conflict, match="principal dave is disabled"):
        principals.create_token(admin, "dave")


def test_nobody_disables_themself_and_unknown_names_are_not_found(admin):
    with pytest.raises(Conflict) as yourself:
        principals.disable(admin, "admin")
    assert yourself.value.message == "you cannot disable yourself; ask another admin"
    with pytest.raises(NotFound) as long_name:
        principals.disable(admin, "g" * 150)
    assert long_name.value.message == f"no principal named {'g' * 100!r}"
    with pytest.raises(NotFound, match="no principal named 'ghost'"):
        principals.disable(admin, "ghost")
    with pytest.raises(NotFound, match="no principal named 'ghost'"):
        principals.create_token(admin, "ghost")
    assert principals.list_all(admin)[0].disabled is False


def test_revoking_a_token_stops_it_once_and_for_all(admin):
    _, token = principals.add(admin, "dave", ["monitor"])
    info, other = principals.create_token(admin, "dave", label="ci")
    principals.revoke_token(admin, info.id)
    (revoked,) = [t for t in principals.list_tokens(admin, "dave") if t.id == info.id]
    assert revoked.revoked_at is not None
    principals.revoke_token(admin, info.id)
    (again,) = [t for t in principals.list_tokens(admin, "dave") if t.id == info.id]
    assert again.revoked_at == revoked.revoked_at
    (event,) = _events(admin, "token.revoke")
    assert (event.actor, event.resource) == ("admin", f"token:{info.id}")
    with pytest.raises(AuthenticationFailed, match="revoked"):
        admin.identify(other)
    assert admin.identify(token).name == "dave"
    with pytest.raises(NotFound, match="no token with id 'nope'"):
        principals.revoke_token(admin, "nope")
    with pytest.raises(NotFound) as long_id:
        principals.revoke_token(admin, "n" * 60)
    assert long_id.value.message == f"no token with id {'n' * 40!r}"


def test_the_access_review_counts_only_usable_tokens_and_the_latest_use(admin, monkeypatch):
    now = datetime.now(UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return now

    monkeypatch.setattr(principals, "datetime", Frozen)
    principals.add(admin, "erin", ["auditor"])
    principals.add(admin, "dave", ["monitor"])
    tokens = {t.label: t.id for t in principals.list_tokens(admin, "dave")}
    for label in ("revoked", "expired", "later", "never"):
        tokens[label] = principals.create_token(admin, "dave", label=label)[0].id
    principals.revoke_token(admin, tokens["revoked"])
    _set_token(admin, tokens["expired"], expires_at=now)  # expired at this very instant
    _set_token(admin, tokens["never"], expires_at=None)
    _set_token(admin, tokens["first token"], last_used_at=now - timedelta(days=3))
    _set_token(admin, tokens["later"], last_used_at=now - timedelta(days=1))
    _set_token(admin, tokens["revoked"], last_used_at=now - timedelta(days=2))
    review = {p.name: p for p in principals.list_all(admin)}
    assert list(review) == ["admin", "dave", "erin"]
    assert review["dave"].active_tokens == 3  # first token, later, never
    assert review["dave"].last_used_at == now - timedelta(days=1)
    assert (review["erin"].active_tokens, review["erin"].last_used_at) == (1, None)
    listed = {t.label: t.last_used_at for t in principals.list_tokens(admin, "dave")}
    assert listed["later"] == now - timedelta(days=1) and listed["expired"] is None


def test_tokens_are_listed_oldest_first_for_one_principal_or_all(admin):
    principals.add(admin, "dave", ["monitor"])
    principals.add(admin, "erin", ["auditor"])
    principals.create_token(admin, "dave", label="second")
    principals.create_token(admin, "erin")
    every = principals.list_tokens(admin)
    assert [(t.principal, t.label) for t in every][1:] == [
        ("dave", "first token"),
        ("erin", "first token"),
        ("dave", "second"),
        ("erin", ""),
    ]
    assert [t.label for t in principals.list_tokens(admin, "dave")] == ["first token", "second"]
    first = principals.list_tokens(admin, "dave")[0]
    _set_token(admin, first.id, created_at=datetime.now(UTC) + timedelta(days=1))
    assert [t.label for t in principals.list_tokens(admin, "dave")] == ["second", "first token"]


def test_access_review_entries_serialise_for_json_output(admin):
    principals.add(admin, "dave", ["monitor", "auditor"])
    (dave,) = [p for p in principals.list_all(admin) if p.name == "dave"]
    assert dave.to_json() == {
        "name": "dave",
        "kind": "user",
        "roles": ["auditor", "monitor"],
        "disabled": False,
        "created_at": dave.created_at.isoformat(),
        "created_by": "admin",
        "last_used_at": None,
        "active_tokens": 1,
    }
    used = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    assert (
        principals.PrincipalInfo(**{**dave.__dict__, "last_used_at": used}).to_json()[
            "last_used_at"
        ]
        == used.isoformat()
    )
    (token,) = principals.list_tokens(admin, "dave")
    assert token.to_json() == {
        "id": token.id,
        "principal": "dave",
        "label": "first token",
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else "missing",
        "revoked_at": None,
        "last_used_at": None,
    }
    revoked = principals.TokenInfo(**{**token.__dict__, "revoked_at": used, "last_used_at": used})
    assert (revoked.to_json()["revoked_at"], revoked.to_json()["last_used_at"]) == (
        used.isoformat(),
        used.isoformat(),
    )
