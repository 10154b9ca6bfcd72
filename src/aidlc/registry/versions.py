"""Registered models and their versions: register (sign, card, ML-BOM), resolve, verify, load.

A version is immutable. Its files, signature bundle, model card, ML-BOM and baseline profile are
encrypted objects in the `models` zone; the row that points at them carries a *statement*, the
canonical JSON of every digest and fact that matters, signed with the workspace's model-signing
key. Loading checks that statement, every digest and the OpenSSF signature before a single byte
is deserialized; a failure is refused, audited and alerted.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from aidlc.core import objects
from aidlc.core.alerts import raise_alert
from aidlc.core.meta import (
    AliasEventRecord,
    ModelAliasRecord,
    ModelTagRecord,
    ModelVersionRecord,
    RegisteredModel,
)
from aidlc.errors import AidlcError, Conflict, IntegrityError, InvalidInput, NotFound, UsageError
from aidlc.registry import signing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from aidlc.core.workspace import Workspace
    from aidlc.registry.model import LoadedModel
    from aidlc.train.preprocess import Preprocessor
    from aidlc.train.tracking import Run

T = TypeVar("T")
ALIASES = ("candidate", "staging", "production")
SIGNING_KEY = "model-signing"
ZONE = "models"
DOCUMENTS = ("model.sig", "model-card.md", "model-card.json", "ml-bom.json", "baseline.json")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
_TAG_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid model name {str(name)[:80]!r}: 1-64 characters a-z, 0-9, '.', '_', '-'"
        )
    return name


def parse_model_ref(ref: str) -> tuple[str, int | str | None]:
    """`NAME@V`, `NAME@ALIAS` or `NAME` (latest) → (name, version number, alias or None).

    >>> parse_model_ref("churn@3"), parse_model_ref("churn@production"), parse_model_ref("churn")
    (('churn', 3), ('churn', 'production'), ('churn', None))
    """
    name, sep, selector = ref.partition("@")
    check_model_name(name)
    if not sep or selector == "latest":
        return name, None
    if selector.isdigit() and int(selector) >= 1:
        return name, int(selector)
    if selector in ALIASES:
        return name, selector
    raise UsageError(
        f"{ref[:80]!r}: name a model version as NAME@V (V from 1), NAME@ALIAS "
        f"({', '.join(ALIASES)}) or NAME@latest"
    )


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version as the CLI and API show it."""

    name: str
    version: int
    kind: str
    task: str
    model_digest: str
    status: str
    gates_passed: bool
    metrics: dict[str, float]
    trained_by: str
    registered_by: str
    created_at: datetime
    run_id: str | None
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    statement: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "statement"}
        out["ref"] = self.ref
        out["created_at"] = self.created_at.isoformat()
        out["gates"] = self.statement.get("gates", [])
        out["datasets"] = self.statement.get("datasets", [])
        out["lineage"] = self.statement.get("lineage", {})
        return out


# -- the workspace's model-signing key ----------------------------------------------------------


def _new_key() -> tuple[bytes, bytes]:
    key = signing.new_signing_key()
    return signing.private_key_bytes(key), signing.public_key_pem(key)


def signing_key(ws: Workspace) -> ec.EllipticCurvePrivateKey:
    """The workspace's EC P-256 model-signing key (created on first use, sealed at rest)."""
    return signing.load_private_key(ws.sealed_key(SIGNING_KEY, "ecdsa-p256", _new_key))


def public_key(ws: Workspace) -> ec.EllipticCurvePublicKey:
    """The public half, derived from the private key so that a database writer cannot swap it."""
    return signing_key(ws).public_key()


def public_key_pem(ws: Workspace) -> bytes:
    ws.authorize("model.read", "model-signing-key")
    return signing.public_key_pem(public_key(ws))


# -- statements ---------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sign_statement(key: ec.EllipticCurvePrivateKey, statement: Mapping[str, Any]) -> bytes:
    return key.sign(b"aidlc-model-version-v1\n" + _canonical(statement), ec.ECDSA(hashes.SHA256()))


