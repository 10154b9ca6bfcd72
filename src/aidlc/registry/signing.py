"""Model signatures in the OpenSSF model-signing format (a Sigstore bundle, EC P-256 key), which
the `model_signing` CLI verifies offline; plus the model digest that names a model's content.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import hashlib
import json
import mmap
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import hashing as ms_hashing
from model_signing import signing as ms_signing
from model_signing import verifying as ms_verifying

from aidlc.core.strictjson import reject_constant, unique_object
from aidlc.errors import IntegrityError, InvalidInput, NotFound, UsageError

# Files are read in 1 MiB chunks: 1 to 16 MiB all hash at the same speed here (SHA-NI bound),
# and the smallest keeps the memory of parallel workers low.
CHUNK_SIZE = 1 << 20
# A bundle names every file with a 64-hex digest: 64 MiB is far beyond any real model.
MAX_SIGNATURE_BYTES = 64 << 20

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


# --- keys --------------------------------------------------------------------------------------


def new_signing_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 signing key.

    >>> new_signing_key().curve.name
    'secp256r1'
    """
    return ec.generate_private_key(ec.SECP256R1())


def private_key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS #8 DER: the caller must seal these bytes before storing them."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(der: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a key written by `private_key_bytes`; IntegrityError if it is not a P-256 key.

    >>> key = new_signing_key()
    >>> load_private_key(private_key_bytes(key)).private_numbers() == key.private_numbers()
    True
    """
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IntegrityError(
            "the model-signing key is not a readable PKCS #8 key",
            hint="restore the workspace key ring from a backup",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise IntegrityError("the model-signing key is not an EC P-256 key")
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The public key (of a private or public key) as PEM SubjectPublicKeyInfo.

    >>> public_key_pem(new_signing_key()).startswith(b"-----BEGIN PUBLIC KEY-----")
    True
    """
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key_pem(pem: bytes) -> ec.EllipticCurvePublicKey:
    """Load an EC P-256 public key from PEM; InvalidInput for anything else.

    >>> key = new_signing_key()
    >>> load_public_key_pem(public_key_pem(key)) == key.public_key()
    True
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput("not a PEM public key", hint="pass the signing-key.pub.pem") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("the public key is not an EC P-256 key")
    return key


def _check_signing_key(key: ec.EllipticCurvePrivateKey) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UsageError("models are signed with an EC P-256 private key")


# --- hashing -----------------------------------------------------------------------------------


def model_files(model_dir: Path) -> list[str]:
    """The relative POSIX paths of every regular file under `model_dir`, sorted.

    Symbolic links and special files are refused with IntegrityError: a signed model is plain
    files only, so a link cannot point a verified name at unverified bytes.
    """
    if model_dir.is_symlink():
        raise IntegrityError(f"{model_dir} is a symbolic link; pass the model directory itself")
    if not model_dir.exists():
        raise NotFound(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise InvalidInput(f"{model_dir} is not a directory")
    found: list[str] = []
    _walk(model_dir, "", found)
    return sorted(found)


def _walk(directory: Path, prefix: str, found: list[str]) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            relative = prefix + entry.name
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInput(
                    f"a file name in {prefix or '.'} is not UTF-8; rename it"
                ) from exc
            if entry.is_symlink():
                raise IntegrityError(
                    f"{relative} is a symbolic link; a model directory holds regular files only"
                )
            if entry.is_dir(follow_symlinks=False):
                _walk(Path(entry.path), relative + "/", found)
            elif entry.is_file(follow_symlinks=False):
                found.append(relative)
            else:
                raise IntegrityError(
                    f"{relative} is not a regular file; a model directory holds regular files only"
                )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    # A page-aligned buffer: malloc maps a fresh 1 MiB bytearray 16 bytes into a page, and
    # the kernel's copy into that ran 40% slower on the AMD EPYC we benchmarked on.
    with (
        mmap.mmap(-1, CHUNK_SIZE) as buffer,
        memoryview(buffer) as view,
        open(path, "rb", buffering=0) as src,
    ):
        while count := src.readinto(view):
            digest.update(view[:count])
    return digest.hexdigest()


def _workers(max_workers: int | None) -> int:
    if max_workers is not None and max_workers < 1:
        raise UsageError("max_workers must be at least 1")
    if max_workers:
        return max_workers
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def hash_model_dir(model_dir: Path, *, max_workers: int | None = None) -> dict[str, str]:
    """Relative POSIX path -> SHA-256 hex of every regular file under `model_dir`, sorted.

    Files are hashed in parallel (`max_workers` threads, default one per CPU).
    Symbolic links and special files are refused with IntegrityError.
    """
    names = model_files(model_dir)
    try:
        with concurrent.futures.ThreadPoolExecutor(_workers(max_workers)) as pool:
            digests = list(pool.map(lambda name: _file_sha256(model_dir / name), names))
    except OSError as exc:
        raise InvalidInput(f"cannot read the model in {model_dir}: {exc.strerror or exc}") from exc
    return dict(zip(names, digests, strict=True))


def model_digest(files: Mapping[str, str]) -> str:
    """SHA-256 hex of the canonical JSON of the sorted {path: sha256} mapping.

    It names a model's content: equal for equal files, whatever the (randomized) signature.

    >>> model_digest({})
    '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
    """
    for name, digest in files.items():
        if not isinstance(name, str) or not _is_sha256_hex(digest):
            raise InvalidInput(f"{name!r}: a model file needs a 64-hex SHA-256 digest")
    canonical = json.dumps(dict(files), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _is_sha256_hex(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _hashing_config(max_workers: int | None) -> ms_hashing.Config:
    # Every file is signed: nothing ignored, not even `.git*` (the library's default ignores
    # them). The `model_signing` CLI then needs `--no-ignore-git-paths` for a model that has them.
    # (model_signing's `Config.__init__` carries no annotations, hence the ignores.)
    return (
        ms_hashing.Config()  # type: ignore[no-untyped-call]
        .set_ignored_paths(paths=[], ignore_git_paths=False)
        .use_file_serialization(
            hashing_algorithm="sha256", chunk_size=CHUNK_SIZE, max_workers=_workers(max_workers)
        )
    )


# --- signing -----------------------------------------------------------------------------------


def sign_model(
    model_dir: Path, private_key: ec.EllipticCurvePrivateKey, *, max_workers: int | None = None
) -> bytes:
    """Sign every file under `model_dir`; return the bundle (the bytes of a `model.sig`).

    The bundle is what `python -m model_signing sign key` writes: SHA-256 per file, files hashed
    in parallel. ECDSA is randomized, so two signatures of one model differ; `model_digest`
    does not. The private key reaches the library only as a PEM file encrypted under a one-time
    password, in a private temporary directory removed before returning.
    """
    _check_signing_key(private_key)
    if not model_files(model_dir):
        raise InvalidInput(f"{model_dir} holds no files; there is nothing to sign")
    hashing_config = _hashing_config(max_workers)
    workdir = Path(tempfile.mkdtemp(prefix="aidlc-sign-"))
    try:
        key_path = workdir / "signing-key.pem"
        # The library hands `password` straight to cryptography, which takes bytes only.
        password = secrets.token_urlsafe(32).encode()
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        config = ms_signing.Config().use_elliptic_key_signer(  # type: ignore[no-untyped-call]
            private_key=key_path, password=cast(Any, password)
        )
        # The signer loaded the key in its constructor: the file has done its job.
        key_path.unlink()
        sig_path = workdir / "model.sig"
        config.set_hashing_config(hashing_config).sign(model_dir, sig_path)
        return sig_path.read_bytes()
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot sign the model in {model_dir}: {exc}") from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- reading bundles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bundle:
    media_type: str
    key_hint: str | None
    payload: bytes
    signature: bytes
    statement: dict[str, Any]


def _object(value: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} is not an object")
    if extra := set(value) - allowed:
        raise InvalidInput(f"{where} has unexpected fields: {', '.join(sorted(extra))}")
    if missing := required - set(value):
        raise InvalidInput(f"{where} lacks {', '.join(sorted(missing))}")
    return value


def _strict_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=unique_object, parse_constant=reject_constant
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not JSON") from exc


def _base64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} is not base64") from exc


def _parse_bundle(data: bytes) -> _Bundle:
    """Parse a bundle strictly: only the fields our signer writes, no repeated keys.

    Strictness matters because we read the signed payload ourselves: a bundle that two
    parsers could read differently (a repeated key, `dsse_envelope` beside `dsseEnvelope`)
    is refused rather than interpreted.
    """
    if not isinstance(data, bytes):
        raise InvalidInput("a signature is bytes")
    if len(data) > MAX_SIGNATURE_BYTES:
        raise InvalidInput(f"the signature is larger than {MAX_SIGNATURE_BYTES >> 20} MiB")
    bundle = _object(
        _strict_json(data, "the signature bundle"),
        "the bundle",
        {"mediaType", "verificationMaterial", "dsseEnvelope"},
        {"mediaType", "verificationMaterial", "dsseEnvelope"},
    )
    if bundle["mediaType"] != BUNDLE_MEDIA_TYPE:
        raise InvalidInput(f"the bundle's media type is not {BUNDLE_MEDIA_TYPE}")
    material = _object(
        bundle["verificationMaterial"],
        "the verification material",
        {"publicKey", "tlogEntries"},
        {"publicKey"},
    )
    if material.get("tlogEntries", []) != []:
        raise InvalidInput("the bundle has transparency-log entries; key signatures have none")
    hint = _object(material["publicKey"], "the public key identifier", {"hint"}, set()).get("hint")
    if hint is not None and not _is_sha256_hex(hint):
        raise InvalidInput("the bundle's public key hint is not a SHA-256 hex digest")
    envelope = _object(
        bundle["dsseEnvelope"],
        "the DSSE envelope",
        {"payload", "payloadType", "signatures"},
        {"payload", "payloadType", "signatures"},
    )
    if envelope["payloadType"] != PAYLOAD_TYPE:
        raise InvalidInput(f"the DSSE payload type is not {PAYLOAD_TYPE}")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise InvalidInput("the DSSE envelope must carry exactly one signature")
    entry = _object(signatures[0], "the DSSE signature", {"sig", "keyid"}, {"sig"})
    payload = _base64(envelope["payload"], "the DSSE payload")
    statement = _object(
        _strict_json(payload, "the signed statement"),
        "the signed statement",
        {"_type", "subject", "predicateType", "predicate"},
        {"_type", "subject", "predicateType", "predicate"},
    )
    return _Bundle(
        media_type=bundle["mediaType"],
        key_hint=hint,
        payload=payload,
        signature=_base64(entry["sig"], "the DSSE signature"),
        statement=statement,
    )


def _resources(statement: Mapping[str, Any]) -> list[Any]:
    predicate = statement["predicate"]
    if not isinstance(predicate, dict) or not isinstance(predicate.get("resources"), list):
        raise InvalidInput("the signed statement lists no resources")
    return list(predicate["resources"])


def signed_files(signature: bytes) -> dict[str, str]:
    """The {path: sha256} a bundle lists, WITHOUT verifying it: for a bundle just made by
    `sign_model`, whose hashing pass this reuses instead of hashing the model again."""
    return _signed_files(_parse_bundle(signature).statement)


def signature_info(signature: bytes) -> dict[str, Any]:
    """What a bundle says about itself, WITHOUT verifying it: for display only.

    Keys: media_type, key_hint (SHA-256 of the signer's public key PEM, as model_signing
    records it), predicate_type, hash_type, files. InvalidInput if it is not a bundle.
    """
    bundle = _parse_bundle(signature)
    predicate = bundle.statement["predicate"]
    serialization_args = predicate.get("serialization") if isinstance(predicate, dict) else None
    hash_type = (
        serialization_args.get("hash_type") if isinstance(serialization_args, dict) else None
    )
    return {
        "media_type": bundle.media_type,
        "key_hint": bundle.key_hint,
        "predicate_type": bundle.statement["predicateType"],
        "hash_type": hash_type,
        "files": len(_resources(bundle.statement)),
    }


# --- verifying ---------------------------------------------------------------------------------


def _pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes the envelope signature covers."""
    kind = PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _signed_files(statement: Mapping[str, Any]) -> dict[str, str]:
    """The {path: sha256} a verified statement lists; only SHA-256 per-file statements pass."""
    if statement["_type"] != STATEMENT_TYPE or statement["predicateType"] != PREDICATE_TYPE:
        raise InvalidInput(f"the signed statement is not a {PREDICATE_TYPE} statement")
    resources = _resources(statement)
    args = statement["predicate"].get("serialization")
    if not isinstance(args, dict) or (args.get("method"), args.get("hash_type")) != (
        "files",
        "sha256",
    ):
        raise InvalidInput("the signature does not hash each file with SHA-256")
    files: dict[str, str] = {}
    for resource in resources:
        item = _object(
            resource,
            "a signed resource",
            {"name", "algorithm", "digest"},
            {"name", "algorithm", "digest"},
        )
        name, digest = item["name"], item["digest"]
        if not isinstance(name, str) or item["algorithm"] != "sha256" or not _is_sha256_hex(digest):
            raise InvalidInput("a signed resource is not a file with a SHA-256 digest")
        if name in files:
            raise InvalidInput(f"the signature lists {name} twice")
        files[name] = digest
    return dict(sorted(files.items()))


