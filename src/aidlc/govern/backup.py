"""Backups: a consistent, still-encrypted snapshot of a workspace, and a restore that proves the
rebuilt workspace intact before it says so.

A snapshot holds the metadata, every live object's ciphertext exactly as stored (read through the
workspace's object store: a folder or S3), `aidlc.yaml`, the key ring only when asked, and
`manifest.json`: every file's size and SHA-256 and the newest signed audit tree head, the whole
signed with the workspace's audit key. Nothing in a snapshot is plaintext data; without the key
ring (or KMS access) it cannot be read.

Metadata on SQLite is copied with SQLite's backup API inside one read transaction
(`aidlc-backup/1`); on another database (PostgreSQL) it is dumped table by table as JSON Lines
through SQLAlchemy, inside one REPEATABLE READ transaction (`aidlc-backup/2`). Either way the
object list, the audit log and the tree head come from the same instant.

A restore rebuilds into a new folder with SQLite and a local store, or into the (empty) database
and store a prepared `aidlc.yaml` names.

The `backup.create` event is recorded in the source workspace *after* the snapshot, carrying the
manifest's digest: the live log then proves which snapshot was taken, and a failed backup never
leaves an "ok" event behind. The snapshot's own log therefore ends just before that event; the
restored workspace records `backup.restore` on top of it once every check has passed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml
from cryptography.exceptions import InvalidSignature
from sqlalchemy import Table, create_engine, func, inspect, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from aidlc import __version__
from aidlc.core import merkle
from aidlc.core.config import CONFIG_FILE, STATE_DIR, Config, load_config, parse_config
from aidlc.core.files import fsync_dir, make_private_dirs
from aidlc.core.meta import Base, Database
from aidlc.core.workspace import AUDIT_KEY
from aidlc.errors import AidlcError, ConfigError, Conflict, IntegrityError, NotFound, UsageError

if TYPE_CHECKING:
    from aidlc.core.store import ObjectStore
    from aidlc.core.workspace import Workspace

FORMAT_FILE = "aidlc-backup/1"  # the SQLite database file
FORMAT_TABLES = "aidlc-backup/2"  # one JSON Lines file per table
FORMATS = (FORMAT_FILE, FORMAT_TABLES)
FORMAT = FORMAT_TABLES  # the newest
MANIFEST = "manifest.json"
FAILED_MARK = "RESTORE-FAILED.txt"
CONFIG_ENTRY = "aidlc.yaml"
DATABASE_ENTRY = "database/aidlc.db"
TABLES_DIR = "database/tables"
KEYRING_ENTRY = "keys/keyring.json"
OBJECTS_DIR = "objects"
_CHUNK = 1 << 20
_BATCH = 1000
_MANIFEST_LIMIT = 256 << 20
_SIGNATURE_DOMAIN = b"aidlc-backup-manifest/1\n"
_DEFAULT_DATABASE = f"sqlite:///{STATE_DIR}/aidlc.db"
_DEFAULT_OBJECTS = f"{STATE_DIR}/objects"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BackupResult:
    """What `create` wrote."""

    path: Path
    files: int
    objects: int
    bytes: int
    tree_size: int
    manifest_sha256: str
    include_keys: bool
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "files": self.files,
            "objects": self.objects,
            "bytes": self.bytes,
            "audit_tree_size": self.tree_size,
            "manifest_sha256": self.manifest_sha256,
            "include_keys": self.include_keys,
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class RestoreResult:
    """What `restore` rebuilt and checked."""

    path: Path
    files: int
    objects_verified: int
    audit_events: int
    tree_size: int
    keys_from: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "files": self.files,
            "objects_verified": self.objects_verified,
            "audit_events": self.audit_events,
            "audit_tree_size": self.tree_size,
            "keys_from": self.keys_from,
        }


# ---------------------------------------------------------------------------------------------
# Files


def _sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _private_file(path: Path) -> Any:
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def _copy_stream(src: Any, path: Path) -> tuple[int, str]:
    """Copy a binary stream into a new 0600 file, fsynced; its size and SHA-256."""
    digest = hashlib.sha256()
    size = 0
    with _private_file(path) as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _copy_file(src: Path, dst: Path) -> tuple[int, str]:
    with src.open("rb") as source:
        return _copy_stream(source, dst)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _prepare_target(path: Path, what: str) -> Path:
    path = path.expanduser().resolve()
    if path.exists() and not _is_empty_dir(path):
        raise UsageError(f"{what} {path} is not an empty folder", hint="name a new or empty folder")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _signed_message(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return _SIGNATURE_DOMAIN + _canonical(body)


# ---------------------------------------------------------------------------------------------
# Backup


def _sqlite_path(ws: Workspace) -> Path:
    url = ws.db.url
    if not ws.db.is_sqlite:
        raise UsageError(
            "aidlc backup copies SQLite metadata only; this workspace uses PostgreSQL",
            hint="back the database up with pg_dump (a consistent dump) and the objects and "
            "aidlc.yaml separately",
        )
    path = url.removeprefix("sqlite:///")
    if not url.startswith("sqlite:///") or not path or path == ":memory:":
        raise UsageError("aidlc backup needs a SQLite database in a file")
    return Path(path)


def _snapshot_database(source: Path, target: Path) -> tuple[merkle.TreeHead, list[tuple[str, int]]]:
    """Copy the database within one read transaction; the newest tree head and the live
    objects' storage keys and ciphertext sizes, read in that same transaction."""
    make_private_dirs(target.parent)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None, timeout=30)
    try:
        src.execute("BEGIN")
        # The first read pins this transaction's snapshot; the backup below copies that same
        # snapshot because SQLite reuses an open read transaction of the source connection.
        row = src.execute(
            "SELECT tree_size, root_hash, timestamp, key_id, signature FROM tree_heads "
            "ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        live = [
            (str(key), int(size))
            for key, size in src.execute(
                "SELECT storage_key, ciphertext_size FROM objects "
                "WHERE wrapped_key IS NOT NULL ORDER BY id"
            )
        ]
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)
            # A self-contained file: no -wal or -shm beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
        src.execute("COMMIT")
    except sqlite3.Error as exc:
        raise IntegrityError(f"cannot snapshot the metadata database: {exc}") from None
    finally:
        src.close()
    if row is None:
        raise IntegrityError("the audit log has no signed tree head; is the workspace initialised?")
    head = merkle.TreeHead(
        tree_size=int(row[0]),
        root_hash=bytes(row[1]),
        timestamp=str(row[2]),
        key_id=str(row[3]),
        signature=bytes(row[4]),
    )
    return head, live


