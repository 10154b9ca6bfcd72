"""Datasets, their contract versions and their immutable validated versions.

`read_version` is the one door through which later stages (training) read data: it resolves
only validated dataset versions, so nothing that skipped the gate can be read through it.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from aidlc.core import objects
from aidlc.core.meta import ContractRecord, DatasetRecord, DatasetVersionRecord, IngestRecord
from aidlc.errors import InvalidInput, NotFound, UsageError

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import Contract
    from aidlc.data.profile import DatasetProfile

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")


def check_dataset_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"invalid dataset name {name[:80]!r}: 1-64 characters a-z, 0-9, '.', '_', '-'"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`NAME@V`, `NAME@latest` or `NAME` (latest) → (name, version or None for latest).

    >>> parse_ref("churn@3"), parse_ref("churn@latest"), parse_ref("churn")
    (('churn', 3), ('churn', None), ('churn', None))
    """
    name, sep, version = ref.partition("@")
    check_dataset_name(name)
    if not sep or version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"{ref[:80]!r}: name a version as NAME@V (V from 1) or NAME@latest")
    return name, int(version)


@dataclass(frozen=True)
class DatasetVersion:
    """A validated, immutable version of a dataset and where it came from."""

    dataset: str
    version: int
    rows: int
    columns: list[str]
    contract_version: int
    data_object: str
    data_sha256: str
    profile_object: str
    hashes_object: str
    subjects_object: str | None
    source_name: str
    source_sha256: str
    source_size: int
    ingest_id: int
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["ref"] = self.ref
        out["created_at"] = self.created_at.isoformat()
        return out


def _version(rec: DatasetVersionRecord, name: str) -> DatasetVersion:
    return DatasetVersion(
        dataset=name,
        version=rec.version,
        rows=rec.rows,
        columns=json.loads(rec.columns),
        contract_version=rec.contract_version,
        data_object=rec.data_object,
        data_sha256=rec.data_sha256,
        profile_object=rec.profile_object,
        hashes_object=rec.hashes_object,
        subjects_object=rec.subjects_object,
        source_name=rec.source_name,
        source_sha256=rec.source_sha256,
        source_size=rec.source_size,
        ingest_id=rec.ingest_id,
        created_at=rec.created_at,
        created_by=rec.created_by,
    )


def dataset_record(session: Session, name: str) -> DatasetRecord | None:
    return session.execute(
        select(DatasetRecord).where(DatasetRecord.name == name)
    ).scalar_one_or_none()


def resolve_record(session: Session, name: str, version: int | None) -> DatasetVersionRecord:
    """The row of `name`@`version` (None: the newest version whose data still exists), read in
    the caller's session; for services that walk metadata without a principal's check again."""
    ds = dataset_record(session, name)
    if ds is None:
        raise NotFound(f"no dataset named {name!r}")
    query = select(DatasetVersionRecord).where(DatasetVersionRecord.dataset_id == ds.id)
    if version is None:
        # `latest` is the newest version whose data still exists: retention or an erasure may
        # have crypto-shredded newer ones, and training must not pick a version it cannot read.
        recs = session.execute(query.order_by(DatasetVersionRecord.version.desc())).scalars()
        seen = False
        for rec in recs:
            seen = True
            if _readable(session, rec.data_object):
                return rec
        if seen:
            raise NotFound(f"every version of dataset {name!r} was deleted (retention or erasure)")
        raise NotFound(f"dataset {name!r} has no validated version yet")
    found = session.execute(
        query.where(DatasetVersionRecord.version == version)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"dataset {name!r} has no version {version}")
    return found


def _readable(session: Session, ref: str) -> bool:
    """Whether the object a record names still has its data key (was not crypto-shredded)."""
    from aidlc.core.meta import StoredObject

    zone, object_id, version = objects.parse_ref(ref)
    deleted = session.execute(
        select(StoredObject.deleted_at).where(
            StoredObject.zone == zone,
            StoredObject.object_id == object_id,
            StoredObject.version == version,
        )
    ).first()
    return deleted is not None and deleted[0] is None


def resolve(ws: Workspace, ref: str) -> DatasetVersion:
    """The validated version named by `NAME@V` or `NAME@latest`."""
    name, version = parse_ref(ref)
    ws.authorize("object.read:validated", f"dataset:{ref[:100]}")
    with ws.db.reading() as session:
        return _version(resolve_record(session, name, version), name)