def verified_statement(
    rec: ModelVersionRecord, name: str, key: ec.EllipticCurvePublicKey
) -> dict[str, Any]:
    """The row's statement after checking its signature and that the row agrees with it."""
    try:
        statement = json.loads(rec.statement)
        key.verify(
            bytes(rec.statement_signature),
            b"aidlc-model-version-v1\n" + _canonical(statement),
            ec.ECDSA(hashes.SHA256()),
        )
    except (ValueError, InvalidSignature):
        raise IntegrityError(
            f"{name}@{rec.version}: its registry record is not signed by this workspace"
        ) from None
    expected = {
        "model": name,
        "version": rec.version,
        "kind": rec.kind,
        "task": rec.task,
        "model_digest": rec.model_digest,
        "gates_passed": rec.gates_passed,
        "trained_by": rec.trained_by,
        "registered_by": rec.created_by,
        "metrics": json.loads(rec.metrics),
    }
    changed = sorted(k for k, v in expected.items() if statement.get(k) != v)
    if changed:
        raise IntegrityError(
            f"{name}@{rec.version}: its registry record was altered ({', '.join(changed)})"
        )
    return dict(statement)


# -- reading ------------------------------------------------------------------------------------


def model_record(session: Session, name: str) -> RegisteredModel:
    rec = session.execute(
        select(RegisteredModel).where(RegisteredModel.name == name)
    ).scalar_one_or_none()
    if rec is None:
        raise NotFound(f"no registered model named {name!r}")
    return rec


def version_record(
    session: Session, name: str, selector: int | str | None
) -> tuple[RegisteredModel, ModelVersionRecord]:
    model = model_record(session, name)
    query = select(ModelVersionRecord).where(ModelVersionRecord.model_id == model.id)
    if isinstance(selector, str):
        alias = session.execute(
            select(ModelAliasRecord).where(
                ModelAliasRecord.model_id == model.id, ModelAliasRecord.alias == selector
            )
        ).scalar_one_or_none()
        if alias is None:
            raise NotFound(f"model {name!r} has no {selector} version")
        query = query.where(ModelVersionRecord.version == alias.version)
    elif selector is None:
        query = query.order_by(ModelVersionRecord.version.desc()).limit(1)
    else:
        query = query.where(ModelVersionRecord.version == selector)
    rec = session.execute(query).scalar_one_or_none()
    if rec is None:
        which = "no versions yet" if selector is None else f"no version {selector}"
        raise NotFound(f"model {name!r} has {which}")
    return model, rec


def _to_version(session: Session, model: RegisteredModel, rec: ModelVersionRecord) -> ModelVersion:
    aliases = session.execute(
        select(ModelAliasRecord.alias).where(
            ModelAliasRecord.model_id == model.id, ModelAliasRecord.version == rec.version
        )
    ).scalars()
    tags = session.execute(
        select(ModelTagRecord.key, ModelTagRecord.value).where(ModelTagRecord.version_id == rec.id)
    ).all()
    return ModelVersion(
        name=model.name,
        version=rec.version,
        kind=rec.kind,
        task=rec.task,
        model_digest=rec.model_digest,
        status=rec.status,
        gates_passed=rec.gates_passed,
        metrics=json.loads(rec.metrics),
        trained_by=rec.trained_by,
        registered_by=rec.created_by,
        created_at=rec.created_at,
        run_id=rec.run_id,
        aliases=sorted(aliases, key=ALIASES.index),
        tags={k: v for k, v in tags},
        statement=json.loads(rec.statement),
    )


def resolve(ws: Workspace, ref: str) -> ModelVersion:
    """The version named by `NAME@V`, `NAME@ALIAS` or `NAME` (the latest)."""
    name, selector = parse_model_ref(ref)
    ws.authorize("model.read", f"model:{ref[:100]}")
    with ws.db.reading() as session:
        model, rec = version_record(session, name, selector)
        return _to_version(session, model, rec)


