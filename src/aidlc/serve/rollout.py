"""Rollouts: direct promotion, canaries, shadows and rollback, each step audited.

An approver starts a rollout (`aidlc deploy NAME@V --canary 10`): the candidate must be approved
and verify. The rollout is a row the servers read; each server routes the share of traffic it
names to the candidate (a shadow gets a copy and answers nobody), judges it with `CanaryJudge`
against the policy fixed when the rollout started, and concludes it: a breach rolls it back at
once, enough clean requests promote the candidate to `production`. The server may conclude only a
rollout an approver started, and only to one of those two ends (the `deployment.conclude` grant);
the audit event names both the server and the approver.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from aidlc.core.alerts import raise_alert
from aidlc.core.config import CanaryPolicy
from aidlc.core.meta import AliasEventRecord, DeploymentRecord, ModelAliasRecord
from aidlc.errors import Conflict, InvalidInput, ValidationFailed
from aidlc.registry import approval, versions

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

MODES = ("canary", "shadow")
ENDED = ("promoted", "rolled_back", "completed", "stopped")


@dataclass(frozen=True)
class Deployment:
    id: int
    name: str
    mode: str
    candidate: int
    production: int
    percent: float
    policy: CanaryPolicy
    status: str
    verdict: dict[str, Any]
    started_by: str
    started_at: datetime
    ended_by: str | None = None
    ended_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.name,
            "mode": self.mode,
            "candidate": self.candidate,
            "production": self.production,
            "percent": self.percent,
            "policy": self.policy.model_dump(),
            "status": self.status,
            "verdict": self.verdict,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "ended_by": self.ended_by,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


def _to_deployment(name: str, rec: DeploymentRecord) -> Deployment:
    return Deployment(
        id=rec.id,
        name=name,
        mode=rec.mode,
        candidate=rec.candidate_version,
        production=rec.production_version,
        percent=rec.percent,
        policy=CanaryPolicy.model_validate_json(rec.policy),
        status=rec.status,
        verdict=json.loads(rec.verdict or "{}"),
        started_by=rec.started_by,
        started_at=rec.started_at,
        ended_by=rec.ended_by,
        ended_at=rec.ended_at,
    )


def _production(session: Any, model_id: int) -> int | None:
    version: int | None = session.execute(
        select(ModelAliasRecord.version).where(
            ModelAliasRecord.model_id == model_id, ModelAliasRecord.alias == "production"
        )
    ).scalar_one_or_none()
    return version


def _active_record(session: Any, model_id: int) -> DeploymentRecord | None:
    rec: DeploymentRecord | None = session.execute(
        select(DeploymentRecord).where(
            DeploymentRecord.model_id == model_id, DeploymentRecord.status == "active"
        )
    ).scalar_one_or_none()
    return rec


def deploy(
    ws: Workspace,
    ref: str,
    *,
    canary: float | None = None,
    shadow: bool = False,
    policy: CanaryPolicy | None = None,
    reason: str = "deployed",
) -> Deployment | versions.ModelVersion:
    """Put an approved version into production, or start a canary or shadow rollout of it."""
    principal = ws.authorize("model.deploy", f"model:{ref[:100]}")
    if canary is not None and shadow:
        raise InvalidInput("choose --canary or --shadow, not both")
    if canary is not None and not (0 < canary < 100 and math.isfinite(canary)):
        raise InvalidInput("--canary is a percentage of traffic above 0 and below 100")
    version = versions.resolve(ws, ref)
    if version.status != "approved":
        raise ValidationFailed(
            f"{version.ref} is {version.status}; only an approved version can be deployed",
            hint=f"an approver runs `aidlc models approve {version.ref}` first",
        )
    if canary is None and not shadow:
        return approval.set_alias(ws, version.ref, "production", reason=reason)
    versions.verify(ws, version.ref)
    mode = "shadow" if shadow else "canary"
    policy = policy or ws.config.serve.canary
    with ws.transaction() as session:
        model, _ = versions.version_record(session, version.name, version.version)
        current = _production(session, model.id)
        if current is None:
            raise Conflict(
                f"{version.name} has no production version to compare a {mode} with",
                hint=f"deploy it directly: `aidlc deploy {version.ref}`",
            )
        if current == version.version:
            raise Conflict(f"{version.ref} is already in production")
        running = _active_record(session, model.id)
        if running is not None:
            raise Conflict(
                f"{version.name} already has an active {running.mode} of version "
                f"{running.candidate_version} (deployment {running.id})",
                hint=f"stop it first: `aidlc deploy stop {version.name}`",
            )
        rec = DeploymentRecord(
            model_id=model.id,
            mode=mode,
            candidate_version=version.version,
            production_version=current,
            percent=100.0 if shadow else float(canary or 0),
            policy=policy.model_dump_json(),
            status="active",
            verdict="{}",
            started_at=datetime.now(UTC),
            started_by=principal.name,
        )
        session.add(rec)
        session.flush()
        ws.record(
            session,
            f"deploy.{mode}",
            f"model:{version.ref}",
            {
                "deployment": rec.id,
                "production": current,
                "percent": rec.percent,
                "policy": policy.model_dump(),
                "reason": reason[:500],
            },
        )
        return _to_deployment(version.name, rec)


def active(ws: Workspace, name: str) -> Deployment | None:
    """The model's running canary or shadow, if any."""
    ws.authorize("model.read", f"model:{name[:100]}")
    with ws.db.reading() as session:
        model = versions.model_record(session, name)
        rec = _active_record(session, model.id)
        return None if rec is None else _to_deployment(name, rec)