def _encode(value: object) -> object:
    """A column value as JSON: bytes and datetimes tagged, so a restore gets the same types."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise IntegrityError("a metadata timestamp has no time zone; cannot dump it")
        return {"$datetime": value.isoformat()}
    raise IntegrityError(f"cannot dump a {type(value).__name__} value from the metadata database")


def _decode(value: object, where: str) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((tag, body),) = value.items()
        try:
            if tag == "$bytes" and isinstance(body, str):
                return base64.b64decode(body, validate=True)
            if tag == "$datetime" and isinstance(body, str):
                moment = datetime.fromisoformat(body)
                if moment.tzinfo is not None:
                    return moment
        except ValueError:
            pass
    raise IntegrityError(f"{where} holds a value that is not a dumped column value")


def _head_from(row: dict[str, Any]) -> merkle.TreeHead:
    return merkle.TreeHead(
        tree_size=int(row["tree_size"]),
        root_hash=bytes(row["root_hash"]),
        timestamp=str(row["timestamp"]),
        key_id=str(row["key_id"]),
        signature=bytes(row["signature"]),
    )


@dataclass
class _Dump:
    """What a logical dump read, all inside its one transaction."""

    revision: str
    tables: list[dict[str, Any]] = field(default_factory=list)
    head: merkle.TreeHead | None = None
    live: list[tuple[str, int]] = field(default_factory=list)


def _dump_tables(
    db: Database, root: Path, add: Callable[[str, int, str], None], progress: Progress | None
) -> _Dump:
    """Write every aidlc table as JSON Lines, read in ONE transaction: REPEATABLE READ on
    PostgreSQL, so a write committed while the dump runs is wholly absent from it."""
    options: dict[str, Any] = {"aidlc_readonly": True}
    if db.engine.dialect.name == "postgresql":
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    try:
        with db.engine.connect().execution_options(**options) as conn, conn.begin():
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            dump = _Dump(revision=str(revision or ""))
            if not revision:
                raise IntegrityError("the metadata database has no schema revision")
            for table in Base.metadata.sorted_tables:
                name = f"{TABLES_DIR}/{table.name}.jsonl"
                rows = _write_table(conn, table, root / name, dump)
                add(name, *_sha256_file(root / name))
                dump.tables.append({"name": table.name, "rows": rows})
                if progress is not None:
                    progress(name)
    except SQLAlchemyError as exc:
        raise IntegrityError(
            f"cannot dump the metadata database: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    return dump


def _write_table(conn: Connection, table: Table, path: Path, dump: _Dump) -> int:
    order = list(table.primary_key.columns)
    result = conn.execute(select(table).order_by(*order)).yield_per(_BATCH)
    rows = 0
    with _private_file(path) as out:
        for row in result.mappings():
            values = dict(row)
            if table.name == "objects" and values["wrapped_key"] is not None:
                dump.live.append((str(values["storage_key"]), int(values["ciphertext_size"])))
            elif table.name == "tree_heads":
                head = _head_from(values)
                if dump.head is None or head.tree_size > dump.head.tree_size:
                    dump.head = head
            line = {k: _encode(v) for k, v in values.items()}
            out.write(json.dumps(line, sort_keys=True, separators=(",", ":")).encode() + b"\n")
            rows += 1
        out.flush()
        os.fsync(out.fileno())
    return rows


def _keyring_sealed(path: Path) -> bool:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "sealed_material" in document


def create(
    ws: Workspace,
    target: Path | str,
    *,
    include_keys: bool = False,
    progress: Progress | None = None,
) -> BackupResult:
    """Write a snapshot of `ws` into `target` (new or empty; made 0700, files 0600).

    Needs `backup.create` (admin). The key ring is copied only with `include_keys`; it is then as
    safe as its passphrase (a warning says so when it has none). Metadata on SQLite is copied as
    a database file, on PostgreSQL dumped table by table; objects come from any store (a folder
    or S3). `progress` is called with each file's snapshot path once it is written.
    """
    principal = ws.authorize("backup.create", f"backup:{target}")
    if include_keys and ws.config.keys.provider != "file":
        raise UsageError("--include-keys copies a key ring file; this workspace's keys are in KMS")
    database = _sqlite_path(ws) if ws.db.is_sqlite else None
    root = _prepare_target(Path(target), "the backup folder")
    warnings: list[str] = []
    try:
        entries: list[dict[str, Any]] = []

        def add(name: str, size: int, sha256: str) -> None:
            entries.append({"path": name, "size": size, "sha256": sha256})

        described: dict[str, Any]
        if database is not None:
            head, live = _snapshot_database(database, root / DATABASE_ENTRY)
            add(DATABASE_ENTRY, *_sha256_file(root / DATABASE_ENTRY))
            if progress is not None:
                progress(DATABASE_ENTRY)
            described = {"format": FORMAT_FILE, "database": "sqlite"}
        else:
            dump = _dump_tables(ws.db, root, add, progress)
            if dump.head is None:
                raise IntegrityError(
                    "the audit log has no signed tree head; is the workspace initialised?"
                )
            head, live = dump.head, dump.live
            described = {
                "format": FORMAT_TABLES,
                "database": ws.db.engine.dialect.name,
                "schema_revision": dump.revision,
                "tables": dump.tables,
            }
        add(CONFIG_ENTRY, *_copy_file(ws.root / CONFIG_FILE, root / CONFIG_ENTRY))
        for storage_key, ciphertext_size in live:
            name = f"{OBJECTS_DIR}/{storage_key}"
            try:
                with ws.store.reader(storage_key) as src:
                    size, digest = _copy_stream(src, root / name)
            except NotFound:
                raise Conflict(
                    f"object {storage_key} was deleted while the backup ran",
                    hint="run the backup again",
                ) from None
            if size != ciphertext_size:
                raise IntegrityError(
                    f"object {storage_key} holds {size} bytes but its record says "
                    f"{ciphertext_size}; run `aidlc objects verify`"
                )
            add(name, size, digest)
            if progress is not None:
                progress(name)
        if include_keys:
            ring = ws.root / ws.config.keys.file
            add(KEYRING_ENTRY, *_copy_file(ring, root / KEYRING_ENTRY))
            if not _keyring_sealed(ring):
                warnings.append(
                    "the key ring in this backup has no passphrase: anyone holding the backup "
                    "can decrypt every object; keep it as safe as the data itself"
                )
        manifest: dict[str, Any] = {
            "format": described.pop("format"),
            "aidlc_version": __version__,
            "workspace_id": ws.id,
            "created_at": datetime.now(UTC).isoformat(),
            "created_by": principal.name,
            **described,
            "store": ws.store.kind,
            "key_provider": ws.config.keys.provider,
            "includes_keys": include_keys,
            "objects": len(live),
            "audit_head": head.to_json(),
            "files": sorted(entries, key=lambda e: e["path"]),
        }
        signer = ws.load_private_key(AUDIT_KEY)
        manifest["signature"] = {
            "algorithm": "ed25519",
            "key_id": merkle.public_key_id(signer.public_key()),
            "value": base64.b64encode(signer.sign(_signed_message(manifest))).decode(),
        }
        data = json.dumps(manifest, indent=2).encode() + b"\n"
        with _private_file(root / MANIFEST) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        fsync_dir(root)
    except BaseException as exc:
        shutil.rmtree(root, ignore_errors=True)
        if isinstance(exc, AidlcError | OSError):
            ws.audit.record(
                actor=principal.name,
                action="backup.create",
                resource=f"backup:{root}",
                outcome="error",
                details={"reason": str(exc)[:300]},
            )
        raise
    manifest_sha256 = hashlib.sha256(data).hexdigest()
    total = sum(e["size"] for e in entries)
    with ws.transaction() as session:
        ws.record(
            session,
            "backup.create",
            f"backup:{root}",
            {
                "manifest_sha256": manifest_sha256,
                "audit_tree_size": head.tree_size,
                "objects": len(live),
                "files": len(entries),
                "bytes": total,
                "includes_keys": include_keys,
            },
        )
    return BackupResult(
        path=root,
        files=len(entries),
        objects=len(live),
        bytes=total,
        tree_size=head.tree_size,
        manifest_sha256=manifest_sha256,
        include_keys=include_keys,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# Restore


def _safe_entry(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise IntegrityError("the backup manifest lists a file without a valid path")
    parts = PurePosixPath(name).parts
    if (
        name.startswith("/")
        or "\\" in name
        or any(p in {"", ".", ".."} or p.startswith(".") for p in parts)
        or name == MANIFEST
    ):
        raise IntegrityError(f"the backup manifest lists an unsafe path {name[:120]!r}")
    return name


def read_manifest(source: Path | str) -> dict[str, Any]:
    """The manifest of a snapshot, after checking that every listed file (and no other) is
    there with its recorded size and SHA-256; `IntegrityError` naming every file that is not."""
    root = Path(source).expanduser().resolve()
    path = root / MANIFEST
    if not path.is_file():
        raise NotFound(f"{root} holds no {MANIFEST}; is it an aidlc backup?")
    if path.stat().st_size > _MANIFEST_LIMIT:
        raise IntegrityError(f"{path} is too large to be a backup manifest")
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError:
        raise IntegrityError(f"{path} is not valid JSON: the manifest was damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        raise IntegrityError(f"{path} is not an {' or '.join(FORMATS)} manifest")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(e, dict) for e in files):
        raise IntegrityError(f"{path} has no valid file list")
    problems: list[str] = []
    listed: set[str] = set()
    for entry in files:
        name = _safe_entry(entry.get("path"))
        listed.add(name)
        file = root / name
        if file.is_symlink() or not file.is_file():
            problems.append(f"{name}: missing")
            continue
        size, digest = _sha256_file(file)
        if size != entry.get("size") or digest != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 or size differs from the manifest")
    for file in sorted(root.rglob("*")):
        name = file.relative_to(root).as_posix()
        if not file.is_dir() and name != MANIFEST and name not in listed:
            problems.append(f"{name}: not listed in the manifest")
    if problems:
        raise IntegrityError(
            "the backup does not match its manifest: "
            + "; ".join(problems[:20])
            + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else "")
        )
    return manifest


def _check_signature(ws: Workspace, manifest: dict[str, Any]) -> None:
    sig = manifest.get("signature")
    public = ws.audit_public_key()
    try:
        if not isinstance(sig, dict) or sig.get("key_id") != merkle.public_key_id(public):
            raise InvalidSignature
        public.verify(
            base64.b64decode(str(sig.get("value")), validate=True), _signed_message(manifest)
        )
    except (InvalidSignature, ValueError):
        raise IntegrityError(
            "the backup manifest's signature does not verify with the restored workspace's "
            "audit key: the manifest or the database was altered"
        ) from None


def _inside(root: Path, path: Path) -> Path:
    # aidlc.yaml comes from the backup and is trusted only once its signature verifies, which
    # needs the restored files: until then, no path it names may lead out of the new workspace.
    resolved = path.resolve()
    if root not in resolved.parents:
        raise IntegrityError(
            f"the backup's aidlc.yaml names a path outside the restored workspace: {path}"
        )
    return resolved


def _mark_failed(root: Path, reason: str) -> None:
    # Renaming the config away makes the folder unopenable as a workspace; the note says why.
    with contextlib.suppress(OSError):
        (root / CONFIG_FILE).rename(root / f"{CONFIG_FILE}.restore-failed")
    with contextlib.suppress(OSError), _private_file(root / FAILED_MARK) as out:
        out.write(f"aidlc restore failed: {reason}\n".encode())


# -- Where the restored workspace lives ------------------------------------------------------


def _relative_sqlite(config: Config) -> str | None:
    """The database file of `config` relative to its workspace, or None for any other database."""
    meta = config.metadata
    url = meta.url
    if meta.url_env or meta.url_secret or not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    return path if path and not path.startswith("/") and path != ":memory:" else None


def _target_config(snapshot: Path, prepared: Path | None) -> tuple[dict[str, Any], Config, bool]:
    """The restored workspace's settings, parsed, and whether the snapshot's aidlc.yaml can be
    kept byte for byte (SQLite in the folder and a local store, no --config)."""
    original = load_config(snapshot)  # validated, within the size and encoding limits
    raw = yaml.safe_load(snapshot.read_text(encoding="utf-8")) or {}
    if prepared is None:
        if _relative_sqlite(original) is not None and original.store.backend == "local":
            return raw, original, True
        # The backed-up database and store stay untouched: the copy gets its own.
        raw = {
            **raw,
            "metadata": {"url": _DEFAULT_DATABASE},
            "store": {
                "backend": "local",
                "path": _DEFAULT_OBJECTS,
                "segment_size": original.store.segment_size,
            },
        }
        return raw, parse_config(raw, source="the restored aidlc.yaml"), False
    if not prepared.is_file():
        raise UsageError(f"--config {prepared}: no such file")
    load_config(prepared)  # its own clear ConfigError first, with the size and encoding limits
    given = yaml.safe_load(prepared.read_text(encoding="utf-8")) or {}
    # Whole sections replace the snapshot's: merging `metadata` could leave both a url and a
    # url_env behind, and the one the operator did not write would win.
    raw = {**raw, **{k: v for k, v in given.items() if k not in {"version", "workspace"}}}
    return raw, parse_config(raw, source=f"--config {prepared} over the backup's aidlc.yaml"), False


def _refuse_nonempty(db: Database, store: ObjectStore) -> None:
    try:
        present = set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if (
                    table.name in present
                    and conn.execute(select(literal(1)).select_from(table).limit(1)).first()
                ):
                    raise Conflict(
                        f"the target database already holds aidlc data (table {table.name})",
                        hint="restore into a new, empty database",
                    )
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot read the target database: {type(exc).__name__}") from None
    for key in store.keys():  # noqa: SIM118 - a store, not a dict
        raise Conflict(
            f"the target object store already holds objects ({key})",
            hint="restore into a new bucket prefix or an empty folder",
        )


# -- Rows of a snapshot -----------------------------------------------------------------------

Rows = Iterator[tuple[Table, Iterator[dict[str, Any]]]]


def _tables_of(manifest: dict[str, Any]) -> list[tuple[Table, int]]:
    listed = manifest.get("tables")
    if not isinstance(listed, list):
        raise IntegrityError("the backup manifest has no table list")
    known = Base.metadata.tables
    counts: dict[str, int] = {}
    for entry in listed:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in known or not isinstance(entry.get("rows"), int):
            raise IntegrityError(f"the backup manifest lists an unknown table {str(name)[:80]!r}")
        counts[str(name)] = int(entry["rows"])
    missing = [t.name for t in Base.metadata.sorted_tables if t.name not in counts]
    if missing:
        raise IntegrityError(f"the backup holds no dump of table(s) {', '.join(missing)}")
    return [(table, counts[table.name]) for table in Base.metadata.sorted_tables]


def _rows_from_jsonl(src: Path, tables: list[tuple[Table, int]]) -> Rows:
    for table, expected in tables:
        name = f"{TABLES_DIR}/{table.name}.jsonl"
        yield table, _read_jsonl(src / name, name, table, expected)


def _read_jsonl(path: Path, name: str, table: Table, expected: int) -> Iterator[dict[str, Any]]:
    columns = set(table.columns.keys())
    count = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            where = f"{name} line {number}"
            try:
                row = json.loads(line)
            except ValueError:
                raise IntegrityError(f"{where} is not JSON") from None
            if not isinstance(row, dict) or not set(row) <= columns:
                raise IntegrityError(f"{where} is not a row of table {table.name}")
            yield {k: _decode(v, where) for k, v in row.items()}
            count += 1
    if count != expected:
        raise IntegrityError(f"{name} holds {count} rows; the manifest says {expected}")


def _sqlite_revision(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    finally:
        conn.close()
    if row is None:
        raise IntegrityError(f"{DATABASE_ENTRY} has no schema revision")
    return str(row[0])


def _rows_from_sqlite(path: Path) -> Rows:
    """Rows of a format-1 snapshot's database file, read through the same models (so its
    timestamps and bytes come back typed as a dump's would)."""
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                order = list(table.primary_key.columns)
                result = conn.execute(select(table).order_by(*order)).yield_per(_BATCH)
                yield table, (dict(row) for row in result.mappings())
    finally:
        engine.dispose()