def list_models(ws: Workspace) -> list[dict[str, Any]]:
    ws.authorize("model.read", "models")
    with ws.db.reading() as session:
        models = session.execute(select(RegisteredModel).order_by(RegisteredModel.name)).scalars()
        out = []
        for m in models:
            latest = session.execute(
                select(func.max(ModelVersionRecord.version)).where(
                    ModelVersionRecord.model_id == m.id
                )
            ).scalar()
            aliases = session.execute(
                select(ModelAliasRecord.alias, ModelAliasRecord.version).where(
                    ModelAliasRecord.model_id == m.id
                )
            ).all()
            out.append(
                {
                    "name": m.name,
                    "description": m.description,
                    "latest": latest,
                    "aliases": {
                        a: v for a, v in sorted(aliases, key=lambda r: ALIASES.index(r[0]))
                    },
                    "created_by": m.created_by,
                }
            )
        return out


def list_versions(ws: Workspace, name: str) -> list[ModelVersion]:
    check_model_name(name)
    ws.authorize("model.read", f"model:{name}")
    with ws.db.reading() as session:
        model = model_record(session, name)
        recs = session.execute(
            select(ModelVersionRecord)
            .where(ModelVersionRecord.model_id == model.id)
            .order_by(ModelVersionRecord.version)
        ).scalars()
        return [_to_version(session, model, r) for r in recs]


def production_metrics(ws: Workspace, name: str) -> dict[str, float] | None:
    """The metrics of the model's current production version, or None when it has none."""
    check_model_name(name)
    ws.authorize("model.read", f"model:{name}")
    with ws.db.reading() as session:
        try:
            _, rec = version_record(session, name, "production")
        except NotFound:
            return None
        return dict(json.loads(rec.metrics))


# -- registering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """Everything about a new version apart from its files."""

    kind: str
    task: str
    target: str
    features: list[str]
    classes: list[Any] | None
    metrics: dict[str, float]
    gates: list[dict[str, Any]]
    gates_passed: bool
    datasets: list[dict[str, Any]]
    trained_by: str
    run_id: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    intended_use: str = ""
    limitations: str = ""
    owner: str = ""
    baseline: dict[str, Any] | None = None
    flavor: str = ""  # imports name theirs; for models aidlc trains it follows from the kind
    imported: dict[str, Any] | None = None  # where an imported model came from
    evaluation: dict[str, Any] | None = None  # where aidlc evaluated an imported model


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    if len(tags) > 50:
        raise InvalidInput("a model version holds at most 50 tags")
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key):
            raise InvalidInput(f"invalid tag name {str(key)[:60]!r}")
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidInput(f"tag {key}: values are strings of at most 256 characters")
    return dict(tags)


def _ensure_model(ws: Workspace, name: str, description: str, who: str) -> None:
    with ws.db.reading() as session:
        exists = session.execute(
            select(RegisteredModel.id).where(RegisteredModel.name == name)
        ).scalar_one_or_none()
    if exists is not None:
        return
    try:
        with ws.transaction() as session:
            session.add(RegisteredModel(name=name, description=description, created_by=who))
            ws.record(session, "model.create", f"model:{name}", {"description": description[:200]})
    except DBIntegrityError:
        pass  # registered concurrently by someone else: fine


def _put_file(ws: Workspace, object_id: str, data: bytes) -> str:
    return objects.put_bytes(ws, ZONE, object_id, data).ref