def deployments(ws: Workspace, name: str) -> list[Deployment]:
    """Every rollout of a model, newest first."""
    versions.check_model_name(name)
    ws.authorize("model.read", f"model:{name}")
    with ws.db.reading() as session:
        model = versions.model_record(session, name)
        recs = session.execute(
            select(DeploymentRecord)
            .where(DeploymentRecord.model_id == model.id)
            .order_by(DeploymentRecord.id.desc())
        ).scalars()
        return [_to_deployment(name, r) for r in recs]


def _end(
    ws: Workspace,
    session: Any,
    rec: DeploymentRecord,
    status: str,
    verdict: dict[str, Any],
    who: str,
) -> bool:
    """Mark an active rollout ended; False when another server or person ended it first."""
    done = session.execute(
        update(DeploymentRecord)
        .where(DeploymentRecord.id == rec.id, DeploymentRecord.status == "active")
        .values(
            status=status,
            verdict=json.dumps(verdict, sort_keys=True, default=str),
            ended_at=datetime.now(UTC),
            ended_by=who,
        )
    )
    return bool(done.rowcount)


def stop(ws: Workspace, name: str, *, reason: str = "stopped") -> Deployment:
    """End the model's active rollout without promoting its candidate."""
    principal = ws.authorize("model.deploy", f"model:{name[:100]}")
    versions.check_model_name(name)
    with ws.transaction() as session:
        model = versions.model_record(session, name)
        rec = _active_record(session, model.id)
        if rec is None:
            raise Conflict(f"{name} has no active canary or shadow")
        _end(ws, session, rec, "stopped", {"reason": reason[:500]}, principal.name)
        ws.record(
            session,
            "deploy.stop",
            f"model:{name}@{rec.candidate_version}",
            {"deployment": rec.id, "reason": reason[:500]},
        )
        session.refresh(rec)
        return _to_deployment(name, rec)


def rollback(ws: Workspace, name: str, *, reason: str = "rollback") -> versions.ModelVersion:
    """Put the previous production version back at once, ending any active rollout."""
    principal = ws.authorize("model.deploy", f"model:{name[:100]}")
    versions.check_model_name(name)
    with ws.db.reading() as session:
        model = versions.model_record(session, name)
        current = _production(session, model.id)
        moves = session.execute(
            select(AliasEventRecord)
            .where(AliasEventRecord.model_id == model.id, AliasEventRecord.alias == "production")
            .order_by(AliasEventRecord.id.desc())
        ).scalars()
        previous = next(
            (m.previous for m in moves if m.version == current and m.previous is not None), None
        )
    if current is None or previous is None:
        raise Conflict(f"{name} has no earlier production version to go back to")
    restored = approval.set_alias(
        ws, f"{name}@{previous}", "production", reason=f"rollback from {current}: {reason}"
    )
    with ws.transaction() as session:
        model = versions.model_record(session, name)
        rec = _active_record(session, model.id)
        if rec is not None:
            _end(ws, session, rec, "stopped", {"reason": "production rolled back"}, principal.name)
        ws.record(
            session,
            "deploy.rollback",
            f"model:{name}",
            {"from": current, "to": previous, "reason": reason[:500]},
        )
    return restored


