"""Retraining: what a monitor breach sets in motion, under a policy an approver sets per model.

On a breach whose kind (drift, performance, quality) the policy lists, a retraining request is
recorded. A principal that may train (a trainer's scheduler, or `aidlc monitor retrain`) carries
it out: the production version's training config, re-pointed at the latest validated version of
its data set, trained, gated and registered as a candidate. Then the policy's action applies:

- `approval`: the candidate waits for an approver (an INFO alert says so);
- `canary`: the same, and the approver's approval (to staging) starts a canary at the policy's
  percentage at once, judged and concluded by the servers like any canary.

An unapproved candidate never serves (invariant 5) and its trainer can never approve it
(invariant 4): the policy saves the approver the deploy command, not the decision.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import select

from aidlc.core.alerts import raise_alert
from aidlc.core.config import parse_duration
from aidlc.core.meta import RetrainPolicyRecord, RetrainRequestRecord
from aidlc.errors import AidlcError, InvalidInput, NotFound, UsageError

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = [
    "ACTIONS",
    "TRIGGERS",
    "Policy",
    "Request",
    "approve",
    "execute",
    "get_policy",
    "on_breach",
    "requests",
    "run_pending",
    "set_policy",
]

ACTIONS = ("approval", "canary", "none")
TRIGGERS = ("drift", "performance", "quality")
log = logging.getLogger("aidlc.monitor")


@dataclass(frozen=True)
class Policy:
    model: str
    action: str
    triggers: list[str]
    canary_percent: float
    min_interval_seconds: int
    set_by: str
    set_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "set_at": self.set_at.isoformat()}


@dataclass(frozen=True)
class Request:
    id: int
    model: str
    reason: dict[str, Any]
    report_id: int | None
    status: str
    candidate_version: int | None
    detail: str
    requested_at: datetime
    requested_by: str
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["requested_at"] = self.requested_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return out


def _model_id(session: Any, name: str) -> int:
    from aidlc.registry.versions import model_record

    return model_record(session, name).id


def set_policy(
    ws: Workspace,
    name: str,
    action: str,
    *,
    triggers: list[str] | None = None,
    canary_percent: float = 10.0,
    min_interval: str = "24h",
) -> Policy:
    """Set (or replace) the retraining policy of model `name`; an approver's decision."""
    from aidlc.registry.versions import check_model_name

    check_model_name(name)
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}, not {action[:40]!r}")
    chosen = list(triggers) if triggers else ["drift", "performance"]
    unknown = [t for t in chosen if t not in TRIGGERS]
    if unknown:
        raise InvalidInput(f"unknown trigger {unknown[0][:40]!r}; use {', '.join(TRIGGERS)}")
    if not 0 < canary_percent < 100:
        raise InvalidInput("canary percent must be above 0 and below 100")
    try:
        interval = parse_duration(min_interval)
    except ValueError as exc:
        raise InvalidInput(f"min interval: {exc}") from None
    principal = ws.authorize("retrain.policy", f"model:{name}")
    with ws.transaction() as session:
        model_id = _model_id(session, name)
        rec = session.get(RetrainPolicyRecord, model_id)
        if rec is None:
            rec = RetrainPolicyRecord(model_id=model_id)
            session.add(rec)
        rec.action = action
        rec.triggers = json.dumps(sorted(set(chosen)))
        rec.canary_percent = float(canary_percent)
        rec.min_interval_seconds = interval
        rec.set_by = principal.name
        rec.set_at = datetime.now(UTC)
        session.flush()
        ws.record(
            session,
            "retrain.policy",
            f"model:{name}",
            {"action": action, "triggers": sorted(set(chosen)), "canary_percent": canary_percent},
        )
        return _policy(name, rec)


def _policy(name: str, rec: RetrainPolicyRecord) -> Policy:
    return Policy(
        name,
        rec.action,
        json.loads(rec.triggers),
        rec.canary_percent,
        rec.min_interval_seconds,
        rec.set_by,
        rec.set_at,
    )


def get_policy(ws: Workspace, name: str) -> Policy | None:
    """The model's retraining policy, or None."""
    ws.authorize("model.read", f"model:{name}")
    with ws.db.reading() as session:
        rec = session.get(RetrainPolicyRecord, _model_id(session, name))
        return None if rec is None else _policy(name, rec)


