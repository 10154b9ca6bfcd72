"""Compliance controls computed from evidence: each control names the framework clauses it serves,
reads the workspace (metadata, configuration, audit log, signatures) and passes, fails or does
not apply, with its evidence and the command that re-checks it; plus JSON, Markdown and HTML.

Who runs it: `compliance.read` (approver, auditor). The report runs as its caller and never
borrows a role: a control whose evidence needs a permission the caller lacks (the audit log's
verification is the auditor's) is `not_evaluated`, and `compliance check` counts that as a
failure, since a gate must not pass on evidence it did not see. Run the gate as an auditor.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import func, select

from aidlc.core import auth
from aidlc.core.config import parse_duration
from aidlc.core.meta import (
    AlertRecord,
    ApprovalRecord,
    ContractRecord,
    DatasetRecord,
    DatasetVersionRecord,
    ErasureRecord,
    LegalHoldRecord,
    ModelAliasRecord,
    ModelVersionRecord,
    MonitorReportRecord,
    PrincipalRecord,
    RegisteredModel,
    RetentionPolicyRecord,
    ScheduleRunRecord,
    StoredObject,
    TokenRecord,
    WorkspaceKey,
)
from aidlc.errors import AidlcError, IntegrityError, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = [
    "CONTROLS",
    "FRAMEWORKS",
    "Clause",
    "Control",
    "ControlResult",
    "Report",
    "controls_for",
    "failed",
    "render",
    "report",
]

FRAMEWORKS: dict[str, str] = {
    "soc2": "SOC 2 (2017 Trust Services Criteria)",
    "hipaa": "HIPAA Security Rule (45 CFR Part 164)",
    "gdpr": "GDPR (Regulation (EU) 2016/679)",
    "pci": "PCI DSS v4.0",
}
FORMATS = ("json", "md", "html")
STATUSES = ("pass", "fail", "not_applicable", "not_evaluated")
SCHEMA = "aidlc-compliance-report/1"

# A scheduled run or a monitor report may be this late before it counts as missed: a scheduler
# polls, and a monitor run over a day of traffic takes a while.
SLACK = timedelta(hours=1)
# Unused this long, a live token is stale (PCI DSS 8.2.6 asks for 90 days).
STALE_AFTER = timedelta(days=90)
# Zones that hold personal data as it came in or went out; each needs a zone-wide retention.
RETENTION_ZONES = ("raw", "validated", "quarantine", "predictions")
PERSONAL = frozenset({"pii", "sensitive"})
# Evidence lists are cut here (the counts stay exact), so a big workspace gives a readable report.
MAX_LISTED = 50


@dataclass(frozen=True)
class Clause:
    """One clause of one framework that a control gives evidence for."""

    framework: str
    id: str
    title: str

    def to_json(self) -> dict[str, str]:
        return {"framework": self.framework, "id": self.id, "title": self.title}


@dataclass(frozen=True)
class Outcome:
    """What one control's evaluation found."""

    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Control:
    """A control: the clauses it maps to, how it is evaluated and how a person re-checks it."""

    id: str
    title: str
    clauses: tuple[Clause, ...]
    recheck: tuple[str, ...]
    evaluate: Callable[[_Evidence], Outcome]

    def frameworks(self) -> set[str]:
        return {c.framework for c in self.clauses}


@dataclass(frozen=True)
class ControlResult:
    """A control as evaluated in one report."""

    id: str
    title: str
    status: str
    summary: str
    clauses: tuple[Clause, ...]
    evidence: dict[str, Any]
    recheck: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "clauses": [c.to_json() for c in self.clauses],
            "evidence": self.evidence,
            "recheck": list(self.recheck),
        }


@dataclass(frozen=True)
class Report:
    """Every control of a framework (or of all of them), evaluated at `generated_at`."""

    framework: str
    generated_at: datetime
    workspace: dict[str, str]
    generated_by: dict[str, Any]
    controls: list[ControlResult]

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.controls if c.status == s) for s in STATUSES}

    @property
    def ok(self) -> bool:
        """Whether the gate passes: no control failed and none went unevaluated."""
        return all(c.status in ("pass", "not_applicable") for c in self.controls)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "framework": self.framework,
            "generated_at": _iso(self.generated_at),
            "workspace": self.workspace,
            "generated_by": self.generated_by,
            "summary": {**self.counts(), "ok": self.ok},
            "controls": [c.to_json() for c in self.controls],
        }


# -- the evidence a report reads ------------------------------------------------------------------


