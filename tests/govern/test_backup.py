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


# ---------------------------------------------------------------------------------------------
# PostgreSQL metadata and S3 objects: logical dumps (aidlc-backup/2) and restore targets


def _new_pg_url(pg_server: str) -> str:
    """A fresh, empty database on the throwaway server (pg_url's recipe, for any scope)."""
    import secrets

    import psycopg

    name = "t_" + secrets.token_hex(6)
    plain = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{pg_server}/{name}"


def _write_config(path: Path, **sections: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"version": 1, "workspace": "ignored", **sections}))
    return path


def _jsonl(snap: Path, table: str) -> list[dict]:
    text = (snap / f"database/tables/{table}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def pg_source(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A workspace whose metadata is on PostgreSQL, with the demo data ingested, a model
    trained and approved (and so audit events of every kind)."""
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.registry import approval
    from tests.registry.helpers import ingest_demo, train
    from tests.serve.conftest import RECIPE

    base = tmp_path_factory.mktemp("pg-source")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIDLC_BACKUP_SOURCE_URL", _new_pg_url(pg_server))
        ws, admin = Workspace.init(
            base / "ws", settings={"metadata": {"url_env": "AIDLC_BACKUP_SOURCE_URL"}}
        )
        tokens = {"admin": admin}
        for name, role in (
            ("steward", "data-steward"),
            ("trainer", "trainer"),
            ("approver", "approver"),
            ("inference", "inference"),
            ("auditor", "auditor"),
        ):
            _, tokens[name] = principals.add(ws, name, [role])
        ws.close()
        env = Served(base / "ws", tokens)
        ingest_demo(env, base / "data")
        with env.open("trainer") as t:
            train(t, RECIPE.format(features="exclude: [patient_id]", seed=3))
        with env.open("approver") as a:
            approval.approve(a, "bc@1", reason="first production version")
        yield env


@pytest.fixture(scope="module")
def pg_snapshot(pg_source: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pg-snapshots") / "snap"
    with pg_source.open("admin") as ws:
        backup.create(ws, target)
    return target


@pytest.mark.postgres
@pytest.mark.slow  # ingests, trains and approves on PostgreSQL
def test_postgres_workspace_restores_into_sqlite_with_the_same_tokens_objects_audit_and_models(
    pg_source: Served, pg_snapshot: Path, tmp_path: Path
) -> None:
    from aidlc.core import objects
    from aidlc.core.meta import Base
    from aidlc.demo import breast_cancer
    from aidlc.registry import versions

    manifest = _manifest(pg_snapshot)
    assert (manifest["format"], manifest["database"], manifest["store"]) == (
        "aidlc-backup/2",
        "postgresql",
        "local",
    )
    assert [t["name"] for t in manifest["tables"]] == [t.name for t in Base.metadata.sorted_tables]
    on_disk = {p.relative_to(pg_snapshot).as_posix() for p in _files(pg_snapshot)}
    assert "database/aidlc.db" not in on_disk
    for table in manifest["tables"]:
        assert len(_jsonl(pg_snapshot, table["name"])) == table["rows"]
    events = _jsonl(pg_snapshot, "audit_events")
    assert [e["seq"] for e in events] == list(range(1, manifest["audit_head"]["tree_size"] + 1))
    assert events[0]["time"]["$datetime"].endswith("+00:00") and "$bytes" in events[0]["body"]

    result = _restore(pg_snapshot, tmp_path / "new", pg_source)
    restored = Served(tmp_path / "new", pg_source.tokens)
    assert "url_env" not in (tmp_path / "new" / "aidlc.yaml").read_text()
    assert result.objects_verified == manifest["objects"] > 0
    for who in ("admin", "steward", "trainer", "approver", "inference", "auditor"):
        with restored.open(who) as ws:
            assert ws.db.is_sqlite and ws.principal is not None and ws.principal.name == who
    for who, zone in (("steward", "raw"), ("steward", "validated"), ("trainer", "models")):
        with pg_source.open(who) as old, restored.open(who) as new:
            listed = objects.list_objects(old, zone)
            assert listed and [o.ref for o in listed] == [
                o.ref for o in objects.list_objects(new, zone)
            ]
            for o in listed:
                assert objects.get_bytes(new, zone, o.object_id, o.version) == objects.get_bytes(
                    old, zone, o.object_id, o.version
                )
    with restored.open("auditor") as ws:
        verdict = ws.audit.verify()
        assert verdict.ok and verdict.size == manifest["audit_head"]["tree_size"] + 1
        assert ws.audit.events()[-1].action == "backup.restore"
    rows = breast_cancer.frame().drop(["patient_id", "diagnosis"]).head(20)
    with pg_source.open("inference") as old, restored.open("inference") as new:
        assert (
            versions.verify(new, "bc@1").model_digest == versions.verify(old, "bc@1").model_digest
        )
        loaded = versions.load_model(new, "bc@1", require_approved=True)
        assert loaded.predict_proba(rows) == versions.load_model(old, "bc@1").predict_proba(rows)


@pytest.mark.postgres
@pytest.mark.slow  # shares the trained PostgreSQL workspace above
def test_tampered_table_file_fails_restore_naming_it(
    pg_source: Served, pg_snapshot: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(pg_snapshot, tmp_path / "snap"))
    roles = copy / "database/tables/principal_roles.jsonl"
    # Privilege escalation hidden in a backup: the trainer becomes an admin.
    roles.write_text(roles.read_text().replace('"trainer"', '"admin"'))
    with pytest.raises(
        IntegrityError,
        match=re.escape("database/tables/principal_roles.jsonl: SHA-256 or size differs"),
    ):
        _restore(copy, tmp_path / "a", pg_source)
    assert not (tmp_path / "a").exists()
    # Also rewriting the manifest's digest: the signature over the manifest catches it.
    manifest = _manifest(copy)
    entry = next(e for e in manifest["files"] if e["path"].endswith("principal_roles.jsonl"))
    entry["size"] = roles.stat().st_size
    entry["sha256"] = backup.hashlib.sha256(roles.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="manifest's signature does not verify"):
        _restore(copy, tmp_path / "b", pg_source)
    _assert_marked_failed(tmp_path / "b")


@pytest.mark.postgres
def test_sqlite_snapshot_restores_into_an_empty_postgres_database_that_keeps_working(
    source: Served, snapshot: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aidlc.core import objects

    monkeypatch.setenv("AIDLC_RESTORE_URL", pg_url)
    config = _write_config(tmp_path / "target.yaml", metadata={"url_env": "AIDLC_RESTORE_URL"})
    result = backup.restore(
        snapshot,
        tmp_path / "new",
        token=source.tokens["admin"],
        keys=source.root / KEYRING,
        config=config,
    )
    assert result.objects_verified == _manifest(snapshot)["objects"]
    restored = Served(tmp_path / "new", source.tokens)
    with restored.open("steward") as ws:
        assert ws.db.engine.dialect.name == "postgresql"
        # New rows get fresh ids: the id sequences were moved past the restored rows.
        info = objects.put_bytes(ws, "raw", "after-restore.csv", b"a,b\n1,2\n")
        assert objects.get_bytes(ws, "raw", "after-restore.csv") == b"a,b\n1,2\n"
        assert info.version == 1
    with restored.open("auditor") as ws:
        assert ws.audit.verify().ok


@pytest.mark.postgres
def test_restore_refuses_a_target_database_or_store_holding_data(
    source: Served, snapshot: Path, make_env, tmp_path: Path
) -> None:
    from aidlc.errors import Conflict

    busy = make_env("postgres", users={})  # its database holds a whole workspace
    with busy.open("admin") as ws:
        before = ws.audit.verify().size
    config = _write_config(tmp_path / "busy.yaml", metadata={"url_env": "AIDLC_TEST_DATABASE_URL"})
    with pytest.raises(Conflict, match="target database already holds aidlc data"):
        backup.restore(
            snapshot,
            tmp_path / "a",
            token=source.tokens["admin"],
            keys=source.root / KEYRING,
            config=config,
        )
    _assert_marked_failed(tmp_path / "a")
    with busy.open("admin") as ws:
        assert ws.audit.verify().size == before
    full = tmp_path / "objects"
    (full / "raw").mkdir(parents=True)
    (full / "raw" / "mine").write_bytes(b"keep")
    config = _write_config(tmp_path / "full.yaml", store={"backend": "local", "path": str(full)})
    with pytest.raises(
        Conflict, match=re.escape("target object store already holds objects (raw/mine)")
    ):
        backup.restore(
            snapshot,
            tmp_path / "b",
            token=source.tokens["admin"],
            keys=source.root / KEYRING,
            config=config,
        )
    assert (full / "raw" / "mine").read_bytes() == b"keep"


@pytest.mark.postgres
def test_a_write_committed_during_the_dump_is_wholly_absent_from_it(
    make_env, tmp_path: Path
) -> None:
    from aidlc.core import objects

    env = make_env("postgres", users={"steward": "data-steward"})
    with env.open("steward") as ws:
        objects.put_bytes(ws, "raw", "before.csv", b"before")
    written: list[str] = []

    def concurrent_write(name: str) -> None:
        written.append(name)
        # Between the audit log and the object list and tree heads: a dump that is not one
        # snapshot would hold the new object or head without its audit event.
        if name == "database/tables/audit_events.jsonl":
            with env.open("steward") as other:
                objects.put_bytes(other, "raw", "during.csv", b"during")

    with env.open("admin") as ws:
        made = backup.create(ws, tmp_path / "snap", progress=concurrent_write)
    assert written.index("database/tables/audit_events.jsonl") < written.index(
        "database/tables/objects.jsonl"
    )
    with env.open("steward") as ws:
        assert [o.object_id for o in objects.list_objects(ws, "raw")] == [
            "before.csv",
            "during.csv",
        ]
        committed = ws.audit.events(action="object.put")[-1].seq
    snap = tmp_path / "snap"
    assert [o["object_id"] for o in _jsonl(snap, "objects")] == ["before.csv"]
    assert max(e["seq"] for e in _jsonl(snap, "audit_events")) == made.tree_size < committed
    assert max(h["tree_size"] for h in _jsonl(snap, "tree_heads")) == made.tree_size
    assert made.objects == 1
    result = backup.restore(
        snap, tmp_path / "new", token=env.tokens["admin"], keys=env.root / KEYRING
    )
    assert (result.objects_verified, result.tree_size) == (1, made.tree_size)


@pytest.mark.postgres
@pytest.mark.aws
def test_postgres_and_s3_workspace_restores_into_a_fresh_database_and_s3_prefix(
    make_env,
    pg_server: str,
    moto_endpoint: str,
    kms_key: str,
    s3_bucket: str,
    aws_client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aidlc.core import objects
    from aidlc.errors import Conflict

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    keys = {
        "provider": "kms",
        "kms_key_id": kms_key,
        "region": "us-east-1",
        "endpoint_url": moto_endpoint,
    }
    store = {
        "backend": "s3",
        "bucket": s3_bucket,
        "region": "us-east-1",
        "endpoint_url": moto_endpoint,
        "sse_kms_key_id": kms_key,
    }
    env = make_env(
        "postgres", users={"steward": "data-steward"}, keys=keys, store={**store, "prefix": "ws1/"}
    )
    with env.open("steward") as ws:
        objects.put_bytes(ws, "raw", "a.csv", b"account,balance\nACC-1,10\n" * 100)
        objects.put_bytes(ws, "raw", "b.csv", b"x" * 70_000)
        objects.put_bytes(ws, "raw", "gone.csv", b"shredded")
        objects.delete(ws, "raw", "gone.csv", 1, reason="erasure request")
    with env.open("admin") as ws:
        made = backup.create(ws, tmp_path / "snap")
    manifest = _manifest(tmp_path / "snap")
    assert (manifest["database"], manifest["store"], manifest["key_provider"]) == (
        "postgresql",
        "s3",
        "kms",
    )
    assert made.objects == 2 and "keys/keyring.json" not in {e["path"] for e in manifest["files"]}

    monkeypatch.setenv("AIDLC_RESTORE_URL", _new_pg_url(pg_server))
    target = _write_config(
        tmp_path / "target.yaml",
        metadata={"url_env": "AIDLC_RESTORE_URL"},
        store={**store, "prefix": "ws2/"},
    )
    result = backup.restore(
        tmp_path / "snap", tmp_path / "new", token=env.tokens["admin"], config=target
    )
    assert (result.objects_verified, result.keys_from) == (2, "kms")
    s3 = aws_client("s3")
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    old = [k for k in listed if k.startswith("ws1/")]
    new = [k for k in listed if k.startswith("ws2/")]
    assert [k.removeprefix("ws1/") for k in old] == [k.removeprefix("ws2/") for k in new]
    assert len(new) == 2
    for a, b in zip(old, new, strict=True):
        body = s3.get_object(Bucket=s3_bucket, Key=b)["Body"].read()
        assert body == s3.get_object(Bucket=s3_bucket, Key=a)["Body"].read()
        assert b"ACC-1" not in body
    restored = Served(tmp_path / "new", env.tokens)
    with restored.open("steward") as ws:
        assert ws.db.engine.dialect.name == "postgresql" and ws.store.kind == "s3"
        assert objects.get_bytes(ws, "raw", "b.csv") == b"x" * 70_000
        objects.put_bytes(ws, "raw", "c.csv", b"after the restore")
    with env.open("steward") as ws, restored.open("steward") as copy:
        # The shredded object's record is restored too, still without its key or bytes.
        before = [(o.object_id, o.deleted_at is None) for o in objects.list_objects(ws, "raw")]
        assert before == [("a.csv", True), ("b.csv", True), ("gone.csv", False)]
        after = [(o.object_id, o.deleted_at is None) for o in objects.list_objects(copy, "raw")]
        assert after == sorted([*before, ("c.csv", True)])

    # The source's own prefix is not empty: refused before anything is written there.
    monkeypatch.setenv("AIDLC_RESTORE_URL", _new_pg_url(pg_server))
    again = _write_config(
        tmp_path / "again.yaml",
        metadata={"url_env": "AIDLC_RESTORE_URL"},
        store={**store, "prefix": "ws1/"},
    )
    with pytest.raises(Conflict, match="target object store already holds objects"):
        backup.restore(
            tmp_path / "snap", tmp_path / "again", token=env.tokens["admin"], config=again
        )
