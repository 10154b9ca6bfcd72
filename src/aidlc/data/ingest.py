"""Ingest: the gate every file passes through on its way to a validated dataset version.

Order matters and is the invariant: the raw bytes are stored first (encrypted, with their
SHA-256), then the file is read and validated in one pass. Accepted rows become a new immutable
version in `validated`; a rejected file is kept byte for byte in `quarantine` with its report
and an alert. Nothing given to the gate is lost, whatever the outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from aidlc.core import objects
from aidlc.core.alerts import raise_alert
from aidlc.core.meta import DatasetRecord, DatasetVersionRecord, IngestRecord
from aidlc.data import versions
from aidlc.data.formats import read_file
from aidlc.errors import AidlcError, Conflict, InvalidInput, NotFound, UsageError

if TYPE_CHECKING:
    import polars as pl

    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import Contract
    from aidlc.data.profile import DatasetProfile
    from aidlc.data.validate import ValidationReport

# Checks that judge the whole file: when one fails, no row can be kept.
TABLE_CHECKS = frozenset(
    {"row_count", "null_fraction", "freshness", "drift", "missing_column", "extra_column"}
)
SUBJECT_KEY = "subject-id-hmac"
EXIT_CODES = {"accepted": 0, "partial": 0, "rejected": 1, "unusable": 2}


@dataclass
class IngestResult:
    """What the gate decided about one file."""

    outcome: str  # accepted | partial | rejected | unusable
    dataset: str
    ingest_id: int
    source_name: str
    source_sha256: str
    source_size: int
    raw_object: str
    version: int | None = None
    rows: int | None = None
    failed_rows: int | None = None
    reason: str = ""
    quarantine_object: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    @property
    def ref(self) -> str | None:
        return f"{self.dataset}@{self.version}" if self.version else None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "report"}
        out["ref"] = self.ref
        out["report"] = self.report
        return out


def _ref(info: objects.ObjectInfo) -> str:
    return f"{info.zone}/{info.object_id}@{info.version}"


def _safe_file_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name).name)
    return (cleaned.lstrip(".") or "file")[:120]


def row_hashes(df: pl.DataFrame) -> pl.Series:
    """A 64-bit hash per row (polars' fixed-seed hash; stable for a pinned polars version)."""
    import polars as pl

    if df.width == 0:
        return pl.Series("h", [], dtype=pl.UInt64)
    return df.select(pl.struct(pl.all()).hash(seed=0).alias("h")).to_series()


def _parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def load_contract_file(path: Path) -> Contract:
    from aidlc.data.contract import load_contract

    return load_contract(path)


def _resolve_contract(ws: Workspace, name: str, given: Contract | None) -> Contract:
    """The contract to check against: the dataset's current one, or `given` for a new dataset."""
    try:
        current = versions.contract_version(ws, name)
    except NotFound:
        if given is None:
            raise UsageError(
                f"dataset {name!r} is new: name its data contract with --contract FILE "
                "(draft one with `aidlc data contract infer FILE`)"
            ) from None
        return given
    if given is not None and given.fingerprint() != current.fingerprint:
        raise UsageError(
            f"dataset {name!r} already has a different contract; "
            f"replace it with `aidlc data contract set {name} FILE` first"
        )
    return current.contract()


def _baseline(ws: Workspace, name: str, contract: Contract) -> DatasetProfile | None:
    """The latest version's profile, when the contract checks drift and a version exists."""
    if contract.table is None or contract.table.drift is None:
        return None
    try:
        return versions.read_profile(ws, f"{name}@latest")
    except NotFound:
        return None


def _previous_hashes(ws: Workspace, name: str) -> pl.Series | None:
    import polars as pl

    with ws.db.reading() as session:
        ds = versions.dataset_record(session, name)
        if ds is None:
            return None
        refs = list(
            session.execute(
                select(DatasetVersionRecord.hashes_object).where(
                    DatasetVersionRecord.dataset_id == ds.id
                )
            ).scalars()
        )
    if not refs:
        return None
    frames = [pl.read_parquet(io.BytesIO(objects.get_ref(ws, r))) for r in refs]
    return pl.concat(frames).to_series()


def _cross_version_duplicates(
    report: ValidationReport, contract: Contract, hashes: pl.Series, previous: pl.Series | None
) -> None:
    """Add a check for rows already present in an earlier version of the dataset."""
    from aidlc.data.validate import CheckResult

    if previous is None or hashes.len() == 0:
        return
    repeated = hashes.is_in(previous.implode())
    count = int(repeated.sum())
    enforce = bool(contract.table is not None and contract.table.no_duplicate_rows)
    indices = [int(i) for i in repeated.arg_true().head(20).to_list()]
    report.checks.append(
        CheckResult(
            check="duplicate_rows_across_versions",
            column=None,
            passed=(count == 0) if enforce else True,
            observed=count,
            threshold=0 if enforce else None,
            failing_rows=count if enforce else 0,
            row_indices=indices if enforce else [],
            message=(
                f"{count} rows already present in earlier versions"
                + ("" if enforce else " (informational: no_duplicate_rows is off)")
            ),
        )
    )
    if enforce and count:
        report.passed = False
        mask = repeated if report.failing_mask is None else (report.failing_mask | repeated)
        report.failing_mask = mask


def _subjects(ws: Workspace, df: pl.DataFrame, contract: Contract) -> bytes | None:
    """Keyed hashes (HMAC-SHA256) of the subject ids in the version, for erasure requests."""
    column = next((c.name for c in contract.columns if c.subject_id), None)
    if column is None or column not in df.columns:
        return None
    key = ws.secret(SUBJECT_KEY)
    values = df.get_column(column).drop_nulls().cast(str).unique().sort().to_list()
    digests = sorted(hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest() for v in values)
    return json.dumps({"column": column, "hmac_sha256": digests}).encode()


def subject_digest(ws: Workspace, subject: str) -> str:
    """The keyed hash under which `subject` appears in subject manifests."""
    return hmac.new(ws.secret(SUBJECT_KEY), subject.encode(), hashlib.sha256).hexdigest()


def _put(ws: Workspace, zone: str, object_id: str, data: bytes) -> str:
    return _ref(objects.put_bytes(ws, zone, object_id, data))


def ingest(
    ws: Workspace,
    path: str | Path,
    dataset: str,
    *,
    contract: Contract | None = None,
    fmt: str | None = None,
    source_name: str | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Offer a file to the gate for `dataset`; returns the outcome (never loses the file)."""
    versions.check_dataset_name(dataset)
    principal = ws.authorize("data.ingest", f"dataset:{dataset}")
    path = Path(path)
    name = source_name or path.name
    limits = ws.config.data
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if not path.is_file():
        raise InvalidInput(f"{path} is not a regular file")
    if size > limits.max_file_bytes:
        raise InvalidInput(
            f"{name} is {size} bytes; the limit is {limits.max_file_bytes} (data.max_file_bytes)"
        )
    key = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
    base = f"{dataset}/{key}"
    # 1. The raw bytes first: whatever happens next, the file is kept as given.
    with path.open("rb") as handle:
        raw = objects.put(ws, "raw", f"{base}/{_safe_file_name(name)}", handle)
    result = IngestResult(
        outcome="unusable",
        dataset=dataset,
        ingest_id=0,
        source_name=name,
        source_sha256=raw.sha256,
        source_size=raw.size,
        raw_object=_ref(raw),
    )
    pending = _Pending()
    try:
        _gate(ws, path, dataset, contract, fmt, base, result, pending, now)
    except AidlcError as exc:
        if isinstance(exc, Conflict):
            raise
        result.outcome = "unusable"
        result.reason = exc.message
        result.report = {"passed": False, "error": exc.message}
        with path.open("rb") as handle:
            result.quarantine_object = _ref(
                objects.put(ws, "quarantine", f"{base}/{_safe_file_name(name)}", handle)
            )
        _put(ws, "quarantine", f"{base}/report.json", json.dumps(result.report).encode())
    _record(ws, result, pending, principal.name)
    return result


@dataclass
class _Pending:
    """What the gate decided that the final transaction must write."""

    contract: Contract | None = None
    version_fields: dict[str, Any] | None = None


def _gate(
    ws: Workspace,
    path: Path,
    dataset: str,
    contract: Contract | None,
    fmt: str | None,
    base: str,
    result: IngestResult,
    pending: _Pending,
    now: datetime | None,
) -> None:
    import polars as pl

    from aidlc.data.validate import validate

    contract = _resolve_contract(ws, dataset, contract)
    pending.contract = contract
    df = read_file(path, ws.config.data, name=result.source_name, fmt=fmt)
    report = validate(df, contract, baseline=_baseline(ws, dataset, contract), now=now)
    clean = report.clean
    hashes = row_hashes(clean) if clean.width else pl.Series("h", [], dtype=pl.UInt64)
    _cross_version_duplicates(report, contract, hashes, _previous_hashes(ws, dataset))
    result.rows = df.height
    table_failed = [c for c in report.checks if c.passed is False and c.check in TABLE_CHECKS]
    mask = report.failing_mask
    failed_rows = int(mask.sum()) if mask is not None else 0
    result.failed_rows = failed_rows
    keep_rows = (
        not report.passed
        and not table_failed
        and contract.on_failure == "quarantine_rows"
        and 0 < failed_rows < df.height
    )
    report_json = report.to_json()
    if report.passed or keep_rows:
        keep, kept_hashes = clean, hashes
        if keep_rows and mask is not None:
            keep, kept_hashes = clean.filter(~mask), hashes.filter(~mask)
            rejected = df.with_row_index("row").filter(mask)
            if report.row_reasons is not None:
                rejected = rejected.join(report.row_reasons, on="row", how="left")
            result.quarantine_object = _put(
                ws, "quarantine", f"{base}/rejected-rows.parquet", _parquet_bytes(rejected)
            )
        result.outcome = "partial" if keep_rows else "accepted"
        result.report = {**report_json, "rows_kept": keep.height, "rows_quarantined": failed_rows}
        data = _parquet_bytes(keep)
        stored = objects.put_bytes(ws, "validated", f"{base}/data.parquet", data)
        from aidlc.data.profile import profile_frame

        categorical = [
            c.name
            for c in contract.columns
            if c.dtype in ("category", "string", "bool") and not c.identifying
        ]
        profile = profile_frame(
            contract.opaque(keep),
            categorical=[c for c in categorical if c in keep.columns],
        )
        profile_ref = _put(
            ws, "validated", f"{base}/profile.json", json.dumps(profile.to_json()).encode()
        )
        hashes_ref = _put(
            ws, "validated", f"{base}/row-hashes.parquet", _parquet_bytes(kept_hashes.to_frame("h"))
        )
        subjects = _subjects(ws, keep, contract)
        subjects_ref = (
            _put(ws, "validated", f"{base}/subjects.json", subjects) if subjects else None
        )
        _put(
            ws, "validated", f"{base}/report.json", json.dumps(result.report, default=str).encode()
        )
        pending.version_fields = {
            "rows": keep.height,
            "columns": json.dumps(keep.columns),
            "data_object": _ref(stored),
            "data_sha256": stored.sha256,
            "profile_object": profile_ref,
            "hashes_object": hashes_ref,
            "subjects_object": subjects_ref,
        }
        return
    result.outcome = "rejected"
    failing = [c for c in report.checks if c.passed is False]
    result.reason = "; ".join(c.message for c in failing[:5]) or "failed the contract"
    result.report = report_json
    with path.open("rb") as handle:
        result.quarantine_object = _ref(
            objects.put(ws, "quarantine", f"{base}/{_safe_file_name(result.source_name)}", handle)
        )
    _put(ws, "quarantine", f"{base}/report.json", json.dumps(report_json, default=str).encode())


def _record(ws: Workspace, result: IngestResult, pending: _Pending, actor: str) -> None:
    """Commit the ingest, the new version (if any), its audit event and any alert together."""
    contract, fields = pending.contract, pending.version_fields
    for attempt in range(5):
        try:
            with ws.transaction() as session:
                ds: DatasetRecord | None = None
                contract_version = None
                if contract is not None:
                    ds, contract_version = versions.store_contract(
                        ws, session, result.dataset, contract, actor
                    )
                rec = IngestRecord(
                    dataset_id=ds.id if ds else None,
                    dataset_name=result.dataset,
                    source_name=result.source_name[:300],
                    source_sha256=result.source_sha256,
                    source_size=result.source_size,
                    raw_object=result.raw_object,
                    outcome=result.outcome,
                    reason=result.reason[:2000],
                    contract_version=contract_version,
                    quarantine_object=result.quarantine_object,
                    rows=result.rows,
                    failed_rows=result.failed_rows,
                    created_by=actor,
                )
                session.add(rec)
                session.flush()
                if fields is not None and ds is not None and contract_version is not None:
                    latest = session.execute(
                        select(func.max(DatasetVersionRecord.version)).where(
                            DatasetVersionRecord.dataset_id == ds.id
                        )
                    ).scalar()
                    rec.version = (latest or 0) + 1
                    session.add(
                        DatasetVersionRecord(
                            dataset_id=ds.id,
                            version=rec.version,
                            ingest_id=rec.id,
                            contract_version=contract_version,
                            source_name=result.source_name[:300],
                            source_sha256=result.source_sha256,
                            source_size=result.source_size,
                            created_by=actor,
                            **fields,
                        )
                    )
                ws.record(
                    session,
                    "data.ingest",
                    f"dataset:{result.dataset}" + (f"@{rec.version}" if rec.version else ""),
                    {
                        "outcome": result.outcome,
                        "source": result.source_name[:300],
                        "sha256": result.source_sha256,
                        "rows": result.rows,
                        "failed_rows": result.failed_rows,
                        "contract_version": contract_version,
                    },
                    outcome="ok" if result.outcome in ("accepted", "partial") else "error",
                )
                if result.outcome in ("rejected", "unusable"):
                    raise_alert(
                        ws,
                        session,
                        severity="WARNING",
                        source="data-gate",
                        title=f"{result.source_name[:100]} {result.outcome} "
                        f"for dataset {result.dataset}",
                        details={"ingest": rec.id, "reason": result.reason[:500]},
                        dedup_key=f"data-gate:{result.dataset}:{result.source_sha256}",
                    )
            result.ingest_id = rec.id
            result.version = rec.version
            return
        except DBIntegrityError:
            if attempt == 4:
                raise Conflict(
                    f"could not number a new version of {result.dataset}; retry"
                ) from None


def validate_file(
    ws: Workspace,
    path: str | Path,
    contract: Contract,
    *,
    fmt: str | None = None,
    baseline_ref: str | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """The dry run: read and validate a file against a contract; store nothing, change nothing."""
    from aidlc.data.validate import validate

    ws.authorize("data.validate", f"file:{Path(path).name[:100]}")
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"cannot read {path}: no such file")
    if path.stat().st_size > ws.config.data.max_file_bytes:
        raise InvalidInput(f"{path.name} exceeds data.max_file_bytes")
    df = read_file(path, ws.config.data, fmt=fmt)
    baseline = versions.read_profile(ws, baseline_ref) if baseline_ref else None
    return validate(df, contract, baseline=baseline, now=now)


def spool(stream: Any, suffix: str, limit: int) -> Path:
    """Copy a readable stream to a private temporary file in 1 MiB pieces (never whole in
    memory), refusing more than `limit` bytes; for event handlers that receive a body."""
    handle = tempfile.NamedTemporaryFile(prefix="aidlc-", suffix=suffix, delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            size = 0
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                size += len(chunk)
                if size > limit:
                    raise InvalidInput(f"the object grew past {limit} bytes while being read")
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
