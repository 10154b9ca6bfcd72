"""The security posture of a running workspace: the checklist of docs/security as live checks.

Each `Check` says pass, warn or fail, shows its evidence and the fix. Fail means a configured
policy or a security invariant is breached now; warn means weaker than recommended. Reading only:
doctor changes nothing and records nothing, so its own run never makes a check pass.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, or_, select

from aidlc.core import crypto
from aidlc.core.audit import Event
from aidlc.core.meta import (
    AuditEvent,
    ModelAliasRecord,
    PrincipalRecord,
    PrincipalRole,
    RetentionPolicyRecord,
    StoredObject,
    TokenRecord,
    WorkspaceSetting,
)
from aidlc.errors import AidlcError, KeyUnavailable

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

__all__ = ["Check", "Status", "exit_code", "run_checks", "summary"]

Status = Literal["pass", "warn", "fail"]

STALE_TOKEN_DAYS = 90
ROTATION_WARN_DAYS = 30
SANE_BODY_BYTES = 16 << 20
SANE_BATCH_ROWS = 10_000
SANE_OOD_Z = 10.0
OBJECT_SAMPLE = 8
_MAX_KEYRING_BYTES = 1 << 20
_LISTED = 5  # names or ids quoted in evidence before "and N more"


@dataclass(frozen=True)
class Check:
    """One posture check: what was looked at, what was found, and what to do about it."""

    id: str
    title: str
    status: Status
    evidence: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "evidence": self.evidence,
            "fix": self.fix,
        }


def run_checks(ws: Workspace) -> list[Check]:
    """Check the posture of `ws` as it runs now; needs `posture.read` (admin or auditor).

    >>> import tempfile
    >>> from aidlc.core.workspace import Workspace
    >>> ws, _ = Workspace.init(tempfile.mkdtemp())
    >>> checks = run_checks(ws)
    >>> [c.status for c in checks if c.id == "keys.file_permissions"]
    ['pass']
    >>> exit_code(checks)
    0
    """
    ws.authorize("posture.read", "posture")
    ring = _KeyRing.inspect(ws)
    checks: list[Check] = []
    for check in (
        _keyring_permissions,
        _keyring_passphrase,
        _key_age,
        _objects_encrypted,
        _store_private,
        _roles,
        _disabled_tokens,
        _token_expiry,
        _stale_tokens,
        _audit_integrity,
        _audit_recency,
        _rate_limit_storage,
        _tls,
        _ood_action,
        _request_limits,
        _alert_sinks,
        _monitor_schedules,
        _metadata,
        _retention,
    ):
        checks.append(_guarded(check, ws, ring))
    return checks


def exit_code(checks: list[Check]) -> int:
    """1 when any check fails, else 0 (warnings allowed)."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def summary(checks: list[Check]) -> dict[str, int]:
    """How many checks passed, warned and failed."""
    return {s: sum(c.status == s for c in checks) for s in ("pass", "warn", "fail")}


# -- plumbing ---------------------------------------------------------------------------------

_CheckFn = Callable[["Workspace", "_KeyRing"], Check]
_TITLES: dict[str, tuple[str, str]] = {}


def _guarded(check: _CheckFn, ws: Workspace, ring: _KeyRing) -> Check:
    """Run one check; an aidlc error (a backend out of reach) makes it "not checked"."""
    try:
        return check(ws, ring)
    except AidlcError as exc:
        check_id, title = _TITLES[check.__name__]
        return Check(
            check_id, title, "warn", f"not checked: {exc}", "fix the error above and rerun"
        )


def _check(check_id: str, title: str) -> Callable[[_CheckFn], _CheckFn]:
    def register(fn: _CheckFn) -> _CheckFn:
        _TITLES[fn.__name__] = (check_id, title)
        return fn

    return register


