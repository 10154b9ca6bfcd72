"""Invariant 1, end to end: encrypted objects in a workspace, their integrity, rotation, shredding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aidlc.core import objects
from aidlc.errors import Conflict, IntegrityError, KeyUnavailable, NotFound

SAMPLE = b"patient_id,diagnosis\nP-000417,hypertension-stage-2\n" * 2000


def _files(root: Path):
    return [p for p in (root / ".aidlc").rglob("*") if p.is_file()]


def _ciphertext_path(ws, zone: str, object_id: str, version: int = 1) -> Path:
    from sqlalchemy import select

    from aidlc.core.meta import StoredObject

    with ws.db.reading() as s:
        key = s.execute(
            select(StoredObject.storage_key).where(
                StoredObject.zone == zone,
                StoredObject.object_id == object_id,
                StoredObject.version == version,
            )
        ).scalar_one()
    return ws.root / ".aidlc" / "objects" / key


def test_no_plaintext_sample_appears_anywhere_under_the_state_folder(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "patients.csv", SAMPLE)
    steward.close()
    for path in _files(local_env.root):
        data = path.read_bytes()
        assert b"P-000417" not in data, path
        assert b"hypertension" not in data, path
        assert b"patients.csv" not in data or path.suffix in {".db", ".db-wal"}, path


def test_round_trip_and_immutability(env):
    steward = env.open("steward")
    info = objects.put_bytes(steward, "raw", "patients.csv", SAMPLE)
    assert (info.version, info.size) == (1, len(SAMPLE))
    assert objects.get_bytes(steward, "raw", "patients.csv") == SAMPLE
    with pytest.raises(Conflict):
        objects.put_bytes(steward, "raw", "patients.csv", b"other", version=1)
    assert objects.put_bytes(steward, "raw", "patients.csv", b"v2").version == 2
    assert objects.get_bytes(steward, "raw", "patients.csv", 1) == SAMPLE


@pytest.mark.parametrize("offset", [0, 10, 40, 1000, -17, -1])
def test_a_flipped_byte_anywhere_fails_with_integrity_error(local_env, offset):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "patients.csv", SAMPLE)
    path = _ciphertext_path(steward, "raw", "patients.csv")
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    os.chmod(path, 0o600)
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        objects.get_bytes(steward, "raw", "patients.csv")


def test_a_truncated_object_fails_with_integrity_error(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "patients.csv", SAMPLE)
    path = _ciphertext_path(steward, "raw", "patients.csv")
    data = path.read_bytes()
    os.chmod(path, 0o600)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError):
        objects.get_bytes(steward, "raw", "patients.csv")


def test_swapped_ciphertexts_fail_with_integrity_error(local_env):
    steward = local_env.open("steward")
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "b.csv", SAMPLE[::-1])
    pa = _ciphertext_path(steward, "raw", "a.csv")
    pb = _ciphertext_path(steward, "raw", "b.csv")
    a, b = pa.read_bytes(), pb.read_bytes()
    for p in (pa, pb):
        os.chmod(p, 0o600)
    pa.write_bytes(b)
    pb.write_bytes(a)
    with pytest.raises(IntegrityError):
        objects.get_bytes(steward, "raw", "a.csv")
    with pytest.raises(IntegrityError):
        objects.get_bytes(steward, "raw", "b.csv")
    admin = local_env.open("admin")
    verdict = objects.verify_all(admin)
    assert not verdict.ok and len(verdict.problems) == 2


def test_the_associated_data_binds_each_ciphertext_to_its_object_and_version(
    local_env, monkeypatch
):
    """With one data key for every object (a key provider that reuses keys), only the associated
    data (workspace, zone, object id, version) tells a swapped ciphertext from the right one:
    the first segment must fail to authenticate, before any plaintext is handed out."""
    steward = local_env.open("steward")
    fixed = bytes(range(32))
    generate, unwrap = steward.keys.generate_data_key, steward.keys.unwrap

    def same_key(context):
        data_key, wrapped = generate(context)
        return (fixed, wrapped) if context.get("zone") == "raw" else (data_key, wrapped)

    def unwrap_same(wrapped, context):
        return fixed if context.get("zone") == "raw" else unwrap(wrapped, context)

    monkeypatch.setattr(steward.keys, "generate_data_key", same_key)
    monkeypatch.setattr(steward.keys, "unwrap", unwrap_same)
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE)
    objects.put_bytes(steward, "raw", "b.csv", SAMPLE[::-1])
    objects.put_bytes(steward, "raw", "a.csv", SAMPLE[::-1])  # version 2
    assert objects.get_bytes(steward, "raw", "b.csv") == SAMPLE[::-1]  # same key, reads fine

    for target, source in ((("b.csv", 1), ("a.csv", 1)), (("a.csv", 1), ("a.csv", 2))):
        destination = _ciphertext_path(steward, "raw", *target)
        original = destination.read_bytes()
        os.chmod(destination, 0o600)
        destination.write_bytes(_ciphertext_path(steward, "raw", *source).read_bytes())
        handed_out = []
        with (
            pytest.raises(IntegrityError, match="segment 0"),
            objects.open_object(steward, "raw", target[0], target[1]) as chunks,
        ):
            handed_out.extend(chunks)
        assert handed_out == []
        destination.write_bytes(original)


def test_delete_destroys_the_key_then_the_bytes(env):
    steward = env.open("steward")
    objects.put_bytes(steward, "raw", "gone.csv", SAMPLE)
    objects.delete(steward, "raw", "gone.csv", 1, reason="test")
    with pytest.raises(NotFound, match="deleted"):
        objects.get_bytes(steward, "raw", "gone.csv")
    assert objects.list_objects(steward, "raw")[0].deleted_at is not None
    assert env.open("auditor").audit.events(action="object.delete")[0].details["crypto_shredded"]


def test_key_rotation_keeps_objects_before_and_after_readable(env):
    steward = env.open("steward")
    objects.put_bytes(steward, "raw", "before.csv", b"written before rotation")
    admin = env.open("admin")
    old_key = admin.keys.current_key_id()
    result = objects.rotate_keys(admin)
    assert result["rewrapped"] == 1 and result["key_id"] != old_key
    steward = env.open("steward")  # a new process would open the rotated key ring
    objects.put_bytes(steward, "raw", "after.csv", b"written after rotation")
    assert objects.get_bytes(steward, "raw", "before.csv") == b"written before rotation"
    assert objects.get_bytes(steward, "raw", "after.csv") == b"written after rotation"
    assert {o.key_id for o in objects.list_objects(steward, "raw")} == {result["key_id"]}
    assert env.open("auditor").audit.verify().ok
    assert len(admin.keys.key_versions()) == 2


def test_passphrase_protected_key_ring(tmp_path, monkeypatch):
    from aidlc.core.workspace import Workspace

    monkeypatch.setenv("AIDLC_PASSPHRASE", "correct horse battery staple")
    ws, token = Workspace.init(tmp_path / "ws")
    ws.close()
    keyring = (tmp_path / "ws" / ".aidlc" / "keys" / "keyring.json").read_bytes()
    assert b"correct horse" not in keyring
    Workspace.open(tmp_path / "ws", token=token).close()
    monkeypatch.setenv("AIDLC_PASSPHRASE", "wrong")
    with pytest.raises(KeyUnavailable, match="passphrase"):
        Workspace.open(tmp_path / "ws", token=token).audit.verify()
    monkeypatch.delenv("AIDLC_PASSPHRASE")
    with pytest.raises(KeyUnavailable, match="passphrase"):
        Workspace.open(tmp_path / "ws", token=token).audit.verify()


def test_a_world_readable_key_file_is_refused(local_env):
    keyring = local_env.root / ".aidlc" / "keys" / "keyring.json"
    os.chmod(keyring, 0o644)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        local_env.open("steward").keys.current_key_id()


WRITER = textwrap.dedent(
    """
    import sys, time
    from aidlc.core import objects
    from aidlc.core.workspace import Workspace

    class Slow:
        def __init__(self):
            self.sent = 0
        def read(self, n=-1):
            if self.sent == 0:
                print("writing", flush=True)
            if self.sent >= 512 << 20:
                return b""
            time.sleep(0.002)
            n = 1 << 20 if n is None or n < 0 else min(n, 1 << 20)
            self.sent += n
            return b"\\x42" * n
        def readinto(self, buf):
            data = self.read(len(buf))
            buf[: len(data)] = data
            return len(data)

    ws = Workspace.open(sys.argv[1], token=sys.argv[2])
    objects.put(ws, "raw", "big.bin", Slow())
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_while_writing_leaves_no_partial_object(local_env, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(local_env.root), local_env.tokens["steward"]],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    steward = local_env.open("steward")
    assert objects.list_objects(steward, "raw") == []
    admin = local_env.open("admin")
    assert list(admin.store.keys()) == []
    assert objects.verify_all(admin).ok
    assert local_env.open("auditor").audit.verify().ok
    objects.put_bytes(steward, "raw", "big.bin", b"after the crash")
    assert objects.get_bytes(steward, "raw", "big.bin") == b"after the crash"
