"""Encrypted objects: the service functions that put, read and crypto-shred stored objects.

Each object gets its own data key, wrapped by the key provider with an encryption context that
names the workspace, zone, object and version; the same names are the ciphertext's associated
data, so a swapped or edited object fails to decrypt. Wrapped keys live in the metadata database,
which is what lets `keys rotate` re-wrap every key without touching a single object.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from aidlc.core import crypto
from aidlc.core.auth import ZONES
from aidlc.core.meta import StoredObject, WorkspaceKey
from aidlc.errors import Conflict, IntegrityError, InvalidInput, NotFound

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

_OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:/=-]{0,199}\Z")


@dataclass(frozen=True)
class ObjectInfo:
    zone: str
    object_id: str
    version: int
    size: int
    sha256: str
    key_id: str
    created_at: datetime
    created_by: str
    deleted_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.zone}/{self.object_id}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "object_id": self.object_id,
            "version": self.version,
            "size": self.size,
            "sha256": self.sha256,
            "key_id": self.key_id,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }


def _check(zone: str, object_id: str) -> None:
    if zone not in ZONES:
        raise InvalidInput(f"unknown zone {zone[:40]!r}; zones are: {', '.join(ZONES)}")
    if not _OBJECT_ID.match(object_id) or ".." in object_id:
        raise InvalidInput(
            f"invalid object id {object_id[:80]!r}: 1-200 characters from A-Z a-z 0-9 . _ @ : / = -"
        )


def _context(ws: Workspace, zone: str, object_id: str, version: int) -> dict[str, str]:
    return {"workspace": ws.id, "zone": zone, "object": object_id, "version": str(version)}


def _aad(context: dict[str, str]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


def _storage_key(zone: str, object_id: str, version: int) -> str:
    # Names can be sensitive (a patient's file name): the store sees only a hash of them.
    digest = hashlib.sha256(object_id.encode()).hexdigest()
    return f"{zone}/{digest[:2]}/{digest[2:34]}/{version:08d}"


def _info(rec: StoredObject) -> ObjectInfo:
    return ObjectInfo(
        zone=rec.zone,
        object_id=rec.object_id,
        version=rec.version,
        size=rec.size,
        sha256=rec.sha256,
        key_id=rec.key_id,
        created_at=rec.created_at,
        created_by=rec.created_by,
        deleted_at=rec.deleted_at,
    )


def put(
    ws: Workspace,
    zone: str,
    object_id: str,
    src: BinaryIO,
    *,
    version: int | None = None,
    details: dict[str, Any] | None = None,
    action: str | None = None,
) -> ObjectInfo:
    """Encrypt `src` into a new immutable object; `version` defaults to the next free number.

    A second write to the same zone, id and version raises `Conflict`. `action` replaces the
    zone's write permission with the narrower one a caller has established (an erasure rewrites
    the prediction logs that held the subject under `subject.erase`).
    """
    _check(zone, object_id)
    principal = ws.authorize(action or f"object.write:{zone}", f"object:{zone}/{object_id}")
    if version is None:
        with ws.db.reading() as session:
            latest = session.execute(
                select(func.max(StoredObject.version)).where(
                    StoredObject.zone == zone, StoredObject.object_id == object_id
                )
            ).scalar()
        version = (latest or 0) + 1
    elif version < 1:
        raise InvalidInput("object versions start at 1")
    context = _context(ws, zone, object_id, version)
    storage_key = _storage_key(zone, object_id, version)
    data_key, wrapped = ws.keys.generate_data_key(context)
    with ws.store.writer(storage_key) as out:
        stream = crypto.encrypt_stream(
            src,
            out,
            key=data_key,
            associated_data=_aad(context),
            segment_size=ws.config.store.segment_size,
        )
    try:
        with ws.transaction() as session:
            rec = StoredObject(
                zone=zone,
                object_id=object_id,
                version=version,
                size=stream.plaintext_size,
                sha256=stream.plaintext_sha256,
                ciphertext_size=stream.ciphertext_size,
                storage_key=storage_key,
                wrapped_key=wrapped,
                key_id=ws.keys.current_key_id(),
                created_by=principal.name,
            )
            session.add(rec)
            session.flush()
            ws.record(
                session,
                "object.put",
                f"object:{zone}/{object_id}@{version}",
                {
                    "size": stream.plaintext_size,
                    "sha256": stream.plaintext_sha256,
                    **(details or {}),
                },
            )
    except DBIntegrityError:
        ws.store.delete(storage_key)
        raise Conflict(
            f"{zone}/{object_id}@{version} already exists; objects are immutable"
        ) from None
    except BaseException:
        ws.store.delete(storage_key)
        raise
    return _info(rec)


def put_bytes(ws: Workspace, zone: str, object_id: str, data: bytes, **kwargs: Any) -> ObjectInfo:
    import io

    return put(ws, zone, object_id, io.BytesIO(data), **kwargs)


def _record(ws: Workspace, zone: str, object_id: str, version: int | None) -> StoredObject:
    with ws.db.reading() as session:
        query = select(StoredObject).where(
            StoredObject.zone == zone, StoredObject.object_id == object_id
        )
        if version is None:
            query = query.order_by(StoredObject.version.desc()).limit(1)
        else:
            query = query.where(StoredObject.version == version)
        rec = session.execute(query).scalar_one_or_none()
    if rec is None:
        which = "any version" if version is None else f"version {version}"
        raise NotFound(f"no object {zone}/{object_id} ({which})")
    return rec


def info(ws: Workspace, zone: str, object_id: str, version: int | None = None) -> ObjectInfo:
    _check(zone, object_id)
    ws.authorize(f"object.read:{zone}", f"object:{zone}/{object_id}")
    return _info(_record(ws, zone, object_id, version))


@contextmanager
def open_object(
    ws: Workspace,
    zone: str,
    object_id: str,
    version: int | None = None,
    *,
    action: str | None = None,
) -> Iterator[Iterator[bytes]]:
    """Plaintext chunks of an object, each authenticated before it is handed out.

    The whole-object SHA-256 is checked at the end; a mismatch raises `IntegrityError`.
    `action` replaces the zone's read permission with a narrower one that a caller in a later
    layer has established for this object (a model's card and baseline are `model.read`).
    """
    _check(zone, object_id)
    ws.authorize(action or f"object.read:{zone}", f"object:{zone}/{object_id}")
    rec = _record(ws, zone, object_id, version)
    if rec.wrapped_key is None:
        raise NotFound(f"{zone}/{object_id}@{rec.version} was deleted (its key is destroyed)")
    context = _context(ws, zone, object_id, rec.version)
    data_key = ws.keys.unwrap(bytes(rec.wrapped_key), context)

    with ws.store.reader(rec.storage_key) as raw:

        def chunks() -> Iterator[bytes]:
            digest = hashlib.sha256()
            size = 0
            for chunk in crypto.decrypt_segments(raw, key=data_key, associated_data=_aad(context)):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
            if size != rec.size or digest.hexdigest() != rec.sha256:
                raise IntegrityError(
                    f"{zone}/{object_id}@{rec.version} does not match its recorded digest"
                )

        yield chunks()


def get(ws: Workspace, zone: str, object_id: str, dst: BinaryIO, version: int | None = None) -> int:
    """Decrypt an object into `dst`; returns the number of bytes written."""
    written = 0
    with open_object(ws, zone, object_id, version) as chunks:
        for chunk in chunks:
            dst.write(chunk)
            written += len(chunk)
    return written


def get_bytes(
    ws: Workspace,
    zone: str,
    object_id: str,
    version: int | None = None,
    *,
    action: str | None = None,
) -> bytes:
    with open_object(ws, zone, object_id, version, action=action) as chunks:
        return b"".join(chunks)


def parse_ref(ref: str) -> tuple[str, str, int]:
    """`zone/object-id@version` (as `ObjectInfo.ref` writes it) → its parts.

    >>> parse_ref("models/churn/v1/model.sig@1")
    ('models', 'churn/v1/model.sig', 1)
    """
    zone, _, rest = ref.partition("/")
    object_id, _, version = rest.rpartition("@")
    if zone not in ZONES or not object_id or not version.isdigit():
        raise IntegrityError(f"a record names a malformed object reference {ref[:120]!r}")
    return zone, object_id, int(version)


def get_ref(ws: Workspace, ref: str, *, action: str | None = None) -> bytes:
    """The plaintext of the object version a record refers to by `zone/object-id@version`."""
    zone, object_id, version = parse_ref(ref)
    return get_bytes(ws, zone, object_id, version, action=action)


def delete(
    ws: Workspace,
    zone: str,
    object_id: str,
    version: int,
    *,
    reason: str = "",
    action: str | None = None,
) -> None:
    """Crypto-shred an object: its data key is destroyed (committed) before the bytes go.

    `action` replaces the zone's delete permission with one a caller has established for this
    deletion (retention under `retention.apply`, erasure under `subject.erase`)."""
    _check(zone, object_id)
    principal = ws.authorize(
        action or f"object.delete:{zone}", f"object:{zone}/{object_id}@{version}"
    )
    with ws.transaction() as session:
        rec = session.execute(
            select(StoredObject).where(
                StoredObject.zone == zone,
                StoredObject.object_id == object_id,
                StoredObject.version == version,
            )
        ).scalar_one_or_none()
        if rec is None:
            raise NotFound(f"no object {zone}/{object_id}@{version}")
        if rec.wrapped_key is None:
            return
        rec.wrapped_key = None
        rec.deleted_at = datetime.now(UTC)
        rec.deleted_by = principal.name
        storage_key = rec.storage_key
        ws.record(
            session,
            "object.delete",
            f"object:{zone}/{object_id}@{version}",
            {"reason": reason[:500], "crypto_shredded": True},
        )
    ws.store.delete(storage_key)


def list_objects(ws: Workspace, zone: str, prefix: str = "") -> list[ObjectInfo]:
    if zone not in ZONES:
        raise InvalidInput(f"unknown zone {zone[:40]!r}; zones are: {', '.join(ZONES)}")
    ws.authorize(f"object.read:{zone}", f"zone:{zone}")
    with ws.db.reading() as session:
        query = select(StoredObject).where(StoredObject.zone == zone)
        if prefix:
            query = query.where(StoredObject.object_id.startswith(prefix, autoescape=True))
        recs = session.execute(
            query.order_by(StoredObject.object_id, StoredObject.version)
        ).scalars()
        return [_info(r) for r in recs]


@dataclass(frozen=True)
class StoreVerdict:
    ok: bool
    checked: int
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "objects_checked": self.checked, "problems": self.problems}


def verify_all(ws: Workspace) -> StoreVerdict:
    """Decrypt every live object and compare its digest; list stray or missing ciphertexts.

    Needs the `key.manage` permission (admin): it reads every zone.
    """
    ws.authorize("key.manage", "objects:verify")
    problems: list[str] = []
    with ws.db.reading() as session:
        recs = list(session.execute(select(StoredObject).order_by(StoredObject.id)).scalars())
    live = {r.storage_key for r in recs if r.wrapped_key is not None}
    checked = 0
    for rec in recs:
        if rec.wrapped_key is None:
            if ws.store.exists(rec.storage_key):
                problems.append(
                    f"{rec.zone}/{rec.object_id}@{rec.version}: deleted but bytes remain"
                )
            continue
        checked += 1
        context = _context(ws, rec.zone, rec.object_id, rec.version)
        try:
            data_key = ws.keys.unwrap(bytes(rec.wrapped_key), context)
            digest = hashlib.sha256()
            with ws.store.reader(rec.storage_key) as raw:
                for chunk in crypto.decrypt_segments(
                    raw, key=data_key, associated_data=_aad(context)
                ):
                    digest.update(chunk)
            if digest.hexdigest() != rec.sha256:
                problems.append(f"{rec.zone}/{rec.object_id}@{rec.version}: digest mismatch")
        except (IntegrityError, NotFound) as exc:
            problems.append(f"{rec.zone}/{rec.object_id}@{rec.version}: {exc.message}")
    for key in ws.store.keys():  # noqa: SIM118 - a store, not a dict
        if key not in live:
            problems.append(f"stray ciphertext {key} has no metadata record")
    return StoreVerdict(ok=not problems, checked=checked, problems=problems)


def rotate_keys(ws: Workspace) -> dict[str, Any]:
    """Make a new master key version current and re-wrap every data key under it.

    No object is re-encrypted: only the small wrapped keys in the database change, in one
    transaction with its audit event.
    """
    ws.authorize("key.manage", "keys")
    new_id = ws.keys.rotate()
    count = 0
    with ws.transaction() as session:
        for rec in session.execute(
            select(StoredObject).where(StoredObject.wrapped_key.is_not(None))
        ).scalars():
            if rec.wrapped_key is None:
                continue
            rec.wrapped_key = ws.keys.rewrap(
                bytes(rec.wrapped_key), _context(ws, rec.zone, rec.object_id, rec.version)
            )
            rec.key_id = new_id
            count += 1
        for wk in session.execute(select(WorkspaceKey)).scalars():
            wk.wrapped_key = ws.keys.rewrap(bytes(wk.wrapped_key), ws._key_context(wk.name))
        ws.record(session, "key.rotate", "keys", {"new_key_id": new_id, "rewrapped": count})
    return {"key_id": new_id, "rewrapped": count}
