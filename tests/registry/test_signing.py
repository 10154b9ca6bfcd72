"""OpenSSF model signatures: our bundles verify with the model_signing CLI, and every kind of
tampering with the model or the bundle is refused with IntegrityError."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from model_signing import hashing as ms_hashing
from model_signing import signing as ms_signing
from model_signing._signing import sign_ec_key

from aidlc.errors import IntegrityError, InvalidInput, NotFound
from aidlc.registry import signing

FILES = {
    "model.skops": b"\x00skops-bytes" * 1000,
    "preprocess.json": b'{"columns": ["a", "b"]}',
    "meta/info.txt": b"hello\n",
}


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return signing.new_signing_key()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "churn-v1"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def expected_files() -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(FILES.items())}


def cli_verify(tmp_path: Path, model_dir: Path, bundle: bytes, key) -> subprocess.CompletedProcess:
    sig, pub = tmp_path / "model.sig", tmp_path / "signing-key.pub.pem"
    sig.write_bytes(bundle)
    pub.write_bytes(signing.public_key_pem(key))
    return subprocess.run(
        [sys.executable, "-m", "model_signing", "verify", "key"]
        + ["--signature", str(sig), "--public_key", str(pub), str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def library_bundle(tmp_path: Path, model_dir: Path, key, hashing_config) -> bytes:
    """A bundle made by model_signing itself with our key, for configurations aidlc never uses."""
    pem = tmp_path / "raw-key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sig = tmp_path / "lib.sig"
    ms_signing.Config().use_elliptic_key_signer(private_key=pem).set_hashing_config(
        hashing_config
    ).sign(model_dir, sig)
    return sig.read_bytes()


def reencode(bundle: bytes, edit) -> bytes:
    """The bundle with its decoded statement changed by `edit`, the old signature kept."""
    doc = json.loads(bundle)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    edit(statement)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(doc).encode()


# --- the happy path ----------------------------------------------------------------------------


def test_sign_then_verify_returns_the_hashed_files(model_dir: Path, key, capsys) -> None:
    files = signing.hash_model_dir(model_dir)
    assert files == expected_files()
    assert list(files) == ["meta/info.txt", "model.skops", "preprocess.json"]

    bundle = signing.sign_model(model_dir, key)
    assert signing.verify_model(model_dir, bundle, key.public_key()) == files
    assert signing.verify_model(model_dir, bundle, signing.public_key_pem(key)) == files
    assert capsys.readouterr().out == ""


def test_the_openssf_cli_verifies_our_signature_and_catches_a_changed_byte(
    tmp_path: Path, model_dir: Path, key
) -> None:
    bundle = signing.sign_model(model_dir, key)
    ok = cli_verify(tmp_path, model_dir, bundle, key)
    assert ok.returncode == 0, ok.stderr
    assert "Verification succeeded" in ok.stdout

    data = bytearray((model_dir / "model.skops").read_bytes())
    data[500] ^= 0x01
    (model_dir / "model.skops").write_bytes(bytes(data))
    bad = cli_verify(tmp_path, model_dir, bundle, key)
    assert bad.returncode == 1
    assert "Hash mismatch for" in bad.stderr and "model.skops" in bad.stderr


def test_two_signatures_differ_but_name_the_same_content(model_dir: Path, key) -> None:
    first, second = signing.sign_model(model_dir, key), signing.sign_model(model_dir, key)
    assert first != second  # ECDSA is randomized
    one = signing.verify_model(model_dir, first, key.public_key())
    two = signing.verify_model(model_dir, second, key.public_key())
    assert one == two == expected_files()
    assert signing.model_digest(one) == signing.model_digest(two)
    assert signing.model_digest(one) == signing.model_digest(signing.hash_model_dir(model_dir))


def test_signature_info_reads_the_bundle_without_verifying(model_dir: Path, key) -> None:
    info = signing.signature_info(signing.sign_model(model_dir, key))
    assert info == {
        "media_type": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "key_hint": hashlib.sha256(signing.public_key_pem(key)).hexdigest(),
        "predicate_type": "https://model_signing/signature/v1.0",
        "hash_type": "sha256",
        "files": 3,
    }
    with pytest.raises(InvalidInput, match="not JSON"):
        signing.signature_info(b"\xff junk")
    with pytest.raises(InvalidInput, match="media type"):
        signing.signature_info(
            b'{"mediaType": "x", "verificationMaterial": {}, "dsseEnvelope": {}}'
        )


def test_signing_leaves_no_key_file_and_hands_the_library_an_encrypted_one(
    tmp_path: Path, model_dir: Path, key, monkeypatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen: list[tuple[bytes, int, int]] = []
    original = sign_ec_key.Signer.__init__

    def spy(self, private_key_path: Path, password=None) -> None:
        seen.append(
            (
                private_key_path.read_bytes(),
                stat.S_IMODE(private_key_path.stat().st_mode),
                stat.S_IMODE(private_key_path.parent.stat().st_mode),
            )
        )
        original(self, private_key_path, password)

    monkeypatch.setattr(sign_ec_key.Signer, "__init__", spy)
    bundle = signing.sign_model(model_dir, key)
    signing.verify_model(model_dir, bundle, key.public_key())

    [(pem, file_mode, dir_mode)] = seen
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (file_mode, dir_mode) == (0o600, 0o700)
    raw = signing.private_key_bytes(key)
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    assert raw not in pem and secret not in pem
    assert list(scratch.iterdir()) == []  # the sign and verify work dirs are gone


def test_a_read_only_model_directory_signs_and_verifies(model_dir: Path, key) -> None:
    paths = sorted(model_dir.rglob("*"), reverse=True) + [model_dir]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        bundle = signing.sign_model(model_dir, key)
        assert signing.verify_model(model_dir, bundle, key.public_key()) == expected_files()
    finally:
        for path in reversed(paths):
            path.chmod(0o755 if path.is_dir() else 0o644)


# --- tampering ---------------------------------------------------------------------------------


def test_a_changed_file_fails(model_dir: Path, key) -> None:
    bundle = signing.sign_model(model_dir, key)
    (model_dir / "preprocess.json").write_bytes(b'{"columns": ["a", "c"]}')
    with pytest.raises(IntegrityError) as caught:
        signing.verify_model(model_dir, bundle, key.public_key())
    assert caught.value.message == (
        "churn-v1 does not match its signature: changed since signing: preprocess.json"
    )


def test_an_added_file_fails(model_dir: Path, key) -> None:
    bundle = signing.sign_model(model_dir, key)
    (model_dir / "meta" / "extra.py").write_bytes(b"import os")
    with pytest.raises(IntegrityError, match=r"does not cover: meta/extra\.py"):
        signing.verify_model(model_dir, bundle, key.public_key())


def test_an_added_git_file_fails_too(model_dir: Path, key) -> None:
    # model_signing ignores `.git*` by default; aidlc signs and checks every file.
    bundle = signing.sign_model(model_dir, key)
    (model_dir / ".gitattributes").write_bytes(b"* filter=evil")
    with pytest.raises(IntegrityError, match=r"does not cover: \.gitattributes"):
        signing.verify_model(model_dir, bundle, key.public_key())


def test_a_removed_file_fails(model_dir: Path, key) -> None:
    bundle = signing.sign_model(model_dir, key)
    (model_dir / "meta" / "info.txt").unlink()
    with pytest.raises(IntegrityError, match=r"lacks signed files: meta/info\.txt"):
        signing.verify_model(model_dir, bundle, key.public_key())


def test_another_key_fails(model_dir: Path, key) -> None:
    bundle = signing.sign_model(model_dir, key)
    other = signing.new_signing_key()
    with pytest.raises(IntegrityError, match="signed with another key"):
        signing.verify_model(model_dir, bundle, other.public_key())


def test_a_bundle_whose_hint_names_the_other_key_still_fails(model_dir: Path, key) -> None:
    other = signing.new_signing_key()
    bundle = json.loads(signing.sign_model(model_dir, key))
    bundle["verificationMaterial"]["publicKey"]["hint"] = hashlib.sha256(
        signing.public_key_pem(other)
    ).hexdigest()
    with pytest.raises(IntegrityError, match="does not verify"):
        signing.verify_model(model_dir, json.dumps(bundle).encode(), other.public_key())


def test_a_bundle_of_another_model_fails(tmp_path: Path, model_dir: Path, key) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for name in FILES:
        (other / name).parent.mkdir(parents=True, exist_ok=True)
        (other / name).write_bytes(b"different " + name.encode())
    bundle = signing.sign_model(other, key)
    with pytest.raises(
        IntegrityError,
        match=r"changed since signing: meta/info\.txt, model\.skops, preprocess\.json",
    ):
        signing.verify_model(model_dir, bundle, key.public_key())


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b[: len(b) // 2], "malformed: the signature bundle is not JSON"),
        (lambda b: b"", "malformed: the signature bundle is not JSON"),
        (
            lambda b: b.replace(b'"sig":"M', b'"sig":"!'),
            "malformed: the DSSE signature is not base64",
        ),
        (lambda b: b.replace(b'"sig":"ME', b'"sig":"MF'), "does not verify"),
        (lambda b: b.replace(b'{"mediaType"', b'{"mediaType":"x","mediaType"'), "repeats a key"),
        (lambda b: b.replace(b'"dsseEnvelope"', b'"dsse_envelope"'), "unexpected fields"),
        (lambda b: b.replace(b"in-toto+json", b"in-toto+jsonx"), "payload type is not"),
        (lambda b: b"[]", "the bundle is not an object"),
    ],
)
def test_a_truncated_or_garbled_bundle_fails(model_dir: Path, key, mangle, reason, capsys) -> None:
    bundle = mangle(signing.sign_model(model_dir, key))
    with pytest.raises(IntegrityError, match=reason):
        signing.verify_model(model_dir, bundle, key.public_key())
    assert capsys.readouterr().out == ""


def test_an_edited_statement_fails_its_signature(model_dir: Path, key) -> None:
    bundle = signing.sign_model(model_dir, key)

    def drop_a_file(statement: dict) -> None:
        statement["predicate"]["resources"].pop()

    with pytest.raises(IntegrityError, match="does not verify"):
        signing.verify_model(model_dir, reencode(bundle, drop_a_file), key.public_key())


def test_an_old_bundle_without_a_key_hint_fails_without_printing(
    model_dir: Path, key, capsys
) -> None:
    bundle = json.loads(signing.sign_model(model_dir, key))
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(IntegrityError, match="does not name its public key"):
        signing.verify_model(model_dir, json.dumps(bundle).encode(), key.public_key())
    assert capsys.readouterr().out == ""


def test_a_signed_ignore_list_cannot_hide_a_file(tmp_path: Path, model_dir: Path, key) -> None:
    # model_signing itself would accept this bundle: the signer asked it to skip `payload.bin`.
    (model_dir / "payload.bin").write_bytes(b"unsigned code")
    config = ms_hashing.Config().set_ignored_paths(paths=["payload.bin"], ignore_git_paths=False)
    bundle = library_bundle(tmp_path, model_dir, key, config)
    with pytest.raises(IntegrityError, match=r"does not cover: payload\.bin"):
        signing.verify_model(model_dir, bundle, key.public_key())


def test_a_bundle_hashed_with_another_algorithm_fails(tmp_path: Path, model_dir: Path, key) -> None:
    config = ms_hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
    bundle = library_bundle(
        tmp_path, model_dir, key, config.use_file_serialization(hashing_algorithm="blake2")
    )
    with pytest.raises(IntegrityError, match="does not hash each file with SHA-256"):
        signing.verify_model(model_dir, bundle, key.public_key())


# --- the model directory -----------------------------------------------------------------------


def test_symlinks_and_special_files_are_refused(tmp_path: Path, model_dir: Path, key) -> None:
    bundle = signing.sign_model(model_dir, key)
    (tmp_path / "outside").write_bytes(b"x")
    (model_dir / "link").symlink_to(tmp_path / "outside")
    for call in (
        lambda: signing.hash_model_dir(model_dir),
        lambda: signing.sign_model(model_dir, key),
        lambda: signing.verify_model(model_dir, bundle, key.public_key()),
    ):
        with pytest.raises(IntegrityError, match="link is a symbolic link"):
            call()
    (model_dir / "link").unlink()
    os.mkfifo(model_dir / "meta" / "pipe")
    with pytest.raises(IntegrityError, match="meta/pipe is not a regular file"):
        signing.hash_model_dir(model_dir)


def test_the_model_directory_must_exist_and_hold_files(tmp_path: Path, key) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        signing.hash_model_dir(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="is not a directory"):
        signing.hash_model_dir(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert signing.hash_model_dir(tmp_path / "empty") == {}
    with pytest.raises(InvalidInput, match="nothing to sign"):
        signing.sign_model(tmp_path / "empty", key)


def test_model_digest_is_canonical_json_of_the_sorted_files() -> None:
    files = {"b.bin": "1" * 64, "a.bin": "2" * 64}
    canonical = b'{"a.bin":"' + b"2" * 64 + b'","b.bin":"' + b"1" * 64 + b'"}'
    assert signing.model_digest(files) == hashlib.sha256(canonical).hexdigest()
    assert signing.model_digest(dict(reversed(files.items()))) == signing.model_digest(files)
    with pytest.raises(InvalidInput, match="64-hex SHA-256"):
        signing.model_digest({"a.bin": "XYZ"})


# --- keys --------------------------------------------------------------------------------------


def test_private_key_bytes_round_trip_and_junk_is_refused(key) -> None:
    der = signing.private_key_bytes(key)
    assert signing.load_private_key(der).private_numbers() == key.private_numbers()
    with pytest.raises(IntegrityError, match="not a readable PKCS #8 key"):
        signing.load_private_key(b"junk")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(IntegrityError, match="not an EC P-256 key"):
        signing.load_private_key(signing.private_key_bytes(p384))


def test_public_keys_must_be_p256_pem(key) -> None:
    pem = signing.public_key_pem(key)
    assert pem == signing.public_key_pem(key.public_key())
    assert signing.load_public_key_pem(pem) == key.public_key()
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        signing.load_public_key_pem(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    ed = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidInput, match="not an EC P-256 key"):
        signing.load_public_key_pem(ed)
    with pytest.raises(InvalidInput, match="not an EC P-256 key"):
        signing.load_public_key_pem(signing.public_key_pem(ec.generate_private_key(ec.SECP384R1())))