def _result(fn: _CheckFn, status: Status, evidence: str, fix: str = "") -> Check:
    check_id, title = _TITLES[fn.__name__]
    return Check(check_id, title, status, evidence, fix if status != "pass" else "")


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _reachable_by_others(path: Path) -> bool:
    """Whether users other than the owner can read `path`: it grants group or other read and
    every folder above it lets that class through."""
    mode = _mode(path)
    for read, search in ((stat.S_IRGRP, stat.S_IXGRP), (stat.S_IROTH, stat.S_IXOTH)):
        if mode & read and all(_mode(p) & search for p in path.resolve().parents):
            return True
    return False


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


class _KeyRing:
    """What the key ring file shows without opening it: doctor must report an unsafe ring even
    though the key provider refuses to load one."""

    def __init__(
        self,
        provider: str,
        path: Path | None,
        *,
        mode: int | None = None,
        uid: int | None = None,
        document: dict[str, Any] | None = None,
        problem: str | None = None,
    ) -> None:
        self.provider = provider
        self.path = path
        self.mode = mode
        self.uid = uid
        self.document = document
        self.problem = problem

    @classmethod
    def inspect(cls, ws: Workspace) -> _KeyRing:
        cfg = ws.config.keys
        if cfg.provider != "file":
            return cls(cfg.provider, None)
        path = ws.root / cfg.file
        try:
            info = path.stat()
        except FileNotFoundError:
            return cls("file", path, problem=f"there is no key ring at {path}")
        except OSError as exc:
            return cls("file", path, problem=f"cannot stat the key ring {path}: {exc.strerror}")
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode):
            return cls("file", path, mode=mode, uid=info.st_uid, problem="not a regular file")
        try:
            with path.open("rb") as file:
                raw = file.read(_MAX_KEYRING_BYTES)
            document = json.loads(raw)
        except OSError as exc:
            return cls("file", path, mode=mode, uid=info.st_uid, problem=exc.strerror)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return cls("file", path, mode=mode, uid=info.st_uid, problem="the file is not JSON")
        if not isinstance(document, dict):
            return cls("file", path, mode=mode, uid=info.st_uid, problem="not a key ring")
        # Keep the clear metadata only: the key material has no business in a report's process.
        clear = {k: document.get(k) for k in ("format", "current", "versions")}
        clear["sealed"] = "sealed_material" in document
        return cls("file", path, mode=mode, uid=info.st_uid, document=clear)

    @property
    def usable(self) -> bool:
        """Whether the file key provider would load this ring (as far as the file shows)."""
        return self.provider != "file" or (
            self.problem is None and self.mode is not None and not self.mode & 0o077
        )

    def versions(self) -> list[tuple[str, datetime, bool]]:
        if self.document is None:
            raise KeyUnavailable(f"the key ring {self.path} is unreadable: {self.problem}")
        current = self.document.get("current")
        try:
            return [
                (str(v["id"]), datetime.fromisoformat(v["created_at"]), v["id"] == current)
                for v in self.document["versions"] or []
            ]
        except (KeyError, TypeError, ValueError):
            raise KeyUnavailable(f"the key ring {self.path} is corrupt") from None


# -- keys -------------------------------------------------------------------------------------


@_check("keys.file_permissions", "Key ring file is private to its owner")
def _keyring_permissions(ws: Workspace, ring: _KeyRing) -> Check:
    me = _keyring_permissions
    if ring.provider != "file":
        return _result(
            me, "pass", f"keys.provider is {ring.provider}: the key material never leaves KMS"
        )
    path = ring.path
    if ring.mode is None:
        return _result(
            me, "fail", str(ring.problem), "restore the key ring from backup or fix keys.file"
        )
    problems = []
    fixes = []
    if ring.mode & 0o077:
        problems.append(f"mode {ring.mode:04o} lets other users read it")
        fixes.append(f"chmod 600 {path}")
    if ring.uid != os.geteuid():
        problems.append(f"owned by uid {ring.uid}, not by this user (uid {os.geteuid()})")
        fixes.append(f"chown {os.geteuid()} {path}")
    if ring.problem:
        problems.append(ring.problem)
        fixes.append("restore the key ring from backup")
    if problems:
        evidence = f"{path}: " + "; ".join(problems)
        if ring.mode & 0o077:
            evidence += (
                "; the file key provider refuses it, so nothing can be encrypted or decrypted, "
                "and the key material must be treated as exposed"
            )
        return _result(me, "fail", evidence, "; ".join(fixes))
    return _result(me, "pass", f"{path}: mode {ring.mode:04o}, owned by this user")


