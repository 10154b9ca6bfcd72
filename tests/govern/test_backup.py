"""Backups and restores: encrypted snapshots that rebuild a working workspace, and that refuse to
report success when anything in them was changed."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from aidlc.errors import IntegrityError, PermissionDenied, UsageError
from aidlc.govern import backup
from tests.cli.test_cli import run
from tests.serve.conftest import Served, served, served_template  # noqa: F401

KEYRING = ".aidlc/keys/keyring.json"


@pytest.fixture(scope="module")
def source(served_template: Served, tmp_path_factory: pytest.TempPathFactory) -> Served:  # noqa: F811
    """A private copy of the served workspace: a backup appends to its audit log."""
    root = tmp_path_factory.mktemp("backup-source") / "ws"
    shutil.copytree(served_template.root, root, symlinks=True)
    return Served(root, dict(served_template.tokens))


@pytest.fixture(scope="module")
def snapshot(source: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One snapshot (without keys) of `source`, shared read-only by the tests below."""
    target = tmp_path_factory.mktemp("snapshots") / "snap"
    with source.open("admin") as ws:
        backup.create(ws, target)
    return target


@pytest.fixture
def copy(snapshot: Path, tmp_path: Path) -> Path:
    """A copy of the snapshot a test may tamper with."""
    return Path(shutil.copytree(snapshot, tmp_path / "snap"))


def _restore(snap: Path, into: Path, source: Served) -> backup.RestoreResult:
    return backup.restore(snap, into, token=source.tokens["admin"], keys=source.root / KEYRING)


def _manifest(snap: Path) -> dict:
    return json.loads((snap / "manifest.json").read_text())


def _files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def test_restore_rebuilds_a_workspace_with_the_same_tokens_objects_audit_and_models(
    source: Served, snapshot: Path, tmp_path: Path
) -> None:
    from aidlc.core import objects
    from aidlc.demo import breast_cancer
    from aidlc.registry import versions

    result = _restore(snapshot, tmp_path / "new", source)
    restored = Served(tmp_path / "new", source.tokens)
    manifest = _manifest(snapshot)
    assert result.tree_size == manifest["audit_head"]["tree_size"]
    assert result.objects_verified == manifest["objects"] > 0
    assert result.keys_from == str(source.root / KEYRING)
    for who in ("admin", "steward", "trainer", "inference", "auditor"):
        with restored.open(who) as ws:
            assert ws.principal is not None and ws.principal.name == who
    # Objects read back byte for byte, zone by zone, through each zone's reader.
    for who, zone in (("steward", "raw"), ("steward", "validated"), ("trainer", "models")):
        with source.open(who) as old, restored.open(who) as new:
            listed = objects.list_objects(old, zone)
            assert [o.ref for o in listed] == [o.ref for o in objects.list_objects(new, zone)]
            assert listed
            for o in listed:
                assert objects.get_bytes(new, zone, o.object_id, o.version) == objects.get_bytes(
                    old, zone, o.object_id, o.version
                )
    with restored.open("auditor") as ws:
        verdict = ws.audit.verify()
        assert verdict.ok and verdict.size == manifest["audit_head"]["tree_size"] + 1
        last = ws.audit.events()[-1]
        assert (last.action, last.actor, last.outcome) == ("backup.restore", "admin", "ok")
        assert last.details["objects_verified"] == result.objects_verified
    rows = breast_cancer.frame().drop(["patient_id", "diagnosis"]).head(20)
    with source.open("inference") as old, restored.open("inference") as new:
        assert (
            versions.verify(new, "bc@1").model_digest == versions.verify(old, "bc@1").model_digest
        )
        loaded = versions.load_model(new, "bc@1", require_approved=True)
        assert loaded.predict_proba(rows) == versions.load_model(old, "bc@1").predict_proba(rows)
    with source.open("auditor") as ws:
        created = ws.audit.events(action="backup.create")[-1]
        assert (
            created.details["manifest_sha256"]
            == backup.hashlib.sha256((snapshot / "manifest.json").read_bytes()).hexdigest()
        )
        assert created.details["audit_tree_size"] == manifest["audit_head"]["tree_size"]