def register_bundle(ws: Workspace, name: str, bundle_dir: Path, reg: Registration) -> ModelVersion:
    """Sign the bundle in `bundle_dir` and register it as the next version of model `name`.

    The version gets the `candidate` alias. Registration never approves: that is `approve`.
    """
    from aidlc.registry import bom, cards, formats
    from aidlc.train.tracking import installed_packages, set_model_version

    check_model_name(name)
    principal = ws.authorize("model.register", f"model:{name}")
    tags = check_tags(reg.tags)
    for relative in signing.model_files(bundle_dir):
        with (bundle_dir / relative).open("rb") as fh:
            formats.refuse_pickle(relative, fh.read(4096))
    key = signing_key(ws)
    signature = signing.sign_model(bundle_dir, key)
    files = signing.signed_files(signature)  # the signing pass hashed every file already
    digest = signing.model_digest(files)
    _ensure_model(ws, name, reg.description, principal.name)
    with ws.db.reading() as session:
        model = model_record(session, name)
        latest = session.execute(
            select(func.max(ModelVersionRecord.version)).where(
                ModelVersionRecord.model_id == model.id
            )
        ).scalar()
    version = (latest or 0) + 1
    created_at = datetime.now(UTC).replace(microsecond=0)
    card = cards.ModelCard(
        model=name,
        version=version,
        description=reg.description,
        intended_use=reg.intended_use,
        limitations=reg.limitations,
        owner=reg.owner,
        task=reg.task,
        flavor=reg.flavor or formats.flavor_of(reg.kind),
        target=reg.target,
        features=reg.features,
        classes=[str(c) for c in reg.classes] if reg.classes is not None else None,
        training_data=[
            cards.TrainingData(
                dataset=d["dataset"],
                version=d["version"],
                rows=d["rows"],
                sha256=d["data_sha256"],
                contract_version=d["contract_version"],
            )
            for d in reg.datasets
        ],
        metrics=reg.metrics,
        gates=[cards.GateOutcome(**g) for g in reg.gates],
        gates_passed=reg.gates_passed,
        trained_by=reg.trained_by,
        registered_by=principal.name,
        run_id=reg.run_id,
        model_digest=digest,
        created_at=created_at,
        tags=tags,
        imported=reg.imported,
        evaluation=reg.evaluation,
    )
    documents = {
        "model.sig": signature,
        "model-card.md": cards.render_markdown(card).encode(),
        "model-card.json": cards.card_json(card),
        "ml-bom.json": bom.build_ml_bom(card, files, installed_packages()),
        "baseline.json": _canonical(reg.baseline or {}),
    }
    prefix = f"{name}/v{version}"
    refs: dict[str, str] = {}
    for relative in files:
        refs[f"model/{relative}"] = _put_file(
            ws, f"{prefix}/model/{relative}", (bundle_dir / relative).read_bytes()
        )
    for doc, data in documents.items():
        refs[doc] = _put_file(ws, f"{prefix}/{doc}", data)
    statement = {
        "format": 1,
        "model": name,
        "version": version,
        "kind": reg.kind,
        "task": reg.task,
        "model_digest": digest,
        "files": files,
        "documents": {doc: _sha256(data) for doc, data in documents.items()},
        "objects": refs,
        "gates": reg.gates,
        "gates_passed": reg.gates_passed,
        "metrics": reg.metrics,
        "trained_by": reg.trained_by,
        "registered_by": principal.name,
        "run_id": reg.run_id,
        "datasets": reg.datasets,
        "lineage": {
            "run": reg.run_id,
            "datasets": [d["ref"] for d in reg.datasets],
            "raw_files": [
                {"name": d.get("source_name"), "sha256": d.get("source_sha256")}
                for d in reg.datasets
            ],
        },
        "created_at": created_at.isoformat(),
    }
    if reg.imported is not None:
        statement["imported"] = reg.imported
        statement["evaluation"] = reg.evaluation
    try:
        with ws.transaction() as session:
            model = model_record(session, name)
            rec = ModelVersionRecord(
                model_id=model.id,
                version=version,
                run_id=reg.run_id,
                kind=reg.kind,
                task=reg.task,
                model_digest=digest,
                statement=json.dumps(statement, sort_keys=True),
                statement_signature=_sign_statement(key, statement),
                metrics=json.dumps(reg.metrics),
                gates_passed=reg.gates_passed,
                status="registered",
                trained_by=reg.trained_by,
                created_at=created_at,
                created_by=principal.name,
            )
            session.add(rec)
            session.flush()
            for tag_key, value in tags.items():
                session.add(ModelTagRecord(version_id=rec.id, key=tag_key, value=value))
            ws.record(
                session,
                "model.register",
                f"model:{name}@{version}",
                {
                    "model_digest": digest,
                    "run": reg.run_id,
                    "gates_passed": reg.gates_passed,
                    "datasets": [d["ref"] for d in reg.datasets],
                    **(
                        {"imported": reg.imported["format"], "sha256": reg.imported["sha256"]}
                        if reg.imported
                        else {}
                    ),
                },
            )
            move_alias(ws, session, model, "candidate", version, "registered", principal.name)
    except DBIntegrityError:
        raise Conflict(f"{name}@{version} was registered concurrently; register again") from None
    if reg.run_id:
        set_model_version(ws, reg.run_id, f"{name}@{version}")
    return resolve(ws, f"{name}@{version}")


