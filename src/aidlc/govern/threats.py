"""The workspace's threat model, derived from its live configuration and state.

Components, data flows and trust boundaries come from `aidlc.yaml` and the metadata database;
each threat of `THREATS` (keyed to MITRE ATLAS and OWASP ML Top 10 ids) is assessed against that
evidence into the mitigations in force, the gaps, and a status.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aidlc.core.meta import (
    AuditEvent,
    ContractRecord,
    DatasetRecord,
    IngestRecord,
    ModelAliasRecord,
    ModelVersionRecord,
    MonitorReportRecord,
    PredictionBatchRecord,
    PrincipalRecord,
    RunRecord,
    StoredObject,
    TokenRecord,
)
from aidlc.core.meta.models import ScheduleRunRecord

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

STATUSES = ("mitigated", "partial", "gap")
RATE_LIMIT_STORAGE_ENV = "AIDLC_RATE_LIMIT_STORAGE"

# Trust boundaries: (name, what crosses it). Every threat names one of them.
CALLER_API = "caller ↔ inference API"
CLI_WORKSPACE = "CLI user ↔ workspace"
PRODUCER_GATE = "data producer ↔ data gate"
TRAINER_REGISTRY = "trainer ↔ registry"
WORKSPACE_STORE = "workspace ↔ object store"
WORKSPACE_KEYS = "workspace ↔ key provider"
WORKSPACE_DB = "workspace ↔ metadata database"
PRODUCTION_MONITORING = "production traffic ↔ monitoring"
MONITORING_SINKS = "monitoring ↔ alert sinks"


# -- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Everything the model reads, gathered once from configuration and database."""

    ws: Workspace
    now: datetime
    database: str
    roles: dict[str, int]
    admins_with_other_roles: list[str]
    tokens_active: int
    tokens_without_expiry: int
    objects_live: int
    objects_unencrypted: int
    objects_shredded: int
    datasets: int
    contracts: int
    ingests: dict[str, int]
    runs: int
    model_versions: int
    unsigned_versions: int
    production_models: int
    loads_verified: int
    loads_refused: int
    imported_versions: int
    in_sample_approved: int
    audit_verified: dict[str, Any] | None
    prediction_batches: int
    monitor_reports: int
    schedule_runs: dict[str, str]
    rate_limit_storage: str
    key_age_days: int | None = None
    key_versions: int | None = None
    keyring_sealed: bool | None = None

    @property
    def config(self) -> Any:
        return self.ws.config

    @property
    def storage_scheme(self) -> str:
        # The storage URL may carry a password (from the environment): only its scheme is shown.
        return self.rate_limit_storage.split("://", 1)[0] + "://"


def _keyring(ws: Workspace, now: datetime) -> dict[str, Any]:
    """Age in days of the current key version, version count and whether the ring is sealed
    with a passphrase, read from the key ring's public metadata (never its key material)."""
    if ws.config.keys.provider != "file":
        return {}
    path = Path(ws.config.keys.file)
    path = path if path.is_absolute() else ws.root / path
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        versions = {str(v["id"]): str(v["created_at"]) for v in document["versions"]}
        created = datetime.fromisoformat(versions[str(document["current"])])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return {
        "key_age_days": (now - created).days,
        "key_versions": len(versions),
        "keyring_sealed": "sealed_material" in document,
    }