@_check("keys.passphrase", "Key ring is sealed with a passphrase or kept in KMS")
def _keyring_passphrase(ws: Workspace, ring: _KeyRing) -> Check:
    me = _keyring_passphrase
    if ring.provider != "file":
        return _result(me, "pass", f"keys.provider is {ring.provider} (AWS KMS)")
    if ring.document is None:
        return _result(me, "warn", f"not checked: the key ring is unreadable ({ring.problem})")
    if ring.document["sealed"]:
        return _result(
            me,
            "pass",
            f"sealed with a passphrase (scrypt); given in ${ws.config.keys.passphrase_env}",
        )
    return _result(
        me,
        "warn",
        "the key ring is not sealed: anyone who copies the file (a backup, a disk image) holds "
        "every key",
        "use KMS (keys.provider: kms, keys.kms_key_id: ...), or create the workspace with "
        f"{ws.config.keys.passphrase_env} set so its key ring is sealed; at least keep the disk "
        "encrypted",
    )


@_check("keys.rotation", "Master key is younger than keys.rotation_days")
def _key_age(ws: Workspace, ring: _KeyRing) -> Check:
    me = _key_age
    limit = ws.config.keys.rotation_days
    if ring.provider == "file":
        versions = ring.versions()
    else:
        versions = [(v.id, v.created_at, v.current) for v in ws.keys.key_versions()]
    current = [(vid, created) for vid, created, is_current in versions if is_current]
    if not current:
        return _result(me, "fail", "the key ring names no current key version", "restore it")
    vid, created = current[0]
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    age = _days(datetime.now(UTC) - created)
    evidence = f"current key {vid} is {age} days old; keys.rotation_days is {limit}"
    fix = "aidlc keys rotate (re-wraps every data key; no object is re-encrypted)"
    if age > limit:
        return _result(me, "fail", evidence + ": rotation is overdue", fix)
    if age > limit - ROTATION_WARN_DAYS:
        return _result(me, "warn", evidence + f": rotation is due in {limit - age} days", fix)
    return _result(me, "pass", evidence)


# -- encryption at rest -----------------------------------------------------------------------


