"""The CLI as a user meets it: real processes, exit codes that mean something, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

AIDLC = [sys.executable, "-m", "aidlc"]


def run(*args: str, token: str | None = None, workspace: Path | None = None, env=None, input=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AIDLC_")}
    e["AIDLC_TOKEN_FILE"] = "/nonexistent/aidlc-token"
    if token:
        e["AIDLC_TOKEN"] = token
    if workspace:
        e["AIDLC_WORKSPACE"] = str(workspace)
    e.update(env or {})
    proc = subprocess.run(
        [*AIDLC, *args], capture_output=True, text=True, env=e, input=input, timeout=120
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout
    return proc


@pytest.fixture
def ws(tmp_path):
    proc = run("init", str(tmp_path / "w"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert Path(out["workspace"]) == (tmp_path / "w").resolve()
    return Path(out["workspace"]), out["admin_token"]


def test_init_writes_config_key_ring_and_database(ws):
    root, token = ws
    assert (root / "aidlc.yaml").is_file()
    keyring = root / ".aidlc" / "keys" / "keyring.json"
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    assert (root / ".aidlc" / "aidlc.db").is_file()
    assert token.startswith("aidlc_")
    assert token not in (root / "aidlc.yaml").read_text()
    again = run("init", str(root))
    assert again.returncode == 6 and "already holds a workspace" in again.stderr


def test_init_from_a_prepared_config_keeps_its_sections(tmp_path):
    """`aidlc init --config` takes a prepared aidlc.yaml (Terraform's aidlc_yaml output) and
    refuses a bad one before anything is written."""
    prepared = tmp_path / "prepared.yaml"
    prepared.write_text(
        "version: 1\nworkspace: from-terraform\nkeys:\n  rotation_days: 90\n"
        "store:\n  segment_size: 65536\n"
    )
    proc = run("init", str(tmp_path / "w"), "--config", str(prepared), "--json")
    assert proc.returncode == 0, proc.stderr
    from aidlc.core.config import load_config

    config = load_config(tmp_path / "w" / "aidlc.yaml")
    assert (config.workspace, config.keys.rotation_days, config.store.segment_size) == (
        "from-terraform",
        90,
        65536,
    )
    assert config.keys.provider == "file"  # the sections it does not name keep the defaults
    named = run("init", str(tmp_path / "n"), "--config", str(prepared), "--name", "mine")
    assert named.returncode == 0, named.stderr
    assert load_config(tmp_path / "n" / "aidlc.yaml").workspace == "mine"

    bad = tmp_path / "bad.yaml"
    bad.write_text("keys:\n  provider: kms\n")
    proc = run("init", str(tmp_path / "b"), "--config", str(bad))
    assert proc.returncode == 2
    assert "keys.provider is 'kms' but keys.kms_key_id is not set" in proc.stderr
    assert not (tmp_path / "b").exists()
    missing = run("init", str(tmp_path / "m"), "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


def test_users_tokens_and_roles_from_the_cli(ws):
    root, admin = ws
    proc = run(
        "user",
        "add",
        "ann",
        "--role",
        "trainer",
        "--role",
        "monitor",
        "--json",
        token=admin,
        workspace=root,
    )
    assert proc.returncode == 0, proc.stderr
    ann = json.loads(proc.stdout)
    assert ann["roles"] == ["monitor", "trainer"] and ann["token"].startswith("aidlc_")
    listed = json.loads(run("user", "list", "--json", token=admin, workspace=root).stdout)
    assert {p["name"] for p in listed} == {"admin", "ann"}
    denied = run("user", "list", token=ann["token"], workspace=root)
    assert denied.returncode == 4 and "may not principal.manage" in denied.stderr
    tokens = json.loads(run("token", "list", "ann", "--json", token=admin, workspace=root).stdout)
    assert run("token", "revoke", tokens[0]["id"], token=admin, workspace=root).returncode == 0
    revoked = run("user", "list", token=ann["token"], workspace=root)
    assert revoked.returncode == 3 and "revoked" in revoked.stderr
    bad_role = run("user", "add", "bob", "--role", "root", token=admin, workspace=root)
    assert bad_role.returncode == 2 and "unknown role" in bad_role.stderr


def test_wrong_missing_and_expired_tokens_give_one_clear_message(ws):
    root, admin = ws
    wrong = run("user", "list", token="aidlc_" + "A" * 43, workspace=root)
    assert wrong.returncode == 3 and "unknown token" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    missing = run("user", "list", workspace=root)
    assert missing.returncode == 3 and "no token" in missing.stderr
    out = json.loads(
        run("user", "add", "tmp", "--role", "auditor", "--json", token=admin, workspace=root).stdout
    )
    import sqlite3

    con = sqlite3.connect(root / ".aidlc" / "aidlc.db")
    con.execute(
        "UPDATE tokens SET expires_at = '2000-01-01 00:00:00' WHERE principal_id = "
        "(SELECT id FROM principals WHERE name = 'tmp')"
    )
    con.commit()
    con.close()
    expired = run("audit", "log", token=out["token"], workspace=root)
    assert expired.returncode == 3 and "expired on 2000-01-01" in expired.stderr


def test_credentials_file_must_be_private(ws, tmp_path):
    root, admin = ws
    cred = tmp_path / "token"
    cred.write_text(admin)
    os.chmod(cred, 0o644)
    proc = run("user", "list", workspace=root, env={"AIDLC_TOKEN_FILE": str(cred)})
    assert proc.returncode == 3 and "chmod 600" in proc.stderr
    os.chmod(cred, 0o600)
    assert run("user", "list", workspace=root, env={"AIDLC_TOKEN_FILE": str(cred)}).returncode == 0


def test_malformed_config_and_missing_key_file(ws):
    root, admin = ws
    config = root / "aidlc.yaml"
    good = config.read_text()
    config.write_text("keys: [unclosed\n")
    proc = run("user", "list", token=admin, workspace=root)
    assert proc.returncode == 2 and "not valid YAML at line 2" in proc.stderr
    config.write_text(good.replace("provider: file", "provider: hsm"))
    proc = run("user", "list", token=admin, workspace=root)
    assert proc.returncode == 2 and "keys.provider" in proc.stderr
    config.write_text(good)
    keyring = root / ".aidlc" / "keys" / "keyring.json"
    shutil.move(keyring, root / "keyring.bak")
    proc = run("audit", "log", token=admin, workspace=root)
    # authentication needs no key; the denial itself is signed, so the missing key is reported
    assert proc.returncode == 2 and "key" in proc.stderr.lower()
    assert len(proc.stderr.strip().splitlines()) == 1
    shutil.move(root / "keyring.bak", keyring)
    nowhere = run("user", "list", token=admin, workspace=root / "missing")
    assert nowhere.returncode == 2 and "aidlc init" in nowhere.stderr


def test_audit_commands(ws, tmp_path):
    root, admin = ws
    auditor = json.loads(
        run("user", "add", "aud", "--role", "auditor", "--json", token=admin, workspace=root).stdout
    )["token"]
    ok = run("audit", "verify", token=auditor, workspace=root)
    assert ok.returncode == 0 and "intact" in ok.stdout
    head = run("audit", "head", token=auditor, workspace=root)
    head_file = tmp_path / "head.json"
    head_file.write_text(head.stdout)
    assert json.loads(head.stdout)["tree_size"] >= 5
    proof = json.loads(run("audit", "prove", "2", token=auditor, workspace=root).stdout)
    assert proof["leaf_index"] == 1 and proof["event"]["seq"] == 2
    events = json.loads(
        run("audit", "log", "--json", "--actor", "admin", token=auditor, workspace=root).stdout
    )
    assert events and all(e["actor"] == "admin" for e in events)
    # The standalone verifier published in docs/audit.md accepts the proof and the key as printed.
    docs = (Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    section = docs[docs.index("## A standalone verifier") :]
    script = section[
        section.index("```python\n") + 10 : section.index("```\n", section.index("```python") + 10)
    ]
    (tmp_path / "check_proof.py").write_text(script)
    (tmp_path / "proof.json").write_text(
        run("audit", "prove", "3", token=auditor, workspace=root).stdout
    )
    (tmp_path / "key.pem").write_text(
        run("audit", "public-key", token=auditor, workspace=root).stdout
    )
    checked = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "check_proof.py"),
            str(tmp_path / "proof.json"),
            str(tmp_path / "key.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0 and checked.stdout.strip() == "ok", checked.stderr
    exported = run("audit", "export", "--format", "jsonl", token=auditor, workspace=root).stdout
    assert len(exported.strip().splitlines()) >= 5
    against = run("audit", "verify", "--against", str(head_file), token=auditor, workspace=root)
    assert against.returncode == 0 and "extends the given head" in against.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"tree_size": "many"}')
    bad = run("audit", "verify", "--against", str(garbage), token=auditor, workspace=root)
    assert bad.returncode == 2
    import sqlite3

    con = sqlite3.connect(root / ".aidlc" / "aidlc.db")
    con.execute("UPDATE audit_events SET resource = 'principal:nobody' WHERE seq = 2")
    con.commit()
    con.close()
    tampered = run("audit", "verify", token=auditor, workspace=root)
    assert tampered.returncode == 1 and "event 2" in tampered.stderr


def test_objects_from_the_cli(ws, tmp_path):
    root, admin = ws
    steward = json.loads(
        run(
            "user", "add", "st", "--role", "data-steward", "--json", token=admin, workspace=root
        ).stdout
    )["token"]
    src = tmp_path / "data.csv"
    src.write_bytes(b"a,b\n1,2\n")
    put = run(
        "objects", "put", "raw", "data.csv", str(src), "--json", token=steward, workspace=root
    )
    assert put.returncode == 0 and json.loads(put.stdout)["version"] == 1
    dst = tmp_path / "back.csv"
    assert (
        run(
            "objects", "get", "raw/data.csv@1", "-o", str(dst), token=steward, workspace=root
        ).returncode
        == 0
    )
    assert dst.read_bytes() == src.read_bytes()
    missing = run(
        "objects", "put", "raw", "x", str(tmp_path / "nope"), token=steward, workspace=root
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert run("objects", "verify", token=admin, workspace=root).returncode == 0
    assert run("keys", "rotate", token=admin, workspace=root).returncode == 0
    assert (
        run(
            "objects", "get", "raw/data.csv", "-o", str(dst), token=steward, workspace=root
        ).returncode
        == 0
    )


def test_quickstart_keeps_its_workspace_and_demo_tokens_when_asked(tmp_path):
    proc = run("quickstart", "--dir", str(tmp_path / "qs"))
    assert proc.returncode == 0, proc.stderr
    for phase in ("Architecture", "Infrastructure", "Deployment", "Compliance"):
        assert phase in proc.stdout
    assert "intact" in proc.stdout
    assert "registered breast-cancer@1" in proc.stdout
    assert "separation of duties" in proc.stdout
    assert "approved breast-cancer@1 → production" in proc.stdout
    assert "model_signing verify key` accepts it" in proc.stdout
    said = " ".join(proc.stdout.split())  # rich wraps long lines at spaces
    assert "Learning" in said
    assert "without a token → 401" in said and "trainer's token → 403" in said
    assert "a malformed record → 422: favourite_colour is not an input of the model" in said
    assert "ood=True" in said and "/v1/feedback with the true diagnoses → 202" in said
    assert re.search(r"20/second limit → \d+ x 200, \d+ x 429 \(Retry-After: 1 s\)", said)
    assert "the server judged the canary: promoted" in said
    assert "production is breast-cancer@1 again" in said
    assert "hot-swapped to breast-cancer@1" in said
    assert "monitoring: drift, quality, performance, alerts, retraining" in said
    assert re.search(r"report \d+: breach over \d+ predictions", said)
    assert "mean_radius: drift" in said and "3 of 30 features drifted" in said
    assert "[WARNING] monitor: breast-cancer@1: drift in mean_radius" in said
    assert "request 1 registered → breast-cancer@3" in said
    assert "retrained candidate breast-cancer@3 registered" in said
    assert "canary at 25% started by the policy" in said
    assert "KPIs screenings 300, referrals 41" in said
    assert "bring your own model: from a notebook to production" in said
    assert "Pipeline(ColumnTransformer(impute + scale 8 numbers, one-hot sex and bmi_class)" in said
    assert re.search(r"imported progression@1: aidlc's own metrics on 110 held-out patients", said)
    assert "gate r2 >= 0.3 passed" in said and "so it serves the graph" in said
    assert "lead tries to approve her import: denied" in said
    assert "approved by approver → progression@production" in said
    assert "sex = 'unknown' → 422: sex is not one of the allowed values" in said
    assert re.search(r"monitor run --model progression` → breach: drift in bmi, bmi_class", said)
    assert "controls, lineage, posture, threats" in said
    assert re.search(r"compliance report --framework all` → \d+ pass, \d+ fail", said)
    assert "pass Encryption at rest (hipaa 164.312(a)(2)(iv)" in said
    assert "pass Audit trail integrity" in said and "pass Change management" in said
    assert "back to the raw file raw file breast_cancer.csv" in said
    assert re.search(r"`aidlc doctor`: \d+ pass, \d+ warn, 0 fail", said)
    assert re.search(r"`aidlc threat-model`: 12 threats", said)
    assert "the web console at /console" in said
    assert "without a session → 303 to /console/login?next=%2Fconsole%2Fmonitoring" in said
    assert "session cookie HttpOnly, SameSite=Strict, Path=/console" in said
    assert (
        "pages shown for the auditor role: Overview, Models, Deployments, Monitoring, Audit" in said
    )
    assert "Drift score per feature over time for breast-cancer" in said
    assert "audit page: chain intact" in said
    assert "CI/CD for your project, images, AWS" in said
    assert (
        "wrote .github/workflows/aidlc-ci.yml: jobs tests, security, data, train, compliance"
        in said
    )
    assert "(promote waits for the protected production environment)" in said
    assert (tmp_path / "qs" / "project" / ".github" / "workflows" / "aidlc-cd.yml").is_file()
    logged = re.search(r"server stopped cleanly: (\d+) predictions and 3 labels", said)
    assert logged and int(logged.group(1)) > 30
    assert 'aidlc_predictions_total{label="malignant",model="breast-cancer"' in said
    tokens_file = tmp_path / "qs" / "quickstart-tokens.json"
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    saved = json.loads(tokens_file.read_text())
    assert "DEMO ONLY" in saved["warning"]
    again = run(
        "audit", "verify", token=saved["tokens"]["auditor"], workspace=Path(saved["workspace"])
    )
    assert again.returncode == 0
    history = run(
        "models",
        "history",
        "breast-cancer",
        "--json",
        token=saved["tokens"]["auditor"],
        workspace=Path(saved["workspace"]),
    )
    moves = [(h["alias"], h["version"], h["by"]) for h in json.loads(history.stdout)]
    assert moves == [
        ("candidate", 1, "lead"),
        ("production", 1, "approver"),
        ("candidate", 2, "lead"),
        ("staging", 2, "approver"),
        ("production", 2, "api"),  # the server promoted the canary the approver started
        ("production", 1, "approver"),  # and the approver rolled it back
        ("candidate", 3, "retrainer"),  # retrained after the monitor's drift breach
        ("staging", 3, "approver"),  # approved: the retraining policy started its canary
    ]


def test_quickstart_cleans_up_its_temporary_workspace():
    proc = run("quickstart")
    assert proc.returncode == 0, proc.stderr
    assert "Workspace created in" in proc.stdout


def test_help_and_usage_errors():
    assert run("--help").returncode == 0
    assert run("user", "add").returncode == 2
    assert run("no-such-command").returncode == 2
