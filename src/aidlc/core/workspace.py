"""The workspace: one `aidlc.yaml`, its backends, and the authenticated principal acting on them.

`Workspace.open(path, token=...)` is the entry point that the CLI, the HTTP server and Python
users share. Every service function takes a workspace and starts with `ws.authorize(action)`.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from aidlc.core import auth, crypto
from aidlc.core.audit import AuditLog, current_request_id
from aidlc.core.config import (
    CONFIG_FILE,
    STATE_DIR,
    Config,
    load_config,
    render_config,
)
from aidlc.core.keys import FileKeyProvider, KeyProvider
from aidlc.core.meta import (
    Database,
    PrincipalRecord,
    PrincipalRole,
    TokenRecord,
    WorkspaceKey,
    WorkspaceSetting,
)
from aidlc.core.store import ObjectStore
from aidlc.errors import (
    AuthenticationFailed,
    ConfigError,
    Conflict,
    IntegrityError,
    PermissionDenied,
)

AUDIT_KEY = "audit-signing"
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def credential_problem(
    token: TokenRecord | None, owner: PrincipalRecord | None, now: datetime
) -> str | None:
    """Why a token (read again from the database) no longer authenticates its principal, or
    None when it still does: the one rule for servers and console sessions re-checking."""
    if token is None or owner is None or token.principal_id != owner.id:
        return "its token no longer exists"
    if token.revoked_at is not None:
        return f"token {token.id} was revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return f"token {token.id} expired on {token.expires_at:%Y-%m-%d %H:%M} UTC"
    if owner.disabled:
        return f"principal {owner.name} is disabled"
    return None


class Workspace:
    """An open aidlc workspace.

    >>> import tempfile
    >>> ws, admin_token = Workspace.init(tempfile.mkdtemp())
    >>> ws.principal.name, sorted(ws.principal.roles)
    ('admin', ['admin'])
    >>> Workspace.open(ws.root, token=admin_token).audit.verify().ok
    True
    """

    def __init__(self, root: Path, config: Config, *, passphrase: str | None = None) -> None:
        self.root = root
        self.config = config
        self._passphrase = passphrase
        self.principal: auth.Principal | None = None
        self._borrowed = False  # a copy made by acting_as: the database belongs to the original
        self.db = Database(self._database_url())
        self.audit = AuditLog(
            self.db, private_key=self._audit_private_key, public_key=self.audit_public_key
        )

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        passphrase: str | None = None,
        admin_name: str = "admin",
        settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> tuple[Workspace, str]:
        """Create a workspace in `path`; returns it (acting as the first admin) and that admin's
        token, which is shown once and never stored in plain text.

        `settings` overrides sections of the default `aidlc.yaml`, for example
        ``{"metadata": {"url_env": "AIDLC_DATABASE_URL"}}``.
        """
        root = Path(path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        config_path = root / CONFIG_FILE
        if config_path.exists():
            raise Conflict(f"{root} already holds a workspace ({CONFIG_FILE} exists)")
        state = root / STATE_DIR
        state.mkdir(mode=0o700, exist_ok=True)
        os.chmod(state, 0o700)
        config_path.write_text(render_config(name or root.name or "aidlc", settings))
        config = load_config(config_path)
        passphrase = (
            passphrase if passphrase is not None else os.environ.get(config.keys.passphrase_env)
        )
        if config.keys.provider == "file":
            FileKeyProvider.create(root / config.keys.file, passphrase=passphrase or None)
        ws = cls(root, config, passphrase=passphrase or None)
        ws.db.upgrade()
        workspace_id = uuid.uuid4().hex
        signing_key = Ed25519PrivateKey.generate()
        with ws.db.transaction() as session:
            session.add(WorkspaceSetting(name="workspace_id", value=workspace_id))
            session.add(WorkspaceSetting(name="created_at", value=datetime.now(UTC).isoformat()))
        ws._store_private_key(AUDIT_KEY, signing_key)
        token_id, token, token_hash = auth.new_token()
        with ws.transaction() as session:
            admin = PrincipalRecord(
                name=auth.check_name(admin_name), kind="user", created_by="system"
            )
            admin.roles = [PrincipalRole(role="admin")]
            session.add(admin)
            session.flush()
            session.add(
                TokenRecord(
                    id=token_id,
                    principal_id=admin.id,
                    token_hash=token_hash,
                    label="initial admin token",
                    expires_at=auth.expiry(config.auth.token_ttl_days),
                )
            )
            ws.audit.append_many(
                session,
                [
                    {
                        "actor": "system",
                        "action": "workspace.init",
                        "resource": f"workspace:{workspace_id}",
                        "details": {"name": config.workspace, "key_provider": ws.keys.kind},
                    },
                    {
                        "actor": "system",
                        "action": "principal.create",
                        "resource": f"principal:{admin_name}",
                        "details": {"roles": ["admin"], "kind": "user"},
                    },
                    {
                        "actor": "system",
                        "action": "token.create",
                        "resource": f"token:{token_id}",
                        "details": {"principal": admin_name},
                    },
                ],
            )
        ws.principal = auth.Principal(
            id=admin.id, name=admin_name, kind="user", roles=frozenset({"admin"}), token_id=token_id
        )
        return ws, token

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        token: str | None = None,
        passphrase: str | None = None,
    ) -> Workspace:
        """Open the workspace at `path`, authenticating `token` when one is given."""
        root = Path(path).expanduser().resolve()
        config = load_config(root / CONFIG_FILE)
        if passphrase is None:
            passphrase = os.environ.get(config.keys.passphrase_env) or None
        ws = cls(root, config, passphrase=passphrase)
        ws.db.upgrade()
        if token is not None:
            ws.authenticate(token)
        return ws

    def close(self) -> None:
        if not self._borrowed:
            self.db.dispose()

    def acting_as(self, principal: auth.Principal) -> Workspace:
        """This workspace, sharing its database, keys and store, acting as `principal`: a
        server (the web console) acts for a caller it has authenticated itself. Closing the
        copy leaves the original open; the copy must not outlive it."""
        twin = copy.copy(self)
        twin.principal = principal
        twin._borrowed = True
        return twin

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backends ----------------------------------------------------------------------------

    def _database_url(self) -> str:
        meta = self.config.metadata
        url = meta.url
        if meta.url_env:
            url = os.environ.get(meta.url_env, "")
            if not url:
                raise ConfigError(
                    f"metadata.url_env names {meta.url_env}, which is not set in the environment"
                )
        elif meta.url_secret:
            from aidlc.aws.secrets import database_url

            url = database_url(meta.url_secret, region=meta.region, endpoint_url=meta.endpoint_url)
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            relative = url.removeprefix("sqlite:///")
            url = f"sqlite:///{self.root / relative}"
        return url

    @cached_property
    def keys(self) -> KeyProvider:
        cfg = self.config.keys
        if cfg.provider == "kms":
            from aidlc.core.keys import KmsKeyProvider, kms_client

            if not cfg.kms_key_id:
                raise ConfigError("keys.provider is 'kms' but keys.kms_key_id is not set")
            return KmsKeyProvider(cfg.kms_key_id, client=kms_client(cfg.region, cfg.endpoint_url))
        return FileKeyProvider.open(self.root / cfg.file, passphrase=self._passphrase)

    @cached_property
    def store(self) -> ObjectStore:
        cfg = self.config.store
        if cfg.backend == "s3":
            from aidlc.core.store import S3ObjectStore, s3_client

            if not cfg.bucket:
                raise ConfigError("store.backend is 's3' but store.bucket is not set")
            return S3ObjectStore(
                cfg.bucket,
                cfg.prefix,
                client=s3_client(cfg.region, cfg.endpoint_url),
                sse_kms_key_id=cfg.sse_kms_key_id,
            )
        from aidlc.core.store import LocalObjectStore

        path = Path(cfg.path)
        return LocalObjectStore(path if path.is_absolute() else self.root / path)

    @cached_property
    def id(self) -> str:
        with self.db.reading() as session:
            value = session.get(WorkspaceSetting, "workspace_id")
        if value is None:
            raise IntegrityError("the workspace database has no workspace id: was it initialised?")
        return value.value

    # -- workspace private keys --------------------------------------------------------------

    def _key_context(self, name: str) -> dict[str, str]:
        return {"workspace": self.id, "purpose": "workspace-key", "name": name}

    def _seal(self, name: str, plaintext: bytes) -> tuple[bytes, bytes]:
        """Envelope-encrypt a workspace key: (wrapped data key, ciphertext), bound to its name."""
        context = self._key_context(name)
        data_key, wrapped = self.keys.generate_data_key(context)
        aad = json.dumps(context, sort_keys=True).encode()
        return wrapped, crypto.encrypt_bytes(plaintext, key=data_key, associated_data=aad)

    def _unseal(self, rec: WorkspaceKey) -> bytes:
        context = self._key_context(rec.name)
        data_key = self.keys.unwrap(bytes(rec.wrapped_key), context)
        aad = json.dumps(context, sort_keys=True).encode()
        return crypto.decrypt_bytes(bytes(rec.ciphertext), key=data_key, associated_data=aad)

    def _store_private_key(self, name: str, key: Ed25519PrivateKey) -> None:
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        wrapped, sealed = self._seal(name, raw)
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        with self.db.transaction() as session:
            session.add(
                WorkspaceKey(
                    name=name,
                    algorithm="ed25519",
                    public_key=public,
                    wrapped_key=wrapped,
                    ciphertext=sealed,
                )
            )

    def load_private_key(self, name: str) -> Ed25519PrivateKey:
        """Decrypt a workspace private key. Its public half is derived from it, never read from
        the database, so a database writer cannot substitute a key of their own."""
        with self.db.reading() as session:
            rec = session.get(WorkspaceKey, name)
        if rec is None:
            raise IntegrityError(f"the workspace key {name!r} is missing")
        return Ed25519PrivateKey.from_private_bytes(self._unseal(rec))

    def secret(self, name: str) -> bytes:
        """A 256-bit workspace secret (for example the key of keyed hashes), created on first use
        and kept envelope-encrypted like the workspace's private keys."""
        return self.sealed_key(name, "secret-256", lambda: (os.urandom(32), b""))

    def sealed_key(
        self, name: str, algorithm: str, create: Callable[[], tuple[bytes, bytes]]
    ) -> bytes:
        """The private bytes of workspace key `name`, created on first use by `create()` (which
        returns private and public bytes) and kept envelope-encrypted in the database.

        Concurrent first uses agree: whoever commits first wins and everyone reads that key.
        """
        with self.db.reading() as session:
            rec = session.get(WorkspaceKey, name)
        if rec is None:
            private, public = create()
            wrapped, sealed = self._seal(name, private)
            try:
                with self.db.transaction() as session:
                    session.add(
                        WorkspaceKey(
                            name=name,
                            algorithm=algorithm,
                            public_key=public,
                            wrapped_key=wrapped,
                            ciphertext=sealed,
                        )
                    )
            except DBIntegrityError:
                pass  # another process created it first; read theirs
            with self.db.reading() as session:
                rec = session.get(WorkspaceKey, name)
            if rec is None:
                raise IntegrityError(f"the workspace key {name!r} could not be created")
        if rec.algorithm != algorithm:
            raise IntegrityError(f"the workspace key {name!r} is not a {algorithm} key")
        return self._unseal(rec)

    @cached_property
    def _audit_key(self) -> Ed25519PrivateKey:
        return self.load_private_key(AUDIT_KEY)

    def _audit_private_key(self) -> Ed25519PrivateKey:
        return self._audit_key

    def audit_public_key(self) -> Ed25519PublicKey:
        return self._audit_key.public_key()

    # -- authentication and authorisation ----------------------------------------------------

    def authenticate(self, token: str) -> auth.Principal:
        """Resolve a token to its principal and act as it from now on; `AuthenticationFailed`
        (audited) when the token is unknown, revoked, expired or its principal disabled."""
        self.principal = self.identify(token)
        return self.principal

    def identify(self, token: str) -> auth.Principal:
        """Resolve a token to its principal without acting as it: a server checks its callers'
        tokens this way while it keeps acting as its own service principal."""
        now = datetime.now(UTC)
        problem: str | None = None
        principal: auth.Principal | None = None
        actor = "anonymous"
        if not auth.token_looks_valid(token):
            problem = "malformed token"
        else:
            digest = auth.hash_token(token)
            # A read: authentication is on every command's and request's path, and must not take
            # the write lock; last use is written separately, at most once a minute per token.
            touch = False
            with self.db.reading() as session:
                rec = session.execute(
                    select(TokenRecord).where(TokenRecord.token_hash == digest)
                ).scalar_one_or_none()
                owner = session.get(PrincipalRecord, rec.principal_id) if rec else None
                if rec is None or owner is None or not auth.same_hash(rec.token_hash, digest):
                    problem = "unknown token"
                else:
                    actor = owner.name
                    if rec.revoked_at is not None:
                        problem = f"token {rec.id} was revoked"
                    elif rec.expires_at is not None and rec.expires_at <= now:
                        problem = f"token {rec.id} expired on {rec.expires_at:%Y-%m-%d %H:%M} UTC"
                    elif owner.disabled:
                        problem = f"principal {owner.name} is disabled"
                    else:
                        touch = (
                            rec.last_used_at is None
                            or now - rec.last_used_at > _LAST_USED_RESOLUTION
                        )
                        principal = auth.Principal(
                            id=owner.id,
                            name=owner.name,
                            kind=owner.kind,
                            roles=frozenset(r.role for r in owner.roles),
                            token_id=rec.id,
                        )
            if principal is not None and touch:
                with self.db.transaction() as session:
                    session.execute(
                        update(TokenRecord)
                        .where(TokenRecord.id == principal.token_id)
                        .values(last_used_at=now)
                    )
        if principal is None:
            self.audit.record(
                actor=actor,
                action="auth.authenticate",
                resource="token",
                outcome="denied",
                details={"reason": problem},
            )
            raise AuthenticationFailed(
                f"authentication failed: {problem}",
                hint="check AIDLC_TOKEN or your credentials file; an admin can issue a new token",
            )
        return principal

    def recheck(self) -> auth.Principal:
        """Check again that the token this workspace acts with still holds: a long-running
        server notices a revocation, an expiry or a disabled principal. `AuthenticationFailed`
        (audited) if it does not; the workspace then acts as nobody."""
        principal = self.principal
        if principal is None or principal.token_id is None:
            raise AuthenticationFailed("no token given")
        now = datetime.now(UTC)
        with self.db.reading() as session:
            rec = session.get(TokenRecord, principal.token_id)
            owner = session.get(PrincipalRecord, principal.id)
            problem = credential_problem(rec, owner, now)
        if problem is None:
            return principal
        self.principal = None
        self.audit.record(
            actor=principal.name,
            action="auth.recheck",
            resource="token",
            outcome="denied",
            details={"reason": problem},
        )
        raise AuthenticationFailed(
            f"authentication failed: {problem}", hint="an admin can issue a new token"
        )

    def authorize(
        self, action: str, resource: str = "", *, principal: auth.Principal | None = None
    ) -> auth.Principal:
        """Return the caller when one of its roles grants `action`; otherwise audit the denial
        and raise `PermissionDenied` (or `AuthenticationFailed` when nobody is signed in).

        `principal` checks another caller than the one the workspace acts as (a server's
        callers, resolved with `identify`)."""
        principal = principal or self.principal
        if principal is None:
            self.audit.record(
                actor="anonymous",
                action=action,
                resource=resource,
                outcome="denied",
                details={"reason": "not authenticated"},
            )
            raise AuthenticationFailed(
                "no token given", hint="set AIDLC_TOKEN or use `aidlc login`-style credentials file"
            )
        if not principal.may(action):
            self.audit.record(
                actor=principal.name,
                action=action,
                resource=resource,
                outcome="denied",
                details={"reason": "no role grants this action", "roles": sorted(principal.roles)},
            )
            granted = sorted(auth.GRANTS.get(action, ()))
            raise PermissionDenied(
                f"{principal.name} may not {action}"
                + (f" (needs role: {', '.join(granted)})" if granted else " (unknown action)")
            )
        return principal

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A metadata transaction whose audit events are covered by a signed tree head on commit."""
        with self.db.transaction() as session:
            yield session
            self.audit.checkpoint_if_needed(session)

    def record(
        self,
        session: Session,
        action: str,
        resource: str,
        details: Mapping[str, Any] | None = None,
        *,
        outcome: str = "ok",
    ) -> int:
        """Append an audit event for the current principal inside `session`."""
        actor = self.principal.name if self.principal else "system"
        return self.audit.append(
            session, actor=actor, action=action, resource=resource, outcome=outcome, details=details
        )

    def start_run(self, name: str, **kwargs: Any) -> AbstractContextManager[Any]:
        """Open a training run for custom training code::

            with ws.start_run("churn-xgb") as run:
                run.log_params({"max_depth": 4})
                run.log_metrics({"roc_auc": 0.91})
                run.register_model("churn", model, dataset="churn@3", target="churned")

        A facade for Python users: the run lives in `aidlc.train.tracking`, imported only here.
        """
        from aidlc.train.tracking import start_run

        return start_run(self, name, **kwargs)

    @property
    def request_id(self) -> str:
        return current_request_id()