def _load(db: Database, rows: Rows) -> int:
    """Insert every table's rows in dependency order, in one transaction; on PostgreSQL, move
    each id sequence past the restored ids so new rows do not collide with them."""
    total = 0
    try:
        with db.engine.begin() as conn:
            for table, source in rows:
                batch: list[dict[str, Any]] = []
                for row in source:
                    batch.append(row)
                    if len(batch) >= _BATCH:
                        conn.execute(table.insert(), batch)
                        total += len(batch)
                        batch = []
                if batch:
                    conn.execute(table.insert(), batch)
                    total += len(batch)
                column = table.autoincrement_column
                if conn.dialect.name == "postgresql" and column is not None:
                    following = select(func.coalesce(func.max(column), 0) + 1).scalar_subquery()
                    conn.execute(
                        select(
                            func.setval(
                                func.pg_get_serial_sequence(table.name, column.name),
                                following,
                                False,
                            )
                        )
                    )
    except SQLAlchemyError as exc:
        raise IntegrityError(
            f"the backup's rows do not load into the target database: {type(exc).__name__}: "
            f"{str(getattr(exc, 'orig', exc))[:200]}"
        ) from None
    return total


def _copy_into(store: ObjectStore, key: str, path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src, store.writer(key) as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


def restore(
    source: Path | str,
    into: Path | str,
    *,
    token: str,
    keys: Path | str | None = None,
    passphrase: str | None = None,
    config: Path | str | None = None,
) -> RestoreResult:
    """Rebuild the workspace of snapshot `source` in `into` (new or empty) and verify it.

    Without `config` the new workspace keeps its metadata in SQLite and its objects in a local
    folder, inside `into`, whatever the backed-up workspace used. With `config` (a prepared
    aidlc.yaml, as `aidlc init --config` takes) its sections replace the snapshot's, and the
    database and store it names are restored into; both must be empty (`Conflict`).

    Key material: the snapshot's own key ring (`--include-keys`), else `keys` (a copy of the
    workspace's `.aidlc/keys/keyring.json`), plus its passphrase (`passphrase` or the
    configured variable, AIDLC_PASSPHRASE) when it is sealed; KMS workspaces need access to their
    KMS key. `token` must belong to an admin of the backed-up workspace (`backup.restore`).

    Verified before success: every file's SHA-256, the manifest's signature, the audit log and
    that its newest head equals the manifest's, and that every object decrypts to its recorded
    digest. On any failure `IntegrityError` (or the error met) is raised and `into` is left
    marked failed (`RESTORE-FAILED.txt`, `aidlc.yaml` renamed away); rows and objects already
    written to a configured database or store stay there, to be emptied before trying again.
    """
    from aidlc.core import objects
    from aidlc.core.workspace import Workspace

    src = Path(source).expanduser().resolve()
    manifest = read_manifest(src)
    listed = {e["path"] for e in manifest["files"]}
    by_file = manifest["format"] == FORMAT_FILE
    tables = None if by_file else _tables_of(manifest)
    needed = {CONFIG_ENTRY} | (
        {DATABASE_ENTRY} if by_file else {f"{TABLES_DIR}/{t.name}.jsonl" for t, _ in tables or []}
    )
    if not needed <= listed:
        raise IntegrityError(
            "the backup manifest does not list " + ", ".join(sorted(needed - listed))
        )
    for name in sorted(listed - needed - {KEYRING_ENTRY}):
        if not name.startswith(f"{OBJECTS_DIR}/"):
            raise IntegrityError(f"the backup manifest lists an unknown file {name[:120]!r}")
    prepared = Path(config).expanduser() if config is not None else None
    raw, settings, verbatim = _target_config(src / CONFIG_ENTRY, prepared)
    keys_from = "kms"
    keyring: Path | None = None
    if settings.keys.provider == "file":
        if KEYRING_ENTRY in listed:
            keyring = src / KEYRING_ENTRY
            keys_from = "backup"
        elif keys is not None:
            keyring = Path(keys).expanduser()
            if not keyring.is_file():
                raise NotFound(f"no key ring file at {keyring}")
            keys_from = str(keyring)
        else:
            raise UsageError(
                "this backup holds no key ring",
                hint="pass --keys FILE (the workspace's .aidlc/keys/keyring.json) and set "
                f"{settings.keys.passphrase_env} if it has a passphrase",
            )
    root = _prepare_target(Path(into), "the restore folder")

    def place(path: str) -> Path:
        # A path from the snapshot's aidlc.yaml is trusted only once the manifest's signature
        # verifies, after the restore; one from --config is the operator's own choice.
        return _inside(root, root / path) if prepared is None else root / path

    ws: Workspace | None = None
    target: Workspace | None = None
    try:
        if verbatim:
            _copy_file(src / CONFIG_ENTRY, root / CONFIG_FILE)
        else:
            with _private_file(root / CONFIG_FILE) as out:
                header = "# aidlc workspace configuration, restored by `aidlc restore`.\n"
                out.write((header + yaml.safe_dump(raw, sort_keys=False)).encode())
        if keyring is not None:
            _copy_file(keyring, place(settings.keys.file))
        sqlite_file = _relative_sqlite(settings)
        database = place(sqlite_file) if sqlite_file is not None else None
        copied = by_file and prepared is None and database is not None
        if copied and database is not None:
            entry = next(e for e in manifest["files"] if e["path"] == DATABASE_ENTRY)
            if _copy_file(src / DATABASE_ENTRY, database) != (entry["size"], entry["sha256"]):
                raise IntegrityError(f"{DATABASE_ENTRY} changed while it was restored")
        elif database is not None:
            make_private_dirs(database.parent)
        if settings.store.backend == "local":
            place(settings.store.path)
        target = Workspace(root, settings, passphrase=passphrase)
        if not copied:
            _refuse_nonempty(target.db, target.store)
            target.db.upgrade()
            revision = target.db.current_revision()
            wanted = (
                _sqlite_revision(src / DATABASE_ENTRY)
                if by_file
                else manifest.get("schema_revision")
            )
            if wanted != revision:
                raise UsageError(
                    f"the backup's schema revision is {str(wanted)[:40]!r}; this aidlc's is "
                    f"{revision!r}",
                    hint="restore with the aidlc version that wrote it "
                    f"({str(manifest.get('aidlc_version'))[:40]})",
                )
            rows = (
                _rows_from_sqlite(src / DATABASE_ENTRY)
                if by_file
                else _rows_from_jsonl(src, tables or [])
            )
            _load(target.db, rows)
        for entry in manifest["files"]:
            name = entry["path"]
            if name.startswith(f"{OBJECTS_DIR}/"):
                key = name.removeprefix(f"{OBJECTS_DIR}/")
                if _copy_into(target.store, key, src / name) != (entry["size"], entry["sha256"]):
                    raise IntegrityError(f"{name} changed while it was restored")
        target.close()
        files = len(listed) - (KEYRING_ENTRY in listed) + (keyring is not None)
        ws = Workspace.open(root, passphrase=passphrase)
        verdict = ws.audit.verify()
        if not verdict.ok:
            raise IntegrityError(f"the restored audit log does not verify: {verdict.problem}")
        _check_signature(ws, manifest)
        expected = merkle.TreeHead.from_json(manifest.get("audit_head"))
        if verdict.head != expected:
            raise IntegrityError(
                "the restored audit log's newest signed head is not the one in the manifest "
                f"(size {verdict.head.tree_size if verdict.head else 0} vs {expected.tree_size})"
            )
        ws.authenticate(token)
        ws.authorize("backup.restore", f"backup:{src}")
        store = objects.verify_all(ws)
        if not store.ok:
            raise IntegrityError(
                "restored objects do not verify: " + "; ".join(store.problems[:20])
            )
        manifest_sha256 = hashlib.sha256((src / MANIFEST).read_bytes()).hexdigest()
        with ws.transaction() as session:
            ws.record(
                session,
                "backup.restore",
                f"backup:{src}",
                {
                    "manifest_sha256": manifest_sha256,
                    "audit_tree_size": expected.tree_size,
                    "objects_verified": store.checked,
                    "keys_from": "file" if keys_from not in {"backup", "kms"} else keys_from,
                },
            )
        return RestoreResult(
            path=root,
            files=files,
            objects_verified=store.checked,
            audit_events=verdict.size,
            tree_size=expected.tree_size,
            keys_from=keys_from,
        )
    except BaseException as exc:
        _mark_failed(root, str(exc) or type(exc).__name__)
        raise
    finally:
        for opened in (target, ws):
            if opened is not None:
                opened.close()