@_check("encryption.objects", "Every stored object is encrypted under a wrapped data key")
def _objects_encrypted(ws: Workspace, ring: _KeyRing) -> Check:
    me = _objects_encrypted
    live = StoredObject.deleted_at.is_(None)
    # The smallest ciphertext is a header and one empty segment's tag; less cannot be ours.
    overhead = crypto.HEADER_SIZE + crypto.TAG_SIZE
    with ws.db.reading() as session:
        total = session.scalar(select(func.count()).where(live)) or 0
        unwrapped = session.scalar(
            select(func.count()).where(
                live,
                or_(StoredObject.wrapped_key.is_(None), func.length(StoredObject.wrapped_key) == 0),
            )
        )
        too_small = session.scalar(
            select(func.count()).where(
                live, StoredObject.ciphertext_size < StoredObject.size + overhead
            )
        )
        unshredded = session.scalar(
            select(func.count()).where(
                StoredObject.deleted_at.is_not(None), StoredObject.wrapped_key.is_not(None)
            )
        )
        sample = list(
            session.execute(
                select(StoredObject.storage_key)
                .where(live)
                .order_by(StoredObject.id.desc())
                .limit(OBJECT_SAMPLE)
            ).scalars()
        )
    problems = []
    if unwrapped:
        problems.append(f"{unwrapped} live objects have no wrapped data key")
    if too_small:
        problems.append(f"{too_small} live objects are smaller than their ciphertext must be")
    if unshredded:
        problems.append(f"{unshredded} deleted objects still hold their wrapped data key")
    missing, plain = [], []
    for key in sample:
        try:
            with ws.store.reader(key) as file:
                head = file.read(len(crypto.MAGIC))
        except AidlcError:
            missing.append(key)
            continue
        if head != crypto.MAGIC:
            plain.append(key)
    if missing:
        problems.append(f"sampled objects missing from the store: {_listed(missing)}")
    if plain:
        problems.append(f"sampled objects not in the aidlc ciphertext format: {_listed(plain)}")
    if problems:
        return _result(
            me,
            "fail",
            f"{total} live objects; " + "; ".join(problems),
            "run `aidlc objects verify` to list every bad object, then restore them from backup; "
            "delete (crypto-shred) objects whose key survived deletion",
        )
    if total == 0:
        return _result(me, "pass", "no objects stored yet")
    return _result(
        me,
        "pass",
        f"{total} live objects all have a wrapped key and ciphertext; {len(sample)} sampled in "
        "the store start with the aidlc ciphertext header; deleted objects are crypto-shredded",
    )


@_check("encryption.store_path", "Object store is not readable by other users")
def _store_private(ws: Workspace, ring: _KeyRing) -> Check:
    me = _store_private
    cfg = ws.config.store
    if cfg.backend == "s3":
        sse = f"SSE-KMS key {cfg.sse_kms_key_id}" if cfg.sse_kms_key_id else "no SSE-KMS key"
        return _result(
            me,
            "pass",
            f"S3 bucket {cfg.bucket}: objects are encrypted by aidlc before upload ({sse} on top); "
            "the bucket policy is checked by Checkov in deploy/terraform",
        )
    path = Path(cfg.path)
    path = path if path.is_absolute() else ws.root / path
    if not path.exists():
        return _result(me, "pass", f"{path} does not exist yet (created 0700 on first write)")
    mode = _mode(path)
    fix = f"chmod -R go-rwx {path}"
    if _reachable_by_others(path):
        return _result(me, "fail", f"{path}: mode {mode:04o}, listable by other users", fix)
    if mode & 0o077:
        return _result(
            me, "warn", f"{path}: mode {mode:04o}, though a folder above keeps others out", fix
        )
    return _result(me, "pass", f"{path}: mode {mode:04o}")


# -- default deny -----------------------------------------------------------------------------


@_check("access.roles", "Principals hold least-privilege roles")
def _roles(ws: Workspace, ring: _KeyRing) -> Check:
    me = _roles
    with ws.db.reading() as session:
        rows = session.execute(
            select(PrincipalRecord.name, PrincipalRole.role)
            .outerjoin(PrincipalRole, PrincipalRole.principal_id == PrincipalRecord.id)
            .where(PrincipalRecord.disabled.is_(False))
            .order_by(PrincipalRecord.name)
        ).all()
    roles: dict[str, set[str]] = {}
    for name, role in rows:
        roles.setdefault(name, set())
        if role is not None:
            roles[name].add(role)
    bare = [n for n, r in roles.items() if not r]
    mixed = [
        f"{n} ({', '.join(sorted(r))})" for n, r in roles.items() if "admin" in r and len(r) > 1
    ]
    admins = [n for n, r in roles.items() if "admin" in r]
    problems = []
    fixes = []
    if bare:
        problems.append(f"principals without any role: {_listed(bare)}")
        fixes.append("disable them: aidlc user disable NAME")
    if mixed:
        problems.append(f"admins who also hold other roles: {_listed(mixed)}")
        fixes.append(
            "give the other duties to a separate principal (aidlc user add NAME --role ROLE) "
            "and disable the mixed one (aidlc user disable NAME)"
        )
    if problems:
        return _result(me, "warn", "; ".join(problems), "; ".join(fixes))
    return _result(
        me,
        "pass",
        f"{len(roles)} enabled principals, each with at least one role; "
        f"{len(admins)} admin(s), none holding another role",
    )