def _request(name: str, rec: RetrainRequestRecord) -> Request:
    return Request(
        rec.id,
        name,
        json.loads(rec.reason),
        rec.report_id,
        rec.status,
        rec.candidate_version,
        rec.detail,
        rec.requested_at,
        rec.requested_by,
        rec.finished_at,
    )


def requests(ws: Workspace, name: str | None = None, *, status: str | None = None) -> list[Request]:
    """Retraining requests, newest first."""
    from aidlc.core.meta import RegisteredModel

    ws.authorize("model.read", f"model:{name or '*'}")
    query = select(RetrainRequestRecord, RegisteredModel.name).join(
        RegisteredModel, RegisteredModel.id == RetrainRequestRecord.model_id
    )
    if name is not None:
        query = query.where(RegisteredModel.name == name)
    if status is not None:
        query = query.where(RetrainRequestRecord.status == status)
    with ws.db.reading() as session:
        rows = session.execute(query.order_by(RetrainRequestRecord.id.desc())).all()
        return [_request(model, rec) for rec, model in rows]


def on_breach(
    ws: Workspace, name: str, kinds: list[str], report_id: int | None
) -> dict[str, Any] | None:
    """Record a retraining request if the policy asks for one; carry it out at once when this
    principal may train. None when the policy (or its absence) says to do nothing."""
    with ws.db.reading() as session:
        model_id = _model_id(session, name)
        rec = session.get(RetrainPolicyRecord, model_id)
        policy = None if rec is None else _policy(name, rec)
        if policy is None or policy.action == "none":
            return None
        matched = [k for k in kinds if k in policy.triggers]
        if not matched:
            return None
        since = datetime.now(UTC) - timedelta(seconds=policy.min_interval_seconds)
        recent = session.execute(
            select(RetrainRequestRecord.id).where(
                RetrainRequestRecord.model_id == model_id,
                RetrainRequestRecord.requested_at >= since,
                RetrainRequestRecord.status.in_(("pending", "running", "registered")),
            )
        ).first()
    if recent is not None:
        return {"request": recent[0], "status": "skipped", "why": "a recent request exists"}
    principal = ws.authorize("retrain.request", f"model:{name}")
    request_id = _record_request(ws, name, {"breaches": matched}, report_id, principal.name)
    if (
        ws.principal is not None
        and ws.principal.may("train.run")
        and ws.principal.may("model.register")
    ):
        done = execute(ws, request_id)
        return {"request": request_id, "status": done.status, "candidate": done.candidate_version}
    return {"request": request_id, "status": "pending"}


def _retraining_config(ws: Workspace, name: str) -> tuple[str, int]:
    """The production version's training config, re-pointed at its data set's latest version."""
    from aidlc.registry import versions
    from aidlc.train import tracking

    production = versions.resolve(ws, f"{name}@production")
    if production.run_id is None:
        raise UsageError(f"{production.ref} was not trained by aidlc; nothing to retrain from")
    config = tracking.get_run(ws, production.run_id).config
    if not config:
        raise UsageError(f"the run of {production.ref} kept no config")
    doc = yaml.safe_load(config)
    if not isinstance(doc, dict) or not isinstance(doc.get("dataset"), str):
        raise UsageError(f"the config of {production.ref} names no data set")
    doc["dataset"] = doc["dataset"].split("@", 1)[0] + "@latest"
    register = doc.get("register")
    if isinstance(register, dict):
        register["model"] = name
        tags = register.setdefault("tags", {})
        if isinstance(tags, dict):
            tags["retrained-from"] = str(production.version)
    return yaml.safe_dump(doc, sort_keys=False), production.version


