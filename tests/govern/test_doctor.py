"""`aidlc doctor`: each posture check finds what it claims to find in a real workspace."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update

from aidlc.core import objects, principals
from aidlc.core.meta import AuditEvent, RetentionPolicyRecord, StoredObject, TokenRecord
from aidlc.core.workspace import Workspace
from aidlc.errors import KeyUnavailable, PermissionDenied
from aidlc.govern.doctor import Check, exit_code, run_checks, summary
from tests.cli.test_cli import run
from tests.serve.conftest import Served, served, served_template  # noqa: F401

IDS = [
    "keys.file_permissions",
    "keys.passphrase",
    "keys.rotation",
    "encryption.objects",
    "encryption.store_path",
    "access.roles",
    "access.disabled_tokens",
    "tokens.expiry",
    "tokens.stale",
    "audit.integrity",
    "audit.recent_verification",
    "serve.rate_limit_storage",
    "serve.tls",
    "serve.ood_action",
    "serve.request_limits",
    "alerts.sinks",
    "monitor.schedules",
    "metadata.database",
    "retention.policies",
]


class Env:
    """A fresh workspace and the tokens of an admin, an auditor, a trainer and a steward."""

    def __init__(self, root: Path, tokens: dict[str, str]) -> None:
        self.root = root
        self.tokens = tokens

    def open(self, who: str = "admin") -> Workspace:
        return Workspace.open(self.root, token=self.tokens[who])

    def checks(self, who: str = "admin") -> dict[str, Check]:
        with self.open(who) as ws:
            return {c.id: c for c in run_checks(ws)}

    @property
    def keyring(self) -> Path:
        return self.root / ".aidlc" / "keys" / "keyring.json"


def make_env(tmp_path: Path, **settings: Any) -> Env:
    ws, admin = Workspace.init(tmp_path / "ws", settings=settings or None)
    tokens = {"admin": admin}
    for name, role in (("auditor", "auditor"), ("trainer", "trainer"), ("steward", "data-steward")):
        _, tokens[name] = principals.add(ws, name, [role])
    ws.close()
    return Env(tmp_path / "ws", tokens)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def configure(root: Path, section: str, values: dict[str, Any]) -> None:
    """Change one section of aidlc.yaml as an operator would."""
    path = root / "aidlc.yaml"
    config = yaml.safe_load(path.read_text())
    config[section] = {**config.get(section, {}), **values}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_fresh_workspace_passes_every_fail_level_check(env: Env) -> None:
    with env.open() as ws:
        checks = run_checks(ws)
    assert [c.id for c in checks] == IDS
    assert exit_code(checks) == 0
    by_id = {c.id: c for c in checks}
    assert {i for i, c in by_id.items() if c.status == "warn"} == {
        "keys.passphrase",
        "audit.integrity",
        "audit.recent_verification",
        "serve.rate_limit_storage",
        "alerts.sinks",
        "retention.policies",
    }
    assert summary(checks) == {"pass": 13, "warn": 6, "fail": 0}
    assert by_id["keys.file_permissions"].evidence.endswith("mode 0600, owned by this user")
    assert by_id["audit.integrity"].evidence.startswith("not checked (needs auditor)")
    assert all(c.fix == "" for c in checks if c.status == "pass")
    assert all(c.fix for c in checks if c.status != "pass")


def test_world_readable_key_ring_fails_with_the_chmod_fix(env: Env) -> None:
    env.keyring.chmod(0o644)
    checks = env.checks("auditor")
    ring = checks["keys.file_permissions"]
    assert ring.status == "fail"
    assert "mode 0644 lets other users read it" in ring.evidence
    assert ring.fix == f"chmod 600 {env.keyring}"
    # The audit log cannot be checked without the key provider; doctor says so, no crash.
    assert checks["audit.integrity"].status == "warn"
    assert checks["audit.integrity"].evidence.startswith("not checked: the key ring is unusable")
    assert exit_code(list(checks.values())) == 1


def test_cli_reports_a_world_readable_key_ring_and_exits_1(env: Env) -> None:
    env.keyring.chmod(0o644)
    proc = run("doctor", "--json", token=env.tokens["admin"], workspace=env.root)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    ring = next(c for c in out["checks"] if c["id"] == "keys.file_permissions")
    assert ring["status"] == "fail"
    assert ring["fix"] == f"chmod 600 {env.keyring}"
    assert out["ok"] is False and out["summary"]["fail"] == 1


def test_cli_json_shape_and_exit_0_on_a_fresh_workspace(env: Env) -> None:
    proc = run("doctor", "--json", token=env.tokens["auditor"], workspace=env.root)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out) == ["ok", "summary", "checks"]
    assert out["ok"] is True
    assert [c["id"] for c in out["checks"]] == IDS
    assert all(list(c) == ["id", "title", "status", "evidence", "fix"] for c in out["checks"])
    integrity = next(c for c in out["checks"] if c["id"] == "audit.integrity")
    assert integrity["status"] == "pass"
    assert integrity["evidence"].endswith("signed tree heads verify")


def test_trainer_is_denied_exit_4(env: Env) -> None:
    proc = run("doctor", token=env.tokens["trainer"], workspace=env.root)
    assert proc.returncode == 4
    assert "trainer may not posture.read (needs role: admin, auditor)" in proc.stderr
    with env.open("trainer") as ws, pytest.raises(PermissionDenied):
        run_checks(ws)


def test_token_without_expiry_warns(env: Env) -> None:
    with env.open() as ws:
        info, _ = principals.create_token(ws, "trainer", label="ci", expires_days=0)
    check = env.checks()["tokens.expiry"]
    assert check.status == "warn"
    assert check.evidence == f"1 live tokens never expire: {info.id} (trainer)"


def test_token_older_than_ttl_fails(env: Env) -> None:
    with env.open() as ws:
        info, _ = principals.create_token(ws, "trainer", label="old", expires_days=0)
        with ws.db.transaction() as session:
            session.execute(
                update(TokenRecord)
                .where(TokenRecord.id == info.id)
                .values(created_at=datetime.now(UTC) - timedelta(days=120))
            )
    checks = env.checks()
    assert checks["tokens.expiry"].status == "fail"
    assert f"{info.id} (trainer, 120 days)" in checks["tokens.expiry"].evidence
    assert checks["tokens.stale"].status == "warn"
    assert f"{info.id} (trainer, never used)" in checks["tokens.stale"].evidence


def test_memory_rate_limit_warns_and_redis_passes(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert env.checks()["serve.rate_limit_storage"].status == "warn"
    configure(env.root, "serve", {"rate_limit_storage": "redis://cache:6379"})
    check = env.checks()["serve.rate_limit_storage"]
    assert (check.status, check.evidence) == (
        "pass",
        "serve.rate_limit_storage uses redis://, shared by every worker and replica",
    )


def test_rate_limit_url_from_environment_is_never_shown(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIDLC_RATE_LIMIT_STORAGE", "redis://:hunter2@cache:6379")
    check = env.checks()["serve.rate_limit_storage"]
    assert check.status == "pass"
    assert "hunter2" not in check.evidence and "$AIDLC_RATE_LIMIT_STORAGE" in check.evidence


def test_adding_a_webhook_sink_clears_the_alert_warning(env: Env) -> None:
    assert env.checks()["alerts.sinks"].status == "warn"
    configure(
        env.root,
        "alerts",
        {"sinks": [{"type": "log"}, {"type": "webhook", "url": "https://hooks.example/x"}]},
    )
    check = env.checks()["alerts.sinks"]
    assert (check.status, check.evidence, check.fix) == ("pass", "alert sinks: log, webhook", "")


def test_auditor_run_finds_a_tampered_audit_log(env: Env) -> None:
    assert env.checks("auditor")["audit.integrity"].status == "pass"
    with env.open() as ws, ws.db.transaction() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="mallory"))
    check = env.checks("auditor")["audit.integrity"]
    assert check.status == "fail"
    assert check.evidence.startswith("TAMPERED: event 2: event 2 was edited")
    assert "restore from backup" in check.fix


def test_recorded_verification_satisfies_recency_until_it_is_too_old(env: Env) -> None:
    proc = run("audit", "verify", token=env.tokens["auditor"], workspace=env.root)
    assert proc.returncode == 0, proc.stderr
    check = env.checks()["audit.recent_verification"]
    assert check.status == "pass"
    assert check.evidence.endswith("(0 days ago; limit 7)")
    with env.open() as ws, ws.db.transaction() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == "audit.verify")
            .values(time=datetime.now(UTC) - timedelta(days=8))
        )
    check = env.checks()["audit.recent_verification"]
    assert check.status == "fail"
    assert check.evidence.endswith("(8 days ago; limit 7)")


def test_overdue_key_rotation_fails(tmp_path: Path) -> None:
    env = make_env(tmp_path, keys={"rotation_days": 30})
    ring = json.loads(env.keyring.read_text())
    ring["versions"][0]["created_at"] = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    env.keyring.write_text(json.dumps(ring))  # keeps mode 0600
    check = env.checks()["keys.rotation"]
    assert check.status == "fail"
    assert check.evidence == (
        "current key k1 is 45 days old; keys.rotation_days is 30: rotation is overdue"
    )
    assert check.fix.startswith("aidlc keys rotate")


def test_objects_stored_encrypted_and_a_plaintext_file_fails(env: Env) -> None:
    with env.open("steward") as ws:
        info = objects.put_bytes(ws, "raw", "a.csv", b"x,y\n1,2\n")
    check = env.checks()["encryption.objects"]
    assert check.status == "pass"
    assert check.evidence.startswith("1 live objects all have a wrapped key and ciphertext")
    with env.open() as ws, ws.db.reading() as session:
        key = session.query(StoredObject.storage_key).scalar()
    path = env.root / ".aidlc" / "objects" / key
    path.chmod(0o600)
    path.write_bytes(b"x,y\n1,2\n" + bytes(60))
    check = env.checks()["encryption.objects"]
    assert check.status == "fail"
    assert f"not in the aidlc ciphertext format: {key}" in check.evidence
    assert info.version == 1


def test_mixed_admin_and_disabled_principal_tokens_warn(env: Env) -> None:
    with env.open() as ws:
        principals.add(ws, "root2", ["admin", "approver"])
        principals.disable(ws, "steward")
    checks = env.checks()
    assert checks["access.roles"].status == "warn"
    assert checks["access.roles"].evidence == (
        "admins who also hold other roles: root2 (admin, approver)"
    )
    assert checks["access.disabled_tokens"].status == "warn"
    assert "(steward)" in checks["access.disabled_tokens"].evidence


def test_database_loose_mode_warns_inside_the_private_state_folder(env: Env) -> None:
    assert env.checks()["metadata.database"].status == "pass"  # created 0600
    for path in (env.root / ".aidlc").glob("aidlc.db*"):
        path.chmod(0o644)
    check = env.checks()["metadata.database"]
    assert check.status == "warn"
    assert check.evidence.startswith("aidlc.db 0644")
    assert f"the folder {env.root / '.aidlc'} 0700 keeps other users out" in check.evidence
    for path in (env.root / ".aidlc").glob("aidlc.db*"):
        path.chmod(0o600)
    check = env.checks()["metadata.database"]
    assert check.status == "pass"
    assert check.evidence.startswith("aidlc.db 0600")


def test_database_reachable_by_others_fails() -> None:
    # pytest's tmp folders are 0700, which would hide the file; this one is open on purpose.
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        env = make_env(base)
        state = env.root / ".aidlc"
        state.chmod(0o755)
        env.root.chmod(0o755)
        (state / "aidlc.db").chmod(0o644)
        check = env.checks()["metadata.database"]
        assert check.status == "fail"
        assert check.evidence.startswith("readable by other users: aidlc.db 0644")
        assert check.fix.startswith(f"chmod 600 {state / 'aidlc.db'}")
    finally:
        shutil.rmtree(base)


def test_retention_policy_clears_the_retention_warning(env: Env) -> None:
    with env.open() as ws, ws.transaction() as session:
        session.add(RetentionPolicyRecord(zone="predictions", days=365, set_by="admin"))
    check = env.checks()["retention.policies"]
    assert (check.status, check.evidence) == ("pass", "1 policies: predictions: 365 days")


@pytest.mark.slow
def test_production_model_without_schedule_warns(served: Served) -> None:  # noqa: F811
    with served.open("admin") as ws:
        checks = {c.id: c for c in run_checks(ws)}
    assert checks["monitor.schedules"].status == "warn"
    assert checks["monitor.schedules"].evidence.startswith("1 models in production")
    assert checks["encryption.objects"].status == "pass"
    assert checks["access.roles"].evidence == (
        "admins who also hold other roles: admin2 (admin, inference)"
    )
    configure(
        served.root,
        "monitor",
        {"schedules": [{"name": "nightly", "cron": "cron(0 2 * * ? *)", "model": "*"}]},
    )
    with served.open("admin") as ws:
        check = next(c for c in run_checks(ws) if c.id == "monitor.schedules")
    assert (check.status, check.evidence) == (
        "pass",
        "1 monitor schedules: nightly (cron(0 2 * * ? *), model *)",
    )


def test_world_readable_key_ring_is_reported_even_without_the_key_provider(
    env: Env,
) -> None:
    # The provider refuses the ring, so the workspace cannot use ws.keys; doctor reads the file.
    env.keyring.chmod(0o640)
    with env.open() as ws:
        with pytest.raises(KeyUnavailable):
            _ = ws.keys
        check = next(c for c in run_checks(ws) if c.id == "keys.file_permissions")
    assert check.status == "fail" and "mode 0640" in check.evidence
    assert os.stat(env.keyring).st_mode & 0o777 == 0o640