@_check("access.disabled_tokens", "Disabled principals hold no live tokens")
def _disabled_tokens(ws: Workspace, ring: _KeyRing) -> Check:
    me = _disabled_tokens
    now = datetime.now(UTC)
    with ws.db.reading() as session:
        rows = session.execute(
            select(TokenRecord.id, PrincipalRecord.name)
            .join(PrincipalRecord, PrincipalRecord.id == TokenRecord.principal_id)
            .where(PrincipalRecord.disabled.is_(True), *_unexpired(now))
        ).all()
    if rows:
        ids = [f"{tid} ({name})" for tid, name in rows]
        return _result(
            me,
            "warn",
            f"{len(rows)} unrevoked, unexpired tokens of disabled principals: {_listed(ids)}; "
            "they fail authentication now but would work again if the principal were re-enabled",
            "aidlc token revoke TOKEN_ID for each",
        )
    return _result(me, "pass", "no disabled principal has an unrevoked, unexpired token")


def _unexpired(now: datetime) -> tuple[Any, ...]:
    return (
        TokenRecord.revoked_at.is_(None),
        or_(TokenRecord.expires_at.is_(None), TokenRecord.expires_at > now),
    )


# -- tokens -----------------------------------------------------------------------------------


def _active_tokens(ws: Workspace, now: datetime) -> list[tuple[TokenRecord, str]]:
    with ws.db.reading() as session:
        rows = session.execute(
            select(TokenRecord, PrincipalRecord.name)
            .join(PrincipalRecord, PrincipalRecord.id == TokenRecord.principal_id)
            .where(PrincipalRecord.disabled.is_(False), *_unexpired(now))
            .order_by(TokenRecord.created_at)
        ).all()
    return [(tok, name) for tok, name in rows]


@_check("tokens.expiry", "Tokens expire within auth.token_ttl_days")
def _token_expiry(ws: Workspace, ring: _KeyRing) -> Check:
    me = _token_expiry
    now = datetime.now(UTC)
    ttl = ws.config.auth.token_ttl_days
    tokens = _active_tokens(ws, now)
    never = [f"{t.id} ({name})" for t, name in tokens if t.expires_at is None]
    too_old = (
        [
            f"{t.id} ({name}, {_days(now - t.created_at)} days)"
            for t, name in tokens
            if now - t.created_at > timedelta(days=ttl)
        ]
        if ttl is not None
        else []
    )
    revoke = (
        "revoke with `aidlc token revoke TOKEN_ID` and issue a new one with "
        "`aidlc token create NAME`"
    )
    if too_old:
        return _result(
            me,
            "fail",
            f"{len(too_old)} live tokens are older than auth.token_ttl_days ({ttl}): "
            + _listed(too_old),
            revoke,
        )
    if ttl is None:
        return _result(
            me,
            "warn",
            "auth.token_ttl_days is not set, so new tokens never expire"
            + (f"; {len(never)} live tokens never expire" if never else ""),
            "set auth.token_ttl_days: 90 in aidlc.yaml",
        )
    if never:
        return _result(
            me,
            "warn",
            f"{len(never)} live tokens never expire: {_listed(never)}",
            revoke + " (without --expires-days 0)",
        )
    return _result(me, "pass", f"{len(tokens)} live tokens, all expiring within {ttl} days")


