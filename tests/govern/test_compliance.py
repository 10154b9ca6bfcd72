"""Compliance controls: evidence from a real workspace, tampering and missing approvals turn the
matching control to fail, the framework filter, the three renderings and the CLI gate."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import delete, select, text, update

from tests.cli.test_cli import run
from tests.serve.conftest import Served, served, served_template  # noqa: F401

WEBHOOK = "http://127.0.0.1:9/hooks/s3cr3t-path"


def _sql(env: Served, statement: str, **params: Any) -> None:
    with env.open("admin") as ws, ws.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def _report(env: Served, who: str = "auditor", framework: str = "all", **kwargs: Any) -> Any:
    from aidlc.govern import compliance

    with env.open(who) as ws:
        return compliance.report(ws, framework, **kwargs)


def _by_id(rep: Any) -> dict[str, Any]:
    return {c.id: c for c in rep.controls}


@pytest.fixture
def env(served: Served) -> Served:  # noqa: F811 - the fixture imported above
    """A private copy of the served workspace (bc@1 production, bc@3 staging)."""
    return served


@pytest.fixture
def clean(env: Served) -> Served:
    """The served workspace made compliant: a webhook sink and a nightly schedule in aidlc.yaml,
    a scheduled monitor run done, zone-wide retention on every personal-data zone, and the
    admin who also held `inference` disabled."""
    from aidlc.core import principals
    from aidlc.core.meta import RetentionPolicyRecord
    from aidlc.govern.compliance import RETENTION_ZONES
    from aidlc.monitor import jobs

    path = env.root / "aidlc.yaml"
    config = yaml.safe_load(path.read_text())
    config["alerts"]["sinks"] = [{"type": "log"}, {"type": "webhook", "url": WEBHOOK}]
    config["monitor"]["schedules"] = [{"name": "nightly", "cron": "@daily", "model": "*"}]
    path.write_text(yaml.safe_dump(config))
    with env.open("monitor") as ws:
        assert jobs.run_all(ws) == ["nightly"]
    with env.open("admin") as ws:
        principals.disable(ws, "admin2")
        with ws.transaction() as session:
            for zone in RETENTION_ZONES:
                session.add(RetentionPolicyRecord(zone=zone, days=365, set_by="admin"))
    return env


# -- a compliant workspace --------------------------------------------------------------------------


def test_clean_workspace_passes_every_control_and_the_gate_exits_0(clean):
    proc = run("compliance", "check", "--json", token=clean.tokens["auditor"], workspace=clean.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"] == {
        "pass": 9,
        "fail": 0,
        "not_applicable": 0,
        "not_evaluated": 0,
        "ok": True,
    }
    controls = {c["id"]: c for c in report["controls"]}
    change = controls["change-management"]["evidence"]
    assert [
        (v["ref"], v["alias"], v["approved_by"], v["signature"]) for v in change["versions"]
    ] == [
        ("bc@1", "production", ["approver"], "statement verified"),
        ("bc@3", "staging", ["approver"], "statement verified"),
    ]
    monitoring = controls["monitoring"]["evidence"]
    assert monitoring["schedules"][0]["name"] == "nightly"
    assert monitoring["schedules"][0]["last_status"] == "ok"
    assert monitoring["production_models"][0]["model"] == "bc"
    assert monitoring["production_models"][0]["last_verdict"] is not None
    assert controls["incident-response"]["evidence"]["sinks"] == [
        {"type": "log", "min_severity": "INFO"},
        {"type": "webhook", "min_severity": "INFO"},
    ]
    assert controls["retention"]["evidence"]["zones_without_policy"] == []
    audit = controls["audit-integrity"]["evidence"]
    assert audit["first_bad_event"] is None and audit["tree_heads_checked"] > 0
    assert controls["encryption-at-rest"]["evidence"]["without_wrapped_key"] == 0
    # The webhook's secret path never reaches a report.
    assert "s3cr3t" not in proc.stdout
    assert report["generated_by"] == {"principal": "auditor", "roles": ["auditor"]}
    with clean.open("auditor") as ws:
        events = ws.audit.events(action="compliance.report")
    assert [(e.actor, e.resource, e.outcome) for e in events] == [
        ("auditor", "compliance:all", "ok")
    ]


def test_time_passing_fails_key_rotation_and_missed_monitor_runs(clean):
    later = datetime.now(UTC) + timedelta(days=400)
    controls = _by_id(_report(clean, now=later))
    keys = controls["key-management"]
    assert keys.status == "fail"
    assert keys.evidence["current_age_days"] >= 400 and keys.evidence["rotation_days"] == 365
    assert "aidlc keys rotate" in keys.summary
    monitoring = controls["monitoring"]
    assert monitoring.status == "fail"
    assert "schedule nightly missed its run due at" in monitoring.summary
    assert "outside the 24h window" in monitoring.summary
    # By then every token has expired (90-day lifetime), so none is live, stale or endless.
    access = controls["access-review"]
    assert (access.status, access.evidence["live_tokens"]) == ("pass", 0)


# -- tampering and missing approvals ---------------------------------------------------------------


def test_a_tampered_audit_row_fails_audit_integrity_and_the_gate(clean):
    with clean.open("auditor") as ws:
        seq = next(e.seq for e in ws.audit.events() if e.action == "model.approve")
    _sql(clean, "UPDATE audit_events SET actor = 'eve' WHERE seq = :s", s=seq)
    proc = run("compliance", "check", "--json", token=clean.tokens["auditor"], workspace=clean.root)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    controls = {c["id"]: c for c in report["controls"]}
    assert [c["id"] for c in report["controls"] if c["status"] != "pass"] == ["audit-integrity"]
    audit = controls["audit-integrity"]
    assert audit["evidence"]["first_bad_event"] == seq
    assert audit["summary"] == (
        f"the audit log does not verify: event {seq} was edited or moved "
        "(its columns disagree with its signed body)"
    )
    assert report["summary"]["ok"] is False


def _tamper_production_statement(env: Served) -> None:
    from aidlc.core.meta import ModelVersionRecord

    with env.open("admin") as ws, ws.db.transaction() as session:
        rec = session.execute(
            select(ModelVersionRecord).where(ModelVersionRecord.version == 1)
        ).scalar_one()
        statement = json.loads(rec.statement)
        first = sorted(statement["files"])[0]
        statement["files"][first] = "0" * 64
        rec.statement = json.dumps(statement, sort_keys=True)


@pytest.mark.parametrize("who", ["auditor", "approver"])
def test_a_tampered_production_model_fails_change_management(env, who):
    _tamper_production_statement(env)
    change = _by_id(_report(env, who))["change-management"]
    assert change.status == "fail"
    assert change.summary == "bc@1 (production) does not verify"
    row = change.evidence["versions"][0]
    assert row["ref"] == "bc@1"
    assert row["signature"] == ("failed: bc@1: its registry record is not signed by this workspace")
    assert change.evidence["versions"][1]["signature"] == (
        "verified" if who == "approver" else "statement verified"
    )


def _drop_approvals(env: Served) -> None:
    _sql(
        env,
        "DELETE FROM model_approvals WHERE version_id = "
        "(SELECT id FROM model_versions WHERE version = 1)",
    )


def _approved_by_trainer(env: Served) -> None:
    _sql(
        env,
        "UPDATE model_approvals SET created_by = 'trainer' WHERE version_id = "
        "(SELECT id FROM model_versions WHERE version = 1)",
    )


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_drop_approvals, "bc@1 (production) was never approved"),
        (_approved_by_trainer, "bc@1 (production) was approved only by its trainer or registrar"),
    ],
)
def test_production_without_an_independent_approval_fails_change_management(clean, edit, problem):
    from aidlc.govern.compliance import failed

    edit(clean)
    rep = _report(clean)
    assert [(c.id, c.status, c.summary) for c in failed(rep)] == [
        ("change-management", "fail", problem)
    ]
    assert rep.ok is False


def test_a_version_moved_to_production_by_sql_without_approval_fails(env):
    from aidlc.core.meta import ApprovalRecord, ModelAliasRecord, ModelVersionRecord

    with env.open("admin") as ws, ws.db.transaction() as session:
        rec = session.execute(
            select(ModelVersionRecord).where(ModelVersionRecord.version == 2)
        ).scalar_one()
        session.execute(delete(ApprovalRecord).where(ApprovalRecord.version_id == rec.id))
        rec.status = "registered"
        session.execute(
            update(ModelAliasRecord).where(ModelAliasRecord.alias == "production").values(version=2)
        )
    change = _by_id(_report(env))["change-management"]
    assert change.status == "fail"
    assert change.summary == (
        "bc@2 (production) was never approved; bc@2 (production) has status registered, "
        "not approved"
    )


# -- roles -----------------------------------------------------------------------------------------


def test_an_approver_cannot_evaluate_audit_integrity_so_the_gate_fails(clean):
    rep = _report(clean, "approver")
    controls = _by_id(rep)
    audit = controls["audit-integrity"]
    assert (audit.status, audit.summary) == (
        "not_evaluated",
        "not evaluated: needs the auditor role (audit.verify)",
    )
    assert controls["change-management"].evidence["verification"] == "full"
    assert [c.id for c in rep.controls if c.status != "pass"] == ["audit-integrity"]
    assert rep.ok is False
    # The approver is not recorded as denied: nothing was attempted.
    with clean.open("auditor") as ws:
        assert ws.audit.events(action="audit.verify") == []


def test_a_trainer_is_denied_with_exit_4(env):
    from aidlc.errors import PermissionDenied

    proc = run("compliance", "check", token=env.tokens["trainer"], workspace=env.root)
    assert proc.returncode == 4
    assert "trainer may not compliance.read (needs role: approver, auditor)" in proc.stderr
    with pytest.raises(PermissionDenied, match=r"trainer may not compliance\.read"):
        _report(env, "trainer")


# -- access review and retention evidence ----------------------------------------------------------


def test_stale_and_endless_tokens_and_a_combined_admin_fail_access_review(env):
    old = datetime.now(UTC) - timedelta(days=120)
    with env.open("admin") as ws, ws.db.transaction() as session:
        from aidlc.core.meta import PrincipalRecord, TokenRecord

        monitor = session.execute(
            select(PrincipalRecord).where(PrincipalRecord.name == "monitor")
        ).scalar_one()
        session.execute(
            update(TokenRecord)
            .where(TokenRecord.principal_id == monitor.id)
            .values(last_used_at=old, expires_at=None)
        )
        token_id = session.execute(
            select(TokenRecord.id).where(TokenRecord.principal_id == monitor.id)
        ).scalar_one()
    access = _by_id(_report(env))["access-review"]
    assert access.status == "fail"
    assert access.summary == (
        "1 live token(s) unused for over 90 days; 1 live token(s) never expire; "
        "admin combined with other roles: admin2"
    )
    assert [t["token"] for t in access.evidence["stale_tokens"]] == [token_id]
    assert [t["principal"] for t in access.evidence["tokens_without_expiry"]] == ["monitor"]
    assert access.evidence["admin_with_other_roles"] == ["admin2"]
    rows = {p["principal"]: p for p in access.evidence["principals"]}
    assert rows["admin2"]["roles"] == ["admin", "inference"]


def test_retention_lists_policies_and_holds_and_names_uncovered_zones(env):
    from aidlc.core.meta import LegalHoldRecord, RetentionPolicyRecord

    with env.open("admin") as ws, ws.transaction() as session:
        session.add(RetentionPolicyRecord(zone="raw", days=30, set_by="admin"))
        session.add(
            LegalHoldRecord(zone="raw", prefix="breast", reason="case 7", placed_by="admin")
        )
    retention = _by_id(_report(env, framework="gdpr"))["retention"]
    assert retention.status == "fail"
    assert retention.summary == "no zone-wide retention policy for validated, which hold data"
    assert [(p["zone"], p["days"]) for p in retention.evidence["policies"]] == [("raw", 30)]
    assert [(h["zone"], h["reason"]) for h in retention.evidence["legal_holds_active"]] == [
        ("raw", "case 7")
    ]
    assert [c.framework for c in retention.clauses] == ["gdpr"]


# -- frameworks and renderings ---------------------------------------------------------------------


def test_the_framework_filter_keeps_controls_with_a_clause_of_that_framework():
    from aidlc.errors import InvalidInput
    from aidlc.govern.compliance import CONTROLS, controls_for

    assert [c.id for c in controls_for("gdpr")] == [
        "encryption-at-rest",
        "audit-integrity",
        "retention",
        "erasure-capability",
    ]
    assert [c.id for c in controls_for("soc2")] == [
        "encryption-at-rest",
        "audit-integrity",
        "key-management",
        "change-management",
        "monitoring",
        "retention",
        "access-review",
        "incident-response",
    ]
    assert [c.id for c in controls_for("hipaa")] == [
        "encryption-at-rest",
        "audit-integrity",
        "retention",
        "access-review",
        "incident-response",
    ]
    assert "monitoring" not in [c.id for c in controls_for("pci")]
    assert len(controls_for("all")) == len(CONTROLS) == 9
    with pytest.raises(InvalidInput, match="unknown framework 'iso'"):
        controls_for("iso")


def test_a_filtered_report_shows_only_that_frameworks_clauses(clean):
    rep = _report(clean, framework="pci")
    assert rep.framework == "pci"
    assert {cl.framework for c in rep.controls for cl in c.clauses} == {"pci"}
    clauses = {c.id: [cl.id for cl in c.clauses] for c in rep.controls}
    assert clauses["audit-integrity"] == ["10.2", "10.3.2"]
    assert clauses["encryption-at-rest"] == ["3.5.1"]
    assert all(c.recheck[-1] == "aidlc compliance check --framework pci" for c in rep.controls)


def test_renderings_escape_evidence_and_html_is_self_contained(env, tmp_path):
    from aidlc.core.meta import LegalHoldRecord
    from aidlc.govern.compliance import render

    hostile = "<script>alert(1)</script> | `x`"
    with env.open("admin") as ws, ws.transaction() as session:
        session.add(LegalHoldRecord(zone="raw", prefix="", reason=hostile, placed_by="admin"))
    rep = _report(env, framework="gdpr")
    doc = json.loads(render(rep, "json"))
    assert doc["schema"] == "aidlc-compliance-report/1"
    assert list(doc) == [
        "schema",
        "framework",
        "generated_at",
        "workspace",
        "generated_by",
        "summary",
        "controls",
    ]
    assert doc["framework"] == "gdpr"
    assert doc["workspace"]["name"] == "ws"
    assert list(doc["controls"][0]) == [
        "id",
        "title",
        "status",
        "summary",
        "clauses",
        "evidence",
        "recheck",
    ]
    page = render(rep, "html")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "src=" not in page and "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page
    assert page.count("<section id=") == 4
    markdown = render(rep, "md")
    assert "| retention | fail | no zone-wide retention policy for raw, validated" in markdown
    assert "GDPR (Regulation (EU) 2016/679) Art. 17: Right to erasure" in markdown
    assert hostile in markdown  # inside a fenced JSON block, where Markdown shows it as text

    out = tmp_path / "report.html"
    out.write_text("old")
    out.chmod(0o644)
    proc = run(
        "compliance",
        "report",
        "--framework",
        "gdpr",
        "--format",
        "html",
        "--output",
        str(out),
        token=env.tokens["approver"],
        workspace=env.root,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    written = out.read_text()
    assert written.startswith("<!DOCTYPE html>") and "&lt;script&gt;" in written
    assert "Wrote" in proc.stderr and "not evaluated" in proc.stderr
