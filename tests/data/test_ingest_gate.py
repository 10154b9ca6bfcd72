"""The gate's accept/quarantine decision at its edges: table checks that forbid keeping rows,
files whose every row fails, duplicates of earlier versions (enforced or informational), the
size limit, and what the audit trail and alerts say about each outcome."""

from __future__ import annotations

import io

import polars as pl
import pytest

from aidlc.core import objects
from aidlc.core.alerts import list_alerts
from aidlc.data import versions
from aidlc.data.ingest import ingest
from aidlc.errors import InvalidInput
from tests.data.test_ingest import BAD, CONTRACT, GOOD, contract, write

NEW = "customer_id,age,plan,spend\nC-0011,30,basic,1\n"
LOOSE_TABLE = {"min_rows": 1, "no_duplicate_rows": True}


def _events(env):
    return env.open("auditor").audit.events(action="data.ingest")


def test_a_failed_table_check_rejects_the_whole_file_even_when_rows_may_be_quarantined(
    local_env, tmp_path
):
    steward = local_env.open("steward")
    path = write(tmp_path, "b.csv", BAD)
    result = ingest(
        steward,
        path,
        "mixed",
        contract=contract(on_failure="quarantine_rows", table={"min_rows": 50}),
    )
    assert (result.outcome, result.version, result.exit_code) == ("rejected", None, 1)
    assert objects.get_ref(steward, result.quarantine_object) == path.read_bytes()
    assert versions.list_versions(steward, "mixed") == []


def test_a_file_whose_every_row_fails_is_rejected_not_kept_empty(local_env, tmp_path):
    steward = local_env.open("steward")
    every_row_bad = "customer_id,age,plan,spend\nC-0006,17,pro,99.0\nC-0007,27,gold,0\n"
    result = ingest(
        steward,
        write(tmp_path, "b.csv", every_row_bad),
        "mixed",
        contract=contract(on_failure="quarantine_rows", table=LOOSE_TABLE),
    )
    assert (result.outcome, result.failed_rows, result.rows) == ("rejected", 2, 2)
    assert "rows_kept" not in result.report and result.reason
    assert versions.list_versions(steward, "mixed") == []


def test_reject_file_quarantines_the_file_when_a_single_row_fails(local_env, tmp_path):
    steward = local_env.open("steward")
    one_bad = GOOD + "C-0005,17,pro,1\n"
    result = ingest(steward, write(tmp_path, "b.csv", one_bad), "ds", contract=contract())
    assert (result.outcome, result.failed_rows) == ("rejected", 1)
    assert result.reason.startswith("1 ") or "age" in result.reason


def test_partial_keeps_the_good_rows_as_a_version_and_says_how_many(local_env, tmp_path):
    steward = local_env.open("steward")
    result = ingest(
        steward,
        write(tmp_path, "b.csv", BAD),
        "mixed",
        contract=contract(on_failure="quarantine_rows"),
    )
    assert (result.outcome, result.exit_code, result.rows, result.failed_rows) == (
        "partial", 0, 5, 3
    )  # fmt: skip
    assert (result.report["rows_kept"], result.report["rows_quarantined"]) == (2, 3)
    version = versions.resolve(steward, "mixed@1")
    assert version.rows == 2 and version.ingest_id == result.ingest_id
    profile = versions.read_profile(steward, "mixed@1")
    assert profile.columns["age"].count == 2 and profile.columns["plan"].kind == "categorical"
    hashes = pl.read_parquet(io.BytesIO(objects.get_ref(steward, version.hashes_object)))
    assert hashes.height == 2  # only the kept rows count as present in the dataset
    [event] = _events(local_env)
    assert event.outcome == "ok" and event.resource == "dataset:mixed@1"
    assert event.details["outcome"] == "partial" and event.details["failed_rows"] == 3
    assert list_alerts(steward) == []


def test_rows_seen_in_an_earlier_version_are_quarantined_with_the_other_failures(
    local_env, tmp_path
):
    steward = local_env.open("steward")
    rows = contract(on_failure="quarantine_rows", table=LOOSE_TABLE)
    first = ingest(steward, write(tmp_path, "a.csv", GOOD), "ds", contract=rows)
    assert first.outcome == "accepted"
    again = GOOD + NEW.split("\n", 1)[1] + "C-0012,17,basic,1\n"  # 4 repeats, 1 new, 1 bad
    result = ingest(steward, write(tmp_path, "b.csv", again), "ds")
    assert (result.outcome, result.version, result.failed_rows) == ("partial", 2, 5)
    kept = versions.read_version(steward, "ds@2")
    assert kept["customer_id"].to_list() == ["C-0011"]
    check = next(
        c for c in result.report["checks"] if c["check"] == "duplicate_rows_across_versions"
    )
    assert (check["passed"], check["observed"], check["failing_rows"]) == (False, 4, 4)
    assert check["threshold"] == 0 and check["row_indices"] == [0, 1, 2, 3]
    rejected = pl.read_parquet(io.BytesIO(objects.get_ref(steward, result.quarantine_object)))
    assert rejected["row"].to_list() == [0, 1, 2, 3, 5]


