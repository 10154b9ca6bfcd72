"""Key providers: they make and unwrap the per-object data keys, and own key rotation.

Two providers share one protocol: `FileKeyProvider` (a key ring file, mode 0600, optionally
sealed with a passphrase) and `KmsKeyProvider` (AWS KMS). A wrapped data key names the key
version that wrapped it, so data keys made before a rotation keep unwrapping after it; the
encryption context (for example an object's id and version) is authenticated, so a wrapped key
moved to another object fails with `IntegrityError`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from aidlc.core.files import fsync_dir, make_private_dirs
from aidlc.errors import Conflict, IntegrityError, KeyUnavailable, UsageError

__all__ = [
    "FileKeyProvider",
    "KeyProvider",
    "KeyVersion",
    "KmsKeyProvider",
    "kms_client",
]

DATA_KEY_SIZE = 32


@dataclass(frozen=True)
class KeyVersion:
    """One version of the key-encryption key; exactly one is current."""

    id: str
    created_at: datetime
    current: bool


class KeyProvider(Protocol):
    """Makes, unwraps and re-wraps data keys under a rotatable key-encryption key."""

    kind: str

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """Return a new 32-byte data key and its wrapped form, bound to `context`."""
        ...

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Return the data key inside `wrapped`; `context` must equal the one it was made with."""
        ...

    def rewrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Return `wrapped` re-wrapped under the current key version; the data key is unchanged."""
        ...

    def current_key_id(self) -> str:
        """Id of the key version that new data keys are wrapped under."""
        ...

    def rotate(self) -> str:
        """Make a new key version current and return its id."""
        ...

    def key_versions(self) -> list[KeyVersion]:
        """All key versions, oldest first."""
        ...


# ---------------------------------------------------------------------------------------------
# Key ring file

KEYRING_FORMAT = "aidlc-keyring/1"
# scrypt cost: 2**15 * 8 * 128 B = 32 MiB and ~0.1 s per derivation. Files asking for less are
# refused; the upper bounds keep a crafted file from exhausting memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_SCRYPT_MAX_N, _SCRYPT_MAX_R, _SCRYPT_MAX_P = 1 << 20, 32, 16
# Wrapped key: version byte | key id length (1) | key id | nonce (12) | AES-GCM(data key) | tag
_WRAP_VERSION = 1
_NONCE_SIZE = 12


class FileKeyProvider:
    """A key ring in a local JSON file, readable only by its owner.

    >>> import tempfile
    >>> ring = FileKeyProvider.create(Path(tempfile.mkdtemp()) / "keyring.json")
    >>> key, wrapped = ring.generate_data_key({"object": "raw/1"})
    >>> ring.unwrap(wrapped, {"object": "raw/1"}) == key
    True
    """

    kind = "file"

    def __init__(
        self,
        path: Path,
        *,
        current: str,
        versions: list[tuple[str, datetime, bytes]],
        seal: _Seal | None,
    ) -> None:
        """Use `create` or `open`; this constructor trusts its arguments."""
        self.path = path
        self._current = current
        self._versions = versions
        self._seal = seal

    @classmethod
    def create(cls, path: Path | str, passphrase: str | None = None) -> FileKeyProvider:
        """Write a new key ring with one key version; refuse to overwrite an existing file."""
        path = Path(path)
        if path.exists():
            raise Conflict(f"a key ring already exists at {path}", hint="open it instead")
        make_private_dirs(path.parent)
        seal = _Seal.new(passphrase) if passphrase is not None else None
        provider = cls(path, current="k1", versions=[_new_version("k1")], seal=seal)
        tmp = provider._write_temp(provider._current, provider._versions)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise Conflict(f"a key ring already exists at {path}", hint="open it instead") from None
        finally:
            tmp.unlink()
        fsync_dir(path.parent)
        return provider

    @classmethod
    def open(cls, path: Path | str, passphrase: str | None = None) -> FileKeyProvider:
        """Load a key ring, refusing files that others can read or that do not verify."""
        path = Path(path)
        return cls._load(path, _read_keyring(path), passphrase=passphrase)

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        data_key = secrets.token_bytes(DATA_KEY_SIZE)
        return data_key, self._wrap(data_key, context)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        key_id, nonce, sealed, header = _parse_wrapped(wrapped)
        kek = self._key(key_id)
        if kek is None:
            # Another process may have rotated since we loaded the ring.
            self._reload()
            kek = self._key(key_id)
        if kek is None:
            raise KeyUnavailable(
                f"the data key was wrapped by key version {key_id!r}, "
                f"which is not in the key ring {self.path}"
            )
        try:
            return AESGCM(kek).decrypt(nonce, sealed, header + _canonical_context(context))
        except InvalidTag:
            raise IntegrityError(
                "the wrapped data key does not verify under this encryption context: "
                "it belongs to another object or was modified"
            ) from None

    def rewrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        return self._wrap(self.unwrap(wrapped, context), context)

    def current_key_id(self) -> str:
        return self._current

    def rotate(self) -> str:
        # The lock and the reload stop two processes rotating at once from each dropping the
        # other's new version, which would orphan every data key wrapped under it.
        with self._locked():
            self._reload()
            new_id = f"k{max(int(vid[1:]) for vid, _, _ in self._versions) + 1}"
            versions = [*self._versions, _new_version(new_id)]
            tmp = self._write_temp(new_id, versions)
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            # Only a version safely on disk may wrap data keys.
            self._current, self._versions = new_id, versions
        return new_id

    def key_versions(self) -> list[KeyVersion]:
        return [
            KeyVersion(vid, created, vid == self._current) for vid, created, _ in self._versions
        ]

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self.path)!r}, current={self._current!r})"

    def _key(self, key_id: str) -> bytes | None:
        return next((key for vid, _, key in self._versions if vid == key_id), None)

    def _wrap(self, data_key: bytes, context: Mapping[str, str]) -> bytes:
        kek = self._key(self._current)
        if kek is None:
            raise KeyUnavailable(f"the key ring {self.path} has no current key version")
        header = _wrapped_header(self._current)
        nonce = os.urandom(_NONCE_SIZE)
        sealed = AESGCM(kek).encrypt(nonce, data_key, header + _canonical_context(context))
        return header + nonce + sealed

    def _reload(self) -> None:
        reloaded = self._load(self.path, _read_keyring(self.path), seal=self._seal)
        self._current, self._versions = reloaded._current, reloaded._versions

    @classmethod
    def _load(
        cls,
        path: Path,
        document: dict[str, Any],
        *,
        passphrase: str | None = None,
        seal: _Seal | None = None,
    ) -> FileKeyProvider:
        corrupt = KeyUnavailable(f"the key ring {path} is corrupt", hint="restore it")
        if document.get("format") != KEYRING_FORMAT:
            raise KeyUnavailable(f"{path} is not an aidlc key ring ({KEYRING_FORMAT})")
        try:
            current = str(document["current"])
            listed = [
                (str(v["id"]), datetime.fromisoformat(v["created_at"]))
                for v in document["versions"]
            ]
            sealed = document.get("sealed_material")
            if sealed is None:
                seal, material = None, document["material"]
            else:
                if seal is None or seal.salt_b64 != sealed["salt"]:
                    if passphrase is None:
                        raise KeyUnavailable(
                            f"wrong passphrase for the key ring {path}: none was given",
                            hint="set AIDLC_PASSPHRASE",
                        )
                    seal = _Seal.from_document(sealed, passphrase, path)
                material = seal.open(sealed, _metadata_aad(document), path)
            versions = [(vid, created, _b64decode(material[vid])) for vid, created in listed]
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise corrupt from None
        ids = [vid for vid, _, _ in versions]
        if (
            current not in ids
            or len(set(ids)) != len(ids)
            or not all(vid.startswith("k") and vid[1:].isdigit() for vid in ids)
            or any(len(key) != DATA_KEY_SIZE for _, _, key in versions)
        ):
            raise corrupt
        return cls(path, current=current, versions=versions, seal=seal)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _document(
        self, current: str, versions: list[tuple[str, datetime, bytes]]
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": KEYRING_FORMAT,
            "current": current,
            "versions": [
                {"id": vid, "created_at": created.isoformat()} for vid, created, _ in versions
            ],
        }
        material = {vid: _b64encode(key) for vid, _, key in versions}
        if self._seal is None:
            document["material"] = material
        else:
            document["sealed_material"] = self._seal.seal(material, _metadata_aad(document))
        return document

    def _write_temp(self, current: str, versions: list[tuple[str, datetime, bytes]]) -> Path:
        """Write a ring to a new 0600 file next to `path`, fsynced; return its path."""
        data = json.dumps(self._document(current, versions), indent=2).encode() + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink()
            raise
        os.close(fd)
        return tmp


class _Seal:
    """The passphrase protection of a key ring: scrypt parameters and the derived key."""

    def __init__(self, salt: bytes, n: int, r: int, p: int, key: bytes) -> None:
        self.salt_b64 = _b64encode(salt)
        self._params = {"kdf": "scrypt", "salt": self.salt_b64, "n": n, "r": r, "p": p}
        self._key = key

    @classmethod
    def new(cls, passphrase: str) -> _Seal:
        if not passphrase:
            raise UsageError("the key ring passphrase must not be empty")
        salt = os.urandom(16)
        return cls(salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, _scrypt(passphrase, salt, *_DEFAULTS))

    @classmethod
    def from_document(cls, sealed: dict[str, Any], passphrase: str, path: Path) -> _Seal:
        n, r, p = int(sealed["n"]), int(sealed["r"]), int(sealed["p"])
        if sealed["kdf"] != "scrypt" or not (
            SCRYPT_N <= n <= _SCRYPT_MAX_N
            and n & (n - 1) == 0
            and SCRYPT_R <= r <= _SCRYPT_MAX_R
            and SCRYPT_P <= p <= _SCRYPT_MAX_P
        ):
            raise KeyUnavailable(
                f"the key ring {path} uses unsupported or too weak passphrase key derivation",
                hint=f"use scrypt with n >= {SCRYPT_N}, r >= {SCRYPT_R}",
            )
        salt = _b64decode(sealed["salt"])
        return cls(salt, n, r, p, _scrypt(passphrase, salt, n, r, p))

    def seal(self, material: dict[str, str], aad: bytes) -> dict[str, Any]:
        nonce = os.urandom(_NONCE_SIZE)
        plaintext = json.dumps(material, sort_keys=True).encode()
        ciphertext = AESGCM(self._key).encrypt(nonce, plaintext, aad)
        return {**self._params, "nonce": _b64encode(nonce), "ciphertext": _b64encode(ciphertext)}

    def open(self, sealed: dict[str, Any], aad: bytes, path: Path) -> dict[str, str]:
        try:
            plaintext = AESGCM(self._key).decrypt(
                _b64decode(sealed["nonce"]), _b64decode(sealed["ciphertext"]), aad
            )
        except InvalidTag:
            raise KeyUnavailable(
                f"wrong passphrase for the key ring {path}, or the file was modified",
                hint="check AIDLC_PASSPHRASE",
            ) from None
        material: dict[str, str] = json.loads(plaintext)
        return material


_DEFAULTS = (SCRYPT_N, SCRYPT_R, SCRYPT_P)


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _read_keyring(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyUnavailable(
            f"no key ring at {path}", hint="create one with `aidlc init` or fix the path"
        ) from None
    except PermissionError:
        raise KeyUnavailable(f"the key ring {path} is not readable by this user") from None
    try:
        # fstat on the open file, so the mode checked is the mode of the file read; before
        # fdopen, which refuses a directory with an OSError of its own.
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise KeyUnavailable(f"the key ring {path} is not a regular file")
        if mode & 0o077:
            raise KeyUnavailable(
                f"the key ring {path} is accessible by other users (mode {stat.S_IMODE(mode):04o})",
                hint=f"run `chmod 600 {path}`",
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:
        raw = file.read(1 << 20)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyUnavailable(f"the key ring {path} is corrupt", hint="restore it") from None
    if not isinstance(document, dict):
        raise KeyUnavailable(f"the key ring {path} is corrupt", hint="restore it")
    return document


def _metadata_aad(document: Mapping[str, Any]) -> bytes:
    """The clear part of a sealed ring, authenticated so nobody can swap the current version."""
    clear = {k: document[k] for k in ("format", "current", "versions")}
    return json.dumps(clear, sort_keys=True, separators=(",", ":")).encode()


def _new_version(key_id: str) -> tuple[str, datetime, bytes]:
    return key_id, datetime.now(UTC), secrets.token_bytes(DATA_KEY_SIZE)


def _wrapped_header(key_id: str) -> bytes:
    encoded = key_id.encode()
    return struct.pack(">BB", _WRAP_VERSION, len(encoded)) + encoded


def _parse_wrapped(wrapped: bytes) -> tuple[str, bytes, bytes, bytes]:
    """Split a wrapped key into (key id, nonce, sealed key, header)."""
    malformed = IntegrityError("the wrapped data key is malformed or was made by another provider")
    if len(wrapped) < 2 or wrapped[0] != _WRAP_VERSION:
        raise malformed
    end = 2 + wrapped[1]
    if len(wrapped) != end + _NONCE_SIZE + DATA_KEY_SIZE + 16:
        raise malformed
    try:
        key_id = wrapped[2:end].decode()
    except UnicodeDecodeError:
        raise malformed from None
    return key_id, wrapped[end : end + _NONCE_SIZE], wrapped[end + _NONCE_SIZE :], wrapped[:end]


def _canonical_context(context: Mapping[str, str]) -> bytes:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise UsageError("an encryption context maps strings to strings")
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


# ---------------------------------------------------------------------------------------------
# AWS KMS

# Errors that mean "this ciphertext or context is wrong", as opposed to "KMS is unusable".
_KMS_INTEGRITY_ERRORS = {"InvalidCiphertextException", "IncorrectKeyException"}


class KmsKeyProvider:
    """Data keys from AWS KMS; KMS keeps the key material and its rotations.

    KMS ciphertext blobs record which backing key material wrapped them, so they keep
    decrypting after rotation. KMS does not name key material versions through every API, so
    version ids here are `<key id>@v<n>`: v1 is the original material, v2 the first rotation.
    """

    kind = "kms"

    def __init__(self, key_id: str, *, client: Any) -> None:
        self.key_id = key_id
        self._client = client
        self._current: str | None = None

    def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        with _kms_errors(self.key_id):
            response = self._client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        return bytes(response["Plaintext"]), bytes(response["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        with _kms_errors(self.key_id):
            response = self._client.decrypt(
                CiphertextBlob=wrapped, EncryptionContext=dict(context), KeyId=self.key_id
            )
        return bytes(response["Plaintext"])

    def rewrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        with _kms_errors(self.key_id):
            response = self._client.re_encrypt(
                CiphertextBlob=wrapped,
                SourceEncryptionContext=dict(context),
                SourceKeyId=self.key_id,
                DestinationKeyId=self.key_id,
                DestinationEncryptionContext=dict(context),
            )
        return bytes(response["CiphertextBlob"])

    def current_key_id(self) -> str:
        # Two KMS calls; objects.put asks on every write, so remember it until we rotate.
        if self._current is None:
            self._current = self.key_versions()[-1].id
        return self._current

    def rotate(self) -> str:
        """Ask KMS to rotate the key material now (RotateKeyOnDemand).

        KMS finishes the rotation asynchronously, so `key_versions` may list the new version a
        moment after this returns; the id returned is the one it will have.
        """
        before = len(self.key_versions())
        with _kms_errors(self.key_id):
            self._client.rotate_key_on_demand(KeyId=self.key_id)
        self._current = f"{self.key_id}@v{before + 1}"
        return self._current

    def key_versions(self) -> list[KeyVersion]:
        with _kms_errors(self.key_id):
            metadata = self._client.describe_key(KeyId=self.key_id)["KeyMetadata"]
            rotations: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"KeyId": self.key_id}
            while True:
                page = self._client.list_key_rotations(**kwargs)
                rotations.extend(page.get("Rotations", []))
                if not page.get("Truncated"):
                    break
                kwargs["Marker"] = page["NextMarker"]
        created = [metadata["CreationDate"], *(r["RotationDate"] for r in rotations)]
        return [
            KeyVersion(f"{self.key_id}@v{n}", _as_utc(when), n == len(created))
            for n, when in enumerate(created, start=1)
        ]

    def __repr__(self) -> str:
        return f"KmsKeyProvider({self.key_id!r})"


def kms_client(region: str | None, endpoint_url: str | None = None) -> Any:
    """A boto3 KMS client; credentials (and the region, if None) come from the usual AWS chain."""
    import boto3

    return boto3.client("kms", region_name=region, endpoint_url=endpoint_url)


@contextlib.contextmanager
def _kms_errors(key_id: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _KMS_INTEGRITY_ERRORS:
            raise IntegrityError(
                "KMS refused to unwrap the data key: it belongs to another object or encryption "
                "context, or was modified"
            ) from None
        raise KeyUnavailable(
            f"KMS key {key_id} is unavailable ({code or 'error'})",
            hint="check the key id, its state and this role's kms permissions",
        ) from None
    except BotoCoreError as error:
        raise KeyUnavailable(
            f"cannot reach KMS for key {key_id} ({type(error).__name__})",
            hint="check the region, endpoint and AWS credentials",
        ) from None


def _as_utc(value: datetime | float) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value, UTC)