def test_snapshot_is_private_and_lists_every_file_with_its_digest(snapshot: Path) -> None:
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o700
    for path in snapshot.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    manifest = _manifest(snapshot)
    listed = {e["path"]: e for e in manifest["files"]}
    on_disk = {p.relative_to(snapshot).as_posix() for p in _files(snapshot)} - {"manifest.json"}
    assert set(listed) == on_disk
    assert {"aidlc.yaml", "database/aidlc.db"} <= on_disk and KEYRING not in on_disk
    assert sum(1 for name in on_disk if name.startswith("objects/")) == manifest["objects"]
    entry = listed["database/aidlc.db"]
    data = (snapshot / "database/aidlc.db").read_bytes()
    assert entry == {"path": "database/aidlc.db", "size": len(data), "sha256": entry["sha256"]}
    assert backup.hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert not (snapshot / "database/aidlc.db-wal").exists()


def test_snapshot_holds_no_plaintext_of_the_ingested_csv(snapshot: Path, tmp_path: Path) -> None:
    from aidlc.demo import breast_cancer

    good, _ = breast_cancer.write_files(tmp_path)
    lines = good.read_text().splitlines()
    needles = [lines[0].encode(), lines[1].encode(), lines[200].encode(), b"P-00042"]
    needles.append(lines[1].split(",")[1].encode() + b"," + lines[1].split(",")[2].encode())
    for path in _files(snapshot):
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)


def test_tampered_object_file_fails_restore_naming_it(
    source: Served, copy: Path, tmp_path: Path
) -> None:
    victim = next(p for p in _files(copy / "objects"))
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 1
    victim.write_bytes(bytes(raw))
    name = victim.relative_to(copy).as_posix()
    with pytest.raises(IntegrityError, match=f"{name}: SHA-256 or size differs"):
        _restore(copy, tmp_path / "new", source)
    assert not (tmp_path / "new").exists()


def test_object_tampered_with_a_matching_manifest_fails_to_decrypt(
    source: Served, copy: Path, tmp_path: Path
) -> None:
    """An attacker who rewrites the manifest's digests still cannot forge ciphertext."""
    manifest = _manifest(copy)
    entry = next(e for e in manifest["files"] if e["path"].startswith("objects/raw/"))
    victim = copy / entry["path"]
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 1
    victim.write_bytes(bytes(raw))
    entry["sha256"] = backup.hashlib.sha256(bytes(raw)).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="signature does not verify"):
        _restore(copy, tmp_path / "new", source)
    _assert_marked_failed(tmp_path / "new")


def test_tampered_database_fails_restore(source: Served, copy: Path, tmp_path: Path) -> None:
    db = copy / "database/aidlc.db"
    with sqlite3.connect(db) as conn:
        # Privilege escalation hidden in a backup: the trainer becomes an admin.
        conn.execute("UPDATE principal_roles SET role = 'admin' WHERE role = 'trainer'")
    conn.close()
    with pytest.raises(
        IntegrityError, match=re.escape("database/aidlc.db: SHA-256 or size differs")
    ):
        _restore(copy, tmp_path / "a", source)
    # Also rewriting the manifest's digest: the signature over the manifest catches it.
    manifest = _manifest(copy)
    entry = next(e for e in manifest["files"] if e["path"] == "database/aidlc.db")
    entry["size"] = db.stat().st_size
    entry["sha256"] = backup.hashlib.sha256(db.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="manifest's signature does not verify"):
        _restore(copy, tmp_path / "b", source)
    _assert_marked_failed(tmp_path / "b")


def test_edited_audit_event_in_the_database_fails_restore(
    source: Served, copy: Path, tmp_path: Path
) -> None:
    db = copy / "database/aidlc.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    conn.close()
    manifest = _manifest(copy)
    entry = next(e for e in manifest["files"] if e["path"] == "database/aidlc.db")
    entry["size"], entry["sha256"] = (
        db.stat().st_size,
        backup.hashlib.sha256(db.read_bytes()).hexdigest(),
    )
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="audit log does not verify: event 3 was edited"):
        _restore(copy, tmp_path / "new", source)
    _assert_marked_failed(tmp_path / "new")


def test_tampered_manifest_head_fails_restore(source: Served, copy: Path, tmp_path: Path) -> None:
    manifest = _manifest(copy)
    manifest["audit_head"]["tree_size"] -= 1
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="signature does not verify"):
        _restore(copy, tmp_path / "new", source)
    _assert_marked_failed(tmp_path / "new")


