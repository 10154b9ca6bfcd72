"""Erasure of one data subject (GDPR Art. 17): successor dataset versions without the subject's
rows, crypto-shredding of every object that held them, models marked for retraining, and a
signed certificate saying what was done, naming the subject only by its keyed hash.

The certificate is signed with the workspace's ECDSA P-256 model-signing key
(`registry.versions.signing_key`), over the canonical JSON of the certificate without its
`signature` field, prefixed with a context line so that no other signed document can pass for it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from aidlc.core import objects
from aidlc.core.meta import (
    BatchProfileRecord,
    ContractRecord,
    DatasetRecord,
    DatasetVersionRecord,
    ErasureRecord,
    IngestRecord,
    LegalHoldRecord,
    ModelTagRecord,
    ModelVersionRecord,
    PredictionBatchRecord,
    RegisteredModel,
    RetrainPolicyRecord,
    RetrainRequestRecord,
)
from aidlc.errors import AidlcError, InvalidInput, NotFound

if TYPE_CHECKING:
    import polars as pl

    from aidlc.core.workspace import Workspace

__all__ = ["ErasureOutcome", "check_subject", "erase_subject", "verify_certificate"]

MAX_SUBJECT = 256
MAX_REASON = 1000
RETRAIN_TAG = "needs-retrain"
SIGNATURE_ALGORITHM = "ecdsa-p256-sha256"
_CONTEXT = b"aidlc-erasure-certificate-v1\n"
_SCANNED_ZONES = ("raw", "quarantine")


@dataclass(frozen=True)
class ErasureOutcome:
    """What an erasure did: the certificate (signed JSON bytes) and where it is stored."""

    record_id: int
    certificate_ref: str
    subject_digest: str
    certificate: dict[str, Any]
    certificate_bytes: bytes

    @property
    def held_data(self) -> bool:
        return bool(self.certificate["held_data"])

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record_id,
            "certificate_ref": self.certificate_ref,
            "certificate": self.certificate,
        }


@dataclass
class _Plan:
    """What the erasure found and did, in the certificate's words."""

    datasets: list[dict[str, Any]] = field(default_factory=list)
    shredded: list[str] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    retrain_requests: list[int] = field(default_factory=list)
    not_erased: list[dict[str, str]] = field(default_factory=list)
    to_shred: list[str] = field(default_factory=list)


def check_subject(subject: str) -> str:
    """The subject id if it can name a subject: 1-256 printable characters.

    >>> check_subject("P-00001")
    'P-00001'
    """
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidInput("the subject id is empty; pass the id exactly as stored")
    if len(subject) > MAX_SUBJECT:
        raise InvalidInput(f"the subject id is {len(subject)} characters; the limit is 256")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in subject):
        raise InvalidInput("the subject id contains control characters; pass the id as stored")
    return subject


def _check_reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(reason)} characters; the limit is {MAX_REASON}")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in reason):
        raise InvalidInput("the reason contains control characters")
    return reason