def move_alias(
    ws: Workspace,
    session: Session,
    model: RegisteredModel,
    alias: str,
    version: int | None,
    reason: str,
    who: str,
) -> int | None:
    """Point `alias` at `version` (None removes it), keeping the move in the alias history."""
    current = session.execute(
        select(ModelAliasRecord).where(
            ModelAliasRecord.model_id == model.id, ModelAliasRecord.alias == alias
        )
    ).scalar_one_or_none()
    previous = current.version if current else None
    if previous == version:
        return previous
    now = datetime.now(UTC)
    if version is None:
        if current is not None:
            session.delete(current)
    elif current is None:
        session.add(
            ModelAliasRecord(
                model_id=model.id, alias=alias, version=version, updated_at=now, updated_by=who
            )
        )
    else:
        current.version = version
        current.updated_at = now
        current.updated_by = who
    session.add(
        AliasEventRecord(
            model_id=model.id,
            alias=alias,
            version=version,
            previous=previous,
            reason=reason,
            created_at=now,
            created_by=who,
        )
    )
    ws.record(
        session,
        "model.alias",
        f"model:{model.name}",
        {"alias": alias, "version": version, "previous": previous, "reason": reason[:500]},
    )
    return previous


def schema_of(
    ws: Workspace, datasets: Sequence[dict[str, Any]], features: Sequence[str]
) -> list[dict[str, Any]]:
    """Input schema: the data contract's column specs for the model's input features."""
    from aidlc.data.versions import contract_version

    specs: dict[str, dict[str, Any]] = {}
    if datasets:
        first = datasets[0]
        contract = contract_version(ws, first["dataset"], first["contract_version"]).contract()
        specs = {c.name: json.loads(c.model_dump_json(exclude_none=True)) for c in contract.columns}
    return [specs.get(f, {"name": f, "dtype": "float", "nullable": True}) for f in features]


def register_model(
    ws: Workspace,
    name: str,
    model: Any,
    *,
    run: Run | None = None,
    trained_on: str | None = None,
    target: str,
    **kwargs: Any,
) -> ModelVersion:
    """Register a model trained by custom code (the Python API behind `run.register_model`):
    an import (see `aidlc.registry.importing.import_model`) whose training data defaults to the
    one validated version the run read. aidlc computes its metrics and gates itself."""
    from aidlc.registry.importing import import_model

    if trained_on is None:
        read = run.info().datasets if run is not None else []
        if len(read) != 1:
            raise UsageError(
                "say which validated version the model was trained on: trained_on='NAME@V'"
                + (f" (the run read {len(read)})" if read else "")
            )
        trained_on = read[0]["ref"]
    return import_model(
        ws, model, name=name, trained_on=trained_on, target=target, run=run, **kwargs
    )


def register_fitted(
    ws: Workspace, name: str, model: Any, preprocessor: Preprocessor, reg: Registration
) -> ModelVersion:
    """Write a fitted estimator and its preprocessing as a bundle (input schema from the data
    contract of `reg.datasets`), then sign and register it."""
    from aidlc.registry.model import write_bundle

    schema = schema_of(ws, reg.datasets, reg.features)
    with private_dir() as tmp:
        write_bundle(
            tmp / "model",
            kind=reg.kind,
            model=model,
            preprocessor=preprocessor,
            task=reg.task,
            target=reg.target,
            classes=reg.classes,
            input_schema=schema,
        )
        return register_bundle(ws, name, tmp / "model", reg)


# -- verifying and loading ----------------------------------------------------------------------