def test_duplicates_across_versions_are_only_reported_when_not_enforced(local_env, tmp_path):
    steward = local_env.open("steward")
    lenient = contract(table={"min_rows": 1, "no_duplicate_rows": False})
    ingest(steward, write(tmp_path, "a.csv", GOOD), "ds", contract=lenient)
    result = ingest(steward, write(tmp_path, "b.csv", GOOD), "ds")
    assert (result.outcome, result.version) == ("accepted", 2)
    check = next(
        c for c in result.report["checks"] if c["check"] == "duplicate_rows_across_versions"
    )
    assert (check["passed"], check["observed"], check["failing_rows"]) == (True, 4, 0)
    assert check["threshold"] is None and check["row_indices"] == []
    assert "informational" in check["message"] and check["message"].startswith("4 rows")
    assert versions.resolve(steward, "ds@2").rows == 4


def test_new_rows_are_no_duplicates_and_the_first_version_has_no_such_check(local_env, tmp_path):
    steward = local_env.open("steward")
    first = ingest(steward, write(tmp_path, "a.csv", GOOD), "ds", contract=contract())
    assert "duplicate_rows_across_versions" not in {c["check"] for c in first.report["checks"]}
    fresh = GOOD.replace("C-000", "C-100")
    result = ingest(steward, write(tmp_path, "b.csv", fresh), "ds")
    assert result.outcome == "accepted"
    check = next(
        c for c in result.report["checks"] if c["check"] == "duplicate_rows_across_versions"
    )
    assert (check["passed"], check["observed"]) == (True, 0)
    assert "informational" not in check["message"]


def test_the_contract_given_again_for_an_existing_dataset_is_accepted(local_env, tmp_path):
    steward = local_env.open("steward")
    ingest(steward, write(tmp_path, "a.csv", GOOD), "ds", contract=contract())
    fresh = GOOD.replace("C-000", "C-100")
    result = ingest(steward, write(tmp_path, "b.csv", fresh), "ds", contract=contract())
    assert (result.outcome, result.version) == ("accepted", 2)
    assert versions.resolve(steward, "ds@2").contract_version == 1


def test_a_file_at_the_size_limit_is_read_and_one_byte_more_is_refused(make_env, tmp_path):
    data = GOOD.encode()
    env = make_env("sqlite", data={"max_file_bytes": 1024})
    steward = env.open("steward")
    padded = data + b" " * (1024 - len(data))
    result = ingest(steward, write(tmp_path, "a.csv", padded), "ds", contract=contract())
    assert result.outcome in ("accepted", "rejected", "unusable") and result.ingest_id > 0
    with pytest.raises(InvalidInput, match=r"b\.csv is 1025 bytes; the limit is 1024"):
        ingest(steward, write(tmp_path, "b.csv", padded + b" "), "ds", contract=contract())
    assert [e.details["source"] for e in _events(env)] == ["a.csv"]


def test_what_is_not_a_readable_file_is_refused_before_anything_is_stored(local_env, tmp_path):
    steward = local_env.open("steward")
    with pytest.raises(InvalidInput, match="cannot read"):
        ingest(steward, tmp_path / "missing.csv", "ds", contract=contract())
    with pytest.raises(InvalidInput, match="is not a regular file"):
        ingest(steward, tmp_path, "ds", contract=contract())
    assert objects.list_objects(steward, "raw") == []


def test_an_unusable_file_is_quarantined_with_its_error_alerted_and_audited(local_env, tmp_path):
    steward = local_env.open("steward")
    path = write(tmp_path, "a.csv", GOOD)
    result = ingest(steward, path, "newset", source_name="upload.csv")
    assert (result.outcome, result.exit_code, result.version) == ("unusable", 2, None)
    assert result.report == {"passed": False, "error": result.reason}
    assert result.reason == (
        "dataset 'newset' is new: name its data contract with --contract FILE "
        "(draft one with `aidlc data contract infer FILE`)"
    )
    assert result.source_name == "upload.csv" and result.ingest_id > 0
    assert objects.get_ref(steward, result.quarantine_object) == path.read_bytes()
    [event] = _events(local_env)
    assert event.outcome == "error" and event.resource == "dataset:newset"
    assert event.details["outcome"] == "unusable" and event.details["source"] == "upload.csv"
    [alert] = list_alerts(steward)
    assert alert.source == "data-gate" and "upload.csv unusable" in alert.title


def test_an_accepted_file_is_audited_as_ok_without_an_alert(local_env, tmp_path):
    steward = local_env.open("steward")
    result = ingest(steward, write(tmp_path, "a.csv", GOOD), "ds", contract=contract())
    [event] = _events(local_env)
    assert event.outcome == "ok" and event.resource == "dataset:ds@1"
    assert event.details["rows"] == 4 and event.details["failed_rows"] == 0
    assert event.details["contract_version"] == 1 and event.details["sha256"] == (
        result.source_sha256
    )
    assert list_alerts(steward) == []
    assert CONTRACT["on_failure"] == "reject_file"
