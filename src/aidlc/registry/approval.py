"""Approval, rejection and alias moves, with separation of duties and a complete alias history.

Whoever trained or registered a version cannot approve it; a version whose quality gates failed,
or whose signature does not verify, cannot be approved; only an approved version can become
`staging` or `production`. Every move is kept, so `history` can say which version held an alias
at any past moment, who moved it and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from aidlc.core.meta import AliasEventRecord, ApprovalRecord, ModelAliasRecord
from aidlc.errors import Conflict, InvalidInput, PermissionDenied, UsageError, ValidationFailed
from aidlc.registry import versions
from aidlc.registry.versions import ALIASES, ModelVersion

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

_GUARDED = ("staging", "production")


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("give a --reason: approvals, rejections and alias moves are explained")
    if len(reason) > 2000:
        raise InvalidInput("a reason is at most 2,000 characters")
    return reason


def _check_alias(alias: str) -> str:
    if alias not in ALIASES:
        raise UsageError(f"unknown alias {alias[:40]!r}; aliases are {', '.join(ALIASES)}")
    return alias


def _deny(ws: Workspace, action: str, resource: str, why: str, error: type[Exception]) -> None:
    """Audit a refused decision, then raise `error` saying why."""
    actor = ws.principal.name if ws.principal else "anonymous"
    ws.audit.record(
        actor=actor, action=action, resource=resource, outcome="denied", details={"reason": why}
    )
    raise error(why)


def approve(
    ws: Workspace,
    ref: str,
    *,
    to: str = "production",
    reason: str,
    accept_in_sample: bool = False,
) -> ModelVersion:
    """Approve a version and point alias `to` (`staging` or `production`) at it.

    An imported version whose metrics are in-sample (computed on its own training data) is
    approved only with `accept_in_sample`, which the audit event records."""
    principal = ws.authorize("model.approve", f"model:{ref[:100]}")
    reason = _reason(reason)
    if to not in _GUARDED:
        raise UsageError(f"approve --to staging or production, not {to[:40]!r}")
    version = versions.resolve(ws, ref)
    resource = f"model:{version.ref}"
    if principal.name in (version.trained_by, version.registered_by):
        role = "trained" if principal.name == version.trained_by else "registered"
        _deny(
            ws,
            "model.approve",
            resource,
            f"{principal.name} {role} {version.ref} and cannot approve it (separation of duties)",
            PermissionDenied,
        )
    if version.status == "rejected":
        _deny(ws, "model.approve", resource, f"{version.ref} was rejected", Conflict)
    if not version.gates_passed:
        failed = [g["text"] for g in version.statement.get("gates", []) if not g.get("passed")]
        _deny(
            ws,
            "model.approve",
            resource,
            f"{version.ref} failed its quality gates ({'; '.join(failed) or 'see the card'})",
            ValidationFailed,
        )
    in_sample = bool((version.statement.get("evaluation") or {}).get("in_sample"))
    if in_sample and not accept_in_sample:
        _deny(
            ws,
            "model.approve",
            resource,
            f"{version.ref}'s metrics are in-sample: aidlc computed them on the data it was "
            "trained on, so they are optimistic; approve with --accept-in-sample to accept that",
            ValidationFailed,
        )
    versions.verify(ws, version.ref)  # refuses (audited, alerted) when it does not verify
    with ws.transaction() as session:
        model, rec = versions.version_record(session, version.name, version.version)
        rec.status = "approved"
        session.add(
            ApprovalRecord(
                version_id=rec.id,
                decision="approved",
                target=to,
                reason=reason,
                created_by=principal.name,
            )
        )
        details: dict[str, Any] = {"to": to, "reason": reason[:500]}
        if in_sample:
            details["accepted_in_sample"] = True
        ws.record(session, "model.approve", resource, details)
        versions.move_alias(ws, session, model, to, version.version, reason, principal.name)
    return versions.resolve(ws, version.ref)


def reject(ws: Workspace, ref: str, *, reason: str) -> ModelVersion:
    """Reject a version: it can never be approved, and leaves `candidate` and `staging`."""
    principal = ws.authorize("model.reject", f"model:{ref[:100]}")
    reason = _reason(reason)
    version = versions.resolve(ws, ref)
    resource = f"model:{version.ref}"
    if "production" in version.aliases:
        _deny(
            ws,
            "model.reject",
            resource,
            f"{version.ref} is in production: move production to another version first",
            Conflict,
        )
    with ws.transaction() as session:
        model, rec = versions.version_record(session, version.name, version.version)
        rec.status = "rejected"
        session.add(
            ApprovalRecord(
                version_id=rec.id, decision="rejected", reason=reason, created_by=principal.name
            )
        )
        ws.record(session, "model.reject", resource, {"reason": reason[:500]})
        for alias in version.aliases:
            versions.move_alias(
                ws, session, model, alias, None, f"rejected: {reason}", principal.name
            )
    return versions.resolve(ws, version.ref)


def set_alias(ws: Workspace, ref: str, alias: str, *, reason: str) -> ModelVersion:
    """Point `alias` at the version `ref`; staging and production take approved versions only."""
    principal = ws.authorize("model.alias", f"model:{ref[:100]}")
    _check_alias(alias)
    reason = _reason(reason)
    version = versions.resolve(ws, ref)
    resource = f"model:{version.ref}"
    if version.status == "rejected":
        _deny(ws, "model.alias", resource, f"{version.ref} was rejected", Conflict)
    if alias in _GUARDED and version.status != "approved":
        _deny(
            ws,
            "model.alias",
            resource,
            f"{version.ref} is not approved; only an approved version can become {alias}",
            ValidationFailed,
        )
    if alias in _GUARDED:
        versions.verify(ws, version.ref)
    with ws.transaction() as session:
        model, _ = versions.version_record(session, version.name, version.version)
        versions.move_alias(ws, session, model, alias, version.version, reason, principal.name)
    return versions.resolve(ws, version.ref)


def remove_alias(ws: Workspace, name: str, alias: str, *, reason: str) -> int | None:
    """Remove an alias; returns the version it pointed at."""
    principal = ws.authorize("model.alias", f"model:{name[:100]}")
    versions.check_model_name(name)
    _check_alias(alias)
    reason = _reason(reason)
    with ws.transaction() as session:
        model = versions.model_record(session, name)
        return versions.move_alias(ws, session, model, alias, None, reason, principal.name)


@dataclass(frozen=True)
class AliasEvent:
    alias: str
    version: int | None
    previous: int | None
    reason: str
    at: datetime
    by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "by": self.by,
        }


def history(ws: Workspace, name: str, *, alias: str | None = None) -> list[AliasEvent]:
    """Every alias move of a model, oldest first."""
    versions.check_model_name(name)
    ws.authorize("model.read", f"model:{name}")
    if alias is not None:
        _check_alias(alias)
    with ws.db.reading() as session:
        model = versions.model_record(session, name)
        query = select(AliasEventRecord).where(AliasEventRecord.model_id == model.id)
        if alias is not None:
            query = query.where(AliasEventRecord.alias == alias)
        recs = session.execute(query.order_by(AliasEventRecord.id)).scalars()
        return [
            AliasEvent(r.alias, r.version, r.previous, r.reason, r.created_at, r.created_by)
            for r in recs
        ]


def alias_at(ws: Workspace, name: str, alias: str, when: datetime) -> AliasEvent | None:
    """The move that put `alias` where it was at `when` (None: the alias did not exist yet).

    The returned event's `version` is None when the alias had been removed by then.
    """
    if when.tzinfo is None:
        raise UsageError("give the time with its zone, e.g. 2026-11-25T10:00:00Z")
    events = [e for e in history(ws, name, alias=alias) if e.at <= when.astimezone(UTC)]
    return events[-1] if events else None


def aliases(ws: Workspace, name: str) -> dict[str, int]:
    """Where each alias of a model points now."""
    versions.check_model_name(name)
    ws.authorize("model.read", f"model:{name}")
    with ws.db.reading() as session:
        model = versions.model_record(session, name)
        rows = session.execute(
            select(ModelAliasRecord.alias, ModelAliasRecord.version).where(
                ModelAliasRecord.model_id == model.id
            )
        ).all()
    return {a: v for a, v in rows}


def approvals(ws: Workspace, ref: str) -> list[dict[str, Any]]:
    """The approvals and rejections of a version."""
    version = versions.resolve(ws, ref)
    with ws.db.reading() as session:
        _, rec = versions.version_record(session, version.name, version.version)
        recs = session.execute(
            select(ApprovalRecord)
            .where(ApprovalRecord.version_id == rec.id)
            .order_by(ApprovalRecord.id)
        ).scalars()
        return [
            {
                "decision": r.decision,
                "to": r.target,
                "reason": r.reason,
                "at": r.created_at.isoformat(),
                "by": r.created_by,
            }
            for r in recs
        ]