@contextmanager
def private_dir() -> Iterator[Path]:
    """A directory only this user can read, removed afterwards (decrypted files live briefly)."""
    path = Path(tempfile.mkdtemp(prefix="aidlc-model-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _read_ref(ws: Workspace, ref: str, action: str | None = None) -> bytes:
    if objects.parse_ref(ref)[0] != ZONE:
        raise IntegrityError(f"the statement names an object outside {ZONE}: {ref[:120]!r}")
    return objects.get_ref(ws, ref, action=action)


@dataclass(frozen=True)
class Verification:
    ref: str
    model_digest: str
    files: dict[str, str]
    documents: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "ref": self.ref,
            "model_digest": self.model_digest,
            "files": self.files,
            "documents": self.documents,
        }


# Documents that describe a version without revealing its weights: whoever may read the model
# (monitors and auditors too) may read these, without access to the model files.
DESCRIPTIVE = ("model-card.md", "model-card.json", "baseline.json")


def _document(ws: Workspace, statement: Mapping[str, Any], label: str, document: str) -> bytes:
    action = "model.read" if document in DESCRIPTIVE else None
    data = _read_ref(ws, statement["objects"][document], action)
    if _sha256(data) != statement["documents"][document]:
        raise IntegrityError(f"{label}: {document} does not match its signed digest")
    return data


def _materialize(
    ws: Workspace, name: str, rec: ModelVersionRecord, into: Path
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Decrypt a version's files into `into` and check everything; nothing is deserialized."""
    key = public_key(ws)
    label = f"{name}@{rec.version}"
    statement = verified_statement(rec, name, key)
    refs: dict[str, str] = statement["objects"]
    documents = {doc: _document(ws, statement, label, doc) for doc in statement["documents"]}
    model_dir = into / "model"
    model_dir.mkdir()
    for relative, expected in statement["files"].items():
        target = (model_dir / relative).resolve()
        if model_dir.resolve() not in target.parents:
            raise IntegrityError(f"{label}: a file path escapes the model directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = _read_ref(ws, refs[f"model/{relative}"])
        if _sha256(data) != expected:
            raise IntegrityError(f"{label}: {relative} does not match its digest")
        target.write_bytes(data)
    verified = signing.verify_model(model_dir, documents["model.sig"], key)
    if verified != statement["files"] or signing.model_digest(verified) != rec.model_digest:
        raise IntegrityError(f"{label}: the signature covers other files")
    return statement, documents


def _refused(ws: Workspace, ref: str, action: str, exc: AidlcError) -> None:
    """Audit and alert a version that failed verification."""
    with ws.transaction() as session:
        ws.record(session, action, f"model:{ref}", {"reason": exc.message[:500]}, outcome="error")
        raise_alert(
            ws,
            session,
            severity="CRITICAL",
            source="registry",
            title=f"model {ref} failed verification",
            details={"reason": exc.message[:500], "action": action},
            dedup_key=f"model-verify:{ref}",
        )


def _locate(
    ws: Workspace, ref: str, action: str = "object.read:models"
) -> tuple[str, ModelVersionRecord]:
    """The model name and version row named by `ref`, for a caller who may read models."""
    name, selector = parse_model_ref(ref)
    ws.authorize(action, f"model:{ref[:100]}")
    with ws.db.reading() as session:
        _, rec = version_record(session, name, selector)
    return name, rec


def _guarded(ws: Workspace, label: str, action: str, work: Callable[[], T]) -> T:
    """Run a verification; a failure is audited and alerted before it propagates."""
    try:
        return work()
    except IntegrityError as exc:
        _refused(ws, label, action, exc)
        raise


def _done(ws: Workspace, action: str, label: str, details: dict[str, Any]) -> None:
    with ws.transaction() as session:
        ws.record(session, action, f"model:{label}", details)


def verify(ws: Workspace, ref: str) -> Verification:
    """Check a version end to end (statement, digests, OpenSSF signature) without loading it."""
    name, rec = _locate(ws, ref)
    label = f"{name}@{rec.version}"
    with private_dir() as tmp:
        statement, documents = _guarded(
            ws, label, "model.verify", lambda: _materialize(ws, name, rec, tmp)
        )
    _done(ws, "model.verify", label, {"model_digest": rec.model_digest})
    return Verification(label, rec.model_digest, statement["files"], sorted(documents))


def load_model(ws: Workspace, ref: str, *, require_approved: bool = False) -> LoadedModel:
    """Verify a version, then deserialize it. Serving passes `require_approved=True`."""
    from aidlc.registry.model import read_bundle

    name, rec = _locate(ws, ref)
    label = f"{name}@{rec.version}"
    if require_approved and rec.status != "approved":
        raise IntegrityError(f"{label} is {rec.status}, not approved; it cannot be served")

    def verified_then_read(tmp: Path) -> LoadedModel:
        _materialize(ws, name, rec, tmp)
        return read_bundle(tmp / "model")

    with private_dir() as tmp:
        loaded = _guarded(ws, label, "model.load", lambda: verified_then_read(tmp))
    _done(ws, "model.load", label, {"model_digest": rec.model_digest})
    return loaded


def read_document(ws: Workspace, ref: str, document: str) -> bytes:
    """One of a version's documents (card, ML-BOM, baseline), checked against the statement."""
    if document not in DOCUMENTS:
        raise UsageError(f"unknown document {document[:40]!r}; one of {', '.join(DOCUMENTS)}")
    name, rec = _locate(ws, ref, "model.read" if document in DESCRIPTIVE else "object.read:models")
    statement = verified_statement(rec, name, public_key(ws))
    return _document(ws, statement, f"{name}@{rec.version}", document)


def export(ws: Workspace, ref: str, directory: Path) -> list[str]:
    """Write a verified version for third parties: `model/`, `model.sig`, the public key,
    the model card (Markdown and JSON) and the ML-BOM. Returns the written paths."""
    directory = Path(directory)
    name, rec = _locate(ws, ref)
    if directory.exists() and any(directory.iterdir()):
        raise Conflict(f"{directory} is not empty; export into a new or empty directory")
    label = f"{name}@{rec.version}"
    with private_dir() as tmp:
        _, documents = _guarded(ws, label, "model.export", lambda: _materialize(ws, name, rec, tmp))
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tmp / "model", directory / "model")
    written = ["model/"]
    for doc in ("model.sig", "model-card.md", "model-card.json", "ml-bom.json"):
        (directory / doc).write_bytes(documents[doc])
        written.append(doc)
    (directory / "signing-key.pub.pem").write_bytes(signing.public_key_pem(public_key(ws)))
    written.append("signing-key.pub.pem")
    _done(ws, "model.export", label, {"files": written})
    return written


def set_tag(ws: Workspace, ref: str, key: str, value: str | None) -> None:
    """Set (or with None, remove) a tag on a version. Tags are labels, not part of the
    signed statement."""
    name, selector = parse_model_ref(ref)
    ws.authorize("model.register", f"model:{ref[:100]}")
    if value is not None:
        check_tags({key: value})
    elif not _TAG_KEY.match(key):
        raise InvalidInput(f"invalid tag name {key[:60]!r}")
    with ws.transaction() as session:
        _, rec = version_record(session, name, selector)
        current = session.execute(
            select(ModelTagRecord).where(
                ModelTagRecord.version_id == rec.id, ModelTagRecord.key == key
            )
        ).scalar_one_or_none()
        if value is None:
            if current is not None:
                session.delete(current)
        elif current is None:
            session.add(ModelTagRecord(version_id=rec.id, key=key, value=value))
        else:
            current.value = value
        ws.record(session, "model.tag", f"model:{name}@{rec.version}", {"key": key, "value": value})


def registrar(ws: Workspace) -> Callable[[str, Any, Preprocessor, dict[str, Any]], tuple[str, str]]:
    """The `register` callback the training runner calls with a fitted model; it returns the
    new version's ref and model digest."""

    def register(
        name: str, model: Any, preprocessor: Preprocessor, fields: dict[str, Any]
    ) -> tuple[str, str]:
        version = register_fitted(ws, name, model, preprocessor, Registration(**fields))
        return version.ref, version.model_digest

    return register
