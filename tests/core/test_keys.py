"""Key providers: the key ring file (permissions, passphrase, rotation) and AWS KMS via moto."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aidlc.core.keys import FileKeyProvider, KeyProvider, KmsKeyProvider, kms_client
from aidlc.errors import Conflict, IntegrityError, KeyUnavailable

CONTEXT = {"workspace": "w1", "object": "raw/abc", "version": "1"}
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def ring(ring_path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(ring_path)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- key ring file ---------------------------------------------------------------------------


def test_file_provider_round_trips_a_data_key(ring: FileKeyProvider) -> None:
    key, wrapped = ring.generate_data_key(CONTEXT)
    assert len(key) == 32
    assert key not in wrapped
    assert ring.unwrap(wrapped, CONTEXT) == key
    assert FileKeyProvider.open(ring.path).unwrap(wrapped, CONTEXT) == key


def test_new_key_ring_file_is_private(ring: FileKeyProvider, ring_path: Path) -> None:
    assert ring.path == ring_path
    assert ring.kind == "file"
    assert mode(ring_path) == 0o600
    assert mode(ring_path.parent) == 0o700
    document = json.loads(ring_path.read_text())
    assert document["format"] == "aidlc-keyring/1"
    assert [v["id"] for v in document["versions"]] == ["k1"]
    # Nothing but the key ring (no temp files) is left next to it.
    assert sorted(p.name for p in ring_path.parent.iterdir()) == ["keyring.json"]


def test_key_ring_is_private_even_under_a_permissive_umask(ring_path: Path) -> None:
    old = os.umask(0)
    try:
        FileKeyProvider.create(ring_path)
    finally:
        os.umask(old)
    assert mode(ring_path) == 0o600
    assert mode(ring_path.parent) == 0o700


def test_creating_over_an_existing_key_ring_is_refused(ring: FileKeyProvider) -> None:
    before = ring.path.read_bytes()
    with pytest.raises(Conflict):
        FileKeyProvider.create(ring.path)
    assert ring.path.read_bytes() == before


@pytest.mark.parametrize("unsafe", [0o644, 0o640, 0o604, 0o660])
def test_a_key_ring_readable_by_others_is_refused(ring: FileKeyProvider, unsafe: int) -> None:
    os.chmod(ring.path, unsafe)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        FileKeyProvider.open(ring.path)


def test_a_missing_key_ring_gives_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(KeyUnavailable, match="no key ring at") as caught:
        FileKeyProvider.open(missing)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"format": "aidlc-keyring/1"}', b'{"format": "other/1"}'],
)
def test_a_corrupt_key_ring_is_refused(ring_path: Path, content: bytes) -> None:
    ring_path.parent.mkdir(mode=0o700)
    ring_path.write_bytes(content)
    os.chmod(ring_path, 0o600)
    with pytest.raises(KeyUnavailable):
        FileKeyProvider.open(ring_path)


def test_a_key_ring_with_truncated_key_material_is_refused(ring: FileKeyProvider) -> None:
    document = json.loads(ring.path.read_text())
    document["material"]["k1"] = "AAAA"
    ring.path.write_text(json.dumps(document))
    with pytest.raises(KeyUnavailable, match="corrupt"):
        FileKeyProvider.open(ring.path)


def test_wrong_context_fails_to_unwrap(ring: FileKeyProvider) -> None:
    _, wrapped = ring.generate_data_key(CONTEXT)
    for other in [
        {**CONTEXT, "version": "2"},
        {**CONTEXT, "object": "raw/xyz"},
        {k: v for k, v in CONTEXT.items() if k != "version"},
        {**CONTEXT, "extra": "x"},
    ]:
        with pytest.raises(IntegrityError):
            ring.unwrap(wrapped, other)


def test_context_order_does_not_matter(ring: FileKeyProvider) -> None:
    key, wrapped = ring.generate_data_key(CONTEXT)
    assert ring.unwrap(wrapped, dict(reversed(list(CONTEXT.items())))) == key


def test_a_tampered_wrapped_key_fails_to_unwrap(ring: FileKeyProvider) -> None:
    _, wrapped = ring.generate_data_key(CONTEXT)
    for position in range(len(wrapped)):
        tampered = bytearray(wrapped)
        tampered[position] ^= 1
        with pytest.raises((IntegrityError, KeyUnavailable)):
            ring.unwrap(bytes(tampered), CONTEXT)


def test_a_key_from_another_ring_fails_to_unwrap(ring: FileKeyProvider, tmp_path: Path) -> None:
    other = FileKeyProvider.create(tmp_path / "other" / "keyring.json")
    _, wrapped = other.generate_data_key(CONTEXT)
    with pytest.raises(IntegrityError):
        ring.unwrap(wrapped, CONTEXT)


# --- passphrase ------------------------------------------------------------------------------


def test_passphrase_protected_ring_round_trips(ring_path: Path) -> None:
    ring = FileKeyProvider.create(ring_path, passphrase="correct horse battery staple")
    key, wrapped = ring.generate_data_key(CONTEXT)
    reopened = FileKeyProvider.open(ring_path, passphrase="correct horse battery staple")
    assert reopened.unwrap(wrapped, CONTEXT) == key
    document = json.loads(ring_path.read_text())
    assert "material" not in document
    sealed = document["sealed_material"]
    assert sealed["kdf"] == "scrypt"
    assert sealed["n"] >= 2**15 and sealed["r"] >= 8 and sealed["p"] >= 1


def test_wrong_passphrase_gives_a_clear_error(ring_path: Path) -> None:
    FileKeyProvider.create(ring_path, passphrase="right")
    with pytest.raises(KeyUnavailable, match="wrong passphrase") as caught:
        FileKeyProvider.open(ring_path, passphrase="wrong")
    assert "right" not in str(caught.value) and "wrong" in str(caught.value)


def test_missing_passphrase_gives_a_clear_error(ring_path: Path) -> None:
    FileKeyProvider.create(ring_path, passphrase="right")
    with pytest.raises(KeyUnavailable, match=r"wrong passphrase.*none was given"):
        FileKeyProvider.open(ring_path)


def test_editing_the_clear_part_of_a_sealed_ring_is_detected(ring_path: Path) -> None:
    ring = FileKeyProvider.create(ring_path, passphrase="pw")
    ring.rotate()
    document = json.loads(ring_path.read_text())
    document["current"] = "k1"  # try to roll new data keys back onto the old version
    ring_path.write_text(json.dumps(document))
    with pytest.raises(KeyUnavailable):
        FileKeyProvider.open(ring_path, passphrase="pw")


def test_weakened_scrypt_parameters_are_refused(ring_path: Path) -> None:
    FileKeyProvider.create(ring_path, passphrase="pw")
    document = json.loads(ring_path.read_text())
    document["sealed_material"]["n"] = 2**10
    ring_path.write_text(json.dumps(document))
    with pytest.raises(KeyUnavailable, match="too weak"):
        FileKeyProvider.open(ring_path, passphrase="pw")


# --- rotation --------------------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_rotation_keeps_old_data_keys_readable_and_wraps_new_ones_with_the_new_version(
    ring_path: Path, passphrase: str | None
) -> None:
    ring = FileKeyProvider.create(ring_path, passphrase=passphrase)
    old_key, old_wrapped = ring.generate_data_key(CONTEXT)
    assert ring.current_key_id() == "k1"

    assert ring.rotate() == "k2"
    assert ring.current_key_id() == "k2"
    assert mode(ring_path) == 0o600
    new_key, new_wrapped = ring.generate_data_key(CONTEXT)

    reopened = FileKeyProvider.open(ring_path, passphrase=passphrase)
    assert reopened.current_key_id() == "k2"
    assert reopened.unwrap(old_wrapped, CONTEXT) == old_key
    assert reopened.unwrap(new_wrapped, CONTEXT) == new_key
    versions = reopened.key_versions()
    assert [(v.id, v.current) for v in versions] == [("k1", False), ("k2", True)]
    assert versions[0].created_at <= versions[1].created_at
    assert versions[0].created_at.tzinfo is not None


def test_rewrap_moves_an_old_key_to_the_current_version_without_changing_it(
    ring: FileKeyProvider,
) -> None:
    key, wrapped = ring.generate_data_key(CONTEXT)
    ring.rotate()
    rewrapped = ring.rewrap(wrapped, CONTEXT)
    assert rewrapped != wrapped
    assert ring.unwrap(rewrapped, CONTEXT) == key
    # The rewrapped blob names k2: it still unwraps once k1's material is gone.
    document = json.loads(ring.path.read_text())
    document["material"].pop("k1")
    document["versions"] = [v for v in document["versions"] if v["id"] != "k1"]
    ring.path.write_text(json.dumps(document))
    only_k2 = FileKeyProvider.open(ring.path)
    assert only_k2.unwrap(rewrapped, CONTEXT) == key
    with pytest.raises(KeyUnavailable, match="k1"):
        only_k2.unwrap(wrapped, CONTEXT)


def test_rewrap_with_the_wrong_context_fails(ring: FileKeyProvider) -> None:
    _, wrapped = ring.generate_data_key(CONTEXT)
    ring.rotate()
    with pytest.raises(IntegrityError):
        ring.rewrap(wrapped, {**CONTEXT, "version": "9"})


def test_a_provider_opened_before_a_rotation_unwraps_keys_made_after_it(
    ring: FileKeyProvider,
) -> None:
    stale = FileKeyProvider.open(ring.path)
    ring.rotate()
    key, wrapped = ring.generate_data_key(CONTEXT)
    assert stale.unwrap(wrapped, CONTEXT) == key


def test_a_stale_provider_rotating_keeps_the_other_process_version(
    ring: FileKeyProvider,
) -> None:
    stale = FileKeyProvider.open(ring.path)
    assert ring.rotate() == "k2"
    key, wrapped = ring.generate_data_key(CONTEXT)
    assert stale.rotate() == "k3"
    assert FileKeyProvider.open(ring.path).unwrap(wrapped, CONTEXT) == key


_ROTATE_FIVE_TIMES = """
import sys
from aidlc.core.keys import FileKeyProvider
ring = FileKeyProvider.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(5):
    ring.rotate()
