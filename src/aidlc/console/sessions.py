"""Console sign-in sessions and their CSRF tokens: the cookie holds a random id, the database only
its SHA-256; every request checks the session, its token and its principal again."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update

from aidlc.core import auth
from aidlc.core.meta import ConsoleSessionRecord, PrincipalRecord, TokenRecord
from aidlc.core.workspace import credential_problem
from aidlc.errors import AuthenticationFailed

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

COOKIE = "aidlc_console"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)
# Last-seen is written at most this often: idle expiry needs no finer clock, and a page view
# should not take the database's write lock every time.
_SEEN_RESOLUTION = timedelta(minutes=1)
_CSRF_LABEL = b"aidlc-console-csrf"


@dataclass(frozen=True)
class Signed:
    """A live session: who it acts as and the CSRF token its forms carry."""

    principal: auth.Principal
    csrf: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 keyed with the secret session id.

    >>> len(csrf_token("abc")), csrf_token("abc") == csrf_token("abd")
    (64, False)
    """
    return hmac.new(session_id.encode("utf-8", "surrogatepass"), _CSRF_LABEL, "sha256").hexdigest()


def csrf_ok(session_id: str, given: str | None) -> bool:
    """Whether `given` is the session's CSRF token (compared in constant time)."""
    return bool(given) and hmac.compare_digest(csrf_token(session_id), str(given))


def sign_in(ws: Workspace, token: str) -> tuple[str, Signed]:
    """Check `token` (a failure is audited as `auth.authenticate` and raises
    `AuthenticationFailed`), open a session for its principal and audit `console.signin`.
    Returns the new session id, for the cookie only."""
    principal = ws.identify(token)
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    acting = ws.acting_as(principal)
    with acting.transaction() as session:
        session.add(
            ConsoleSessionRecord(
                id_hash=_digest(session_id),
                principal_id=principal.id,
                token_id=principal.token_id,
                created_at=now,
                expires_at=now + ABSOLUTE,
                last_seen_at=now,
            )
        )
        acting.record(
            session,
            "console.signin",
            f"principal:{principal.name}",
            {"token": principal.token_id},
        )
    return session_id, Signed(principal, csrf_token(session_id))


def resume(ws: Workspace, session_id: str) -> Signed:
    """The live session named by the cookie value, checked again from the database: not ended,
    not idle for 30 minutes, not older than 8 hours, its token neither revoked nor expired,
    its principal not disabled. `AuthenticationFailed` otherwise (the session ends, audited
    when its credentials stopped holding)."""
    if not session_id or len(session_id) > 100:
        raise AuthenticationFailed("no console session")
    digest = _digest(session_id)
    now = datetime.now(UTC)
    problem: str | None = None
    principal: auth.Principal | None = None
    with ws.db.reading() as session:
        rec = session.get(ConsoleSessionRecord, digest)
        if rec is None or rec.ended_at is not None:
            raise AuthenticationFailed("the console session has ended; sign in again")
        token = session.get(TokenRecord, rec.token_id)
        owner = session.get(PrincipalRecord, rec.principal_id)
        seen = rec.last_seen_at
        if rec.expires_at <= now:
            problem = "the session reached its 8-hour limit"
        elif now - rec.last_seen_at > IDLE:
            problem = "the session was idle for more than 30 minutes"
        else:
            problem = credential_problem(token, owner, now)
        if problem is None and token is not None and owner is not None:
            principal = auth.Principal(
                id=owner.id,
                name=owner.name,
                kind=owner.kind,
                roles=frozenset(r.role for r in owner.roles),
                token_id=token.id,
            )
        actor = owner.name if owner is not None else "anonymous"
    if principal is None:
        _end(ws, digest, now)
        ws.audit.record(
            actor=actor,
            action="console.session",
            resource="console",
            outcome="denied",
            details={"reason": problem},
        )
        raise AuthenticationFailed(f"the console session ended: {problem}; sign in again")
    if now - seen > _SEEN_RESOLUTION:
        with ws.db.transaction() as session:
            session.execute(
                update(ConsoleSessionRecord)
                .where(ConsoleSessionRecord.id_hash == digest)
                .values(last_seen_at=now)
            )
    return Signed(principal, csrf_token(session_id))


def _end(ws: Workspace, digest: str, now: datetime) -> None:
    with ws.db.transaction() as session:
        session.execute(
            update(ConsoleSessionRecord)
            .where(ConsoleSessionRecord.id_hash == digest, ConsoleSessionRecord.ended_at.is_(None))
            .values(ended_at=now)
        )


def sign_out(ws: Workspace, session_id: str, principal: auth.Principal) -> None:
    """End the session and audit `console.signout`."""
    acting = ws.acting_as(principal)
    with acting.transaction() as session:
        session.execute(
            update(ConsoleSessionRecord)
            .where(
                ConsoleSessionRecord.id_hash == _digest(session_id),
                ConsoleSessionRecord.ended_at.is_(None),
            )
            .values(ended_at=datetime.now(UTC))
        )
        acting.record(session, "console.signout", f"principal:{principal.name}")