def list_versions(ws: Workspace, name: str) -> list[DatasetVersion]:
    check_dataset_name(name)
    ws.authorize("object.read:validated", f"dataset:{name}")
    with ws.db.reading() as session:
        ds = dataset_record(session, name)
        if ds is None:
            raise NotFound(f"no dataset named {name!r}")
        recs = session.execute(
            select(DatasetVersionRecord)
            .where(DatasetVersionRecord.dataset_id == ds.id)
            .order_by(DatasetVersionRecord.version)
        ).scalars()
        return [_version(r, name) for r in recs]


def list_datasets(ws: Workspace) -> list[dict[str, Any]]:
    ws.authorize("object.read:validated", "datasets")
    with ws.db.reading() as session:
        rows = session.execute(
            select(
                DatasetRecord.name,
                DatasetRecord.contract_version,
                func.count(DatasetVersionRecord.id),
                func.max(DatasetVersionRecord.version),
            )
            .outerjoin(DatasetVersionRecord, DatasetVersionRecord.dataset_id == DatasetRecord.id)
            .group_by(DatasetRecord.id, DatasetRecord.name, DatasetRecord.contract_version)
            .order_by(DatasetRecord.name)
        ).all()
    return [
        {"name": n, "contract_version": c, "versions": k, "latest": latest}
        for n, c, k, latest in rows
    ]


def read_version(ws: Workspace, ref: str) -> pl.DataFrame:
    """The rows of a validated dataset version, decrypted and digest-checked.

    This is how training reads data: only versions that passed the gate resolve here.
    """
    import polars as pl

    version = resolve(ws, ref)
    data = objects.get_ref(ws, version.data_object)
    return pl.read_parquet(io.BytesIO(data))


def read_profile(ws: Workspace, ref: str) -> DatasetProfile:
    from aidlc.data.profile import DatasetProfile

    version = resolve(ws, ref)
    return DatasetProfile.from_json(json.loads(objects.get_ref(ws, version.profile_object)))


# -- contracts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractVersion:
    dataset: str
    version: int
    fingerprint: str
    body: str
    created_at: datetime
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "contract": self.body,
        }

    def contract(self) -> Contract:
        """The stored contract, parsed."""
        import yaml

        from aidlc.data.contract import parse_contract

        return parse_contract(yaml.safe_load(self.body), source=f"{self.dataset} contract")


def contract_version(ws: Workspace, name: str, version: int | None = None) -> ContractVersion:
    """A dataset's contract: the current one, or an earlier version."""
    check_dataset_name(name)
    ws.authorize("object.read:validated", f"dataset:{name}")
    with ws.db.reading() as session:
        ds = dataset_record(session, name)
        if ds is None:
            raise NotFound(f"no dataset named {name!r}")
        rec = session.execute(
            select(ContractRecord).where(
                ContractRecord.dataset_id == ds.id,
                ContractRecord.version == (version or ds.contract_version),
            )
        ).scalar_one_or_none()
    if rec is None:
        raise NotFound(f"dataset {name!r} has no contract version {version}")
    return ContractVersion(
        name, rec.version, rec.fingerprint, rec.body, rec.created_at, rec.created_by
    )


def store_contract(
    ws: Workspace, session: Session, name: str, contract: Contract, actor: str
) -> tuple[DatasetRecord, int]:
    """Create the dataset or add a contract version when the contract changed (in `session`)."""
    fingerprint = contract.fingerprint()
    ds = dataset_record(session, name)
    if ds is None:
        ds = DatasetRecord(name=name, contract_version=1, created_by=actor)
        session.add(ds)
        session.flush()
        session.add(
            ContractRecord(
                dataset_id=ds.id,
                version=1,
                fingerprint=fingerprint,
                body=contract.to_yaml(),
                created_by=actor,
            )
        )
        ws.record(
            session, "dataset.create", f"dataset:{name}", {"contract_fingerprint": fingerprint}
        )
        return ds, 1
    current = session.execute(
        select(ContractRecord).where(
            ContractRecord.dataset_id == ds.id, ContractRecord.version == ds.contract_version
        )
    ).scalar_one()
    if current.fingerprint == fingerprint:
        return ds, ds.contract_version
    ds.contract_version += 1
    session.add(
        ContractRecord(
            dataset_id=ds.id,
            version=ds.contract_version,
            fingerprint=fingerprint,
            body=contract.to_yaml(),
            created_by=actor,
        )
    )
    ws.record(
        session,
        "dataset.contract.set",
        f"dataset:{name}",
        {"contract_version": ds.contract_version, "fingerprint": fingerprint},
    )
    return ds, ds.contract_version


