"""`aidlc data ...` as a user runs it: exit codes 0 accepted, 1 rejected, 2 unusable."""

from __future__ import annotations

import json

import yaml

from tests.cli.test_cli import run
from tests.data.test_ingest import BAD, CONTRACT, GOOD


def test_ingest_validate_versions_show_and_diff_from_the_cli(local_env, tmp_path):
    root, steward = local_env.root, local_env.tokens["steward"]
    contract = tmp_path / "contract.yaml"
    contract.write_text(yaml.safe_dump(CONTRACT))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text(BAD)
    dry = run(
        "data",
        "validate",
        str(bad),
        "--contract",
        str(contract),
        "--json",
        token=steward,
        workspace=root,
    )
    assert dry.returncode == 1 and json.loads(dry.stdout)["passed"] is False
    first = run(
        "data",
        "ingest",
        str(good),
        "--dataset",
        "customers",
        "--contract",
        str(contract),
        "--json",
        token=steward,
        workspace=root,
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["ref"] == "customers@1"
    html = tmp_path / "report.html"
    second = run(
        "data",
        "ingest",
        str(bad),
        "-d",
        "customers",
        "--html",
        str(html),
        token=steward,
        workspace=root,
    )
    assert second.returncode == 1 and "rejected" in second.stdout
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page and "FAIL" in page
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    third = run("data", "ingest", str(empty), "-d", "customers", token=steward, workspace=root)
    assert third.returncode == 2 and "empty" in third.stdout
    listed = json.loads(
        run("data", "versions", "customers", "--json", token=steward, workspace=root).stdout
    )
    assert [v["ref"] for v in listed] == ["customers@1"]
    shown = json.loads(
        run("data", "show", "customers@1", "--json", token=steward, workspace=root).stdout
    )
    assert shown["source_name"] == "good.csv" and "profile" in shown
    assert run("data", "show", "customers@1", token=steward, workspace=root).returncode == 0
    diff = json.loads(
        run("data", "diff", "customers@1", str(bad), "--json", token=steward, workspace=root).stdout
    )
    assert {c["column"] for c in diff["columns"]} >= {"age", "plan", "spend"}
    ingests = json.loads(run("data", "ingests", "--json", token=steward, workspace=root).stdout)
    assert [i["outcome"] for i in ingests] == ["accepted", "rejected", "unusable"]
    alerts = json.loads(run("alerts", "list", "--json", token=steward, workspace=root).stdout)
    assert len(alerts) == 2
    missing = run(
        "data",
        "ingest",
        str(tmp_path / "nope.csv"),
        "-d",
        "customers",
        token=steward,
        workspace=root,
    )
    assert missing.returncode == 2


def test_contract_infer_drafts_a_contract_that_the_sample_passes(local_env, tmp_path):
    root, steward = local_env.root, local_env.tokens["steward"]
    sample = tmp_path / "sample.csv"
    sample.write_text(GOOD)
    drafted = tmp_path / "drafted.yaml"
    assert run("data", "contract", "infer", str(sample), "-o", str(drafted)).returncode == 0
    check = run(
        "data", "validate", str(sample), "--contract", str(drafted), token=steward, workspace=root
    )
    assert check.returncode == 0, check.stdout + check.stderr
    bad_contract = tmp_path / "bad.yaml"
    bad_contract.write_text("columns: [oops")
    refused = run(
        "data",
        "validate",
        str(sample),
        "--contract",
        str(bad_contract),
        token=steward,
        workspace=root,
    )
    assert refused.returncode == 2 and "line" in refused.stderr


def test_watch_moves_files_to_processed_or_rejected(local_env, tmp_path):
    root, steward = local_env.root, local_env.tokens["steward"]
    contract = tmp_path / "contract.yaml"
    contract.write_text(yaml.safe_dump(CONTRACT))
    assert (
        run(
            "data", "contract", "set", "customers", str(contract), token=steward, workspace=root
        ).returncode
        == 0
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text(GOOD)
    (inbox / "bad.csv").write_text(BAD)
    proc = run(
        "data", "watch", str(inbox), "-d", "customers", "--once", token=steward, workspace=root
    )
    assert proc.returncode == 0, proc.stderr
    assert (inbox / "processed" / "good.csv").is_file()
    assert (inbox / "rejected" / "bad.csv").is_file()
    assert not (inbox / "good.csv").exists()
