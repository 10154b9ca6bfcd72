"""Retention: how long objects are kept per zone (or per dataset), legal holds that keep them
anyway, and `apply`, which crypto-shreds what has expired and tidies the rows that pointed at it.

What `apply` never shreds, whatever the policy says (reported as *protected*):

- files of a model version that an alias points at (candidate, staging, production) or that was
  approved: serving, rollback and approval verify every file named by the signed statement;
- checkpoints of runs that are running or interrupted (a resume reads them);
- `row-hashes.parquet` of dataset versions: every later ingest reads all of them to find
  duplicates across versions, so shredding one would make the dataset's gate fail;
- erasure certificates (the evidence that an erasure happened).

Rows that would dangle are removed in the run's final transaction: `prediction_batches` rows
whose log object is shredded (and their `batch_profiles` cache rows and cache objects, which are
derived from the shredded rows), and `batch_profiles` rows whose cache object is shredded (a
monitor recomputes it). Ingest, dataset-version and monitor-report rows are history and stay;
reading their shredded objects raises `NotFound` saying the key was destroyed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from aidlc.core import auth, objects
from aidlc.core.meta import (
    BatchProfileRecord,
    DatasetRecord,
    DatasetVersionRecord,
    ErasureRecord,
    LegalHoldRecord,
    ModelAliasRecord,
    ModelVersionRecord,
    PredictionBatchRecord,
    RegisteredModel,
    RetentionPolicyRecord,
    RunRecord,
    StoredObject,
)
from aidlc.data.versions import check_dataset_name, dataset_record
from aidlc.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace

ZONES = auth.ZONES
# Zones whose object ids start with the dataset name (data/ingest.py: `{dataset}/{key}/...`).
DATASET_ZONES = ("raw", "validated", "quarantine")
MAX_DAYS = 36_500
_PREFIX = re.compile(r"^[A-Za-z0-9._@:/=-]{0,200}\Z")


@dataclass(frozen=True)
class RetentionPolicy:
    """Objects of `zone` (only those of `dataset`, when set) are kept `days` days."""

    zone: str
    dataset: str | None
    days: int
    set_by: str
    set_at: datetime

    @property
    def scope(self) -> str:
        return self.zone if self.dataset is None else f"{self.zone}/{self.dataset}"

    def to_json(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "dataset": self.dataset,
            "days": self.days,
            "set_by": self.set_by,
            "set_at": self.set_at.isoformat(),
        }


@dataclass(frozen=True)
class LegalHold:
    """Keeps every object of `zone` (all zones when None) whose id starts with `prefix`."""

    id: int
    zone: str | None
    prefix: str
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def covers(self, zone: str, object_id: str) -> bool:
        """Whether the hold keeps this object.

        >>> hold = LegalHold(1, "raw", "bc/", "case 7", "admin", datetime.now(UTC), None, None)
        >>> hold.covers("raw", "bc/k1/file.csv"), hold.covers("validated", "bc/k1/data.parquet")
        (True, False)
        """
        return (
            self.active
            and (self.zone is None or self.zone == zone)
            and object_id.startswith(self.prefix)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "zone": self.zone,
            "prefix": self.prefix,
            "reason": self.reason,
            "placed_by": self.placed_by,
            "placed_at": self.placed_at.isoformat(),
            "released_by": self.released_by,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "active": self.active,
        }


@dataclass(frozen=True)
class Expired:
    """An object past its retention that `apply` shreds (or would, in a dry run)."""

    zone: str
    object_id: str
    version: int
    size: int
    created_at: datetime
    rule: str  # which policy made it expire, or what it was derived from

    @property
    def ref(self) -> str:
        return f"{self.zone}/{self.object_id}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "rule": self.rule,
        }


@dataclass(frozen=True)
class Kept:
    """An expired object that stays, and why (a legal hold, or what would break)."""

    ref: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "reason": self.reason}


@dataclass(frozen=True)
class RetentionOutcome:
    """What one `apply` shredded and removed, or would have in a dry run."""

    dry_run: bool
    now: datetime
    shredded: list[Expired]
    held: list[Kept]
    protected: list[Kept]
    unavailable_versions: list[str] = field(default_factory=list)
    batches_removed: list[int] = field(default_factory=list)
    batch_profiles_removed: int = 0

    @property
    def bytes_shredded(self) -> int:
        return sum(e.size for e in self.shredded)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "shredded": [e.to_json() for e in self.shredded],
            "bytes_shredded": self.bytes_shredded,
            "held": [k.to_json() for k in self.held],
            "protected": [k.to_json() for k in self.protected],
            "unavailable_dataset_versions": self.unavailable_versions,
            "prediction_batches_removed": self.batches_removed,
            "batch_profiles_removed": self.batch_profiles_removed,
        }


# -- checks --------------------------------------------------------------------------------------


def _check_zone(zone: str) -> str:
    if zone not in ZONES:
        raise InvalidInput(f"unknown zone {zone[:40]!r}; zones are: {', '.join(ZONES)}")
    return zone


def _check_days(days: int) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            f"retention days must be a whole number from 1 to {MAX_DAYS}, not {str(days)[:20]}"
        )
    return days


def _check_dataset(zone: str, dataset: str | None) -> str | None:
    if dataset is None:
        return None
    if zone not in DATASET_ZONES:
        raise InvalidInput(
            f"a dataset policy applies to the {', '.join(DATASET_ZONES)} zones, not {zone!r}"
        )
    return check_dataset_name(dataset)


def _policy(rec: RetentionPolicyRecord) -> RetentionPolicy:
    return RetentionPolicy(rec.zone, rec.dataset, rec.days, rec.set_by, rec.set_at)


def _hold(rec: LegalHoldRecord) -> LegalHold:
    return LegalHold(
        id=rec.id,
        zone=rec.zone,
        prefix=rec.prefix,
        reason=rec.reason,
        placed_by=rec.placed_by,
        placed_at=rec.placed_at,
        released_by=rec.released_by,
        released_at=rec.released_at,
    )


def _policy_record(
    session: Session, zone: str, dataset: str | None
) -> RetentionPolicyRecord | None:
    query = select(RetentionPolicyRecord).where(RetentionPolicyRecord.zone == zone)
    query = query.where(
        RetentionPolicyRecord.dataset.is_(None)
        if dataset is None
        else RetentionPolicyRecord.dataset == dataset
    )
    return session.execute(query).scalar_one_or_none()


# -- policies ------------------------------------------------------------------------------------


def set_policy(
    ws: Workspace, zone: str, days: int, *, dataset: str | None = None
) -> RetentionPolicy:
    """Keep objects of `zone` (of `dataset` only, in raw/validated/quarantine) for `days` days.

    Setting a policy again replaces its days. A dataset policy beats the zone policy for that
    dataset's objects, whether it is shorter or longer.
    """
    _check_zone(zone)
    _check_days(days)
    dataset = _check_dataset(zone, dataset)
    scope = zone if dataset is None else f"{zone}/{dataset}"
    principal = ws.authorize("retention.manage", f"retention:{scope}")
    try:
        with ws.transaction() as session:
            if dataset is not None and dataset_record(session, dataset) is None:
                raise NotFound(f"no dataset named {dataset!r}; `aidlc data list` shows them")
            rec = _policy_record(session, zone, dataset)
            previous = rec.days if rec else None
            if rec is None:
                rec = RetentionPolicyRecord(zone=zone, dataset=dataset, days=days, set_by="")
                session.add(rec)
            rec.days = days
            rec.set_by = principal.name
            rec.set_at = datetime.now(UTC)
            session.flush()
            ws.record(
                session,
                "retention.policy.set",
                f"retention:{scope}",
                {"days": days, "previous_days": previous},
            )
            return _policy(rec)
    except DBIntegrityError:
        raise Conflict(f"the {scope} policy was set concurrently; set it again") from None


def remove_policy(ws: Workspace, zone: str, *, dataset: str | None = None) -> None:
    """Remove a policy: objects it covered are kept (or fall back to the zone policy)."""
    _check_zone(zone)
    dataset = _check_dataset(zone, dataset)
    scope = zone if dataset is None else f"{zone}/{dataset}"
    ws.authorize("retention.manage", f"retention:{scope}")
    with ws.transaction() as session:
        rec = _policy_record(session, zone, dataset)
        if rec is None:
            raise NotFound(
                f"no retention policy for {scope}; `aidlc retention policies` lists them"
            )
        days = rec.days
        session.delete(rec)
        ws.record(session, "retention.policy.remove", f"retention:{scope}", {"days": days})


def list_policies(ws: Workspace) -> list[RetentionPolicy]:
    """Every retention policy, by zone then dataset (zone policies first)."""
    ws.authorize("retention.manage", "retention")
    with ws.db.reading() as session:
        recs = session.execute(select(RetentionPolicyRecord)).scalars()
        found = [_policy(r) for r in recs]
    return sorted(found, key=lambda p: (ZONES.index(p.zone), p.dataset or ""))


# -- legal holds ---------------------------------------------------------------------------------


def place_hold(
    ws: Workspace, reason: str, *, zone: str | None = None, prefix: str = ""
) -> LegalHold:
    """Keep every object of `zone` (all zones when None) whose id starts with `prefix`, whatever
    its age, until the hold is released."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a legal hold needs a reason (the case or request it serves)")
    if len(reason) > 2000:
        raise InvalidInput("a legal hold's reason is limited to 2000 characters")
    if zone is not None:
        _check_zone(zone)
    if not _PREFIX.match(prefix) or ".." in prefix:
        raise InvalidInput(
            f"invalid prefix {prefix[:80]!r}: up to 200 characters from A-Z a-z 0-9 . _ @ : / = -"
        )
    principal = ws.authorize("legal_hold.manage", f"legal-hold:{zone or '*'}/{prefix}")
    with ws.transaction() as session:
        rec = LegalHoldRecord(
            zone=zone,
            prefix=prefix,
            reason=reason,
            placed_by=principal.name,
            placed_at=datetime.now(UTC),
        )
        session.add(rec)
        session.flush()
        ws.record(
            session,
            "legal_hold.place",
            f"legal-hold:{rec.id}",
            {"zone": zone, "prefix": prefix, "reason": reason[:500]},
        )
        return _hold(rec)


