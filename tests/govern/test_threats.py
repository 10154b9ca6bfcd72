"""The threat model follows the workspace's configuration and state, and renders safely."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update

from aidlc.core import objects, principals
from aidlc.core.meta import StoredObject
from aidlc.core.workspace import Workspace
from aidlc.govern.threats import render_html, render_markdown, threat_model
from tests.cli.test_cli import run

ATLAS = re.compile(r"AML\.T\d{4}(\.\d{3})?")
OWASP = re.compile(r"ML\d{2}:2023")


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, str]:
    ws, token = Workspace.init(tmp_path / "ws")
    ws.close()
    return ws.root, token


def configure(root: Path, **sections: Any) -> None:
    """Merge `sections` into aidlc.yaml, as an operator editing it would."""
    path = root / "aidlc.yaml"
    doc = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        doc[name] = {**doc[name], **values} if isinstance(doc.get(name), dict) else values
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def model(root: Path, token: str) -> dict[str, Any]:
    with Workspace.open(root, token=token) as ws:
        return threat_model(ws)


def threat(m: dict[str, Any], key: str) -> dict[str, Any]:
    return next(t for t in m["threats"] if t["id"] == key)


def test_rate_limit_storage_flips_denial_of_service_between_gap_and_partial(workspace):
    root, token = workspace
    dos = threat(model(root, token), "denial-of-service")
    assert dos["status"] == "gap"
    assert "rate limit 100/second per token, storage memory:// (per process)" in dos["mitigations"]
    configure(
        root, serve={"rate_limit_storage": "redis://127.0.0.1:6379", "rate_limit": "5/minute"}
    )
    dos = threat(model(root, token), "denial-of-service")
    assert dos["status"] == "partial"
    assert dos["mitigations"][0] == (
        "rate limit 5/minute per token, storage redis:// (shared by every worker and replica)"
    )
    assert not any("memory://" in g for g in dos["gaps"])


def test_alert_sink_and_schedule_close_the_model_skewing_gaps(workspace):
    root, token = workspace
    skew = threat(model(root, token), "model-skewing")
    assert skew["status"] == "partial"
    assert "no alert sink beyond log: alerts reach no one who is paged" in skew["gaps"]
    configure(
        root,
        alerts={"sinks": [{"type": "log"}, {"type": "webhook", "url": "https://hooks.example/x"}]},
        monitor={"schedules": [{"name": "nightly", "cron": "cron(0 2 * * ? *)"}]},
    )
    m = model(root, token)
    skew = threat(m, "model-skewing")
    assert skew["status"] == "mitigated"
    assert skew["gaps"] == []
    assert "alerts sent to log, webhook (6 rules)" in skew["mitigations"]
    assert "1 monitor schedule(s) (nightly=never ran); 0 report(s)" in skew["mitigations"]
    alerts = next(c for c in m["components"] if c["name"] == "alerts")
    assert alerts["detail"] == "sinks: log, webhook; 6 rules"


def test_kms_replaces_the_local_key_ring_gap(workspace):
    root, token = workspace
    storage = threat(model(root, token), "storage-exfiltration")
    assert "KMS not used: the master key ring is a local file" in storage["gaps"]
    assert (
        "master key 0 days old, within keys.rotation_days=365 (1 version(s))"
        in (storage["mitigations"])
    )
    configure(root, keys={"provider": "kms", "kms_key_id": "alias/aidlc", "region": "eu-west-1"})
    m = model(root, token)
    storage = threat(m, "storage-exfiltration")
    assert "master key held in AWS KMS, never on this host" in storage["mitigations"]
    assert not any("KMS" in g or "key ring" in g for g in storage["gaps"])
    keys = next(c for c in m["components"] if c["name"] == "key provider")
    assert keys["detail"] == "AWS KMS key alias/aidlc (eu-west-1)"


def test_object_encryption_evidence_is_read_from_object_metadata(workspace):
    root, token = workspace
    with Workspace.open(root, token=token) as ws:
        _, steward_token = principals.add(ws, "steward", ["data-steward"])
    with Workspace.open(root, token=steward_token) as steward:
        objects.put_bytes(steward, "raw", "a.csv", b"x,y\n1,2\n")
        objects.put_bytes(steward, "raw", "b.csv", b"x,y\n3,4\n")
    storage = threat(model(root, token), "storage-exfiltration")
    assert storage["mitigations"][0] == (
        "every stored object encrypted: 2 objects, 0 unencrypted (0 crypto-shredded)"
    )
    with Workspace.open(root) as ws, ws.db.transaction() as session:
        session.execute(
            update(StoredObject).where(StoredObject.object_id == "b.csv").values(wrapped_key=None)
        )
    storage = threat(model(root, token), "storage-exfiltration")
    assert storage["status"] == "gap"
    assert storage["gaps"][0] == "1 live object(s) lack an encrypted data key"


def test_role_and_token_hygiene_gaps_name_what_they_found(workspace):
    root, token = workspace
    with Workspace.open(root, token=token) as ws:
        principals.add(ws, "ops", ["admin", "trainer"], expires_days=0)
    m = model(root, token)
    insider = threat(m, "insider-access")
    assert insider["status"] == "partial"
    assert "principals holding admin plus another role: ops" in insider["gaps"]
    assert "1 of 2 active tokens never expire" in insider["gaps"]
    assert (
        "default-deny roles, each action granted explicitly (held: admin=2, trainer=1)"
        in (insider["mitigations"])
    )


def test_every_threat_carries_valid_atlas_or_owasp_ids(workspace):
    m = model(*workspace)
    assert len(m["threats"]) == 12
    for t in m["threats"]:
        assert t["atlas"] or t["owasp"], t["id"]
        assert all(ATLAS.fullmatch(i) for i in t["atlas"]), t["atlas"]
        assert all(OWASP.fullmatch(i) for i in t["owasp"]), t["owasp"]
        assert t["status"] in ("mitigated", "partial", "gap")
        assert t["boundary"] in {b["name"] for b in m["boundaries"]}
    assert sum(m["summary"].values()) == 12


def test_html_has_no_script_and_escapes_a_hostile_workspace_name(workspace):
    root, token = workspace
    configure(root, workspace='<script>alert("x")</script> | **x**')
    m = model(root, token)
    page = render_html(m)
    assert "<script" not in page.lower()
    assert (
        "<title>Threat model: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; | **x**</title>"
        in page
    )
    assert not re.search(r"""(src|href)\s*=|<link|@import|url\(""", page, re.IGNORECASE)
    md = render_markdown(m)
    assert md.startswith(
        "# Threat model: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; \\| **x**\n"
    )
    assert "<script" not in md


@pytest.mark.slow
def test_cli_threat_model_for_auditor_trainer_and_output_file(workspace, tmp_path):
    root, token = workspace
    with Workspace.open(root, token=token) as ws:
        _, auditor = principals.add(ws, "auditor", ["auditor"])
        _, trainer = principals.add(ws, "trainer", ["trainer"])
    assert run("audit", "verify", token=auditor, workspace=root).returncode == 0
    proc = run("threat-model", token=auditor, workspace=root)
    assert proc.returncode == 0, proc.stderr
    assert "## Trust boundaries\n\n- **data producer ↔ data gate**: contract, " in proc.stdout
    assert re.search(r"- mitigation: audit log verified at \d{4}-\d\d-\d\dT", proc.stdout)
    denied = run("threat-model", token=trainer, workspace=root)
    assert denied.returncode == 4
    assert "trainer may not posture.read (needs role: admin, auditor)" in denied.stderr
    out = tmp_path / "model.html"
    out.write_text("old")
    out.chmod(0o644)
    proc = run(
        "threat-model", "--format", "html", "--output", str(out), token=auditor, workspace=root
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().startswith("<!DOCTYPE html>\n")
