"""`aidlc monitor ...` as users run it: real processes, exit codes, messages, files."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import run
from tests.monitor.helpers import add_principal, serve_rows, shifted
from tests.serve.conftest import Served

DRIFT = {"mean_radius": 1.4, "mean_perimeter": 1.4, "mean_area": 1.8}


def _rows() -> list[dict[str, Any]]:
    from aidlc.demo import breast_cancer

    return breast_cancer.frame().drop(["patient_id", "diagnosis"]).to_dicts()


def test_monitor_commands_end_to_end(served: Served, tmp_path: Path) -> None:
    def aidlc(*args: str, who: str = "monitor") -> Any:
        return run(*args, token=served.tokens[who], workspace=served.root)

    empty = aidlc("monitor", "run", "--json")
    assert empty.returncode == 0, empty.stderr
    (first,) = json.loads(empty.stdout)
    assert first["verdict"] == "insufficient" and first["rows"] == 0

    serve_rows(served, shifted(_rows()[:300], DRIFT))
    breach = aidlc("monitor", "run", "--model", "bc", "--window", "2h")
    assert breach.returncode == 1, breach.stderr  # a breach fails a CI step or a cron job
    said = " ".join(breach.stdout.split())
    assert "breach over 300 predictions" in said and "mean_radius" in said
    assert "breach feature-drift: drift_score" in said

    listed = json.loads(aidlc("monitor", "reports", "--json").stdout)
    assert [r["verdict"] for r in listed] == ["breach", "insufficient"]
    report_id = listed[0]["id"]
    shown = json.loads(aidlc("monitor", "show", str(report_id)).stdout)
    assert shown["model"] == "bc" and "mean_radius" in shown["drift"]["drifted"]
    page = tmp_path / "report.html"
    wrote = aidlc("monitor", "show", str(report_id), "--html", str(page), who="auditor")
    assert wrote.returncode == 0, wrote.stderr
    assert page.read_text().startswith("<!doctype html>")
    assert stat.S_IMODE(page.stat().st_mode) == 0o600

    alerts = json.loads(aidlc("alerts", "list", "--source", "monitor", "--json").stdout)
    assert {a["severity"] for a in alerts} >= {"WARNING"}
    assert any("drift in" in a["title"] for a in alerts)


def test_policy_retrain_and_kpi_commands(served: Served) -> None:
    def aidlc(*args: str, who: str) -> Any:
        return run(*args, token=served.tokens[who], workspace=served.root)

    none = aidlc("monitor", "policy", "bc", who="approver")
    assert none.returncode == 0 and "no retraining policy" in none.stdout
    denied = aidlc("monitor", "policy", "bc", "--action", "canary", who="trainer")
    assert denied.returncode == 4 and "retrain.policy" in denied.stderr
    bad = aidlc("monitor", "policy", "bc", "--action", "sometimes", who="approver")
    assert bad.returncode == 2 and "action must be one of approval, canary, none" in bad.stderr
    ok = aidlc(
        "monitor", "policy", "bc", "--action", "canary", "--canary-percent", "20",
        "--trigger", "drift", "--json", who="approver",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["triggers"] == ["drift"]

    usage = aidlc("monitor", "retrain", who="trainer")
    assert usage.returncode == 2 and "give a model name or --pending" in usage.stderr
    nothing = aidlc("monitor", "retrain", "--pending", who="trainer")
    assert nothing.returncode == 0 and "no pending retraining requests" in nothing.stdout
    now = aidlc("monitor", "retrain", "bc", "--json", who="trainer")
    assert now.returncode == 0, now.stderr
    (request,) = json.loads(now.stdout)
    assert request["status"] == "registered" and request["candidate_version"] == 4

    kpi = aidlc("monitor", "kpi", "bc", "revenue=12.5", "visits=3", who="inference")
    assert kpi.returncode == 0 and "recorded 2 KPI value(s)" in kpi.stdout
    junk = aidlc("monitor", "kpi", "bc", "revenue", who="inference")
    assert junk.returncode == 2 and "is not KPI=NUMBER" in junk.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("monitor", "run", "--window", "forever"), 2, "is not a duration"),
        (("monitor", "run", "--window", "0h"), 2, "between 1 second and 366 days"),
        (("monitor", "run", "--model", "../etc"), 2, ""),
        (("monitor", "run", "--model", "nosuch"), 5, "nosuch"),
        (("monitor", "show", "999"), 5, "no monitor report 999"),
        (("monitor", "show", "0"), 2, ""),
        (("monitor", "show", "abc"), 2, ""),
    ],
)
def test_bad_arguments_get_clear_errors(
    served_template: Served, args: tuple[str, ...], code: int, message: str
) -> None:
    proc = run(*args, token=served_template.tokens["monitor"], workspace=served_template.root)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert message in proc.stderr


def test_a_bad_schedule_in_the_config_stops_aidlc_with_the_field(served: Served) -> None:
    import yaml

    config = served.root / "aidlc.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["monitor"] = {"schedules": [{"name": "x", "cron": "61 * * * *"}]}
    config.write_text(yaml.safe_dump(doc))
    proc = run("monitor", "reports", token=served.tokens["monitor"], workspace=served.root)
    assert proc.returncode == 2
    assert "monitor.schedules.0.cron" in proc.stderr and "61 is out of range 0-59" in proc.stderr


def test_schedule_once_runs_the_jobs_of_the_principal(served: Served) -> None:
    import yaml

    add_principal(served, "retrainer", ["monitor", "trainer"])
    config = served.root / "aidlc.yaml"
    doc = yaml.safe_load(config.read_text())
    doc["monitor"] = {"schedules": [{"name": "hourly", "cron": "cron(0 * * * ? *)"}]}
    config.write_text(yaml.safe_dump(doc))
    proc = run("monitor", "schedule", "--once", token=served.tokens["retrainer"],
               workspace=served.root)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ran hourly, retrain-pending" in proc.stdout
    only = run("monitor", "schedule", "--once", token=served.tokens["monitor"],
               workspace=served.root)  # fmt: skip
    assert "ran hourly" in only.stdout and "retrain-pending" not in only.stdout