def release_hold(ws: Workspace, hold_id: int) -> LegalHold:
    """Release a hold: the objects it kept expire again under their policies."""
    principal = ws.authorize("legal_hold.manage", f"legal-hold:{hold_id}")
    with ws.transaction() as session:
        rec = session.get(LegalHoldRecord, hold_id)
        if rec is None:
            raise NotFound(f"no legal hold {hold_id}; `aidlc retention holds` lists them")
        if rec.released_at is not None:
            raise Conflict(
                f"legal hold {hold_id} was already released by {rec.released_by} "
                f"on {rec.released_at:%Y-%m-%d %H:%M} UTC"
            )
        rec.released_at = datetime.now(UTC)
        rec.released_by = principal.name
        ws.record(
            session,
            "legal_hold.release",
            f"legal-hold:{hold_id}",
            {"zone": rec.zone, "prefix": rec.prefix},
        )
        return _hold(rec)


def list_holds(ws: Workspace, *, include_released: bool = False) -> list[LegalHold]:
    """Active legal holds (and released ones too, when asked), oldest first."""
    ws.authorize("legal_hold.manage", "legal-holds")
    with ws.db.reading() as session:
        query = select(LegalHoldRecord).order_by(LegalHoldRecord.id)
        if not include_released:
            query = query.where(LegalHoldRecord.released_at.is_(None))
        return [_hold(r) for r in session.execute(query).scalars()]