# -- signing -----------------------------------------------------------------------------------


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _key_id(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _sign(ws: Workspace, body: dict[str, Any]) -> bytes:
    from aidlc.registry.versions import signing_key

    key = signing_key(ws)
    value = key.sign(_CONTEXT + _canonical(body), ec.ECDSA(hashes.SHA256()))
    signed = {
        **body,
        "signature": {
            "algorithm": SIGNATURE_ALGORITHM,
            "key": "workspace model-signing key",
            "public_key_sha256": _key_id(key.public_key()),
            "value": base64.b64encode(value).decode(),
        },
    }
    return json.dumps(signed, sort_keys=True, indent=2, ensure_ascii=False).encode()


def verify_certificate(ws_or_key: Workspace | ec.EllipticCurvePublicKey, data: bytes) -> bool:
    """Whether `data` is an erasure certificate signed by the workspace's model-signing key
    (pass the workspace, or the public key for a third party's check). Never raises on bad input.
    """
    if isinstance(ws_or_key, ec.EllipticCurvePublicKey):
        key = ws_or_key
    else:
        from aidlc.registry.versions import public_key

        key = public_key(ws_or_key)
    try:
        doc = json.loads(data)
        signature = doc.pop("signature")
        if signature.get("algorithm") != SIGNATURE_ALGORITHM:
            return False
        key.verify(
            base64.b64decode(signature["value"], validate=True),
            _CONTEXT + _canonical(doc),
            ec.ECDSA(hashes.SHA256()),
        )
    except (ValueError, TypeError, KeyError, AttributeError, InvalidSignature):
        return False
    return True


# -- finding the subject -----------------------------------------------------------------------


def _boundary(subject: str) -> re.Pattern[str]:
    # An id inside a longer id (P-00001 in P-000012) is not the subject.
    return re.compile(r"(?<![\w-])" + re.escape(subject) + r"(?![\w-])")


def _in_json(value: Any, subject: str) -> bool:
    if isinstance(value, str):
        return value == subject
    if isinstance(value, dict):
        return any(k == subject or _in_json(v, subject) for k, v in value.items())
    if isinstance(value, list):
        return any(_in_json(v, subject) for v in value)
    return False


def _subject_mask(df: pl.DataFrame, subject: str, columns: set[str]) -> pl.Series:
    """Rows holding `subject`: in a subject column, any text column, or a JSON `inputs` cell."""
    import polars as pl

    mask = pl.Series("m", [False] * df.height, dtype=pl.Boolean)
    for name, dtype in df.schema.items():
        if name in columns or dtype == pl.String:
            cells = df.get_column(name).cast(pl.String, strict=False)
            mask = mask | (cells == subject).fill_null(False)
    if "inputs" in df.columns and df.schema["inputs"] == pl.String:
        hits = [
            _in_json(_loads(cell), subject) if cell is not None else False
            for cell in df.get_column("inputs").to_list()
        ]
        mask = mask | pl.Series("m", hits, dtype=pl.Boolean)
    return mask


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _holds_subject(
    ws: Workspace, info: objects.ObjectInfo, subject: str, columns: set[str]
) -> bool:
    """Whether a raw or quarantined file holds the subject: parsed when it is a table, else
    searched as text."""
    from aidlc.data.formats import read_file

    data = objects.get_bytes(ws, info.zone, info.object_id, info.version)
    name = info.object_id.rsplit("/", 1)[-1]
    if name.endswith(".json"):
        return _in_json(_loads(data.decode("utf-8", "replace")), subject)
    try:
        with tempfile.TemporaryDirectory(prefix="aidlc-erase-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            df = read_file(path, ws.config.data, name=name)
    except AidlcError:
        df = None
    if df is not None and bool(_subject_mask(df, subject, columns).any()):
        return True
    if name.endswith(".parquet") and df is not None:
        return False
    return _boundary(subject).search(data.decode("utf-8", "replace")) is not None


# -- legal holds -------------------------------------------------------------------------------


def _holds(ws: Workspace) -> list[LegalHoldRecord]:
    with ws.db.reading() as session:
        return list(
            session.execute(
                select(LegalHoldRecord)
                .where(LegalHoldRecord.released_at.is_(None))
                .order_by(LegalHoldRecord.id)
            ).scalars()
        )


def _hold_on(holds: list[LegalHoldRecord], ref: str) -> LegalHoldRecord | None:
    zone, object_id, _ = objects.parse_ref(ref)
    for hold in holds:
        if (hold.zone is None or hold.zone == zone) and object_id.startswith(hold.prefix or ""):
            return hold
    return None


def _shred_or_keep(holds: list[LegalHoldRecord], plan: _Plan, ref: str) -> None:
    """Queue `ref` for shredding, unless a legal hold keeps it (Art. 17(3)(e))."""
    if ref in plan.to_shred or any(h["object"] == ref for h in plan.held):
        return
    hold = _hold_on(holds, ref)
    if hold is None:
        plan.to_shred.append(ref)
    else:
        plan.held.append(
            {"object": ref, "hold": hold.id, "note": f"kept under legal hold {hold.id}"}
        )


# -- datasets ----------------------------------------------------------------------------------


@dataclass
class _Affected:
    dataset: str
    rec_id: int
    version: int
    column: str
    data_object: str
    ingest_id: int
    contract_version: int


def _affected_versions(ws: Workspace, digest: str) -> tuple[list[_Affected], set[str]]:
    """Versions whose subject manifest lists `digest`, and every subject column name seen."""
    with ws.db.reading() as session:
        rows = session.execute(
            select(DatasetVersionRecord, DatasetRecord.name)
            .join(DatasetRecord, DatasetRecord.id == DatasetVersionRecord.dataset_id)
            .where(DatasetVersionRecord.subjects_object.is_not(None))
            .order_by(DatasetRecord.name, DatasetVersionRecord.version)
        ).all()
        bodies = list(session.execute(select(ContractRecord.body)).scalars())
    columns = _contract_subject_columns(bodies)
    found: list[_Affected] = []
    for rec, name in rows:
        try:
            manifest = json.loads(objects.get_ref(ws, str(rec.subjects_object)))
        except NotFound:  # a superseded version: its objects are already shredded
            continue
        columns.add(str(manifest["column"]))
        if digest in set(manifest["hmac_sha256"]):
            found.append(
                _Affected(
                    name,
                    rec.id,
                    rec.version,
                    manifest["column"],
                    rec.data_object,
                    rec.ingest_id,
                    rec.contract_version,
                )
            )
    return found, columns


def _contract_subject_columns(bodies: list[str]) -> set[str]:
    import yaml

    columns: set[str] = set()
    for body in bodies:
        doc = yaml.safe_load(body) or {}
        for column in doc.get("columns", []) or []:
            if isinstance(column, dict) and column.get("subject_id"):
                columns.add(str(column.get("name")))
    return columns


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def _write_successor(
    ws: Workspace, item: _Affected, subject: str, digest: str
) -> tuple[dict[str, Any], int]:
    """The successor's objects (as ingest writes a version's); returns its record fields and
    how many rows were removed."""
    import polars as pl

    from aidlc.data.ingest import row_hashes, subject_digest
    from aidlc.data.profile import profile_frame
    from aidlc.data.versions import contract_version

    df = pl.read_parquet(io.BytesIO(objects.get_ref(ws, item.data_object)))
    cells = df.get_column(item.column).cast(pl.String, strict=False)
    keep = df.filter((cells != subject).fill_null(True))
    removed = df.height - keep.height
    contract = contract_version(ws, item.dataset, item.contract_version).contract()
    base = f"{item.dataset}/{datetime.now(UTC):%Y%m%dT%H%M%S}-erasure-{secrets.token_hex(4)}"
    stored = objects.put_bytes(ws, "validated", f"{base}/data.parquet", _parquet(keep))
    categorical = [
        c.name
        for c in contract.columns
        if c.dtype in ("category", "string", "bool") and not c.identifying
    ]
    profile = profile_frame(
        contract.opaque(keep), categorical=[c for c in categorical if c in keep.columns]
    )

    def put(name: str, data: bytes) -> str:
        return objects.put_bytes(ws, "validated", f"{base}/{name}", data).ref

    values = keep.get_column(item.column).drop_nulls().cast(str).unique().to_list()
    manifest = {
        "column": item.column,
        "hmac_sha256": sorted(subject_digest(ws, str(v)) for v in values),
    }
    fields = {
        "rows": keep.height,
        "columns": json.dumps(keep.columns),
        "data_object": stored.ref,
        "data_sha256": stored.sha256,
        "profile_object": put("profile.json", json.dumps(profile.to_json()).encode()),
        "hashes_object": put("row-hashes.parquet", _parquet(row_hashes(keep).to_frame("h"))),
        "subjects_object": put("subjects.json", json.dumps(manifest).encode()),
    }
    report = {
        "passed": True,
        "erasure": {"supersedes": f"{item.dataset}@{item.version}", "subject": digest},
        "rows_kept": keep.height,
        "rows_removed": removed,
    }
    put("report.json", json.dumps(report).encode())
    return fields, removed


# -- prediction logs ---------------------------------------------------------------------------


def _rewrite_batches(
    ws: Workspace, subject: str, columns: set[str], holds: list[LegalHoldRecord], plan: _Plan
) -> list[tuple[int, str | None, int]]:
    """Prediction and feedback batches holding the subject, rewritten without their rows;
    returns (batch id, new ref or None when no row is left, rows kept)."""
    import polars as pl

    with ws.db.reading() as session:
        batches = list(
            session.execute(select(PredictionBatchRecord).order_by(PredictionBatchRecord.id))
            .scalars()
            .all()
        )
    changes: list[tuple[int, str | None, int]] = []
    for batch in batches:
        try:
            data = objects.get_ref(ws, batch.object_ref, action="subject.erase")
        except NotFound:
            continue
        df = pl.read_parquet(io.BytesIO(data))
        mask = _subject_mask(df, subject, columns)
        removed = int(mask.sum())
        if removed == 0:
            continue
        if _hold_on(holds, batch.object_ref) is not None:
            _shred_or_keep(holds, plan, batch.object_ref)
            continue
        keep = df.filter(~mask)
        new_ref: str | None = None
        if keep.height:
            zone, object_id, _ = objects.parse_ref(batch.object_ref)
            new_ref = objects.put_bytes(
                ws,
                zone,
                object_id,
                _parquet(keep),
                details={"erasure": True},
                action="subject.erase",
            ).ref
        changes.append((batch.id, new_ref, keep.height))
        plan.batches.append(
            {"old": batch.object_ref, "new": new_ref, "rows_removed": removed, "kind": batch.kind}
        )
        plan.to_shred.append(batch.object_ref)
    return changes


def _find_in_models(ws: Workspace, subject: str, plan: _Plan) -> None:
    """Name the signed documents of model versions (card, BOM, baseline) that still hold the
    subject: a steward may not delete models, and deleting one would break its signature, so
    they stay until the model is retrained and the version retired; the certificate says so.

    Every version is looked at, not only those marked now, so that a repeated request is
    answered truthfully."""
    with ws.db.reading() as session:
        statements = list(session.execute(select(ModelVersionRecord.statement)).scalars())
    word = _boundary(subject)
    for statement in statements:
        refs = json.loads(statement).get("objects", {})
        for name, ref in sorted(refs.items()):
            if name.startswith("model/"):  # the model files hold parameters, not data
                continue
            try:
                data = objects.get_ref(ws, str(ref), action="subject.erase")
            except NotFound:
                continue
            text = data.decode("utf-8", "replace")
            if word.search(text) or _in_json(_loads(text), subject):
                plan.not_erased.append(
                    {
                        "object": str(ref),
                        "why": "a signed model document; kept until the model is retrained "
                        "and this version retired",
                    }
                )


# -- the erasure -------------------------------------------------------------------------------


def erase_subject(ws: Workspace, subject: str, *, reason: str = "") -> ErasureOutcome:
    """Erase every trace of `subject` the workspace holds and issue a signed certificate.

    Raises `PermissionDenied` unless the caller may `subject.erase` (a data steward) and
    `InvalidInput` for an id that cannot name a subject. A subject of whom nothing is held gets
    a certificate that says so (`held_data` false).
    """
    from aidlc.data.ingest import subject_digest

    check_subject(subject)
    _check_reason(reason)
    principal = ws.authorize("subject.erase", "subject")
    digest = subject_digest(ws, subject)
    holds = _holds(ws)
    plan = _Plan()
    affected, columns = _affected_versions(ws, digest)

    successors: list[tuple[_Affected, dict[str, Any], int]] = []
    for item in affected:
        fields, removed = _write_successor(ws, item, subject, digest)
        successors.append((item, fields, removed))
        prefix = item.data_object.partition("/")[2].rpartition("@")[0].rpartition("/")[0] + "/"
        for info in objects.list_objects(ws, "validated", prefix):
            if info.deleted_at is None:
                _shred_or_keep(holds, plan, info.ref)

    with ws.db.reading() as session:
        ingest_ids = {item.ingest_id for item in affected}
        raw_refs = {
            str(r)
            for r in session.execute(
                select(IngestRecord.raw_object).where(IngestRecord.id.in_(ingest_ids))
            ).scalars()
        }
    for zone in _SCANNED_ZONES:
        for info in objects.list_objects(ws, zone):
            if info.deleted_at is not None:
                continue
            if info.ref in raw_refs or _holds_subject(ws, info, subject, columns):
                _shred_or_keep(holds, plan, info.ref)

    batch_changes = _rewrite_batches(ws, subject, columns, holds, plan)
    _commit_successors(ws, principal.name, successors, batch_changes, affected, plan, digest)

    for ref in plan.to_shred:
        zone, object_id, version = objects.parse_ref(ref)
        objects.delete(
            ws, zone, object_id, version, reason="subject erasure", action="subject.erase"
        )
        plan.shredded.append(ref)
    _find_in_models(ws, subject, plan)
    held = bool(affected or plan.shredded or plan.held or plan.not_erased)
    return _certify(ws, principal.name, digest, reason, plan, held)


def _commit_successors(
    ws: Workspace,
    actor: str,
    successors: list[tuple[_Affected, dict[str, Any], int]],
    batch_changes: list[tuple[int, str | None, int]],
    affected: list[_Affected],
    plan: _Plan,
    digest: str,
) -> None:
    """Successor versions, rewritten batches, model marks and retraining requests, in one
    transaction with their audit events (before anything is shredded)."""
    with ws.transaction() as session:
        for item, fields, removed in successors:
            old = session.get(DatasetVersionRecord, item.rec_id)
            if old is None:
                raise NotFound(f"dataset version {item.dataset}@{item.version} disappeared")
            latest = session.execute(
                select(func.max(DatasetVersionRecord.version)).where(
                    DatasetVersionRecord.dataset_id == old.dataset_id
                )
            ).scalar()
            number = (latest or 0) + 1
            session.add(
                DatasetVersionRecord(
                    dataset_id=old.dataset_id,
                    version=number,
                    ingest_id=old.ingest_id,
                    contract_version=old.contract_version,
                    source_name=old.source_name,
                    source_sha256=old.source_sha256,
                    source_size=old.source_size,
                    created_by=actor,
                    **fields,
                )
            )
            # Ingest reads every version's row hashes to find repeated rows; the superseded
            # version's are shredded, so it points at its successor's (a subset of its own).
            old.hashes_object = fields["hashes_object"]
            session.flush()
            plan.datasets.append(
                {
                    "superseded": f"{item.dataset}@{item.version}",
                    "successor": f"{item.dataset}@{number}",
                    "rows_removed": removed,
                    "rows_kept": fields["rows"],
                }
            )
            ws.record(
                session,
                "dataset.supersede",
                f"dataset:{item.dataset}@{item.version}",
                {"successor": number, "rows_removed": removed, "subject": digest},
            )
        for batch_id, new_ref, rows in batch_changes:
            batch = session.get(PredictionBatchRecord, batch_id)
            if batch is None:
                continue
            for profile in session.execute(
                select(BatchProfileRecord).where(BatchProfileRecord.batch_id == batch_id)
            ).scalars():
                plan.to_shred.append(profile.object_ref)  # summaries are remade on next use
                session.delete(profile)
            session.flush()
            if new_ref is None:
                session.delete(batch)
            else:
                batch.object_ref, batch.rows = new_ref, rows
        refs = {f"{a.dataset}@{a.version}" for a in affected}
        if refs:
            _mark_models(ws, session, refs, actor, plan)


def _mark_models(ws: Workspace, session: Any, refs: set[str], actor: str, plan: _Plan) -> None:
    """Tag every model version trained on an affected version and, where a retraining policy
    is set, record a retraining request."""
    rows = session.execute(
        select(ModelVersionRecord, RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelVersionRecord.model_id)
        .order_by(RegisteredModel.name, ModelVersionRecord.version)
    ).all()
    models: dict[int, tuple[str, list[str]]] = {}
    for rec, name in rows:
        lineage = json.loads(rec.statement).get("lineage", {})
        used = sorted(refs & set(lineage.get("datasets", [])))
        if not used:
            continue
        tag = session.execute(
            select(ModelTagRecord).where(
                ModelTagRecord.version_id == rec.id, ModelTagRecord.key == RETRAIN_TAG
            )
        ).scalar_one_or_none()
        if tag is None:
            session.add(ModelTagRecord(version_id=rec.id, key=RETRAIN_TAG, value="erasure"))
        else:
            tag.value = "erasure"
        ws.record(
            session,
            "model.tag",
            f"model:{name}@{rec.version}",
            {"key": RETRAIN_TAG, "value": "erasure", "by": "subject.erase", "datasets": used},
        )
        plan.models.append(f"{name}@{rec.version}")
        models.setdefault(rec.model_id, (name, []))[1].extend(used)
    for model_id, (name, used) in models.items():
        policy = session.get(RetrainPolicyRecord, model_id)
        if policy is None or policy.action == "none":
            continue
        reason = {"erasure": True, "datasets": sorted(set(used))}
        req = RetrainRequestRecord(
            model_id=model_id,
            reason=json.dumps(reason),
            report_id=None,
            status="pending",
            detail="",
            requested_by=actor,
        )
        session.add(req)
        session.flush()
        ws.record(session, "retrain.request", f"model:{name}", {"request": req.id, **reason})
        plan.retrain_requests.append(req.id)


def _certify(
    ws: Workspace, actor: str, digest: str, reason: str, plan: _Plan, held: bool
) -> ErasureOutcome:
    """Sign, store and record the certificate with its `subject.erase` audit event."""
    cert_id = secrets.token_hex(16)
    body = {
        "format": 1,
        "type": "aidlc-erasure-certificate",
        "id": cert_id,
        "workspace": ws.id,
        "subject_hmac_sha256": digest,
        "held_data": held,
        "summary": "erased" if held else "no data held about this subject",
        "reason": reason,
        "requested_by": actor,
        "issued_at": datetime.now(UTC).isoformat(),
        "datasets": plan.datasets,
        "objects_shredded": plan.shredded,
        "prediction_batches": plan.batches,
        "prediction_rows_removed": sum(b["rows_removed"] for b in plan.batches),
        "kept_under_legal_hold": plan.held,
        "not_erased": plan.not_erased,
        "models_marked_needs_retrain": plan.models,
        "retrain_requests": plan.retrain_requests,
    }
    data = _sign(ws, body)
    info = objects.put_bytes(ws, "reports", f"erasure/{cert_id}.json", data)
    summary = {
        "held_data": held,
        "datasets": len(plan.datasets),
        "rows_removed": sum(d["rows_removed"] for d in plan.datasets),
        "objects_shredded": len(plan.shredded),
        "kept_under_legal_hold": len(plan.held),
        "prediction_rows_removed": body["prediction_rows_removed"],
        "models_marked": len(plan.models),
        "not_erased": len(plan.not_erased),
    }
    with ws.transaction() as session:
        rec = ErasureRecord(
            subject_digest=digest,
            certificate_ref=info.ref,
            summary=json.dumps(summary),
            requested_by=actor,
        )
        session.add(rec)
        session.flush()
        ws.record(
            session,
            "subject.erase",
            f"subject:{digest}",
            {"certificate": info.ref, "certificate_id": cert_id, **summary},
        )
        record_id = rec.id
    return ErasureOutcome(record_id, info.ref, digest, json.loads(data), data)
