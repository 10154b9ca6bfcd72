"""The key ring at its edges: files written by earlier releases, every way a ring file or a
wrapped key can be malformed, and the limits on passphrase key derivation."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidlc.core import keys
from aidlc.core.keys import FileKeyProvider, KmsKeyProvider
from aidlc.errors import IntegrityError, KeyUnavailable, UsageError

CONTEXT = {"workspace": "w1", "object": "raw/abc", "version": "1"}
DATA_KEY = bytes(range(32, 64))

# A key ring and a key sealed with a passphrase, and a data key wrapped under each, as this
# format has written them since its first release: data at rest must stay readable.
PLAIN_RING = {
    "format": "aidlc-keyring/1",
    "current": "k1",
    "versions": [{"id": "k1", "created_at": "2026-01-01T00:00:00+00:00"}],
    "material": {"k1": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
}
PLAIN_WRAPPED = bytes.fromhex(
    "01026b31b75e7d5528c47c808c517d1c0972c63f0711570edb91805c2a7d24713e7f460f6fe0f5b8be21e9f1b26e"
    "b28df0a3999ed000c60a12a435d9ee2682fe"
)
SEALED_RING = {
    "format": "aidlc-keyring/1",
    "current": "k1",
    "versions": [{"id": "k1", "created_at": "2026-12-07T18:00:24.476942+00:00"}],
    "sealed_material": {
        "kdf": "scrypt",
        "salt": "EvYHzOi8hMF86vKRgRfuYQ==",
        "n": 32768,
        "r": 8,
        "p": 1,
        "nonce": "maII8C2MwjoStJ1/",
        "ciphertext": "7YqU7LmQLkEaXz/86H/E8Lv6c64HVhIU8toeWyDhhY6HDHR8c3mlFOSUs8FndlnzKfSuPsaAtFOw4Gj"
        "NOYB1innOLkSvkA==",
    },
}
SEALED_WRAPPED = bytes.fromhex(
    "01026b319969d9ab6909741e9707817b047ca923163d27a3720b91e5fb8a6e2621a52e19e2fac7e20a0c0a6b74"
    "0c796f3994b9068e53c453ac9f7e96cda0804b"
)


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "keyring.json"
    path.parent.mkdir(mode=0o700)
    return path


def write_ring(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    os.chmod(path, 0o600)
    return path


def edited(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(PLAIN_RING)), **changes}


# --- compatibility ---------------------------------------------------------------------------


def test_a_key_ring_and_wrapped_key_from_the_first_release_still_unwrap(ring_path: Path) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    assert ring.unwrap(PLAIN_WRAPPED, CONTEXT) == DATA_KEY
    assert ring.rewrap(PLAIN_WRAPPED, CONTEXT) != PLAIN_WRAPPED


def test_a_sealed_key_ring_from_the_first_release_still_opens_with_its_passphrase(
    ring_path: Path,
) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, SEALED_RING), passphrase="pw")
    assert ring.unwrap(SEALED_WRAPPED, CONTEXT) == DATA_KEY


def test_a_sealed_ring_from_the_first_release_rotates_and_reopens_with_its_passphrase(
    ring_path: Path,
) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, SEALED_RING), passphrase="pw")
    assert ring.rotate() == "k2"
    sealed = json.loads(ring_path.read_text())["sealed_material"]
    assert (sealed["n"], sealed["r"], sealed["p"]) == (32768, 8, 1)
    reopened = FileKeyProvider.open(ring_path, passphrase="pw")
    assert reopened.unwrap(SEALED_WRAPPED, CONTEXT) == DATA_KEY


def test_a_new_wrapped_key_names_its_format_and_key_version(ring_path: Path) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    key, wrapped = ring.generate_data_key(CONTEXT)
    assert len(key) == 32 and key != DATA_KEY
    assert wrapped[:4] == b"\x01\x02k1"
    assert len(wrapped) == len(PLAIN_WRAPPED)


def test_a_key_version_id_of_up_to_255_bytes_wraps_and_unwraps(ring_path: Path) -> None:
    long_id = "k" + "9" * 254
    document = edited(
        current=long_id,
        versions=[{"id": long_id, "created_at": "2026-01-01T00:00:00+00:00"}],
        material={long_id: PLAIN_RING["material"]["k1"]},
    )
    ring = FileKeyProvider.open(write_ring(ring_path, document))
    key, wrapped = ring.generate_data_key(CONTEXT)
    assert wrapped[:2] == bytes([1, 255])
    assert ring.unwrap(wrapped, CONTEXT) == key


def test_a_provider_without_its_current_key_version_refuses_to_wrap(tmp_path: Path) -> None:
    ring = FileKeyProvider(tmp_path / "keyring.json", current="k2", versions=[], seal=None)
    with pytest.raises(KeyUnavailable, match=r"has no current key version$"):
        ring.generate_data_key(CONTEXT)


def test_a_provider_unwraps_with_the_versions_it_holds_without_rereading_its_file(
    ring_path: Path,
) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    ring_path.unlink()
    assert ring.unwrap(PLAIN_WRAPPED, CONTEXT) == DATA_KEY


def test_a_wrapped_key_under_another_context_says_why_it_fails(ring_path: Path) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    with pytest.raises(IntegrityError) as caught:
        ring.unwrap(PLAIN_WRAPPED, {**CONTEXT, "version": "2"})
    assert caught.value.message == (
        "the wrapped data key does not verify under this encryption context: "
        "it belongs to another object or was modified"
    )


# --- malformed wrapped keys and contexts -----------------------------------------------------


@pytest.mark.parametrize(
    "wrapped",
    [
        b"",
        b"\x01",
        b"\x02" + PLAIN_WRAPPED[1:],
        PLAIN_WRAPPED[:-1],
        PLAIN_WRAPPED + b"\x00",
        b"\x01\x02\xff\xfe" + PLAIN_WRAPPED[4:],
    ],
    ids=["empty", "version-only", "other-version", "short", "long", "id-not-utf8"],
)
def test_a_malformed_wrapped_key_is_an_integrity_error(ring_path: Path, wrapped: bytes) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    with pytest.raises(
        IntegrityError, match=r"^the wrapped data key is malformed or was made by another provider"
    ):
        ring.unwrap(wrapped, CONTEXT)


def test_a_data_key_wrapped_by_an_unknown_version_names_it(ring_path: Path) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    unknown = b"\x01\x02k9" + PLAIN_WRAPPED[4:]
    with pytest.raises(KeyUnavailable, match=r"key version 'k9', which is not in the key ring"):
        ring.unwrap(unknown, CONTEXT)


@pytest.mark.parametrize("context", [{**CONTEXT, "version": 1}, {1: "raw/abc"}])
def test_an_encryption_context_must_map_strings_to_strings(
    ring_path: Path, context: dict[Any, Any]
) -> None:
    ring = FileKeyProvider.open(write_ring(ring_path, PLAIN_RING))
    with pytest.raises(UsageError, match=r"^an encryption context maps strings to strings"):
        ring.generate_data_key(context)
    with pytest.raises(UsageError, match=r"^an encryption context maps strings to strings"):
        ring.unwrap(PLAIN_WRAPPED, context)


# --- malformed key ring files ----------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {k: v for k, v in PLAIN_RING.items() if k != "current"},
        edited(current="k2"),
        edited(versions=[{"id": "k1"}]),
        edited(versions=[{"id": "k1", "created_at": "yesterday"}]),
        edited(versions=[PLAIN_RING["versions"][0], PLAIN_RING["versions"][0]]),
        edited(material={"k1": "not base64!"}),
        edited(material={}),
        edited(
            current="x1",
            versions=[{"id": "x1", "created_at": "2026-01-01T00:00:00+00:00"}],
            material={"x1": PLAIN_RING["material"]["k1"]},
        ),
        edited(
            current="k",
            versions=[{"id": "k", "created_at": "2026-01-01T00:00:00+00:00"}],
            material={"k": PLAIN_RING["material"]["k1"]},
        ),
    ],
    ids=[
        "no-current",
        "current-unknown",
        "no-created-at",
        "bad-created-at",
        "duplicate-version",
        "material-not-base64",
        "material-missing",
        "id-not-k-number",
        "id-without-number",
    ],
)
def test_a_key_ring_that_does_not_hold_together_is_corrupt(
    ring_path: Path, document: dict[str, Any]
) -> None:
    with pytest.raises(KeyUnavailable, match="is corrupt") as caught:
        FileKeyProvider.open(write_ring(ring_path, document))
    assert caught.value.hint == "restore it"


def test_a_file_of_another_format_is_named_as_not_a_key_ring(ring_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match=r"is not an aidlc key ring \(aidlc-keyring/1\)"):
        FileKeyProvider.open(write_ring(ring_path, edited(format="aidlc-keyring/2")))


@pytest.mark.parametrize("content", [b"\xff\xfe", b"[1, 2]"], ids=["not-utf8", "not-an-object"])
def test_a_key_ring_that_is_not_a_json_object_is_corrupt(ring_path: Path, content: bytes) -> None:
    ring_path.write_bytes(content)
    os.chmod(ring_path, 0o600)
    with pytest.raises(KeyUnavailable, match="is corrupt"):
        FileKeyProvider.open(ring_path)


def test_no_more_than_one_mib_of_a_key_ring_is_read(ring_path: Path) -> None:
    text = json.dumps(PLAIN_RING)
    ring_path.write_text(" " * ((1 << 20) - len(text) + 1) + text)
    os.chmod(ring_path, 0o600)
    with pytest.raises(KeyUnavailable, match="is corrupt"):
        FileKeyProvider.open(ring_path)
    ring_path.write_text(" " * ((1 << 20) - len(text)) + text)
    assert FileKeyProvider.open(ring_path).unwrap(PLAIN_WRAPPED, CONTEXT) == DATA_KEY


@pytest.mark.parametrize("unsafe", [0o601, 0o610, 0o602, 0o620, 0o700, 0o400])
def test_only_owner_permission_bits_are_allowed(ring_path: Path, unsafe: int) -> None:
    write_ring(ring_path, PLAIN_RING)
    os.chmod(ring_path, unsafe)
    if unsafe & 0o077:
        with pytest.raises(KeyUnavailable, match=rf"other users \(mode {unsafe:04o}\)"):
            FileKeyProvider.open(ring_path)
    else:
        assert FileKeyProvider.open(ring_path).unwrap(PLAIN_WRAPPED, CONTEXT) == DATA_KEY


def test_a_key_ring_path_that_is_not_a_file_is_refused(ring_path: Path) -> None:
    ring_path.mkdir(mode=0o700)
    with pytest.raises(KeyUnavailable, match="not a regular file"):
        FileKeyProvider.open(ring_path)


def test_a_key_ring_this_user_may_not_read_gives_a_clear_error(
    ring_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_ring(ring_path, PLAIN_RING)
    real_open = os.open

    def denied(path: Any, *args: Any, **kwargs: Any) -> int:
        if Path(path) == ring_path:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(keys.os, "open", denied)
    with pytest.raises(KeyUnavailable, match="is not readable by this user"):
        FileKeyProvider.open(ring_path)


# --- passphrases -----------------------------------------------------------------------------


def test_an_empty_passphrase_is_refused(ring_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^the key ring passphrase must not be empty"):
        FileKeyProvider.create(ring_path, passphrase="")
    assert not ring_path.exists()


def sealed_with(**params: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(SEALED_RING))
    document["sealed_material"].update(params)
    return document


@pytest.mark.parametrize(
    "params",
    [
        {"kdf": "pbkdf2"},
        {"n": 1 << 14},
        {"n": 1 << 21},
        {"n": 3 << 14},
        {"r": 7},
        {"r": 33},
        {"p": 0},
        {"p": 17},
    ],
    ids=[
        "not-scrypt",
        "n-low",
        "n-high",
        "n-not-power-of-two",
        "r-low",
        "r-high",
        "p-low",
        "p-high",
    ],
)
def test_passphrase_derivation_outside_the_safe_range_is_refused(
    ring_path: Path, params: dict[str, Any]
) -> None:
    with pytest.raises(KeyUnavailable, match="unsupported or too weak") as caught:
        FileKeyProvider.open(write_ring(ring_path, sealed_with(**params)), passphrase="pw")
    assert caught.value.hint == "use scrypt with n >= 32768, r >= 8"
    assert str(ring_path) in caught.value.message


@pytest.mark.parametrize(
    "params", [{"n": 1 << 20}, {"r": 32}, {"p": 16}], ids=["n-max", "r-max", "p-max"]
)
def test_the_strongest_allowed_derivation_is_accepted(
    ring_path: Path, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deriving with these costs up to 1 GiB: a stand-in derivation shows the bounds decision.
    # The material was sealed under other parameters, so acceptance shows as the seal failing
    # to open, where a refusal would say "too weak".
    derived = []
    monkeypatch.setattr(keys, "_scrypt", lambda *args: derived.append(args[2:]) or bytes(32))
    with pytest.raises(KeyUnavailable, match=r"wrong passphrase .* or the file was modified"):
        FileKeyProvider.open(write_ring(ring_path, sealed_with(**params)), passphrase="pw")
    expected = {"n": 1 << 15, "r": 8, "p": 1, **params}
    assert derived == [(expected["n"], expected["r"], expected["p"])]


def test_an_edited_sealed_ciphertext_is_detected(ring_path: Path) -> None:
    document = sealed_with()
    sealed = document["sealed_material"]
    sealed["ciphertext"] = "A" + sealed["ciphertext"][1:]
    with pytest.raises(KeyUnavailable, match="or the file was modified") as caught:
        FileKeyProvider.open(write_ring(ring_path, document), passphrase="pw")
    assert caught.value.hint == "check AIDLC_PASSPHRASE"
    assert str(ring_path) in caught.value.message


def test_a_sealed_ring_opened_without_a_passphrase_says_how_to_give_one(ring_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="none was given") as caught:
        FileKeyProvider.open(write_ring(ring_path, SEALED_RING))
    assert caught.value.hint == "set AIDLC_PASSPHRASE"


# --- AWS KMS (moto server) -------------------------------------------------------------------


@pytest.mark.aws
def test_kms_refuses_a_data_key_wrapped_under_another_kms_key(
    aws_client: Callable[[str], Any], kms_key: str
) -> None:
    client = aws_client("kms")
    other = KmsKeyProvider(client.create_key()["KeyMetadata"]["KeyId"], client=client)
    _, foreign = other.generate_data_key(CONTEXT)
    ours = KmsKeyProvider(kms_key, client=client)
    # AWS answers IncorrectKeyException (an IntegrityError), moto AccessDeniedException
    # (KeyUnavailable); either way the foreign data key is not handed out. (moto does not
    # check the source key of ReEncrypt, so rewrap cannot be shown the same way here.)
    with pytest.raises((IntegrityError, KeyUnavailable)):
        ours.unwrap(foreign, CONTEXT)


@pytest.mark.aws
def test_every_kms_call_on_an_unknown_key_names_that_key(
    aws_client: Callable[[str], Any], kms_key: str
) -> None:
    client = aws_client("kms")
    _, wrapped = KmsKeyProvider(kms_key, client=client).generate_data_key(CONTEXT)
    missing_id = "11111111-2222-3333-4444-555555555555"
    missing = KmsKeyProvider(missing_id, client=client)
    for call in (
        lambda: missing.generate_data_key(CONTEXT),
        lambda: missing.unwrap(wrapped, CONTEXT),
        lambda: missing.rewrap(wrapped, CONTEXT),
    ):
        with pytest.raises(KeyUnavailable, match=f"KMS key {missing_id} is unavailable"):
            call()
