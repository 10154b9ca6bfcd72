"""The metadata tables of the core layer. Every change here needs an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (portable) and always returns aware UTC datetimes."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class WorkspaceSetting(Base):
    """Small facts about the workspace itself (its id, when it was created)."""

    __tablename__ = "workspace_settings"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WorkspaceKey(Base):
    """A private key of the workspace (audit or model signing), envelope-encrypted."""

    __tablename__ = "workspace_keys"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(50))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrincipalRecord(Base):
    """A user or a service account."""

    __tablename__ = "principals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[PrincipalRole]] = relationship(
        back_populates="principal", cascade="all, delete-orphan", lazy="selectin"
    )


class PrincipalRole(Base):
    __tablename__ = "principal_roles"
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(30), primary_key=True)
    principal: Mapped[PrincipalRecord] = relationship(back_populates="roles")


class TokenRecord(Base):
    """An API token, stored only as the SHA-256 of its value."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StoredObject(Base):
    """One encrypted object. `wrapped_key` is destroyed (set to NULL) when the object is deleted."""

    __tablename__ = "objects"
    __table_args__ = (UniqueConstraint("zone", "object_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    ciphertext_size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(300))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AuditEvent(Base):
    """A leaf of the audit Merkle tree. `body` is the canonical encoding; the rest indexes it."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    resource: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditState(Base):
    """The single row holding the tree's right frontier, locked by every appending transaction."""

    __tablename__ = "audit_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[str] = mapped_column(Text)


class TreeHeadRecord(Base):
    """A signed tree head stored at a checkpoint (the end of an audited transaction)."""

    __tablename__ = "tree_heads"
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    timestamp: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(40))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class DatasetRecord(Base):
    """A named data set: its versions pass the gate under the dataset's current contract."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    contract_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class ContractRecord(Base):
    """One version of a dataset's data contract (its YAML text and fingerprint)."""

    __tablename__ = "dataset_contracts"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class IngestRecord(Base):
    """Every file offered to the gate, accepted or not, with where its bytes and report went."""

    __tablename__ = "ingests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    dataset_name: Mapped[str] = mapped_column(String(100), index=True)
    source_name: Mapped[str] = mapped_column(String(300))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_size: Mapped[int] = mapped_column(BigInteger)
    raw_object: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    contract_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_object: Mapped[str | None] = mapped_column(String(300), nullable=True)
    quarantine_object: Mapped[str | None] = mapped_column(String(300), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_rows: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class DatasetVersionRecord(Base):
    """An immutable validated version: Parquet in the `validated` zone, with its provenance."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    ingest_id: Mapped[int] = mapped_column(ForeignKey("ingests.id"))
    contract_version: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[str] = mapped_column(Text)
    data_object: Mapped[str] = mapped_column(String(300))
    data_sha256: Mapped[str] = mapped_column(String(64))
    profile_object: Mapped[str] = mapped_column(String(300))
    hashes_object: Mapped[str] = mapped_column(String(300))
    subjects_object: Mapped[str | None] = mapped_column(String(300), nullable=True)
    source_name: Mapped[str] = mapped_column(String(300))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class AlertRecord(Base):
    """An alert raised by a gate, the registry, the server or a monitor."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    severity: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(300), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    # Repeats within the cooldown are counted here instead of being sent again.
    occurrences: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RunRecord(Base):
    """A training run: what went in (config, data, code, packages), what came out, and its state."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    config: Mapped[str | None] = mapped_column(Text, nullable=True)
    config_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    params: Mapped[str] = mapped_column(Text, default="{}")
    datasets: Mapped[str] = mapped_column(Text, default="[]")
    environment: Mapped[str] = mapped_column(Text, default="{}")
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checkpoint_object: Mapped[str | None] = mapped_column(String(300), nullable=True)
    result: Mapped[str] = mapped_column(Text, default="{}")
    model_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))


class RunMetricRecord(Base):
    """One logged metric value of a run (`step` orders values logged more than once)."""

    __tablename__ = "run_metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RegisteredModel(Base):
    """A named model in the registry; its versions are numbered from 1."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class ModelVersionRecord(Base):
    """An immutable model version: where its signed files live and the statement that binds them.

    `statement` is canonical JSON naming every digest of the version (files, signature bundle,
    card, ML-BOM, baseline) and its gate outcome; `statement_signature` is the workspace's
    model-signing key over it, so an edit of this row is detected at load.
    """

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(20))
    model_digest: Mapped[str] = mapped_column(String(64))
    statement: Mapped[str] = mapped_column(Text)
    statement_signature: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[str] = mapped_column(Text, default="{}")
    gates_passed: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))
    trained_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class ModelTagRecord(Base):
    __tablename__ = "model_tags"
    __table_args__ = (UniqueConstraint("version_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(256))


class ModelAliasRecord(Base):
    """Where an alias (`candidate`, `staging`, `production`) points now."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100))


class AliasEventRecord(Base):
    """Every alias move, kept forever: `version` None means the alias was removed."""

    __tablename__ = "model_alias_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(50))
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    previous: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class ApprovalRecord(Base):
    """An approval or rejection of a model version, by whom and why."""

    __tablename__ = "model_approvals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    decision: Mapped[str] = mapped_column(String(20))
    target: Mapped[str | None] = mapped_column(String(50), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class PredictionBatchRecord(Base):
    """A batch of prediction (or feedback) log rows, kept as one encrypted Parquet object."""

    __tablename__ = "prediction_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    object_ref: Mapped[str] = mapped_column(String(300))
    rows: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class DeploymentRecord(Base):
    """A canary or shadow rollout of a candidate version beside production, and how it ended."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    mode: Mapped[str] = mapped_column(String(20))
    candidate_version: Mapped[int] = mapped_column(Integer)
    production_version: Mapped[int] = mapped_column(Integer)
    percent: Mapped[float] = mapped_column(Float)
    policy: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    verdict: Mapped[str] = mapped_column(Text, default="{}")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class BatchProfileRecord(Base):
    """The cached profile of one prediction log batch, so a monitor reads each batch once."""

    __tablename__ = "batch_profiles"
    batch_id: Mapped[int] = mapped_column(ForeignKey("prediction_batches.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_ref: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MonitorReportRecord(Base):
    """One monitor run over a window of one model's traffic; the report itself is an object."""

    __tablename__ = "monitor_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    rows: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    object_ref: Mapped[str] = mapped_column(String(300))
    html_ref: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class KpiRecord(Base):
    """A business metric pushed by a user (through the API) beside a model's metrics."""

    __tablename__ = "kpis"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(100))


class RetrainPolicyRecord(Base):
    """What happens when a model's monitor breaches: retrain, then await approval or canary."""

    __tablename__ = "retrain_policies"
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(20))
    triggers: Mapped[str] = mapped_column(Text)
    canary_percent: Mapped[float] = mapped_column(Float)
    min_interval_seconds: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetrainRequestRecord(Base):
    """A retraining asked for by a monitor breach, and what became of it."""

    __tablename__ = "retrain_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    report_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(100))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ScheduleRunRecord(Base):
    """When a named schedule last ran and how it ended (one row per schedule)."""

    __tablename__ = "schedule_runs"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")


class RetentionPolicyRecord(Base):
    """How long objects of a zone (or of one dataset's objects in it) are kept."""

    __tablename__ = "retention_policies"
    __table_args__ = (UniqueConstraint("zone", "dataset"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str] = mapped_column(String(20))
    dataset: Mapped[str | None] = mapped_column(String(100), nullable=True)
    days: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LegalHoldRecord(Base):
    """A hold that keeps matching objects past their retention, until released."""

    __tablename__ = "legal_holds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    zone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    prefix: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(100))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ErasureRecord(Base):
    """A GDPR erasure carried out for one data subject (by keyed hash), with its certificate."""

    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_digest: Mapped[str] = mapped_column(String(64), index=True)
    certificate_ref: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleSessionRecord(Base):
    """A web console sign-in: the cookie holds a random id, this row only its SHA-256. The
    session acts with the token it was opened with, so revoking or expiring that token (or
    disabling its principal) ends the session too."""

    __tablename__ = "console_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    token_id: Mapped[str] = mapped_column(String(32), ForeignKey("tokens.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