# -- applying ------------------------------------------------------------------------------------


@dataclass
class _Plan:
    shred: list[Expired] = field(default_factory=list)
    held: list[Kept] = field(default_factory=list)
    protected: list[Kept] = field(default_factory=list)


def _ref(zone: str, object_id: str, version: int) -> str:
    return f"{zone}/{object_id}@{version}"


def _protected_models(session: Session) -> dict[str, str]:
    """Object-id prefix of each model version whose files must stay → why."""
    names = dict(session.execute(select(RegisteredModel.id, RegisteredModel.name)).all())
    out: dict[str, str] = {}
    for model_id, alias, version in session.execute(
        select(ModelAliasRecord.model_id, ModelAliasRecord.alias, ModelAliasRecord.version)
    ).all():
        name = names[model_id]
        out.setdefault(f"{name}/v{version}/", f"model {name}@{version} is {alias}")
    for model_id, version in session.execute(
        select(ModelVersionRecord.model_id, ModelVersionRecord.version).where(
            ModelVersionRecord.status == "approved"
        )
    ).all():
        name = names[model_id]
        out.setdefault(f"{name}/v{version}/", f"model {name}@{version} is approved")
    return out


def _protection(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """(model-version object-id prefixes → why, refs kept for other reasons → why)."""
    models = _protected_models(session)
    kept: dict[str, str] = {}
    for ref in session.execute(select(ErasureRecord.certificate_ref)).scalars():
        kept[ref] = "an erasure certificate (evidence of an erasure)"
    for checkpoint in session.execute(
        select(RunRecord.checkpoint_object).where(
            RunRecord.status.in_(("running", "interrupted")),
            RunRecord.checkpoint_object.is_not(None),
        )
    ).scalars():
        if checkpoint:
            kept[checkpoint] = "the checkpoint of a run that may still resume"
    return models, kept


def _why_protected(
    zone: str, object_id: str, ref: str, models: dict[str, str], kept: dict[str, str]
) -> str | None:
    if ref in kept:
        return kept[ref]
    if zone == "models":
        for prefix, why in models.items():
            if object_id.startswith(prefix):
                return why
    if zone == "validated" and object_id.endswith("/row-hashes.parquet"):
        return "row hashes of a dataset version, which every later ingest reads"
    return None


def _plan(ws: Workspace, now: datetime) -> _Plan:
    plan = _Plan()
    with ws.db.reading() as session:
        policies = {
            (p.zone, p.dataset): p
            for p in (_policy(r) for r in session.execute(select(RetentionPolicyRecord)).scalars())
        }
        if not policies:
            return plan
        holds = [
            _hold(r)
            for r in session.execute(
                select(LegalHoldRecord).where(LegalHoldRecord.released_at.is_(None))
            ).scalars()
        ]
        models, kept = _protection(session)
        live = list(
            session.execute(
                select(StoredObject)
                .where(
                    StoredObject.zone.in_(sorted({z for z, _ in policies})),
                    StoredObject.wrapped_key.is_not(None),
                )
                .order_by(StoredObject.zone, StoredObject.object_id, StoredObject.version)
            ).scalars()
        )
    for rec in live:
        policy = None
        head, sep, _ = rec.object_id.partition("/")
        if rec.zone in DATASET_ZONES and sep:
            policy = policies.get((rec.zone, head))
        policy = policy or policies.get((rec.zone, None))
        if policy is None or rec.created_at > now - timedelta(days=policy.days):
            continue
        ref = _ref(rec.zone, rec.object_id, rec.version)
        hold = next((h for h in holds if h.covers(rec.zone, rec.object_id)), None)
        if hold is not None:
            plan.held.append(Kept(ref, f"legal hold {hold.id}: {hold.reason[:200]}"))
            continue
        why = _why_protected(rec.zone, rec.object_id, ref, models, kept)
        if why is not None:
            plan.protected.append(Kept(ref, why))
            continue
        plan.shred.append(
            Expired(
                rec.zone,
                rec.object_id,
                rec.version,
                rec.size,
                rec.created_at,
                f"{policy.scope} policy: {policy.days} days",
            )
        )
    return plan


def _dependents(ws: Workspace, plan: _Plan) -> tuple[list[int], list[tuple[int, int]]]:
    """Prediction batches and batch-profile cache rows that point at shredded objects (earlier
    runs' too, so an interrupted run is tidied by the next); adds the cache objects derived from
    shredded batches to the plan."""
    going = {e.ref for e in plan.shred}
    with ws.db.reading() as session:
        dead = {
            _ref(z, o, v)
            for z, o, v in session.execute(
                select(StoredObject.zone, StoredObject.object_id, StoredObject.version).where(
                    StoredObject.zone.in_(("predictions", "reports")),
                    StoredObject.wrapped_key.is_(None),
                )
            ).all()
        } | going
        batches = [
            batch_id
            for batch_id, ref in session.execute(
                select(PredictionBatchRecord.id, PredictionBatchRecord.object_ref).order_by(
                    PredictionBatchRecord.id
                )
            ).all()
            if ref in dead
        ]
        profiles = list(
            session.execute(
                select(
                    BatchProfileRecord.batch_id,
                    BatchProfileRecord.version,
                    BatchProfileRecord.object_ref,
                )
            ).all()
        )
        holds = [
            _hold(r)
            for r in session.execute(
                select(LegalHoldRecord).where(LegalHoldRecord.released_at.is_(None))
            ).scalars()
        ]
        live_refs = {
            _ref(r.zone, r.object_id, r.version): r
            for r in session.execute(
                select(StoredObject).where(
                    StoredObject.zone == "reports", StoredObject.wrapped_key.is_not(None)
                )
            ).scalars()
        }
    removed = set(batches)
    rows: list[tuple[int, int]] = []
    for batch_id, version, ref in profiles:
        if batch_id not in removed and ref not in dead:
            continue
        rows.append((batch_id, version))
        rec = live_refs.get(ref)
        if batch_id not in removed or rec is None or ref in going:
            continue
        hold = next((h for h in holds if h.covers(rec.zone, rec.object_id)), None)
        if hold is not None:
            plan.held.append(Kept(ref, f"legal hold {hold.id}: {hold.reason[:200]}"))
            continue
        plan.shred.append(
            Expired(
                rec.zone,
                rec.object_id,
                rec.version,
                rec.size,
                rec.created_at,
                f"derived from shredded prediction batch {batch_id}",
            )
        )
        going.add(ref)
    return batches, rows


def _unavailable(ws: Workspace, plan: _Plan) -> list[str]:
    """Dataset versions whose validated data object the plan shreds."""
    going = {e.ref for e in plan.shred if e.zone == "validated"}
    if not going:
        return []
    with ws.db.reading() as session:
        found = session.execute(
            select(
                DatasetRecord.name, DatasetVersionRecord.version, DatasetVersionRecord.data_object
            )
            .join(DatasetRecord, DatasetRecord.id == DatasetVersionRecord.dataset_id)
            .order_by(DatasetRecord.name, DatasetVersionRecord.version)
        ).all()
        return [f"{name}@{version}" for name, version, ref in found if ref in going]


def apply(ws: Workspace, *, dry_run: bool = False, now: datetime | None = None) -> RetentionOutcome:
    """Crypto-shred every object older than its policy that no legal hold keeps, and remove
    the rows that would point at shredded prediction logs.

    A dataset policy beats its zone's policy. `now` (aware) stands in for the current time, to
    see what a later run would do. A dry run writes nothing, not even an audit event.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise InvalidInput("`now` must be an aware datetime (UTC)")
    ws.authorize("retention.apply", "retention")
    plan = _plan(ws, now)
    batches, profile_rows = _dependents(ws, plan)
    outcome = RetentionOutcome(
        dry_run=dry_run,
        now=now,
        shredded=plan.shred,
        held=plan.held,
        protected=plan.protected,
        unavailable_versions=_unavailable(ws, plan),
        batches_removed=batches,
        batch_profiles_removed=len(profile_rows),
    )
    if dry_run:
        return outcome
    for e in plan.shred:
        objects.delete(
            ws,
            e.zone,
            e.object_id,
            e.version,
            reason=f"retention: {e.rule}",
            action="retention.apply",
        )
    with ws.transaction() as session:
        for batch_id, version in profile_rows:
            session.execute(
                delete(BatchProfileRecord).where(
                    BatchProfileRecord.batch_id == batch_id, BatchProfileRecord.version == version
                )
            )
        if batches:
            session.execute(
                delete(PredictionBatchRecord).where(PredictionBatchRecord.id.in_(batches))
            )
        ws.record(
            session,
            "retention.apply",
            "retention",
            {
                "now": now.isoformat(),
                "shredded": len(plan.shred),
                "bytes_shredded": outcome.bytes_shredded,
                "held": len(plan.held),
                "protected": len(plan.protected),
                "unavailable_dataset_versions": outcome.unavailable_versions[:100],
                "prediction_batches_removed": len(batches),
                "batch_profiles_removed": len(profile_rows),
            },
        )
    return outcome