class _Evidence:
    """The workspace, the clock and the caller of one report, with what several controls share."""

    def __init__(self, ws: Workspace, principal: auth.Principal, now: datetime) -> None:
        self.ws = ws
        self.principal = principal
        self.now = now

    def need(self, action: str) -> None:
        """Raise `PermissionDenied` (without auditing a denial: nothing was attempted) when the
        caller may not `action`; the report shows the control as not evaluated."""
        if not self.principal.may(action):
            roles = ", ".join(sorted(auth.GRANTS.get(action, ())))
            raise PermissionDenied(f"not evaluated: needs the {roles} role ({action})")

    @cached_property
    def deployed(self) -> list[tuple[str, str, ModelVersionRecord]]:
        """(model name, alias, version row) for every production and staging alias."""
        with self.ws.db.reading() as session:
            rows = session.execute(
                select(RegisteredModel.name, ModelAliasRecord.alias, ModelVersionRecord)
                .join(ModelAliasRecord, ModelAliasRecord.model_id == RegisteredModel.id)
                .join(
                    ModelVersionRecord,
                    (ModelVersionRecord.model_id == RegisteredModel.id)
                    & (ModelVersionRecord.version == ModelAliasRecord.version),
                )
                .where(ModelAliasRecord.alias.in_(("production", "staging")))
                .order_by(RegisteredModel.name, ModelAliasRecord.alias)
            ).all()
        return [(name, alias, rec) for name, alias, rec in rows]

    @cached_property
    def live_by_zone(self) -> dict[str, int]:
        with self.ws.db.reading() as session:
            rows = session.execute(
                select(StoredObject.zone, func.count())
                .where(StoredObject.deleted_at.is_(None))
                .group_by(StoredObject.zone)
            ).all()
        return {zone: int(n) for zone, n in sorted(rows)}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _listed(items: list[Any]) -> list[Any]:
    return items[:MAX_LISTED]


def _problems(problems: list[str], good: str) -> tuple[str, str]:
    if not problems:
        return "pass", good
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "fail", "; ".join(problems[:3]) + more


# -- the controls ---------------------------------------------------------------------------------


def _encryption_at_rest(ev: _Evidence) -> Outcome:
    ws = ev.ws
    with ws.db.reading() as session:
        live = session.execute(
            select(
                StoredObject.zone,
                StoredObject.object_id,
                StoredObject.version,
                StoredObject.storage_key,
                StoredObject.wrapped_key.is_(None),
                StoredObject.ciphertext_size,
            ).where(StoredObject.deleted_at.is_(None))
        ).all()
        unshredded = session.execute(
            select(StoredObject.zone, StoredObject.object_id, StoredObject.version).where(
                StoredObject.deleted_at.is_not(None), StoredObject.wrapped_key.is_not(None)
            )
        ).all()
        deleted = session.scalar(
            select(func.count())
            .select_from(StoredObject)
            .where(StoredObject.deleted_at.is_not(None))
        )
    stored = set(ws.store.keys())
    no_key = [f"{z}/{o}@{v}" for z, o, v, _, missing, _ in live if missing]
    no_cipher = [f"{z}/{o}@{v}" for z, o, v, key, _, size in live if size <= 0 or key not in stored]
    shred = [f"{z}/{o}@{v}" for z, o, v in unshredded]
    cfg = ws.config
    evidence = {
        "objects": len(live),
        "objects_by_zone": ev.live_by_zone,
        "without_wrapped_key": len(no_key),
        "without_ciphertext": len(no_cipher),
        "deleted_objects": int(deleted or 0),
        "deleted_but_key_kept": len(shred),
        "examples": _listed(no_key + no_cipher + shred),
        "cipher": "AES-256-GCM, one data key per object, wrapped by the key provider",
        "key_provider": cfg.keys.provider,
        "store_backend": cfg.store.backend,
        # SSE-KMS is defence in depth on S3; objects are already encrypted before upload.
        "s3_sse_kms": bool(cfg.store.sse_kms_key_id) if cfg.store.backend == "s3" else None,
    }
    problems = []
    if no_key:
        problems.append(f"{len(no_key)} live object(s) have no wrapped data key")
    if no_cipher:
        problems.append(f"{len(no_cipher)} live object(s) have no ciphertext in the store")
    if shred:
        problems.append(f"{len(shred)} deleted object(s) still have their data key")
    status, summary = _problems(
        problems, f"all {len(live)} live objects have a wrapped data key and a ciphertext"
    )
    return Outcome(status, summary, evidence)