@_check("tokens.stale", f"Live tokens were used within {STALE_TOKEN_DAYS} days")
def _stale_tokens(ws: Workspace, ring: _KeyRing) -> Check:
    me = _stale_tokens
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=STALE_TOKEN_DAYS)
    tokens = _active_tokens(ws, now)
    stale = [
        f"{t.id} ({name}, "
        + (f"last used {t.last_used_at:%Y-%m-%d})" if t.last_used_at else "never used)")
        for t, name in tokens
        if (t.last_used_at or t.created_at) < cutoff
    ]
    if stale:
        return _result(
            me,
            "warn",
            f"{len(stale)} live tokens unused for over {STALE_TOKEN_DAYS} days: {_listed(stale)}",
            "revoke what nobody uses: aidlc token revoke TOKEN_ID",
        )
    return _result(
        me, "pass", f"{len(tokens)} live tokens, none unused for {STALE_TOKEN_DAYS} days"
    )


# -- audit ------------------------------------------------------------------------------------


@_check("audit.integrity", "Audit log verifies now")
def _audit_integrity(ws: Workspace, ring: _KeyRing) -> Check:
    me = _audit_integrity
    principal = ws.principal
    if principal is None or not principal.may("audit.verify"):
        return _result(
            me,
            "warn",
            "not checked (needs auditor): verifying the log is an auditor's duty",
            "run `aidlc doctor` or `aidlc audit verify` with an auditor's token",
        )
    if not ring.usable:
        return _result(
            me,
            "warn",
            "not checked: the key ring is unusable, and tree heads are checked with the "
            "workspace's sealed audit key",
            "fix keys.file_permissions first",
        )
    try:
        verdict = ws.audit.verify()
    except KeyUnavailable as exc:
        return _result(me, "warn", f"not checked: {exc}", "make the key provider reachable")
    except AidlcError as exc:
        return _result(
            me, "fail", f"the log cannot be verified: {exc}", "restore the metadata from backup"
        )
    if not verdict.ok:
        where = f"event {verdict.first_bad_seq}: " if verdict.first_bad_seq else ""
        return _result(
            me,
            "fail",
            f"TAMPERED: {where}{verdict.problem}",
            "treat as an incident: keep a copy of the database, compare with a saved tree head "
            "(`aidlc audit verify --against HEAD.json`), restore from backup",
        )
    return _result(
        me,
        "pass",
        f"{verdict.size} events and {verdict.heads_checked} signed tree heads verify",
    )