def _load_verifying_key(public_key: ec.EllipticCurvePublicKey | bytes) -> ec.EllipticCurvePublicKey:
    if isinstance(public_key, bytes):
        return load_public_key_pem(public_key)
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise UsageError("models are verified with an EC P-256 public key")
    return public_key


def verify_model(
    model_dir: Path,
    signature: bytes,
    public_key: ec.EllipticCurvePublicKey | bytes,
    *,
    max_workers: int | None = None,
) -> dict[str, str]:
    """Verify the model in `model_dir` against a bundle; return its verified {path: sha256}.

    `public_key` is a key or its PEM. Any failure (malformed bundle, another key, a bad
    signature, a changed, added or removed file) raises IntegrityError saying which.
    Nothing is printed.
    """
    key = _load_verifying_key(public_key)
    pem = public_key_pem(key)
    name = model_dir.name
    try:
        bundle = _parse_bundle(signature)
    except InvalidInput as exc:
        raise IntegrityError(f"the signature of {name} is malformed: {exc.message}") from exc
    if bundle.key_hint is None:
        # model_signing prints a warning for these pre-1.0 bundles; aidlc never wrote one.
        raise IntegrityError(
            f"the signature of {name} does not name its public key (an old model_signing format)",
            hint="re-sign the model",
        )
    if bundle.key_hint != hashlib.sha256(pem).hexdigest():
        raise IntegrityError(f"{name} was signed with another key than the one given")
    # We read the file list from the payload ourselves, so we check its signature ourselves
    # too: whatever the library's parser makes of the bundle, what we return is signed.
    try:
        key.verify(bundle.signature, _pae(bundle.payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise IntegrityError(f"the signature of {name} does not verify") from exc
    try:
        expected = _signed_files(bundle.statement)
    except InvalidInput as exc:
        raise IntegrityError(f"the signature of {name}: {exc.message}") from exc
    present = set(model_files(model_dir))
    # Checked here, before hashing, and not left to the library: a signed `ignore_paths` would
    # let it skip files, and this fails fast with a clear list.
    if missing := sorted(set(expected) - present):
        raise IntegrityError(f"{name} lacks signed files: {', '.join(missing[:10])}")
    if extra := sorted(present - set(expected)):
        raise IntegrityError(
            f"{name} has files the signature does not cover: {', '.join(extra[:10])}"
        )
    try:
        _library_verify(model_dir, signature, pem, max_workers)
    except Exception as exc:
        # The library raises ValueError, KeyError, pydantic and cryptography errors alike, and
        # words a hash mismatch as reprs of bytes: on this (rare) path, hash again and name
        # the changed files ourselves.
        changed = [n for n, d in _rehash(model_dir).items() if expected.get(n) != d]
        if changed:
            raise IntegrityError(
                f"{name} does not match its signature: changed since signing: "
                f"{', '.join(changed[:10])}"
            ) from exc
        reason = str(exc)[:300] or type(exc).__name__
        raise IntegrityError(f"{name} does not match its signature: {reason}") from exc
    return expected


def _rehash(model_dir: Path) -> dict[str, str]:
    try:
        return hash_model_dir(model_dir)
    except (IntegrityError, InvalidInput, NotFound):
        return {}


def _library_verify(model_dir: Path, signature: bytes, pem: bytes, max_workers: int | None) -> None:
    """Run model_signing's own verification: key, signature and every file's hash."""
    hashing_config = _hashing_config(max_workers)
    workdir = Path(tempfile.mkdtemp(prefix="aidlc-verify-"))
    try:
        (workdir / "model.sig").write_bytes(signature)
        (workdir / "signing-key.pub.pem").write_bytes(pem)
        ms_verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]
            public_key=workdir / "signing-key.pub.pem"
        ).set_hashing_config(hashing_config).verify(model_dir, workdir / "model.sig")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