def execute(ws: Workspace, request_id: int) -> Request:
    """Carry out a pending retraining request (the principal must be a trainer)."""
    from aidlc.core.meta import RegisteredModel
    from aidlc.registry import versions
    from aidlc.train import runner

    ws.authorize("train.run", f"retrain:{request_id}")
    with ws.transaction() as session:
        rec = session.get(RetrainRequestRecord, request_id)
        if rec is None:
            raise NotFound(f"no retraining request {request_id}")
        if rec.status != "pending":
            raise UsageError(f"retraining request {request_id} is {rec.status}, not pending")
        name = session.get(RegisteredModel, rec.model_id).name  # type: ignore[union-attr]
        rec.status = "running"
        policy_rec = session.get(RetrainPolicyRecord, rec.model_id)
        action = policy_rec.action if policy_rec else "approval"
    status, detail, candidate = "failed", "", None
    try:
        text, base = _retraining_config(ws, name)
        outcome = runner.train(
            ws,
            text,
            source=f"retrain:{request_id}",
            register=versions.registrar(ws),
            production_metrics=lambda model: versions.production_metrics(ws, model),
        )
        ref = outcome.model_version
        if not ref:
            raise UsageError("the retrained model was not registered (its config has no register)")
        candidate = int(str(ref).rsplit("@", 1)[1])
        status = "registered"
        detail = f"{name}@{candidate} trained from {name}@{base}'s config on the latest data"
    except AidlcError as exc:
        detail = exc.message[:1000]
        log.warning("retraining request %d for %s failed: %s", request_id, name, detail)
    with ws.transaction() as session:
        rec = session.get(RetrainRequestRecord, request_id)
        assert rec is not None  # nosec B101 - read in this function's first step
        rec.status, rec.detail, rec.candidate_version = status, detail, candidate
        rec.finished_at = datetime.now(UTC)
        ws.record(
            session,
            "retrain.execute",
            f"model:{name}",
            {"request": request_id, "status": status, "candidate": candidate},
            outcome="ok" if status == "registered" else "error",
        )
        if status == "registered":
            then = (
                "approve it (to staging) and a canary starts"
                if action == "canary"
                else "it awaits approval"
            )
            raise_alert(
                ws,
                session,
                severity="INFO",
                source="retrain",
                title=f"retrained candidate {name}@{candidate} registered; {then}",
                details={"request": request_id, "model": name, "version": candidate},
                dedup_key=f"retrain:{name}:{candidate}",
            )
        else:
            raise_alert(
                ws,
                session,
                severity="WARNING",
                source="retrain",
                title=f"retraining {name} failed",
                details={"request": request_id, "reason": detail[:300]},
                dedup_key=f"retrain-failed:{name}",
            )
        return _request(name, rec)


def run_pending(ws: Workspace) -> list[Request]:
    """Carry out every pending retraining request, oldest first."""
    ws.authorize("train.run", "retrain:pending")
    with ws.db.reading() as session:
        ids = list(
            session.execute(
                select(RetrainRequestRecord.id)
                .where(RetrainRequestRecord.status == "pending")
                .order_by(RetrainRequestRecord.id)
            ).scalars()
        )
    return [execute(ws, i) for i in ids]


def approve(
    ws: Workspace,
    ref: str,
    *,
    to: str = "production",
    reason: str,
    accept_in_sample: bool = False,
) -> dict[str, Any]:
    """Approve a version; a retrained candidate under a `canary` policy approved to staging
    goes straight into a canary at the policy's percentage (the approver's own deploy)."""
    from aidlc.registry import approval
    from aidlc.serve import rollout

    version = approval.approve(ws, ref, to=to, reason=reason, accept_in_sample=accept_in_sample)
    out: dict[str, Any] = {"version": version, "deployment": None}
    if to != "staging":
        return out
    with ws.db.reading() as session:
        model_id = _model_id(session, version.name)
        policy = session.get(RetrainPolicyRecord, model_id)
        candidate = session.execute(
            select(RetrainRequestRecord.id).where(
                RetrainRequestRecord.model_id == model_id,
                RetrainRequestRecord.candidate_version == version.version,
            )
        ).first()
    if policy is not None and policy.action == "canary" and candidate is not None:
        out["deployment"] = rollout.deploy(
            ws,
            version.ref,
            canary=policy.canary_percent,
            reason=f"retraining policy: canary of candidate from request {candidate[0]}",
        )
    return out


def request_now(ws: Workspace, name: str) -> Request:
    """Retrain `name` now, as a trainer asking by hand (recorded like a breach's request)."""
    principal = ws.authorize("train.run", f"model:{name}")
    request_id = _record_request(ws, name, {"breaches": [], "by_hand": True}, None, principal.name)
    return execute(ws, request_id)


def _record_request(
    ws: Workspace, name: str, reason: dict[str, Any], report_id: int | None, who: str
) -> int:
    """A pending request row and its audit event, in one transaction; returns its id."""
    with ws.transaction() as session:
        req = RetrainRequestRecord(
            model_id=_model_id(session, name),
            reason=json.dumps(reason),
            report_id=report_id,
            status="pending",
            detail="",
            requested_by=who,
        )
        session.add(req)
        session.flush()
        ws.record(
            session,
            "retrain.request",
            f"model:{name}",
            {"request": req.id, "report": report_id, **reason},
        )
        return req.id
