"""Service functions for principals and their tokens. Each checks `principal.manage` first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from aidlc.core import auth
from aidlc.core.meta import PrincipalRecord, PrincipalRole, TokenRecord
from aidlc.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace

KINDS = ("user", "service")


@dataclass(frozen=True)
class PrincipalInfo:
    name: str
    kind: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    active_tokens: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "roles": list(self.roles),
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "active_tokens": self.active_tokens,
        }


@dataclass(frozen=True)
class TokenInfo:
    id: str
    principal: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": self.id,
            "principal": self.principal,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


def _get(session: Session, name: str) -> PrincipalRecord:
    rec = session.execute(
        select(PrincipalRecord).where(PrincipalRecord.name == name)
    ).scalar_one_or_none()
    if rec is None:
        raise NotFound(f"no principal named {name[:100]!r}")
    return rec


def _issue(
    ws: Workspace, session: Session, owner: PrincipalRecord, label: str, expires_days: int | None
) -> tuple[str, str]:
    token_id, token, digest = auth.new_token()
    session.add(
        TokenRecord(
            id=token_id,
            principal_id=owner.id,
            token_hash=digest,
            label=label[:100],
            expires_at=auth.expiry(expires_days),
        )
    )
    ws.record(
        session,
        "token.create",
        f"token:{token_id}",
        {"principal": owner.name, "label": label[:100], "expires_days": expires_days},
    )
    return token_id, token


def _ttl(ws: Workspace, expires_days: int | None) -> int | None:
    if expires_days is None:
        return ws.config.auth.token_ttl_days
    if expires_days <= 0:
        return None  # explicitly never expires; visible in access reviews
    return expires_days


def add(
    ws: Workspace,
    name: str,
    roles: list[str],
    *,
    kind: str = "user",
    expires_days: int | None = None,
) -> tuple[PrincipalInfo, str]:
    """Create a principal with `roles`; returns it and its first token (shown once)."""
    principal = ws.authorize("principal.manage", f"principal:{name[:100]}")
    auth.check_name(name)
    role_set = auth.check_roles(roles)
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    with ws.transaction() as session:
        exists = session.execute(
            select(PrincipalRecord.id).where(PrincipalRecord.name == name)
        ).first()
        if exists:
            raise Conflict(f"a principal named {name!r} already exists")
        rec = PrincipalRecord(name=name, kind=kind, created_by=principal.name)
        rec.roles = [PrincipalRole(role=r) for r in sorted(role_set)]
        session.add(rec)
        session.flush()
        ws.record(
            session,
            "principal.create",
            f"principal:{name}",
            {"roles": sorted(role_set), "kind": kind},
        )
        _, token = _issue(ws, session, rec, "first token", _ttl(ws, expires_days))
    return _info(rec, active=1), token


def _info(rec: PrincipalRecord, *, active: int, last_used: datetime | None = None) -> PrincipalInfo:
    return PrincipalInfo(
        name=rec.name,
        kind=rec.kind,
        roles=tuple(sorted(r.role for r in rec.roles)),
        disabled=rec.disabled,
        created_at=rec.created_at,
        created_by=rec.created_by,
        last_used_at=last_used,
        active_tokens=active,
    )


def list_all(ws: Workspace) -> list[PrincipalInfo]:
    """Every principal with its roles, last use and number of usable tokens."""
    ws.authorize("principal.manage", "principals")
    now = datetime.now(UTC)
    out = []
    with ws.db.reading() as session:
        for rec in session.execute(
            select(PrincipalRecord).order_by(PrincipalRecord.name)
        ).scalars():
            tokens = session.execute(
                select(TokenRecord).where(TokenRecord.principal_id == rec.id)
            ).scalars()
            active = 0
            last_used: datetime | None = None
            for t in tokens:
                if t.revoked_at is None and (t.expires_at is None or t.expires_at > now):
                    active += 1
                if t.last_used_at and (last_used is None or t.last_used_at > last_used):
                    last_used = t.last_used_at
            out.append(_info(rec, active=active, last_used=last_used))
    return out


def disable(ws: Workspace, name: str) -> None:
    """Disable a principal: its tokens stop working at once. Nobody can disable themself."""
    principal = ws.authorize("principal.manage", f"principal:{name[:100]}")
    if name == principal.name:
        raise Conflict("you cannot disable yourself; ask another admin")
    with ws.transaction() as session:
        rec = _get(session, name)
        if rec.disabled:
            return
        rec.disabled = True
        ws.record(session, "principal.disable", f"principal:{name}")


def create_token(
    ws: Workspace, name: str, *, label: str = "", expires_days: int | None = None
) -> tuple[TokenInfo, str]:
    """Issue another token for `name`; the value is returned once and stored only as a hash."""
    ws.authorize("principal.manage", f"principal:{name[:100]}")
    with ws.transaction() as session:
        rec = _get(session, name)
        if rec.disabled:
            raise Conflict(f"principal {name} is disabled")
        token_id, token = _issue(ws, session, rec, label, _ttl(ws, expires_days))
        session.flush()
        tok = session.get(TokenRecord, token_id)
        if tok is None:
            raise NotFound(f"token {token_id} vanished while it was being created")
        info = _token_info(tok, name)
    return info, token


def _token_info(tok: TokenRecord, principal: str) -> TokenInfo:
    return TokenInfo(
        id=tok.id,
        principal=principal,
        label=tok.label,
        created_at=tok.created_at,
        expires_at=tok.expires_at,
        revoked_at=tok.revoked_at,
        last_used_at=tok.last_used_at,
    )


def list_tokens(ws: Workspace, name: str | None = None) -> list[TokenInfo]:
    ws.authorize("principal.manage", "tokens")
    with ws.db.reading() as session:
        query = select(TokenRecord, PrincipalRecord.name).join(
            PrincipalRecord, PrincipalRecord.id == TokenRecord.principal_id
        )
        if name:
            query = query.where(PrincipalRecord.name == name)
        rows = session.execute(query.order_by(TokenRecord.created_at)).all()
    return [_token_info(tok, owner) for tok, owner in rows]


def revoke_token(ws: Workspace, token_id: str) -> None:
    """Revoke a token by its public id; it fails authentication from now on."""
    ws.authorize("principal.manage", f"token:{token_id[:40]}")
    with ws.transaction() as session:
        tok = session.get(TokenRecord, token_id)
        if tok is None:
            raise NotFound(f"no token with id {token_id[:40]!r}")
        if tok.revoked_at is not None:
            return
        tok.revoked_at = datetime.now(UTC)
        ws.record(session, "token.revoke", f"token:{token_id}")
