"""What the signature reader refuses, and the exact reason it gives: fast checks on one bundle,
edited field by field (the statement is read unverified by `signed_files`, then verified)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aidlc.errors import IntegrityError, InvalidInput, UsageError
from aidlc.registry import signing

DIGEST = "ab" * 32


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return signing.new_signing_key()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, key) -> tuple[Path, bytes]:
    model_dir = tmp_path_factory.mktemp("refusals") / "model"
    model_dir.mkdir()
    (model_dir / "a.bin").write_bytes(b"a")
    (model_dir / "b.bin").write_bytes(b"b")
    return model_dir, signing.sign_model(model_dir, key)


def edit_bundle(bundle: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(bundle)
    edit(doc)
    return json.dumps(doc).encode()


def edit_statement(bundle: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    def change(doc: dict[str, Any]) -> None:
        statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        edit(statement)
        doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    return edit_bundle(bundle, change)


def reason(call: Callable[[], object], error: type[Exception] = InvalidInput) -> str:
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


def test_the_unverified_reader_returns_the_listed_files(signed) -> None:
    _, bundle = signed
    assert signing.signed_files(bundle) == {
        "a.bin": hashlib.sha256(b"a").hexdigest(),
        "b.bin": hashlib.sha256(b"b").hexdigest(),
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.update(predicateType="https://example.com/other"),
            "the signed statement is not a https://model_signing/signature/v1.0 statement",
        ),
        (
            lambda s: s.update(_type="https://example.com/Statement"),
            "the signed statement is not a https://model_signing/signature/v1.0 statement",
        ),
        (
            lambda s: s["predicate"].update(resources="a.bin"),
            "the signed statement lists no resources",
        ),
        (lambda s: s.update(predicate=[]), "the signed statement lists no resources"),
        (
            lambda s: s["predicate"]["resources"].append("c.bin"),
            "a signed resource is not an object",
        ),
        (
            lambda s: s["predicate"]["resources"].append(
                {"name": 5, "algorithm": "sha256", "digest": DIGEST}
            ),
            "a signed resource is not a file with a SHA-256 digest",
        ),
        (
            lambda s: s["predicate"]["resources"].append(
                {"name": "c.bin", "algorithm": "sha384", "digest": DIGEST}
            ),
            "a signed resource is not a file with a SHA-256 digest",
        ),
        (
            lambda s: s["predicate"]["resources"].append(
                {"name": "c.bin", "algorithm": "sha256", "digest": DIGEST.upper()}
            ),
            "a signed resource is not a file with a SHA-256 digest",
        ),
        (
            lambda s: s["predicate"]["resources"].append(
                {"name": "a.bin", "algorithm": "sha256", "digest": DIGEST}
            ),
            "the signature lists a.bin twice",
        ),
        (
            lambda s: s["predicate"]["resources"].append(
                {"name": "c.bin", "algorithm": "sha256", "digest": DIGEST, "x": 1, "mode": 7}
            ),
            "a signed resource has unexpected fields: mode, x",
        ),
        (
            lambda s: s["predicate"]["resources"].append({"name": "c.bin"}),
            "a signed resource lacks algorithm, digest",
        ),
        (
            lambda s: s["predicate"]["serialization"].update(hash_type="blake2"),
            "the signature does not hash each file with SHA-256",
        ),
    ],
)
def test_a_statement_that_is_not_a_sha256_file_list_is_refused(signed, edit, message) -> None:
    _, bundle = signed
    assert reason(lambda: signing.signed_files(edit_statement(bundle, edit))) == message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["dsseEnvelope"].update(payload=5),
            "the DSSE payload is not a string",
        ),
        (
            lambda d: d["dsseEnvelope"].update(payload="!!!!" + d["dsseEnvelope"]["payload"]),
            "the DSSE payload is not base64",
        ),
        (
            lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="\n" + "A" * 8),
            "the DSSE signature is not base64",
        ),
        (
            lambda d: d["dsseEnvelope"].update(payload=base64.b64encode(b"{").decode()),
            "the signed statement is not JSON",
        ),
        (
            lambda d: d["dsseEnvelope"].update(payload=base64.b64encode(b"[]").decode()),
            "the signed statement is not an object",
        ),
    ],
)
def test_an_envelope_that_is_not_strict_base64_is_refused(signed, edit, message) -> None:
    _, bundle = signed
    assert reason(lambda: signing.signed_files(edit_bundle(bundle, edit))) == message


def test_model_digest_is_utf8_canonical_json_whatever_the_order() -> None:
    files = {"é.bin": "cd" * 32, "z.bin": DIGEST}
    canonical = '{"z.bin":"' + DIGEST + '","é.bin":"' + "cd" * 32 + '"}'
    assert signing.model_digest(files) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize("digest", ["", "ab" * 31 + "a", "X" * 64, DIGEST.upper(), 5])
def test_model_digest_takes_only_lowercase_64_hex_digests(digest) -> None:
    assert reason(lambda: signing.model_digest({"a.bin": digest})) == (
        "'a.bin': a model file needs a 64-hex SHA-256 digest"
    )


def test_a_key_that_is_not_p256_is_refused_with_its_reason(signed) -> None:
    model_dir, bundle = signed
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert reason(
        lambda: signing.verify_model(model_dir, bundle, p384.public_key()), UsageError
    ) == ("models are verified with an EC P-256 public key")
    assert reason(lambda: signing.load_public_key_pem(b"junk")) == (
        "not a PEM public key (pass the signing-key.pub.pem)"
    )
    assert reason(lambda: signing.load_public_key_pem(signing.public_key_pem(p384))) == (
        "the public key is not an EC P-256 key"
    )
    assert reason(lambda: signing.load_private_key(b"junk"), IntegrityError) == (
        "the model-signing key is not a readable PKCS #8 key "
        "(restore the workspace key ring from a backup)"
    )
    assert reason(
        lambda: signing.load_private_key(signing.private_key_bytes(p384)), IntegrityError
    ) == ("the model-signing key is not an EC P-256 key")


def test_a_signature_is_bytes_of_at_most_64_mib() -> None:
    assert reason(lambda: signing.signed_files("{}")) == "a signature is bytes"  # type: ignore[arg-type]
    limit = signing.MAX_SIGNATURE_BYTES
    assert reason(lambda: signing.signed_files(b" " * limit)) == (
        "the signature bundle is not JSON"
    )
    assert reason(lambda: signing.signed_files(b" " * (limit + 1))) == (
        "the signature is larger than 64 MiB"
    )


def test_a_bundle_with_a_non_json_constant_is_refused(signed) -> None:
    _, bundle = signed
    nan = bundle.replace(b'"tlogEntries": []', b'"tlogEntries": NaN').replace(
        b'"tlogEntries":[]', b'"tlogEntries":NaN'
    )
    assert nan != bundle
    assert reason(lambda: signing.signed_files(nan)) == "the signature bundle: NaN is not JSON"


@pytest.fixture(scope="module")
def eleven(tmp_path_factory: pytest.TempPathFactory, key) -> tuple[Path, bytes]:
    model_dir = tmp_path_factory.mktemp("eleven") / "model"
    model_dir.mkdir()
    for i in range(11):
        (model_dir / f"f{i:02}.bin").write_bytes(b"%d" % i)
    return model_dir, signing.sign_model(model_dir, key)


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    copy.mkdir()
    for path in model_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


FIRST_TEN = ", ".join(f"f{i:02}.bin" for i in range(10))


def test_missing_added_and_changed_files_are_named_ten_at_most(eleven, key, tmp_path) -> None:
    model_dir, bundle = eleven
    public = key.public_key()
    copy = _copy(model_dir, tmp_path)
    for path in copy.iterdir():
        path.write_bytes(b"changed " + path.read_bytes())
    assert reason(lambda: signing.verify_model(copy, bundle, public), IntegrityError) == (
        f"model does not match its signature: changed since signing: {FIRST_TEN}"
    )
    for path in list(copy.iterdir()):
        path.rename(copy / ("new-" + path.name))
    assert reason(lambda: signing.verify_model(copy, bundle, public), IntegrityError) == (
        f"model lacks signed files: {FIRST_TEN}"
    )
    (copy / "f00.bin").write_bytes(b"0")
    for i in range(1, 11):
        (copy / f"f{i:02}.bin").write_bytes(b"%d" % i)
    extra = ", ".join(f"new-f{i:02}.bin" for i in range(10))
    assert reason(lambda: signing.verify_model(copy, bundle, public), IntegrityError) == (
        f"model has files the signature does not cover: {extra}"
    )


@pytest.mark.parametrize(
    ("error", "said"), [(ValueError("x" * 400), "x" * 300), (KeyError(), "KeyError")]
)
def test_a_library_refusal_with_unchanged_files_keeps_its_reason(
    signed, key, monkeypatch, error, said
) -> None:
    # model_signing can refuse for reasons of its own (a schema, a key error) on files whose
    # digests all match: the reason is passed on, cut to 300 characters, or named by its type.
    model_dir, bundle = signed

    def refuse(*args: object) -> None:
        raise error

    monkeypatch.setattr(signing, "_library_verify", refuse)
    message = reason(
        lambda: signing.verify_model(model_dir, bundle, key.public_key()), IntegrityError
    )
    assert message == f"model does not match its signature: {said}"


def test_an_old_bundle_is_told_to_be_re_signed(signed, key) -> None:
    model_dir, bundle = signed
    old = edit_bundle(bundle, lambda d: d["verificationMaterial"]["publicKey"].pop("hint"))
    assert reason(
        lambda: signing.verify_model(model_dir, old, key.public_key()), IntegrityError
    ) == (
        "the signature of model does not name its public key (an old model_signing format) "
        "(re-sign the model)"
    )


def _material(d: dict[str, Any]) -> dict[str, Any]:
    return d["verificationMaterial"]


def _envelope(d: dict[str, Any]) -> dict[str, Any]:
    return d["dsseEnvelope"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(verificationMaterial=[]), "the verification material is not an object"),
        (
            lambda d: _material(d).update(tlogEntries=[{"logIndex": "1"}]),
            "the bundle has transparency-log entries; key signatures have none",
        ),
        (
            lambda d: _material(d).update(publicKey="key"),
            "the public key identifier is not an object",
        ),
        (
            lambda d: _material(d)["publicKey"].update(hint="my key"),
            "the bundle's public key hint is not a SHA-256 hex digest",
        ),
        (lambda d: d.update(dsseEnvelope=[]), "the DSSE envelope is not an object"),
        (
            lambda d: _envelope(d).update(signatures="s"),
            "the DSSE envelope must carry exactly one signature",
        ),
        (
            lambda d: _envelope(d).update(signatures=[]),
            "the DSSE envelope must carry exactly one signature",
        ),
        (
            lambda d: _envelope(d)["signatures"].append(_envelope(d)["signatures"][0]),
            "the DSSE envelope must carry exactly one signature",
        ),
        (lambda d: _envelope(d).update(signatures=["s"]), "the DSSE signature is not an object"),
    ],
)
def test_a_bundle_outside_what_aidlc_signs_is_refused(signed, edit, message) -> None:
    _, bundle = signed
    assert reason(lambda: signing.signed_files(edit_bundle(bundle, edit))) == message


def test_a_bundle_without_a_transparency_log_list_is_read(signed) -> None:
    _, bundle = signed
    bare = edit_bundle(bundle, lambda d: _material(d).pop("tlogEntries", None))
    assert signing.signed_files(bare) == signing.signed_files(bundle)


def test_only_a_p256_private_key_signs(signed) -> None:
    model_dir, _ = signed
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert reason(lambda: signing.sign_model(model_dir, p384), UsageError) == (
        "models are signed with an EC P-256 private key"
    )
    public = signing.new_signing_key().public_key()
    assert reason(lambda: signing.sign_model(model_dir, public), UsageError) == (  # type: ignore[arg-type]
        "models are signed with an EC P-256 private key"
    )


def test_a_model_directory_holds_utf8_named_regular_files_only(tmp_path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "meta").mkdir(parents=True)
    (tmp_path / "link").symlink_to(model_dir)
    assert reason(lambda: signing.model_files(tmp_path / "link"), IntegrityError) == (
        f"{tmp_path / 'link'} is a symbolic link; pass the model directory itself"
    )
    (model_dir / "meta" / "data.bin").symlink_to(tmp_path)
    assert reason(lambda: signing.model_files(model_dir), IntegrityError) == (
        "meta/data.bin is a symbolic link; a model directory holds regular files only"
    )
    (model_dir / "meta" / "data.bin").unlink()
    os.mkfifo(model_dir / "pipe")
    assert reason(lambda: signing.model_files(model_dir), IntegrityError) == (
        "pipe is not a regular file; a model directory holds regular files only"
    )
    (model_dir / "pipe").unlink()
    with open(os.path.join(os.fsencode(model_dir / "meta"), b"\xff.bin"), "wb"):
        pass
    assert reason(lambda: signing.model_files(model_dir)) == (
        "a file name in meta/ is not UTF-8; rename it"
    )
    os.rename(
        os.path.join(os.fsencode(model_dir / "meta"), b"\xff.bin"),
        os.path.join(os.fsencode(model_dir), b"\xff.bin"),
    )
    assert reason(lambda: signing.model_files(model_dir)) == (
        "a file name in . is not UTF-8; rename it"
    )