def _audit_integrity(ev: _Evidence) -> Outcome:
    ev.need("audit.verify")
    verdict = ev.ws.audit.verify()
    head = verdict.head
    evidence: dict[str, Any] = {
        "events": verdict.size,
        "tree_heads_checked": verdict.heads_checked,
        "first_bad_event": verdict.first_bad_seq,
        "problem": verdict.problem,
        "signed_tree_size": head.tree_size if head else None,
        "signed_at": head.timestamp if head else None,
    }
    if not verdict.ok:
        return Outcome("fail", f"the audit log does not verify: {verdict.problem}", evidence)
    if verdict.heads_checked == 0:
        return Outcome("fail", "the audit log has no signed tree head", evidence)
    return Outcome(
        "pass",
        f"{verdict.size} events verify against {verdict.heads_checked} signed tree heads",
        evidence,
    )


def _key_management(ev: _Evidence) -> Outcome:
    ws = ev.ws
    rotation_days = ws.config.keys.rotation_days
    key_versions = ws.keys.key_versions()
    current = next((k for k in key_versions if k.current), None)
    if current is None:
        return Outcome("fail", "the key provider has no current key version", {})
    age = ev.now - current.created_at
    with ws.db.reading() as session:
        stale = session.scalar(
            select(func.count())
            .select_from(StoredObject)
            .where(
                StoredObject.deleted_at.is_(None),
                StoredObject.wrapped_key.is_not(None),
                StoredObject.key_id != current.id,
            )
        )
        workspace_keys = session.execute(
            select(WorkspaceKey.name, WorkspaceKey.algorithm, WorkspaceKey.created_at).order_by(
                WorkspaceKey.name
            )
        ).all()
    evidence = {
        "key_provider": ws.keys.kind,
        "current_key_version": current.id,
        "current_created_at": _iso(current.created_at),
        "current_age_days": age.days,
        "rotation_days": rotation_days,
        "key_versions": len(key_versions),
        "objects_under_older_key_versions": int(stale or 0),
        # Signing keys are not rotated by `keys rotate`; listed so their age is on record.
        "workspace_keys": [
            {"name": n, "algorithm": a, "created_at": _iso(c)} for n, a, c in workspace_keys
        ],
    }
    problems = []
    if age > timedelta(days=rotation_days):
        problems.append(
            f"key version {current.id} is {age.days} days old; keys.rotation_days is "
            f"{rotation_days}: an admin runs `aidlc keys rotate`"
        )
    if stale:
        problems.append(f"{stale} object(s) are still wrapped under an older key version")
    status, summary = _problems(
        problems,
        f"key version {current.id} is {age.days} days old (rotation every {rotation_days} days)",
    )
    return Outcome(status, summary, evidence)


def _change_management(ev: _Evidence) -> Outcome:
    from aidlc.registry import versions

    ws = ev.ws
    if not ev.deployed:
        return Outcome("not_applicable", "no model version is in staging or production")
    # Whoever may read model files gets the full verification (files, digests, OpenSSF
    # signature); anyone else the signed registry statement, which binds trainer, registrar,
    # gate outcome and model digest: enough to show who approved what.
    full = ev.principal.may("object.read:models")
    key = versions.public_key(ws)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with ws.db.reading() as session:
        approvals = {
            rec.id: list(
                session.execute(
                    select(ApprovalRecord)
                    .where(ApprovalRecord.version_id == rec.id)
                    .order_by(ApprovalRecord.id)
                ).scalars()
            )
            for _, _, rec in ev.deployed
        }
    for name, alias, rec in ev.deployed:
        ref = f"{name}@{rec.version}"
        authors = {rec.trained_by, rec.created_by}
        approved = [a for a in approvals[rec.id] if a.decision == "approved"]
        independent = [a for a in approved if a.created_by not in authors]
        try:
            versions.verified_statement(rec, name, key)
            if full:
                versions.verify(ws, ref)
            signature = "verified" if full else "statement verified"
        except IntegrityError as exc:
            signature = f"failed: {exc.message}"
        row = {
            "ref": ref,
            "alias": alias,
            "trained_by": rec.trained_by,
            "registered_by": rec.created_by,
            "status": rec.status,
            "approved_by": sorted({a.created_by for a in approved}),
            "approved_at": _iso(independent[-1].created_at) if independent else None,
            "gates_passed": rec.gates_passed,
            "signature": signature,
        }
        rows.append(row)
        if not approved:
            problems.append(f"{ref} ({alias}) was never approved")
        elif not independent:
            problems.append(f"{ref} ({alias}) was approved only by its trainer or registrar")
        if rec.status != "approved":
            problems.append(f"{ref} ({alias}) has status {rec.status}, not approved")
        if not rec.gates_passed:
            problems.append(f"{ref} ({alias}) failed its quality gates")
        if signature.startswith("failed"):
            problems.append(f"{ref} ({alias}) does not verify")
    evidence = {
        "verification": "full"
        if full
        else "signed statement only; files and the OpenSSF signature need one of the roles "
        + ", ".join(sorted(auth.GRANTS["object.read:models"])),
        "versions": rows,
    }
    status, summary = _problems(
        problems,
        f"{len(rows)} staging/production version(s) approved by someone other than their "
        "author, signed, verifying and past their gates",
    )
    return Outcome(status, summary, evidence)