def set_contract(ws: Workspace, name: str, contract: Contract) -> int:
    """Replace a dataset's current contract; later ingests are checked against it."""
    check_dataset_name(name)
    principal = ws.authorize("data.validate", f"dataset:{name}")
    with ws.transaction() as session:
        _, version = store_contract(ws, session, name, contract, principal.name)
    return version


def ingests(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    """Every file offered to the gate (accepted, partial, rejected or unusable)."""
    ws.authorize("data.ingest", f"dataset:{name or '*'}")
    with ws.db.reading() as session:
        query = select(IngestRecord).order_by(IngestRecord.id)
        if name:
            query = query.where(IngestRecord.dataset_name == name)
        recs = list(session.execute(query).scalars())
    return [
        {
            "id": r.id,
            "dataset": r.dataset_name,
            "source": r.source_name,
            "sha256": r.source_sha256,
            "size": r.source_size,
            "outcome": r.outcome,
            "reason": r.reason,
            "version": r.version,
            "rows": r.rows,
            "failed_rows": r.failed_rows,
            "raw_object": r.raw_object,
            "quarantine_object": r.quarantine_object,
            "report_object": r.report_object,
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
        }
        for r in recs
    ]


# -- diff --------------------------------------------------------------------------------------


def _side_profile(
    ws: Workspace, side: str, contract: Contract | None
) -> tuple[DatasetProfile, dict[str, str]]:
    """A profile and schema for `NAME@V` (stored) or a file path (read and typed by `contract`)."""
    from pathlib import Path

    from aidlc.data.profile import profile_frame

    path = Path(side)
    if "@" in side and not path.exists():
        version = resolve(ws, side)
        profile = read_profile(ws, side)
        schema = {c: profile.columns[c].dtype for c in version.columns if c in profile.columns}
        return profile, schema
    from aidlc.data.formats import read_file

    ws.authorize("data.validate", f"file:{path.name[:100]}")
    if not path.is_file():
        raise InvalidInput(f"{side[:200]!r} is neither NAME@V nor a readable file")
    df = read_file(path, ws.config.data)
    categorical = None
    if contract is not None:
        from aidlc.data.validate import validate

        df = contract.opaque(validate(df, contract).clean)
        categorical = [
            c.name
            for c in contract.columns
            if c.dtype in ("category", "string", "bool") and not c.identifying
        ]
    profile = profile_frame(df, categorical=[c for c in (categorical or []) if c in df.columns])
    return profile, {c: str(t) for c, t in df.schema.items()}


def diff(ws: Workspace, reference: str, current: str) -> dict[str, Any]:
    """Schema changes and per-column drift (PSI) between two versions, or a version and a file."""
    from aidlc.data.profile import psi

    contract = None
    for side in (reference, current):
        if "@" in side:
            contract = contract_version(ws, parse_ref(side)[0]).contract()
            break
    ref_profile, ref_schema = _side_profile(ws, reference, contract)
    cur_profile, cur_schema = _side_profile(ws, current, contract)
    columns = []
    for column in sorted(set(ref_schema) & set(cur_schema)):
        a, b = ref_profile.columns[column], cur_profile.columns[column]
        score = psi(a, b) if a.kind == b.kind and a.kind in ("numeric", "categorical") else None
        verdict = (
            None
            if score is None
            else ("drift" if score > 0.25 else "moderate" if score > 0.1 else "stable")
        )
        columns.append(
            {
                "column": column,
                "kind": a.kind,
                "psi": None if score is None else round(score, 6),
                "verdict": verdict,
                "reference_rows": a.count + a.nulls,
                "current_rows": b.count + b.nulls,
            }
        )
    return {
        "reference": reference,
        "current": current,
        "added_columns": sorted(set(cur_schema) - set(ref_schema)),
        "removed_columns": sorted(set(ref_schema) - set(cur_schema)),
        "type_changes": {
            c: [ref_schema[c], cur_schema[c]]
            for c in sorted(set(ref_schema) & set(cur_schema))
            if ref_schema[c] != cur_schema[c]
        },
        "columns": columns,
    }