def test_unlisted_and_missing_files_fail_before_anything_is_written(
    source: Served, copy: Path, tmp_path: Path
) -> None:
    (copy / "objects" / "extra").write_bytes(b"x")
    (copy / "aidlc.yaml").unlink()
    with pytest.raises(IntegrityError) as caught:
        _restore(copy, tmp_path / "new", source)
    assert "aidlc.yaml: missing" in caught.value.message
    assert "objects/extra: not listed in the manifest" in caught.value.message
    assert not (tmp_path / "new").exists()


def test_restore_without_key_material_says_which_is_needed(
    source: Served, snapshot: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="holds no key ring") as caught:
        backup.restore(snapshot, tmp_path / "new", token=source.tokens["admin"])
    assert "--keys FILE" in str(caught.value) and "AIDLC_PASSPHRASE" in str(caught.value)


def test_restore_needs_an_admin_token_of_the_backed_up_workspace(
    source: Served, snapshot: Path, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied, match=re.escape("may not backup.restore")):
        backup.restore(
            snapshot, tmp_path / "new", token=source.tokens["trainer"], keys=source.root / KEYRING
        )
    _assert_marked_failed(tmp_path / "new")


def test_backup_needs_admin_and_an_empty_target(source: Served, tmp_path: Path) -> None:
    with (
        source.open("trainer") as ws,
        pytest.raises(PermissionDenied, match=re.escape("may not backup.create")),
    ):
        backup.create(ws, tmp_path / "snap")
    assert not (tmp_path / "snap").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with source.open("admin") as ws, pytest.raises(UsageError, match="is not an empty folder"):
        backup.create(ws, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


@pytest.mark.slow  # six CLI processes
def test_cli_backup_with_keys_then_restore(source: Served, tmp_path: Path) -> None:
    admin = source.tokens["admin"]
    made = run(
        "backup",
        str(tmp_path / "snap"),
        "--include-keys",
        "--json",
        token=admin,
        workspace=source.root,
    )
    assert made.returncode == 0, made.stderr
    assert "key ring in this backup has no passphrase" in made.stderr
    out = json.loads(made.stdout)
    assert out["include_keys"] is True and out["objects"] > 0
    ring = tmp_path / "snap" / "keys" / "keyring.json"
    assert ring.read_bytes() == (source.root / KEYRING).read_bytes()
    assert stat.S_IMODE(ring.stat().st_mode) == 0o600

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    refused = run("backup", str(full), token=admin, workspace=source.root)
    assert refused.returncode == 2 and "is not an empty folder" in refused.stderr
    refused = run("restore", str(tmp_path / "snap"), "--into", str(full), token=admin)
    assert refused.returncode == 2 and "is not an empty folder" in refused.stderr

    done = run(
        "restore", str(tmp_path / "snap"), "--into", str(tmp_path / "new"), "--json", token=admin
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["keys_from"] == "backup" and result["objects_verified"] == out["objects"]
    listed = run("user", "list", "--json", token=admin, workspace=tmp_path / "new")
    assert listed.returncode == 0, listed.stderr
    assert "steward" in {p["name"] for p in json.loads(listed.stdout)}

    victim = next(p for p in _files(tmp_path / "snap" / "objects"))
    victim.write_bytes(victim.read_bytes()[:-1])
    failed = run("restore", str(tmp_path / "snap"), "--into", str(tmp_path / "again"), token=admin)
    assert failed.returncode == 1
    assert victim.relative_to(tmp_path / "snap").as_posix() in failed.stderr


def test_a_crafted_config_cannot_write_outside_the_restored_folder(
    source: Served, copy: Path, tmp_path: Path
) -> None:
    config = copy / "aidlc.yaml"
    text = config.read_text()
    assert "path: .aidlc/objects" in text
    config.write_text(text.replace("path: .aidlc/objects", "path: ../escape"))
    manifest = _manifest(copy)
    entry = next(e for e in manifest["files"] if e["path"] == "aidlc.yaml")
    entry["size"] = config.stat().st_size
    entry["sha256"] = backup.hashlib.sha256(config.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="names a path outside the restored workspace"):
        _restore(copy, tmp_path / "new", source)
    assert not (tmp_path / "escape").exists()
    _assert_marked_failed(tmp_path / "new")


def _assert_marked_failed(root: Path) -> None:
    assert (root / "RESTORE-FAILED.txt").read_text().startswith("aidlc restore failed: ")
    assert not (root / "aidlc.yaml").exists()
    assert (root / "aidlc.yaml.restore-failed").is_file()