def _monitoring(ev: _Evidence) -> Outcome:
    from aidlc.monitor.schedule import parse_cron

    ws = ev.ws
    production = sorted({name for name, alias, _ in ev.deployed if alias == "production"})
    schedules = ws.config.monitor.schedules
    window = timedelta(seconds=parse_duration(ws.config.monitor.window))
    if not production:
        return Outcome("not_applicable", "no model is in production", {"schedules": len(schedules)})
    problems: list[str] = []
    with ws.db.reading() as session:
        runs = {
            r.name: r
            for r in session.execute(
                select(ScheduleRunRecord).where(
                    ScheduleRunRecord.name.in_([s.name for s in schedules])
                )
            ).scalars()
        }
        latest = {
            name: session.execute(
                select(MonitorReportRecord)
                .where(MonitorReportRecord.model == name)
                .order_by(MonitorReportRecord.created_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            for name in production
        }
    schedule_rows = []
    for s in schedules:
        run = runs.get(s.name)
        due = parse_cron(s.cron).next_after(run.started_at) if run else None
        schedule_rows.append(
            {
                "name": s.name,
                "cron": s.cron,
                "model": s.model,
                "last_started_at": _iso(run.started_at) if run else None,
                "last_status": run.status if run else None,
                "next_due": _iso(due),
            }
        )
        if run is None:
            problems.append(f"schedule {s.name} has never run")
        elif run.status == "failed":
            problems.append(f"schedule {s.name} failed its last run")
        elif due is not None and due + SLACK < ev.now:
            problems.append(f"schedule {s.name} missed its run due at {_iso(due)}")
    model_rows = []
    for name in production:
        covered = [s.name for s in schedules if s.model in ("*", name)]
        report = latest[name]
        model_rows.append(
            {
                "model": name,
                "schedules": covered,
                "last_report_at": _iso(report.created_at) if report else None,
                "last_verdict": report.verdict if report else None,
            }
        )
        if not covered:
            problems.append(f"no monitor schedule covers production model {name}")
        if report is None:
            problems.append(f"production model {name} has no monitor report")
        elif report.created_at < ev.now - window - SLACK:
            problems.append(
                f"production model {name} was last monitored at {_iso(report.created_at)}, "
                f"outside the {ws.config.monitor.window} window"
            )
    evidence = {
        "window": ws.config.monitor.window,
        "slack_minutes": int(SLACK.total_seconds() // 60),
        "schedules": schedule_rows,
        "production_models": model_rows,
    }
    status, summary = _problems(
        problems,
        f"{len(production)} production model(s) monitored on schedule within "
        f"{ws.config.monitor.window}",
    )
    return Outcome(status, summary, evidence)


def _retention(ev: _Evidence) -> Outcome:
    with ev.ws.db.reading() as session:
        policies = list(
            session.execute(
                select(RetentionPolicyRecord).order_by(
                    RetentionPolicyRecord.zone, RetentionPolicyRecord.dataset
                )
            ).scalars()
        )
        holds = list(
            session.execute(select(LegalHoldRecord).order_by(LegalHoldRecord.id)).scalars()
        )
    holding = [z for z in RETENTION_ZONES if ev.live_by_zone.get(z)]
    zone_wide = {p.zone for p in policies if p.dataset is None}
    uncovered = [z for z in holding if z not in zone_wide]
    active = [h for h in holds if h.released_at is None]
    evidence = {
        "policies": [
            {
                "zone": p.zone,
                "dataset": p.dataset,
                "days": p.days,
                "set_by": p.set_by,
                "set_at": _iso(p.set_at),
            }
            for p in policies
        ],
        "zones_holding_personal_data": holding,
        "zones_without_policy": uncovered,
        "legal_holds_active": [
            {
                "id": h.id,
                "zone": h.zone,
                "prefix": h.prefix,
                "reason": h.reason[:200],
                "placed_by": h.placed_by,
                "placed_at": _iso(h.placed_at),
            }
            for h in _listed(active)
        ],
        "legal_holds_active_count": len(active),
        "legal_holds_released": len(holds) - len(active),
    }
    if not policies and not holding:
        return Outcome(
            "not_applicable", "no personal data is stored and no policy is set", evidence
        )
    if uncovered:
        return Outcome(
            "fail",
            "no zone-wide retention policy for " + ", ".join(uncovered) + ", which hold data",
            evidence,
        )
    return Outcome(
        "pass",
        f"{len(policies)} retention policies cover every zone holding data; "
        f"{len(active)} legal hold(s) active",
        evidence,
    )


def _access_review(ev: _Evidence) -> Outcome:
    now = ev.now
    with ev.ws.db.reading() as session:
        principals = list(
            session.execute(select(PrincipalRecord).order_by(PrincipalRecord.name)).scalars()
        )
        tokens = list(session.execute(select(TokenRecord).order_by(TokenRecord.id)).scalars())
    names = {p.id: p.name for p in principals}
    enabled = {p.id for p in principals if not p.disabled}
    live = [
        t
        for t in tokens
        if t.principal_id in enabled
        and t.revoked_at is None
        and (t.expires_at is None or t.expires_at > now)
    ]
    stale = [t for t in live if (t.last_used_at or t.created_at) < now - STALE_AFTER]
    endless = [t for t in live if t.expires_at is None]
    rows = []
    combined = []
    for p in principals:
        roles = sorted(r.role for r in p.roles)
        mine = [t for t in live if t.principal_id == p.id]
        used = [t.last_used_at for t in mine if t.last_used_at is not None]
        rows.append(
            {
                "principal": p.name,
                "kind": p.kind,
                "disabled": p.disabled,
                "roles": roles,
                "live_tokens": len(mine),
                "last_token_use": _iso(max(used)) if used else None,
            }
        )
        if not p.disabled and "admin" in roles and len(roles) > 1:
            combined.append(p.name)

    def token(t: TokenRecord) -> dict[str, Any]:
        return {
            "token": t.id,
            "principal": names.get(t.principal_id),
            "created_at": _iso(t.created_at),
            "last_used_at": _iso(t.last_used_at),
            "expires_at": _iso(t.expires_at),
        }

    evidence = {
        "principals": _listed(rows),
        "principals_count": len(principals),
        "live_tokens": len(live),
        "stale_after_days": STALE_AFTER.days,
        "stale_tokens": [token(t) for t in _listed(stale)],
        "tokens_without_expiry": [token(t) for t in _listed(endless)],
        "admin_with_other_roles": combined,
    }
    problems = []
    if stale:
        problems.append(f"{len(stale)} live token(s) unused for over {STALE_AFTER.days} days")
    if endless:
        problems.append(f"{len(endless)} live token(s) never expire")
    if combined:
        problems.append("admin combined with other roles: " + ", ".join(combined))
    status, summary = _problems(
        problems,
        f"{len(enabled)} enabled principal(s), {len(live)} live token(s): none stale, none "
        "without expiry, no admin holding another role",
    )
    return Outcome(status, summary, evidence)


def _incident_response(ev: _Evidence) -> Outcome:
    cfg = ev.ws.config.alerts
    since = ev.now - timedelta(days=30)
    with ev.ws.db.reading() as session:
        recent = dict(
            session.execute(
                select(AlertRecord.severity, func.count())
                .where(AlertRecord.created_at >= since)
                .group_by(AlertRecord.severity)
            ).all()
        )
    # Sink addresses (webhook URLs hold secret paths) are never part of the evidence.
    sinks = [{"type": s.type, "min_severity": s.min_severity} for s in cfg.sinks]
    outside = [s for s in cfg.sinks if s.type != "log"]
    evidence = {
        "sinks": sinks,
        "rules": len(cfg.rules),
        "cooldown": cfg.cooldown,
        "alerts_last_30_days": {k: int(v) for k, v in sorted(recent.items())},
        "runbooks": "not evaluated: runbooks live outside the workspace",
    }
    if not outside:
        return Outcome(
            "fail",
            "alerts go only to the log: configure a webhook, smtp or sns sink in aidlc.yaml",
            evidence,
        )
    return Outcome(
        "pass",
        "alerts reach " + ", ".join(sorted({s.type for s in outside})) + " beyond the log",
        evidence,
    )


def _erasure_capability(ev: _Evidence) -> Outcome:
    from aidlc.data.contract import parse_contract

    with ev.ws.db.reading() as session:
        current = session.execute(
            select(DatasetRecord.id, DatasetRecord.name, ContractRecord.body)
            .join(
                ContractRecord,
                (ContractRecord.dataset_id == DatasetRecord.id)
                & (ContractRecord.version == DatasetRecord.contract_version),
            )
            .order_by(DatasetRecord.name)
        ).all()
        unmapped = dict(
            session.execute(
                select(DatasetVersionRecord.dataset_id, func.count())
                .where(DatasetVersionRecord.subjects_object.is_(None))
                .group_by(DatasetVersionRecord.dataset_id)
            ).all()
        )
        erasures = session.scalar(select(func.count()).select_from(ErasureRecord)) or 0
        last_erasure = session.scalar(select(func.max(ErasureRecord.at)))
    rows = []
    problems = []
    for dataset_id, name, body in current:
        try:
            contract = parse_contract(yaml.safe_load(body), source=f"the contract of {name}")
        except (InvalidInput, yaml.YAMLError, ValueError):
            problems.append(f"the contract of {name} cannot be read")
            continue
        personal = [c.name for c in contract.columns if c.classification in PERSONAL]
        subject = next((c.name for c in contract.columns if c.subject_id), None)
        if not personal and subject is None:
            continue
        without = int(unmapped.get(dataset_id, 0))
        rows.append(
            {
                "dataset": name,
                "personal_columns": personal,
                "subject_id": subject,
                "versions_without_subject_manifest": without,
            }
        )
        if subject is None:
            problems.append(f"dataset {name} holds personal data but declares no subject_id")
        elif without:
            problems.append(f"{without} version(s) of {name} have no subject manifest")
    evidence = {
        "datasets_with_personal_data": rows,
        "erasures_recorded": int(erasures),
        "last_erasure_at": _iso(last_erasure),
    }
    if not rows and not problems:
        return Outcome("not_applicable", "no dataset contract classifies personal data", evidence)
    status, summary = _problems(
        problems,
        f"{len(rows)} dataset(s) with personal data declare a subject_id, so a person can be "
        f"found and erased; {erasures} erasure(s) recorded",
    )
    return Outcome(status, summary, evidence)


# -- the clause mapping ----------------------------------------------------------------------------


def _c(framework: str, clause: str, title: str) -> Clause:
    return Clause(framework, clause, title)


CONTROLS: tuple[Control, ...] = (
    Control(
        "encryption-at-rest",
        "Encryption at rest",
        (
            _c("hipaa", "164.312(a)(2)(iv)", "Encryption and decryption"),
            _c("pci", "3.5.1", "Stored account data is rendered unreadable"),
            _c("soc2", "CC6.1", "Logical access security; protection of information assets"),
            _c("gdpr", "Art. 32(1)(a)", "Pseudonymisation and encryption of personal data"),
        ),
        ("aidlc objects verify", "aidlc keys list"),
        _encryption_at_rest,
    ),
    Control(
        "audit-integrity",
        "Audit trail integrity",
        (
            _c("hipaa", "164.312(b)", "Audit controls"),
            _c("pci", "10.2", "Audit logs are implemented to support detection of anomalies"),
            _c("pci", "10.3.2", "Audit log files are protected to prevent modifications"),
            _c("soc2", "CC7.2", "Monitoring of system components for anomalies"),
            _c("gdpr", "Art. 5(2)", "Accountability"),
            _c("gdpr", "Art. 30", "Records of processing activities"),
        ),
        ("aidlc audit verify",),
        _audit_integrity,
    ),
    Control(
        "key-management",
        "Key management and rotation",
        (
            _c("pci", "3.6", "Cryptographic keys used to protect stored account data are secured"),
            _c("pci", "3.7", "Key-management processes and procedures are implemented"),
            _c("soc2", "CC6.1", "Logical access security; protection of information assets"),
        ),
        ("aidlc keys list",),
        _key_management,
    ),
    Control(
        "change-management",
        "Change management: independent model approval",
        (
            _c("soc2", "CC8.1", "Changes are authorized, tested, approved and implemented"),
            _c("pci", "6.5.1", "Changes to production system components follow procedures"),
        ),
        ("aidlc models list", "aidlc models history NAME", "aidlc models verify NAME@VERSION"),
        _change_management,
    ),
    Control(
        "monitoring",
        "Production model monitoring",
        (
            _c("soc2", "CC7.1", "Detection and monitoring procedures"),
            _c("soc2", "CC4.1", "Ongoing and separate evaluations of controls"),
        ),
        ("aidlc monitor reports", "aidlc monitor schedule --once"),
        _monitoring,
    ),
    Control(
        "retention",
        "Retention and legal holds",
        (
            _c("gdpr", "Art. 5(1)(e)", "Storage limitation"),
            _c("hipaa", "164.316(b)(2)(i)", "Documentation time limit (six years)"),
            _c("pci", "3.2.1", "Account data storage is kept to a minimum (retention, disposal)"),
            _c("soc2", "C1.2", "Confidential information is disposed of"),
        ),
        ("aidlc compliance report --framework gdpr --format json",),
        _retention,
    ),
    Control(
        "access-review",
        "Access review and least privilege",
        (
            _c("soc2", "CC6.2", "Registration and authorization of users"),
            _c("soc2", "CC6.3", "Role-based access, least privilege, segregation of duties"),
            _c("hipaa", "164.308(a)(4)", "Information access management"),
            _c("pci", "7.2", "Access to system components and data is defined and assigned"),
            _c("pci", "8.2.6", "Inactive user accounts are removed or disabled within 90 days"),
        ),
        ("aidlc user list", "aidlc token list"),
        _access_review,
    ),
    Control(
        "incident-response",
        "Incident response and alerting",
        (
            _c("soc2", "CC7.3", "Security events are evaluated"),
            _c("soc2", "CC7.4", "Security incidents are responded to"),
            _c("hipaa", "164.308(a)(6)", "Security incident procedures"),
            _c("pci", "12.10", "Suspected and confirmed security incidents are responded to"),
        ),
        ("aidlc alerts test", "aidlc alerts list"),
        _incident_response,
    ),
    Control(
        "erasure-capability",
        "Erasure capability for personal data",
        (_c("gdpr", "Art. 17", "Right to erasure"),),
        ("aidlc data list", "aidlc data contract show DATASET"),
        _erasure_capability,
    ),
)


# -- the report ------------------------------------------------------------------------------------


def controls_for(framework: str) -> list[Control]:
    """The controls with at least one clause of `framework` (every control for `all`).

    >>> [c.id for c in controls_for("gdpr")][:2]
    ['encryption-at-rest', 'audit-integrity']
    """
    if framework == "all":
        return list(CONTROLS)
    if framework not in FRAMEWORKS:
        raise InvalidInput(
            f"unknown framework {framework[:40]!r}; use one of: {', '.join([*FRAMEWORKS, 'all'])}"
        )
    return [c for c in CONTROLS if framework in c.frameworks()]


def _evaluate(control: Control, ev: _Evidence, framework: str) -> ControlResult:
    try:
        outcome = control.evaluate(ev)
    except PermissionDenied as exc:
        outcome = Outcome("not_evaluated", exc.message)
    except AidlcError as exc:
        outcome = Outcome("not_evaluated", f"not evaluated: {exc.message}")
    clauses = tuple(c for c in control.clauses if framework in ("all", c.framework))
    recheck = (*control.recheck, f"aidlc compliance check --framework {framework}")
    return ControlResult(
        control.id,
        control.title,
        outcome.status,
        outcome.summary,
        clauses,
        outcome.evidence,
        recheck,
    )


def report(ws: Workspace, framework: str = "all", *, now: datetime | None = None) -> Report:
    """Evaluate the controls of `framework` (soc2, hipaa, gdpr, pci or all) as the caller
    (`compliance.read`: approver, auditor), and audit that a report was made."""
    principal = ws.authorize("compliance.read", f"compliance:{framework[:40]}")
    chosen = controls_for(framework)
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise InvalidInput("now must be an aware UTC time")
    ev = _Evidence(ws, principal, moment)
    results = [_evaluate(c, ev, framework) for c in chosen]
    out = Report(
        framework=framework,
        generated_at=moment,
        workspace={"name": ws.config.workspace, "id": ws.id},
        generated_by={"principal": principal.name, "roles": sorted(principal.roles)},
        controls=results,
    )
    with ws.transaction() as session:
        ws.record(
            session,
            "compliance.report",
            f"compliance:{framework}",
            {**out.counts(), "failed": [c.id for c in results if c.status == "fail"]},
        )
    return out


# -- rendering -------------------------------------------------------------------------------------


def render(rep: Report, fmt: str) -> str:
    """The report as `json`, `md` (Markdown) or `html` (one self-contained page, no script)."""
    if fmt == "json":
        return json.dumps(rep.to_json(), indent=2) + "\n"
    if fmt == "md":
        return _markdown(rep)
    if fmt == "html":
        return _html(rep)
    raise InvalidInput(f"unknown format {fmt[:20]!r}; use one of: {', '.join(FORMATS)}")


def _title(rep: Report) -> str:
    name = FRAMEWORKS.get(rep.framework, "all frameworks")
    return f"Compliance report: {name}"


def _cell(text: str) -> str:
    """Text safe in a Markdown line or table cell: no raw HTML, no column break, one line."""
    text = html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\n", " ")


def _fence(text: str) -> str:
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _markdown(rep: Report) -> str:
    lines = [
        f"# {_cell(_title(rep))}",
        "",
        f"- Workspace: {_cell(rep.workspace['name'])} (`{rep.workspace['id']}`)",
        f"- Generated: {_iso(rep.generated_at)} by {_cell(rep.generated_by['principal'])}"
        f" ({', '.join(rep.generated_by['roles'])})",
        f"- Result: {'PASS' if rep.ok else 'FAIL'} — "
        + ", ".join(f"{n} {s}" for s, n in rep.counts().items()),
        "",
        "| control | status | summary |",
        "|---|---|---|",
    ]
    lines += [f"| {c.id} | {c.status} | {_cell(c.summary)} |" for c in rep.controls]
    for c in rep.controls:
        evidence = json.dumps(c.evidence, indent=2)
        fence = _fence(evidence)
        lines += ["", f"## {_cell(c.title)} ({c.id}): {c.status}", "", _cell(c.summary), ""]
        lines += [f"- {FRAMEWORKS[cl.framework]} {cl.id}: {_cell(cl.title)}" for cl in c.clauses]
        lines += ["", "Evidence:", "", f"{fence}json", evidence, fence, "", "Re-check:", ""]
        lines += [f"- `{cmd}`" for cmd in c.recheck]
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"
    ".pass{color:#176317}.fail{color:#b00020}.not_applicable{color:#666}"
    ".not_evaluated{color:#a05a00}"
)


def _html(rep: Report) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td><a href="#{e(c.id)}">{e(c.id)}</a></td>'
        f'<td class="{e(c.status)}">{e(c.status)}</td><td>{e(c.summary)}</td></tr>'
        for c in rep.controls
    )
    sections = []
    for c in rep.controls:
        clauses = "".join(
            f"<li>{e(FRAMEWORKS[cl.framework])} {e(cl.id)}: {e(cl.title)}</li>" for cl in c.clauses
        )
        commands = "".join(f"<li><code>{e(cmd)}</code></li>" for cmd in c.recheck)
        sections.append(
            f'<section id="{e(c.id)}"><h2>{e(c.title)} '
            f'<span class="{e(c.status)}">({e(c.status)})</span></h2>'
            f"<p>{e(c.summary)}</p><ul>{clauses}</ul><h3>Evidence</h3>"
            f"<pre>{e(json.dumps(c.evidence, indent=2))}</pre>"
            f"<h3>Re-check</h3><ul>{commands}</ul></section>"
        )
    counts = ", ".join(f"{n} {s}" for s, n in rep.counts().items())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{e(_title(rep))}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(_title(rep))}</h1>"
        f"<p>Workspace {e(rep.workspace['name'])} (<code>{e(rep.workspace['id'])}</code>); "
        f"generated {e(_iso(rep.generated_at) or '')} by {e(rep.generated_by['principal'])} "
        f"({e(', '.join(rep.generated_by['roles']))}).</p>"
        f'<p class="{"pass" if rep.ok else "fail"}"><strong>'
        f"{'PASS' if rep.ok else 'FAIL'}</strong>: {e(counts)}</p>"
        f"<table><tr><th>control</th><th>status</th><th>summary</th></tr>{rows}</table>"
        + "".join(sections)
        + "</body></html>\n"
    )


def failed(rep: Report) -> Iterable[ControlResult]:
    """The controls that make `compliance check` fail: failed or not evaluated."""
    return (c for c in rep.controls if c.status in ("fail", "not_evaluated"))