def conclude(ws: Workspace, deployment: Deployment, outcome: str, verdict: dict[str, Any]) -> bool:
    """A server's end of a rollout: `promoted` moves production to the candidate, `rolled_back`
    sends all traffic back to production, `completed` ends a clean shadow (an approver decides
    what follows). Returns False when the rollout had already ended."""
    if outcome not in ("promoted", "rolled_back", "completed"):
        raise InvalidInput(
            f"a rollout ends promoted, rolled_back or completed, not {outcome[:40]!r}"
        )
    principal = ws.authorize("deployment.conclude", f"model:{deployment.name}")
    label = f"{deployment.name}@{deployment.candidate}"
    with ws.transaction() as session:
        model = versions.model_record(session, deployment.name)
        rec = session.get(DeploymentRecord, deployment.id)
        if rec is None or rec.status != "active":
            return False
        current = _production(session, model.id)
        if outcome == "promoted" and (rec.mode != "canary" or current != rec.production_version):
            outcome = "stopped"
            verdict = {**verdict, "reason": "production moved while the canary ran"}
        if not _end(ws, session, rec, outcome, verdict, principal.name):
            return False
        details = {"deployment": rec.id, "started_by": rec.started_by, "verdict": verdict}
        if outcome == "promoted":
            versions.move_alias(
                ws,
                session,
                model,
                "production",
                rec.candidate_version,
                f"{rec.mode} {rec.id} promoted (started by {rec.started_by})",
                principal.name,
            )
            ws.record(session, "deploy.promote", f"model:{label}", details)
        else:
            ws.record(session, f"deploy.{outcome}", f"model:{label}", details)
            raise_alert(
                ws,
                session,
                severity="WARNING",
                source="serve",
                title=f"{rec.mode} of {label} {outcome.replace('_', ' ')}",
                details=details,
                dedup_key=f"deploy:{rec.id}",
            )
    return True


@dataclass
class CanaryJudge:
    """Running evidence about a candidate beside production, and the verdict it supports."""

    policy: CanaryPolicy
    requests: int = 0
    errors: int = 0
    compared: int = 0
    diverged: int = 0
    candidate_ms: list[float] = field(default_factory=list)
    production_ms: list[float] = field(default_factory=list)

    _KEEP = 5000

    def observe(
        self,
        *,
        error: bool,
        candidate_ms: float,
        production_ms: float,
        compared: int,
        diverged: int,
    ) -> None:
        self.requests += 1
        self.errors += int(error)
        self.compared += compared
        self.diverged += diverged
        if not error:
            _keep(self.candidate_ms, candidate_ms, self._KEEP)
        _keep(self.production_ms, production_ms, self._KEEP)

    def evidence(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "divergence": self.diverged / self.compared if self.compared else 0.0,
            "latency_ratio": _ratio(self.candidate_ms, self.production_ms),
        }

    def verdict(self) -> tuple[str, dict[str, Any]] | None:
        """("rolled_back" | "promoted", evidence) once the policy decides; None before."""
        p = self.policy
        if self.requests < p.min_requests:
            return None
        ev = self.evidence()
        breaches = []
        if ev["error_rate"] > p.max_error_rate:
            breaches.append(f"error rate {ev['error_rate']:.3f} > {p.max_error_rate}")
        if ev["divergence"] > p.max_divergence:
            breaches.append(f"divergence {ev['divergence']:.3f} > {p.max_divergence}")
        if ev["latency_ratio"] > p.max_latency_ratio:
            breaches.append(f"p95 latency ratio {ev['latency_ratio']:.2f} > {p.max_latency_ratio}")
        if breaches:
            return "rolled_back", {**ev, "breaches": breaches}
        if self.requests >= p.promote_after:
            return "promoted", {**ev, "breaches": []}
        return None


def _keep(values: list[float], value: float, cap: int) -> None:
    if len(values) >= cap:
        values.pop(0)
    values.append(value)


def _p95(values: list[float]) -> float:
    """The value at rank int(0.95 * n) of the sorted `values` (never empty: see `_ratio`)."""
    return sorted(values)[int(0.95 * len(values))]


def _ratio(candidate: list[float], production: list[float]) -> float:
    """p95 of the candidate over p95 of production, both counted as at least 1 ms: below that,
    timer noise on a busy machine would decide the verdict, not the model."""
    if not candidate or not production:
        return 0.0
    return max(_p95(candidate), 1.0) / max(_p95(production), 1.0)
