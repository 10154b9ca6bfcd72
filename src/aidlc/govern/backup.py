"""Backups: a consistent, still-encrypted snapshot of a workspace, and a restore that proves the
rebuilt workspace intact before it says so.

A snapshot holds the SQLite metadata database (copied with SQLite's backup API inside one read
transaction, so the object list, the audit log and the tree head come from the same instant),
every live object's ciphertext exactly as stored, `aidlc.yaml`, the key ring only when asked, and
`manifest.json`: every file's size and SHA-256 and the newest signed audit tree head, the whole
signed with the workspace's audit key. Nothing in a snapshot is plaintext data; without the key
ring (or KMS access) it cannot be read.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature

from aidlc import __version__
from aidlc.core import merkle
from aidlc.core.config import CONFIG_FILE, load_config
from aidlc.core.files import fsync_dir, make_private_dirs
from aidlc.core.workspace import AUDIT_KEY
from aidlc.errors import AidlcError, Conflict, IntegrityError, NotFound, UsageError

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

FORMAT = "aidlc-backup/1"
MANIFEST = "manifest.json"
FAILED_MARK = "RESTORE-FAILED.txt"
CONFIG_ENTRY = "aidlc.yaml"
DATABASE_ENTRY = "database/aidlc.db"
KEYRING_ENTRY = "keys/keyring.json"
OBJECTS_DIR = "objects"
_CHUNK = 1 << 20
_MANIFEST_LIMIT = 256 << 20
_SIGNATURE_DOMAIN = b"aidlc-backup-manifest/1\n"


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


def _keyring_sealed(path: Path) -> bool:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "sealed_material" in document


def create(ws: Workspace, target: Path | str, *, include_keys: bool = False) -> BackupResult:
    """Write a snapshot of `ws` into `target` (new or empty; made 0700, files 0600).

    Needs `backup.create` (admin). The key ring is copied only with `include_keys`; it is then as
    safe as its passphrase (a warning says so when it has none). SQLite and the local object
    store only: PostgreSQL and S3 are refused with what to use instead.
    """
    principal = ws.authorize("backup.create", f"backup:{target}")
    if ws.config.store.backend != "local":
        raise UsageError(
            "aidlc backup copies the local object store only; this workspace keeps objects in S3",
            hint="protect S3 objects with bucket versioning and replication",
        )
    if include_keys and ws.config.keys.provider != "file":
        raise UsageError("--include-keys copies a key ring file; this workspace's keys are in KMS")
    database = _sqlite_path(ws)
    root = _prepare_target(Path(target), "the backup folder")
    warnings: list[str] = []
    try:
        entries: list[dict[str, Any]] = []

        def add(name: str, size: int, sha256: str) -> None:
            entries.append({"path": name, "size": size, "sha256": sha256})

        head, live = _snapshot_database(database, root / DATABASE_ENTRY)
        add(DATABASE_ENTRY, *_sha256_file(root / DATABASE_ENTRY))
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
        if include_keys:
            ring = ws.root / ws.config.keys.file
            add(KEYRING_ENTRY, *_copy_file(ring, root / KEYRING_ENTRY))
            if not _keyring_sealed(ring):
                warnings.append(
                    "the key ring in this backup has no passphrase: anyone holding the backup "
                    "can decrypt every object; keep it as safe as the data itself"
                )
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "aidlc_version": __version__,
            "workspace_id": ws.id,
            "created_at": datetime.now(UTC).isoformat(),
            "created_by": principal.name,
            "database": "sqlite",
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
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not an {FORMAT} manifest")
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


def restore(
    source: Path | str,
    into: Path | str,
    *,
    token: str,
    keys: Path | str | None = None,
    passphrase: str | None = None,
) -> RestoreResult:
    """Rebuild the workspace of snapshot `source` in `into` (new or empty) and verify it.

    Key material: the snapshot's own key ring (`--include-keys`), else `keys` (a copy of the
    workspace's `.aidlc/keys/keyring.json`), plus its passphrase (`passphrase` or the
    configured variable, AIDLC_PASSPHRASE) when it is sealed; KMS workspaces need access to their
    KMS key. `token` must belong to an admin of the backed-up workspace (`backup.restore`).

    Verified before success: every file's SHA-256, the manifest's signature, the audit log and
    that its newest head equals the manifest's, and that every object decrypts to its recorded
    digest. On any failure `IntegrityError` (or the error met) is raised and `into` is left
    marked failed (`RESTORE-FAILED.txt`, `aidlc.yaml` renamed away).
    """
    from aidlc.core import objects
    from aidlc.core.workspace import Workspace

    src = Path(source).expanduser().resolve()
    manifest = read_manifest(src)
    listed = {e["path"] for e in manifest["files"]}
    if CONFIG_ENTRY not in listed or DATABASE_ENTRY not in listed:
        raise IntegrityError("the backup manifest lists no aidlc.yaml or no database")
    config = load_config(src / CONFIG_ENTRY)
    if config.store.backend != "local":
        raise UsageError("this backup's workspace keeps objects in S3; restore needs a local store")
    url = config.metadata.url
    meta = config.metadata
    if (
        meta.url_env
        or meta.url_secret
        or not url.startswith("sqlite:///")
        or url.startswith("sqlite:////")
    ):
        raise UsageError(
            "restore rebuilds a SQLite database at a relative path; this backup's "
            "aidlc.yaml names another database"
        )
    keys_from = "kms"
    if config.keys.provider == "file":
        if KEYRING_ENTRY in listed:
            keyring: Path | None = src / KEYRING_ENTRY
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
                f"{config.keys.passphrase_env} if it has a passphrase",
            )
    root = _prepare_target(Path(into), "the restore folder")
    ws: Workspace | None = None
    try:
        files = 0
        for entry in manifest["files"]:
            name = entry["path"]
            if name == CONFIG_ENTRY:
                dst = root / CONFIG_FILE
            elif name == DATABASE_ENTRY:
                dst = root / url.removeprefix("sqlite:///")
            elif name == KEYRING_ENTRY:
                continue
            elif name.startswith(f"{OBJECTS_DIR}/"):
                dst = root / config.store.path / name.removeprefix(f"{OBJECTS_DIR}/")
            else:
                raise IntegrityError(f"the backup manifest lists an unknown file {name[:120]!r}")
            size, digest = _copy_file(src / name, _inside(root, dst))
            if (size, digest) != (entry["size"], entry["sha256"]):
                raise IntegrityError(f"{name} changed while it was restored")
            files += 1
        if config.keys.provider == "file" and keyring is not None:
            _copy_file(keyring, _inside(root, root / config.keys.file))
            files += 1
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
        if ws is not None:
            ws.close()