@_check("audit.recent_verification", "Audit log was verified within audit.verify_max_age_days")
def _audit_recency(ws: Workspace, ring: _KeyRing) -> Check:
    me = _audit_recency
    limit = ws.config.audit.verify_max_age_days
    now = datetime.now(UTC)
    with ws.db.reading() as session:
        last = session.execute(
            select(AuditEvent.time, AuditEvent.body)
            .where(AuditEvent.action == "audit.verify", AuditEvent.outcome == "ok")
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
        created = session.get(WorkspaceSetting, "created_at")
    fix = f"run `aidlc audit verify` as an auditor at least every {limit} days (cron, CI)"
    if last is None:
        born = datetime.fromisoformat(created.value) if created else now
        age = _days(now - born)
        status: Status = "fail" if age > limit else "warn"
        return _result(
            me,
            status,
            f"never verified by `aidlc audit verify`; the workspace is {age} days old and "
            f"audit.verify_max_age_days is {limit}",
            fix,
        )
    moment, body = last
    age = _days(now - moment)
    try:
        intact = Event.from_body(bytes(body)).details.get("ok") is True
    except AidlcError:
        intact = False
    if not intact:
        return _result(
            me,
            "fail",
            f"the last verification ({moment:%Y-%m-%d}) did not find the log intact",
            "investigate with `aidlc audit verify --json` as an auditor",
        )
    evidence = f"last verified intact on {moment:%Y-%m-%d} ({age} days ago; limit {limit})"
    if age > limit:
        return _result(me, "fail", evidence, fix)
    return _result(me, "pass", evidence)


# -- serving ----------------------------------------------------------------------------------


@_check("serve.rate_limit_storage", "Rate limits are shared by every worker")
def _rate_limit_storage(ws: Workspace, ring: _KeyRing) -> Check:
    from aidlc.serve.ratelimit import STORAGE_ENV

    me = _rate_limit_storage
    from_env = os.environ.get(STORAGE_ENV)
    uri = from_env or ws.config.serve.rate_limit_storage
    # Only the scheme is shown: a URI from the environment may hold a password.
    scheme = uri.split("://", 1)[0]
    source = f"${STORAGE_ENV}" if from_env else "serve.rate_limit_storage"
    if scheme == "memory":
        return _result(
            me,
            "warn",
            f"{source} is memory://: fine for one worker, but with --workers N or several "
            "replicas each process counts its own limit",
            "set serve.rate_limit_storage: redis://HOST:6379 (a URL with a password goes in "
            f"${STORAGE_ENV})",
        )
    return _result(me, "pass", f"{source} uses {scheme}://, shared by every worker and replica")


@_check("serve.tls", "Inference traffic is encrypted in transit")
def _tls(ws: Workspace, ring: _KeyRing) -> Check:
    return _result(
        _tls,
        "pass",
        "enforced by `aidlc serve`: it refuses a non-loopback --host without --tls-cert and "
        "--tls-key, unless --allow-plain-http is given for a TLS-terminating proxy",
    )


@_check("serve.ood_action", "Out-of-distribution inputs are caught")
def _ood_action(ws: Workspace, ring: _KeyRing) -> Check:
    me = _ood_action
    cfg = ws.config.serve
    meaning = {
        "flag": "out-of-range rows are served and flagged in the prediction log",
        "reject": "out-of-range rows are refused",
    }[cfg.ood_action]
    evidence = f"serve.ood_action is {cfg.ood_action} ({meaning}); serve.ood_z is {cfg.ood_z}"
    if cfg.ood_z > SANE_OOD_Z:
        return _result(
            me,
            "warn",
            evidence + f": above {SANE_OOD_Z:g} almost nothing is flagged",
            "set serve.ood_z: 6.0",
        )
    return _result(me, "pass", evidence)


@_check("serve.request_limits", "Request size limits are sane")
def _request_limits(ws: Workspace, ring: _KeyRing) -> Check:
    me = _request_limits
    cfg = ws.config.serve
    evidence = (
        f"serve.max_body_bytes is {cfg.max_body_bytes}, "
        f"serve.max_batch_rows is {cfg.max_batch_rows}"
    )
    problems = []
    if cfg.max_body_bytes > SANE_BODY_BYTES:
        problems.append(f"bodies over {SANE_BODY_BYTES >> 20} MiB let one caller tie up memory")
    if cfg.max_batch_rows > SANE_BATCH_ROWS:
        problems.append(f"batches over {SANE_BATCH_ROWS} rows let one request hog a worker")
    if problems:
        return _result(
            me,
            "warn",
            evidence + ": " + "; ".join(problems),
            "set serve.max_body_bytes: 1048576 and serve.max_batch_rows: 1000 (use batch jobs for "
            "bulk scoring)",
        )
    return _result(me, "pass", evidence)


# -- alerts and monitoring --------------------------------------------------------------------


@_check("alerts.sinks", "Alerts reach a person, not only the log")
def _alert_sinks(ws: Workspace, ring: _KeyRing) -> Check:
    me = _alert_sinks
    kinds = [s.type for s in ws.config.alerts.sinks]
    beyond = sorted({k for k in kinds if k != "log"})
    if beyond:
        return _result(me, "pass", f"alert sinks: {', '.join(kinds)}")
    return _result(
        me,
        "warn",
        f"alert sinks: {', '.join(kinds) or 'none'}: a breach is only written to a log",
        "add a sink to alerts.sinks in aidlc.yaml, e.g. "
        "`- {type: webhook, url: https://hooks.example.com/T/SECRETPATH, min_severity: WARNING}` "
        "(or smtp / sns)",
    )


@_check("monitor.schedules", "Production models are monitored on a schedule")
def _monitor_schedules(ws: Workspace, ring: _KeyRing) -> Check:
    me = _monitor_schedules
    schedules = ws.config.monitor.schedules
    with ws.db.reading() as session:
        production = (
            session.scalar(select(func.count()).where(ModelAliasRecord.alias == "production")) or 0
        )
    if schedules:
        names = [f"{s.name} ({s.cron}, model {s.model})" for s in schedules]
        return _result(me, "pass", f"{len(schedules)} monitor schedules: {_listed(names)}")
    if production:
        return _result(
            me,
            "warn",
            f"{production} models in production and no monitor schedule: drift is found only "
            "when someone runs `aidlc monitor run`",
            'add to monitor.schedules in aidlc.yaml: `- {name: nightly, cron: "cron(0 2 * * ? *)", '
            'model: "*"}` (run by `aidlc serve` or `aidlc monitor schedule`)',
        )
    return _result(me, "pass", "no model in production yet, so nothing to monitor")


# -- metadata and retention -------------------------------------------------------------------


@_check("metadata.database", "Metadata database is private and its credentials stay out of files")
def _metadata(ws: Workspace, ring: _KeyRing) -> Check:
    me = _metadata
    meta = ws.config.metadata
    url = ws.db.url
    if not url.startswith("sqlite"):
        scheme = url.split("://", 1)[0]
        if meta.url_env:
            return _result(
                me,
                "pass",
                f"{scheme}: the URL comes from ${meta.url_env}; aidlc.yaml holds no password",
            )
        if meta.url_secret:
            return _result(
                me,
                "pass",
                f"{scheme}: the URL comes from the AWS Secrets Manager secret "
                f"{meta.url_secret}; aidlc.yaml holds no password",
            )
        return _result(
            me,
            "pass",
            f"{scheme}: metadata.url in aidlc.yaml has no password (aidlc refuses one there)",
        )
    raw = url.removeprefix("sqlite:///")
    if not raw or raw == ":memory:" or url in ("sqlite://", "sqlite:///:memory:"):
        return _result(me, "warn", "an in-memory SQLite database: nothing survives a restart")
    path = Path(raw)
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    exposed = [p for p in files if _reachable_by_others(p)]
    loose = [p for p in files if _mode(p) & 0o077 and p not in exposed]
    described = ", ".join(f"{p.name} {_mode(p):04o}" for p in files)
    folder = f"folder {path.parent} {_mode(path.parent):04o}"
    fix = "chmod 600 " + " ".join(str(p) for p in (exposed or loose))
    if exposed:
        return _result(me, "fail", f"readable by other users: {described} ({folder})", fix)
    if loose:
        return _result(
            me,
            "warn",
            f"{described}: not 0600, though the {folder} keeps other users out",
            fix,
        )
    return _result(me, "pass", f"{described} ({folder})")


@_check("retention.policies", "Retention policies are set")
def _retention(ws: Workspace, ring: _KeyRing) -> Check:
    me = _retention
    with ws.db.reading() as session:
        policies = session.execute(
            select(
                RetentionPolicyRecord.zone,
                RetentionPolicyRecord.dataset,
                RetentionPolicyRecord.days,
            ).order_by(RetentionPolicyRecord.zone, RetentionPolicyRecord.dataset)
        ).all()
    if not policies:
        return _result(
            me,
            "warn",
            "no retention policy: raw data and prediction logs are kept forever",
            "set one per zone, e.g. `aidlc retention set predictions --days 365`",
        )
    shown = [f"{z}{'/' + d if d else ''}: {days} days" for z, d, days in policies]
    return _result(me, "pass", f"{len(policies)} policies: {_listed(shown)}")