"""


def test_concurrent_rotations_from_two_processes_lose_no_version(ring: FileKeyProvider) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _ROTATE_FIVE_TIMES, str(ring.path)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    # Both have loaded the ring (at k1) before either rotates.
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == b"ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        worker.stdin.close()
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    ids = [v.id for v in FileKeyProvider.open(ring.path).key_versions()]
    assert ids == [f"k{n}" for n in range(1, 12)]


def test_key_ring_holds_no_key_in_its_repr(ring: FileKeyProvider) -> None:
    key, _ = ring.generate_data_key(CONTEXT)
    assert key.hex() not in repr(ring)
    assert "k1" in repr(ring)


# --- AWS KMS (moto server) -------------------------------------------------------------------


@pytest.fixture
def kms(aws_client: Callable[[str], Any], kms_key: str) -> KmsKeyProvider:
    return KmsKeyProvider(kms_key, client=aws_client("kms"))


@pytest.mark.aws
def test_kms_provider_round_trips_and_rewraps_a_data_key(kms: KmsKeyProvider) -> None:
    provider: KeyProvider = kms
    key, wrapped = provider.generate_data_key(CONTEXT)
    assert len(key) == 32
    assert provider.unwrap(wrapped, CONTEXT) == key
    rewrapped = provider.rewrap(wrapped, CONTEXT)
    assert provider.unwrap(rewrapped, CONTEXT) == key
    assert provider.kind == "kms"


@pytest.mark.aws
def test_kms_wrong_encryption_context_is_an_integrity_error(kms: KmsKeyProvider) -> None:
    _, wrapped = kms.generate_data_key(CONTEXT)
    with pytest.raises(IntegrityError):
        kms.unwrap(wrapped, {**CONTEXT, "version": "2"})
    with pytest.raises(IntegrityError):
        kms.rewrap(wrapped, {**CONTEXT, "object": "raw/xyz"})


@pytest.mark.aws
def test_kms_tampered_ciphertext_is_an_integrity_error(kms: KmsKeyProvider) -> None:
    _, wrapped = kms.generate_data_key(CONTEXT)
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError):
        kms.unwrap(bytes(tampered), CONTEXT)


@pytest.mark.aws
def test_kms_rotation_adds_a_version_and_old_keys_still_unwrap(kms: KmsKeyProvider) -> None:
    key, wrapped = kms.generate_data_key(CONTEXT)
    first = kms.current_key_id()
    assert [v.id for v in kms.key_versions()] == [first]

    new_id = kms.rotate()
    assert new_id != first
    assert kms.current_key_id() == new_id
    versions = kms.key_versions()
    assert [(v.id, v.current) for v in versions] == [(first, False), (new_id, True)]
    assert kms.unwrap(wrapped, CONTEXT) == key
    assert kms.unwrap(kms.rewrap(wrapped, CONTEXT), CONTEXT) == key


@pytest.mark.aws
def test_kms_unknown_key_is_key_unavailable(aws_client: Callable[[str], Any]) -> None:
    missing = KmsKeyProvider("11111111-2222-3333-4444-555555555555", client=aws_client("kms"))
    with pytest.raises(KeyUnavailable, match="unavailable"):
        missing.generate_data_key(CONTEXT)


def test_kms_unreachable_endpoint_is_key_unavailable() -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(KeyUnavailable, match="cannot reach KMS"):
        KmsKeyProvider("some-key", client=client).generate_data_key(CONTEXT)


def test_kms_client_helper_targets_the_given_region_and_endpoint() -> None:
    client = kms_client("eu-west-1", "http://127.0.0.1:4566")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