def _last_audit_verification(session: Session) -> dict[str, Any] | None:
    from aidlc.core.audit import Event

    body = session.execute(
        select(AuditEvent.body)
        .where(AuditEvent.action == "audit.verify", AuditEvent.outcome == "ok")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if body is None:
        return None
    event = Event.from_body(body)
    return {"time": event.time, "ok": event.details.get("ok") is True}


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def gather(ws: Workspace) -> Evidence:
    """Read the evidence the threat model rests on (callers authorise first)."""
    now = datetime.now(UTC)
    with ws.db.reading() as session:
        principals = list(
            session.execute(
                select(PrincipalRecord).where(PrincipalRecord.disabled.is_(False))
            ).scalars()
        )
        held = {p.name: {r.role for r in p.roles} for p in principals}
        tokens = session.execute(
            select(TokenRecord.expires_at)
            .join(PrincipalRecord, PrincipalRecord.id == TokenRecord.principal_id)
            .where(TokenRecord.revoked_at.is_(None), PrincipalRecord.disabled.is_(False))
        ).scalars()
        active = [t for t in tokens if t is None or t > now]
        rows = session.execute(
            select(
                StoredObject.wrapped_key.is_(None),
                StoredObject.ciphertext_size,
                StoredObject.size,
            ).where(StoredObject.deleted_at.is_(None))
        ).all()
        loads = dict(
            session.execute(
                select(AuditEvent.outcome, func.count())
                .where(AuditEvent.action.in_(("model.load", "model.verify")))
                .group_by(AuditEvent.outcome)
            ).all()
        )
        signatures = list(session.execute(select(ModelVersionRecord.statement_signature)).scalars())
        imported = [
            (json.loads(text), status)
            for text, status in session.execute(
                select(ModelVersionRecord.statement, ModelVersionRecord.status)
            ).all()
            if '"imported"' in text
        ]
        evidence = Evidence(
            ws=ws,
            now=now,
            database=ws.db.engine.dialect.name,
            roles=dict(sorted(Counter(r for roles in held.values() for r in roles).items())),
            admins_with_other_roles=sorted(n for n, r in held.items() if r > {"admin"}),
            tokens_active=len(active),
            tokens_without_expiry=sum(1 for t in active if t is None),
            objects_live=len(rows),
            # Encrypted means a wrapped data key and a ciphertext longer than the plaintext
            # (the AEAD tags); a live row without both would be stored in clear.
            objects_unencrypted=sum(1 for no_key, c, p in rows if no_key or c <= p),
            objects_shredded=_count(session, StoredObject, StoredObject.deleted_at.is_not(None)),
            datasets=_count(session, DatasetRecord),
            contracts=_count(session, ContractRecord),
            ingests={
                str(k): int(v)
                for k, v in session.execute(
                    select(IngestRecord.outcome, func.count()).group_by(IngestRecord.outcome)
                ).all()
            },
            runs=_count(session, RunRecord),
            model_versions=len(signatures),
            unsigned_versions=sum(1 for s in signatures if not s),
            production_models=_count(
                session, ModelAliasRecord, ModelAliasRecord.alias == "production"
            ),
            loads_verified=int(loads.get("ok", 0)),
            loads_refused=int(loads.get("error", 0)),
            imported_versions=sum(1 for statement, _ in imported if statement.get("imported")),
            in_sample_approved=sum(
                1
                for statement, status in imported
                if status == "approved" and (statement.get("evaluation") or {}).get("in_sample")
            ),
            audit_verified=_last_audit_verification(session),
            prediction_batches=_count(session, PredictionBatchRecord),
            monitor_reports=_count(session, MonitorReportRecord),
            schedule_runs={
                r.name: r.status for r in session.execute(select(ScheduleRunRecord)).scalars()
            },
            # The environment overrides the file, as the server does.
            rate_limit_storage=os.environ.get(RATE_LIMIT_STORAGE_ENV)
            or ws.config.serve.rate_limit_storage,
            **_keyring(ws, now),
        )
    return evidence


# -- assessment -------------------------------------------------------------------------------


@dataclass
class Assessment:
    """Mitigations in force and gaps for one threat; a severe gap makes the status `gap`."""

    mitigations: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    severe: bool = False

    def ok(self, text: str) -> None:
        self.mitigations.append(text)

    def gap(self, text: str, *, severe: bool = False) -> None:
        self.gaps.append(text)
        self.severe = self.severe or severe

    @property
    def status(self) -> str:
        if self.severe or not self.mitigations:
            return "gap"
        return "partial" if self.gaps else "mitigated"


def _rate_limit(e: Evidence, a: Assessment, *, severe: bool) -> None:
    serve = e.config.serve
    shared = not e.storage_scheme.startswith("memory")
    where = "shared by every worker and replica" if shared else "per process"
    a.ok(f"rate limit {serve.rate_limit.strip()} per token, storage {e.storage_scheme} ({where})")
    if shared:
        a.ok("rate-limit storage unreachable: requests are refused (the limit fails closed)")
    else:
        a.gap(
            "rate-limit storage memory:// counts per process: with several workers or replicas "
            "each allows the full rate (set serve.rate_limit_storage to redis://)",
            severe=severe,
        )


def _request_limits(e: Evidence, a: Assessment) -> None:
    serve = e.config.serve
    a.ok(f"requests capped at {serve.max_body_bytes} bytes and {serve.max_batch_rows} rows")


def _tokens(e: Evidence, a: Assessment) -> None:
    ttl = e.config.auth.token_ttl_days
    if ttl is None:
        a.gap("auth.token_ttl_days is unset: new tokens never expire")
    if e.tokens_without_expiry:
        a.gap(f"{e.tokens_without_expiry} of {e.tokens_active} active tokens never expire")
    else:
        a.ok(f"all {e.tokens_active} active tokens expire (auth.token_ttl_days={ttl})")


def _admins(e: Evidence, a: Assessment) -> None:
    if e.admins_with_other_roles:
        a.gap("principals holding admin plus another role: " + ", ".join(e.admins_with_other_roles))
    else:
        a.ok("no principal holds admin together with another role")


def _audit(e: Evidence, a: Assessment) -> None:
    last = e.audit_verified
    limit = e.config.audit.verify_max_age_days
    if last is None:
        a.gap("the audit log has never been verified (`aidlc audit verify`)")
    elif not last["ok"]:
        a.gap(f"the last audit verification, at {last['time']}, found tampering", severe=True)
    elif datetime.fromisoformat(last["time"]) < e.now - timedelta(days=limit):
        a.gap(
            f"audit log last verified at {last['time']}, "
            f"longer ago than audit.verify_max_age_days={limit}"
        )
    else:
        a.ok(f"audit log verified at {last['time']} (signed Merkle tree heads)")


def _monitoring(e: Evidence, a: Assessment) -> None:
    schedules = e.config.monitor.schedules
    if not schedules:
        a.gap("no monitor schedule: drift and OOD bursts show only when someone runs a monitor")
        return
    runs = ", ".join(f"{s.name}={e.schedule_runs.get(s.name, 'never ran')}" for s in schedules)
    a.ok(f"{len(schedules)} monitor schedule(s) ({runs}); {e.monitor_reports} report(s)")


def _alerting(e: Evidence, a: Assessment) -> None:
    kinds = sorted({s.type for s in e.config.alerts.sinks})
    if set(kinds) <= {"log"}:
        a.gap("no alert sink beyond log: alerts reach no one who is paged")
    else:
        a.ok(f"alerts sent to {', '.join(kinds)} ({len(e.config.alerts.rules)} rules)")


def _prediction_log(e: Evidence, a: Assessment) -> None:
    rate = e.config.serve.prediction_log.sample_rate
    if rate < 1:
        a.gap(f"serve.prediction_log.sample_rate={rate}: unlogged predictions cannot be traced")
    else:
        a.ok(
            f"every prediction logged, encrypted, with its caller ({e.prediction_batches} batches)"
        )


def _poisoning(e: Evidence, a: Assessment) -> None:
    if e.contracts:
        a.ok(f"{e.datasets} dataset(s) gated by {e.contracts} data contract version(s)")
    else:
        a.gap("no data contract registered yet")
    outcomes = ", ".join(f"{k}={v}" for k, v in sorted(e.ingests.items())) or "none yet"
    a.ok(f"failing rows quarantined, out of training (ingests: {outcomes})")
    a.ok(f"only data stewards may ingest ({e.roles.get('data-steward', 0)} principal(s))")
    data = e.config.data
    a.ok(
        f"files refused above {data.max_file_bytes} bytes, {data.max_decompressed_bytes} "
        f"decompressed, {data.max_columns} columns"
    )
    a.gap("residual: poisoned rows that satisfy the contract (e.g. flipped labels) pass the gate")


def _supply_chain(e: Evidence, a: Assessment) -> None:
    from aidlc.registry import formats

    a.ok(
        "pickle refused: registry formats allow-list ("
        + ", ".join(f"{k}: {v}" for k, v in formats.FLAVOR_FILES.items())
        + f", ONNX; skops with {len(formats.TRUSTED_SKOPS_TYPES)} trusted types for trained "
        "models, types derived from scikit-learn, NumPy and SciPy for imports)"
    )
    if e.unsigned_versions:
        a.gap(f"{e.unsigned_versions} model version(s) without a signed statement", severe=True)
    else:
        a.ok(f"{e.model_versions} model version(s), every one with a signed statement")
    a.ok(
        f"signatures verify on load: {e.loads_verified} verified load(s), {e.loads_refused} refused"
    )
    if e.loads_refused:
        a.gap(f"{e.loads_refused} model load(s) failed verification: investigate the alerts")
    a.ok(f"{e.runs} training run(s) record their environment (package digest, git commit)")


def _backdoor(e: Evidence, a: Assessment) -> None:
    a.ok("separation of duties: whoever trained or registered a version cannot approve it")
    a.ok(f"{e.production_models} model(s) in production, each moved there by a recorded approval")
    _admins(e, a)
    _audit(e, a)


def _transfer(e: Evidence, a: Assessment) -> None:
    a.ok(
        "models trained elsewhere enter only through `aidlc models import`: nothing in the file "
        "runs (pickle, custom classes, function references and custom ONNX operators are "
        "refused) and aidlc computes their metrics and gates on validated, held-out data"
    )
    a.ok(f"{e.imported_versions} imported model version(s), each signed and approved like any")
    if e.in_sample_approved:
        a.gap(
            f"{e.in_sample_approved} imported version(s) approved on in-sample metrics "
            "(accepted explicitly, audited)"
        )
    a.gap(
        "residual: an imported model's training data is what its importer declared; aidlc "
        "cannot prove which data or base weights produced it"
    )


def _adversarial(e: Evidence, a: Assessment) -> None:
    serve = e.config.serve
    a.ok("requests checked against the training schema (types, ranges, allowed values)")
    _request_limits(e, a)
    if serve.ood_action == "reject":
        a.ok(
            "out-of-distribution rows rejected "
            f"(serve.ood_action=reject, z-score above {serve.ood_z})"
        )
    else:
        a.ok(f"out-of-distribution rows flagged (z-score above {serve.ood_z})")
        a.gap("serve.ood_action=flag: out-of-distribution rows are still answered")
    _monitoring(e, a)
    _alerting(e, a)
    a.gap("residual: adversarial inputs inside the training distribution are not detected")


def _denial(e: Evidence, a: Assessment) -> None:
    _rate_limit(e, a, severe=True)
    _request_limits(e, a)
    a.gap("residual: limits are per token and address; volumetric floods need upstream defences")


def _extraction(e: Evidence, a: Assessment) -> None:
    a.ok(f"the API needs a token with the inference role ({e.roles.get('inference', 0)} holders)")
    _rate_limit(e, a, severe=False)
    _tokens(e, a)
    _prediction_log(e, a)


def _inversion(e: Evidence, a: Assessment) -> None:
    a.ok("answers carry labels; probabilities only when the caller asks")
    a.ok("data subjects stored only as keyed hashes (HMAC-SHA256) in dataset manifests")
    _rate_limit(e, a, severe=False)
    a.gap("residual: probabilities on request help model inversion and membership inference")


def _output_integrity(e: Evidence, a: Assessment) -> None:
    a.ok(
        "TLS required off loopback: `aidlc serve` refuses a plain-HTTP non-loopback bind "
        "unless --allow-plain-http (TLS at a proxy)"
    )
    a.ok("served versions pass signature verification before they are loaded")
    _prediction_log(e, a)


def _skewing(e: Evidence, a: Assessment) -> None:
    _monitoring(e, a)
    _alerting(e, a)
    a.ok("retraining candidates pass the same gates and a human approval")


def _storage(e: Evidence, a: Assessment) -> None:
    if e.objects_unencrypted:
        a.gap(f"{e.objects_unencrypted} live object(s) lack an encrypted data key", severe=True)
    else:
        a.ok(
            f"every stored object encrypted: {e.objects_live} objects, 0 unencrypted "
            f"({e.objects_shredded} crypto-shredded)"
        )
    a.ok("object names are hashed in the store")
    store = e.config.store
    if store.backend == "s3" and store.sse_kms_key_id:
        a.ok("S3 objects also encrypted at rest with SSE-KMS")
    elif store.backend == "s3":
        a.gap("store.sse_kms_key_id unset: S3 objects rely on client-side encryption only")
    keys = e.config.keys
    if keys.provider == "kms":
        a.ok("master key held in AWS KMS, never on this host")
    else:
        a.gap("KMS not used: the master key ring is a local file")
        if e.keyring_sealed:
            a.ok("key ring sealed with a passphrase (scrypt)")
        elif e.keyring_sealed is False:
            a.gap(f"the key ring is not sealed with a passphrase (${keys.passphrase_env})")
    if e.key_age_days is not None:
        if e.key_age_days > keys.rotation_days:
            a.gap(
                f"master key {e.key_age_days} days old, above keys.rotation_days="
                f"{keys.rotation_days} (`aidlc keys rotate`)"
            )
        else:
            a.ok(
                f"master key {e.key_age_days} days old, within keys.rotation_days="
                f"{keys.rotation_days} ({e.key_versions} version(s))"
            )
    if e.config.metadata.url_env:
        a.ok(f"database URL and password from ${e.config.metadata.url_env}, not aidlc.yaml")
    elif e.config.metadata.url_secret:
        a.ok(
            "database URL and password from AWS Secrets Manager "
            f"({e.config.metadata.url_secret}), not aidlc.yaml"
        )
    a.ok("the database holds only wrapped data keys and token hashes")


def _insider(e: Evidence, a: Assessment) -> None:
    held = ", ".join(f"{k}={v}" for k, v in e.roles.items())
    a.ok(f"default-deny roles, each action granted explicitly (held: {held})")
    _tokens(e, a)
    _admins(e, a)
    _audit(e, a)


@dataclass(frozen=True)
class ThreatSpec:
    """One threat: its ids, the boundary it crosses and how evidence is assessed against it."""

    key: str
    title: str
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    boundary: str
    assess: Callable[[Evidence, Assessment], None]


THREATS: tuple[ThreatSpec, ...] = (
    ThreatSpec(
        "poisoning",
        "Poisoned training data through the data gate",
        ("AML.T0020",),
        ("ML02:2023",),
        PRODUCER_GATE,
        _poisoning,
    ),
    ThreatSpec(
        "supply-chain",
        "Malicious model artifact or dependency",
        ("AML.T0010",),
        ("ML06:2023",),
        TRAINER_REGISTRY,
        _supply_chain,
    ),
    ThreatSpec(
        "backdoor",
        "Backdoored or poisoned model promoted to production",
        ("AML.T0018",),
        ("ML10:2023",),
        TRAINER_REGISTRY,
        _backdoor,
    ),
    ThreatSpec(
        "transfer-learning",
        "Tampered pre-trained model reused for fine-tuning",
        (),
        ("ML07:2023",),
        TRAINER_REGISTRY,
        _transfer,
    ),
    ThreatSpec(
        "adversarial-input",
        "Crafted inputs that evade or mislead the model",
        ("AML.T0043", "AML.T0015"),
        ("ML01:2023",),
        CALLER_API,
        _adversarial,
    ),
    ThreatSpec(
        "denial-of-service",
        "Flooding the inference API",
        ("AML.T0029",),
        (),
        CALLER_API,
        _denial,
    ),
    ThreatSpec(
        "model-extraction",
        "Stealing the model through its inference API",
        ("AML.T0024.002", "AML.T0040"),
        ("ML05:2023",),
        CALLER_API,
        _extraction,
    ),
    ThreatSpec(
        "inversion-membership",
        "Recovering training data or membership from answers",
        ("AML.T0024.000", "AML.T0024.001"),
        ("ML03:2023", "ML04:2023"),
        CALLER_API,
        _inversion,
    ),
    ThreatSpec(
        "output-integrity",
        "Predictions altered between the model and the caller",
        (),
        ("ML09:2023",),
        CALLER_API,
        _output_integrity,
    ),
    ThreatSpec(
        "model-skewing",
        "Production traffic steering the model or its retraining",
        ("AML.T0031",),
        ("ML08:2023",),
        PRODUCTION_MONITORING,
        _skewing,
    ),
    ThreatSpec(
        "storage-exfiltration",
        "Data or models taken from the object store, keys or database",
        ("AML.T0025",),
        ("ML05:2023",),
        WORKSPACE_STORE,
        _storage,
    ),
    ThreatSpec(
        "insider-access",
        "A workspace user reaching models or data beyond their role",
        ("AML.T0044",),
        ("ML05:2023",),
        CLI_WORKSPACE,
        _insider,
    ),
)


# -- the model --------------------------------------------------------------------------------


def _components(e: Evidence) -> list[dict[str, str]]:
    cfg = e.config
    if cfg.keys.provider == "kms":
        keys = f"AWS KMS key {cfg.keys.kms_key_id}" + (
            f" ({cfg.keys.region})" if cfg.keys.region else ""
        )
    else:
        sealed = {True: "passphrase-sealed", False: "not sealed", None: "unreadable"}
        keys = (
            f"file key ring {cfg.keys.file} ({sealed[e.keyring_sealed]}, "
            f"{e.key_versions} version(s), current {e.key_age_days} days old)"
        )
    if cfg.store.backend == "s3":
        sse = f"SSE-KMS {cfg.store.sse_kms_key_id}" if cfg.store.sse_kms_key_id else "no SSE-KMS"
        store = f"S3 bucket {cfg.store.bucket}/{cfg.store.prefix} ({sse})"
    else:
        store = f"local folder {cfg.store.path}"
    serve = cfg.serve
    schedules = ", ".join(s.name for s in cfg.monitor.schedules) or "none"
    return [
        {"name": "key provider", "detail": keys},
        {"name": "object store", "detail": f"{store}; {e.objects_live} live objects"},
        {
            "name": "metadata database",
            "detail": e.database
            + (f" (URL from ${cfg.metadata.url_env})" if cfg.metadata.url_env else "")
            + (
                f" (URL from Secrets Manager {cfg.metadata.url_secret})"
                if cfg.metadata.url_secret
                else ""
            ),
        },
        {
            "name": "principals",
            "detail": ", ".join(f"{k}: {v}" for k, v in e.roles.items())
            + f"; {e.tokens_active} active tokens",
        },
        {
            "name": "data gate",
            "detail": f"{e.datasets} datasets, {e.contracts} contract versions, ingests "
            + (", ".join(f"{k}={v}" for k, v in sorted(e.ingests.items())) or "none"),
        },
        {
            "name": "training",
            "detail": ("Ray cluster at $RAY_ADDRESS" if os.environ.get("RAY_ADDRESS") else "local")
            + f" engine; {e.runs} runs",
        },
        {
            "name": "registry",
            "detail": f"{e.model_versions} signed versions ({e.unsigned_versions} unsigned), "
            f"{e.production_models} in production",
        },
        {
            "name": "serving",
            "detail": f"TLS required off loopback; rate limit {serve.rate_limit.strip()} "
            f"({e.storage_scheme}); ood_action={serve.ood_action}",
        },
        {
            "name": "monitoring",
            "detail": f"schedules: {schedules}; {e.monitor_reports} reports",
        },
        {
            "name": "alerts",
            "detail": f"sinks: {', '.join(s.type for s in cfg.alerts.sinks) or 'none'}; "
            f"{len(cfg.alerts.rules)} rules",
        },
    ]


def _flows(e: Evidence) -> list[dict[str, str]]:
    sinks = ", ".join(sorted({s.type for s in e.config.alerts.sinks})) or "none"
    rows = [
        ("data producer", "data gate", "data files", PRODUCER_GATE,
         "contract, size limits, quarantine"),
        ("data gate", "object store", "raw, validated, quarantined data", WORKSPACE_STORE,
         "AES-GCM, one data key per object"),
        ("workspace", "key provider", "data keys to wrap and unwrap", WORKSPACE_KEYS,
         "encryption context binds each key to its object"),
        ("workspace", "metadata database", "metadata, wrapped keys, audit events", WORKSPACE_DB,
         "signed Merkle tree heads over the audit log"),
        ("trainer", "registry", "model files", TRAINER_REGISTRY,
         "allow-listed formats, signed statement"),
        ("registry", "serving", "approved model versions", TRAINER_REGISTRY,
         "signature verified on load"),
        ("caller", "inference API", "feature rows and predictions", CALLER_API,
         "token, TLS off loopback, rate limit, schema check"),
        ("serving", "monitoring", "prediction logs", PRODUCTION_MONITORING,
         "encrypted objects in zone predictions"),
        ("monitoring", "alert sinks", "alerts", MONITORING_SINKS, f"sinks: {sinks}"),
        ("CLI user", "workspace", "commands", CLI_WORKSPACE, "token, role grants, audit log"),
    ]  # fmt: skip
    keys = ("source", "target", "data", "boundary", "protection")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _boundaries(flows: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[str, list[str]] = {}
    for flow in flows:
        seen.setdefault(flow["boundary"], []).append(flow["protection"])
    return [{"name": name, "controls": "; ".join(controls)} for name, controls in seen.items()]


def threat_model(ws: Workspace) -> dict[str, Any]:
    """The workspace's threat model as data: components, flows, boundaries and threats.

    Needs `posture.read` (admin, auditor). Every threat carries its ATLAS and OWASP ids, the
    mitigations in force with their evidence, the gaps, and a status (mitigated/partial/gap).
    """
    ws.authorize("posture.read", "threat-model")
    e = gather(ws)
    threats = []
    for spec in THREATS:
        assessment = Assessment()
        spec.assess(e, assessment)
        threats.append(
            {
                "id": spec.key,
                "title": spec.title,
                "atlas": list(spec.atlas),
                "owasp": list(spec.owasp),
                "boundary": spec.boundary,
                "status": assessment.status,
                "mitigations": assessment.mitigations,
                "gaps": assessment.gaps,
            }
        )
    flows = _flows(e)
    return {
        "workspace": e.config.workspace,
        "generated_at": e.now.isoformat(timespec="seconds"),
        "summary": {s: sum(t["status"] == s for t in threats) for s in STATUSES},
        "components": _components(e),
        "flows": flows,
        "boundaries": _boundaries(flows),
        "threats": threats,
    }


# -- rendering --------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """A Markdown table cell: no line breaks, pipes escaped, HTML characters neutralised."""
    return html.escape(" ".join(str(text).split())).replace("|", "\\|")


def _ids(threat: dict[str, Any]) -> str:
    return ", ".join([*threat["atlas"], *threat["owasp"]])


def render_markdown(model: dict[str, Any]) -> str:
    """The threat model as a Markdown document."""
    s = model["summary"]
    out = [
        f"# Threat model: {_cell(model['workspace'])}",
        "",
        f"Generated {model['generated_at']} from the workspace's configuration and state. "
        f"Threats: {s['mitigated']} mitigated, {s['partial']} partial, {s['gap']} gap.",
        "",
        "## Components",
        "",
        "| Component | Configuration and state |",
        "|---|---|",
        *(f"| {_cell(c['name'])} | {_cell(c['detail'])} |" for c in model["components"]),
        "",
        "## Data flows",
        "",
        "| From | To | Data | Boundary | Protection |",
        "|---|---|---|---|---|",
        *(
            "| "
            + " | ".join(
                _cell(f[k]) for k in ("source", "target", "data", "boundary", "protection")
            )
            + " |"
            for f in model["flows"]
        ),
        "",
        "## Trust boundaries",
        "",
        *(f"- **{_cell(b['name'])}**: {_cell(b['controls'])}" for b in model["boundaries"]),
        "",
        "## Threats",
        "",
        "| Threat | ATLAS / OWASP | Boundary | Status |",
        "|---|---|---|---|",
        *(
            f"| {_cell(t['title'])} | {_ids(t)} | {_cell(t['boundary'])} | {t['status']} |"
            for t in model["threats"]
        ),
    ]
    for t in model["threats"]:
        out += ["", f"### {_cell(t['title'])} ({_ids(t)}): {t['status']}", ""]
        out += [f"- mitigation: {_cell(m)}" for m in t["mitigations"]]
        out += [f"- gap: {_cell(g)}" for g in t["gaps"]]
    return "\n".join(out) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;vertical-align:top}.mitigated{color:#176317}.partial{color:#8a5a00}"
    ".gap{color:#a01010;font-weight:bold}"
)


def render_html(model: dict[str, Any]) -> str:
    """The threat model as one self-contained HTML page: no scripts, no external assets."""

    def esc(value: Any) -> str:
        return html.escape(str(value), quote=True)

    def table(headers: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    def status(value: str) -> str:
        return f'<span class="{esc(value)}">{esc(value)}</span>'

    s = model["summary"]
    threats = [
        [
            esc(t["title"]),
            esc(_ids(t)),
            esc(t["boundary"]),
            status(t["status"]),
            "<ul>" + "".join(f"<li>{esc(m)}</li>" for m in t["mitigations"]) + "</ul>",
            "<ul>" + "".join(f"<li>{esc(g)}</li>" for g in t["gaps"]) + "</ul>",
        ]
        for t in model["threats"]
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>Threat model: {esc(model['workspace'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Threat model: {esc(model['workspace'])}</h1>",
        f"<p>Generated {esc(model['generated_at'])} from the workspace's configuration and state. "
        f"Threats: {s['mitigated']} mitigated, {s['partial']} partial, {s['gap']} gap.</p>",
        "<h2>Components</h2>",
        table(
            ["Component", "Configuration and state"],
            [[esc(c["name"]), esc(c["detail"])] for c in model["components"]],
        ),
        "<h2>Data flows</h2>",
        table(
            ["From", "To", "Data", "Boundary", "Protection"],
            [
                [esc(f[k]) for k in ("source", "target", "data", "boundary", "protection")]
                for f in model["flows"]
            ],
        ),
        "<h2>Trust boundaries</h2>",
        table(
            ["Boundary", "Controls"],
            [[esc(b["name"]), esc(b["controls"])] for b in model["boundaries"]],
        ),
        "<h2>Threats</h2>",
        table(["Threat", "ATLAS / OWASP", "Boundary", "Status", "Mitigations", "Gaps"], threats),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
