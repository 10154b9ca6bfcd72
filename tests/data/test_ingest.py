"""The gate end to end: raw first, then validation; accepted versions, quarantine, alerts."""

from __future__ import annotations

import gzip
import hashlib
import io
import json

import polars as pl
import pytest

from aidlc.core import objects
from aidlc.core.alerts import list_alerts
from aidlc.data import versions
from aidlc.data.contract import parse_contract
from aidlc.data.ingest import ingest, subject_digest
from aidlc.errors import NotFound, PermissionDenied

CONTRACT = {
    "format": 1,
    "on_failure": "reject_file",
    "columns": [
        {
            "name": "customer_id",
            "dtype": "string",
            "nullable": False,
            "unique": True,
            "regex": "^C-[0-9]{4}$",
            "classification": "pii",
            "subject_id": True,
        },
        {"name": "age", "dtype": "int", "nullable": False, "min": 18, "max": 120},
        {"name": "plan", "dtype": "category", "allowed": ["basic", "pro"]},
        {"name": "spend", "dtype": "float", "min": 0},
    ],
    "table": {"min_rows": 3, "no_duplicate_rows": True},
}

GOOD = (
    "customer_id,age,plan,spend\n"
    "C-0001,34,basic,10.5\nC-0002,51,pro,99.0\nC-0003,27,basic,0\nC-0004,45,pro,12.25\n"
)
BAD = (
    "customer_id,age,plan,spend\n"
    "C-0005,34,basic,10.5\nC-0006,17,pro,99.0\nC-0007,27,gold,0\nC-0008,45,pro,-1\nC-0009,50,basic,5\n"
)


def contract(**changes):
    body = json.loads(json.dumps(CONTRACT))
    body.update(changes)
    return parse_contract(body, source="test")


def write(tmp_path, name, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_bytes(ws, ref: str) -> bytes:
    return objects.get_ref(ws, ref)


def test_an_accepted_file_becomes_version_1_with_its_provenance(env, tmp_path):
    steward = env.open("steward")
    path = write(tmp_path, "customers.csv", GOOD)
    result = ingest(steward, path, "customers", contract=contract())
    assert (result.outcome, result.version, result.exit_code) == ("accepted", 1, 0)
    assert raw_bytes(steward, result.raw_object) == path.read_bytes()
    version = versions.resolve(steward, "customers@latest")
    assert version.source_sha256 == sha(path) and version.rows == 4
    trainer = env.open("trainer")
    df = versions.read_version(trainer, "customers@1")
    assert df["age"].dtype == pl.Int64 and df["age"].to_list() == [34, 51, 27, 45]
    manifest = json.loads(raw_bytes(steward, version.subjects_object))
    assert subject_digest(steward, "C-0002") in manifest["hmac_sha256"]
    assert "C-0002" not in json.dumps(manifest)
    profile = versions.read_profile(steward, "customers@1")
    assert profile.columns["age"].count == 4


def test_a_rejected_file_is_quarantined_byte_for_byte_with_report_and_alert(env, tmp_path):
    steward = env.open("steward")
    ingest(steward, write(tmp_path, "a.csv", GOOD), "customers", contract=contract())
    path = write(tmp_path, "b.csv", BAD)
    result = ingest(steward, path, "customers")
    assert (result.outcome, result.exit_code, result.version) == ("rejected", 1, None)
    assert raw_bytes(steward, result.quarantine_object) == path.read_bytes()
    failing = {
        (c["check"], c["column"]): c for c in result.report["checks"] if c["passed"] is False
    }
    assert failing[("min", "age")]["failing_rows"] == 1 and failing[("min", "age")][
        "row_indices"
    ] == [1]
    assert failing[("allowed", "plan")]["row_indices"] == [2]
    assert failing[("min", "spend")]["row_indices"] == [3]
    assert [a.source for a in list_alerts(steward)] == ["data-gate"]
    assert len(versions.list_versions(steward, "customers")) == 1
    auditor = env.open("auditor")
    events = auditor.audit.events(action="data.ingest")
    assert [e.details["outcome"] for e in events] == ["accepted", "rejected"]
    assert auditor.audit.verify().ok


def test_quarantine_rows_keeps_the_valid_rows_and_the_reasons(env, tmp_path):
    steward = env.open("steward")
    result = ingest(
        steward,
        write(tmp_path, "b.csv", BAD),
        "mixed",
        contract=contract(on_failure="quarantine_rows"),
    )
    assert (result.outcome, result.version, result.failed_rows) == ("partial", 1, 3)
    kept = versions.read_version(steward, "mixed@1")
    assert kept["customer_id"].to_list() == ["C-0005", "C-0009"]
    rejected = pl.read_parquet(io.BytesIO(raw_bytes(steward, result.quarantine_object)))
    assert rejected["row"].to_list() == [1, 2, 3]
    assert all(r for r in rejected["reasons"].to_list())


def test_later_ingests_use_the_current_contract_and_set_replaces_it(env, tmp_path):
    steward = env.open("steward")
    ingest(steward, write(tmp_path, "a.csv", GOOD), "customers", contract=contract())
    refused = ingest(
        steward,
        write(tmp_path, "b.csv", GOOD),
        "customers",
        contract=contract(on_failure="quarantine_rows"),
    )
    assert refused.outcome == "unusable" and "contract set" in refused.reason
    relaxed = contract(
        columns=[{**c, "min": 0} if c["name"] == "age" else c for c in CONTRACT["columns"]]
    )
    assert versions.set_contract(steward, "customers", relaxed) == 2
    more = GOOD.replace("C-000", "C-100")
    result = ingest(steward, write(tmp_path, "c.csv", more.replace(",34,", ",16,")), "customers")
    assert result.outcome == "accepted"
    assert versions.resolve(steward, "customers@2").contract_version == 2
    assert versions.contract_version(steward, "customers", 1).version == 1


def test_a_first_ingest_without_a_contract_is_a_usage_error_and_keeps_the_bytes(env, tmp_path):
    steward = env.open("steward")
    result = ingest(steward, write(tmp_path, "a.csv", GOOD), "newset")
    assert (result.outcome, result.exit_code) == ("unusable", 2)
    assert "--contract" in result.reason
    assert raw_bytes(steward, result.raw_object) == GOOD.encode()


def test_the_same_rows_again_are_duplicates_across_versions(env, tmp_path):
    steward = env.open("steward")
    ingest(steward, write(tmp_path, "a.csv", GOOD), "customers", contract=contract())
    again = ingest(steward, write(tmp_path, "a2.csv", GOOD), "customers")
    assert again.outcome == "rejected"
    check = next(
        c for c in again.report["checks"] if c["check"] == "duplicate_rows_across_versions"
    )
    assert check["failing_rows"] == 4


def test_training_side_reads_refuse_anything_but_validated_versions(env, tmp_path):
    steward = env.open("steward")
    ingest(steward, write(tmp_path, "b.csv", BAD), "customers", contract=contract())
    trainer = env.open("trainer")
    with pytest.raises(NotFound, match="no validated version"):
        versions.read_version(trainer, "customers@latest")
    with pytest.raises(NotFound):
        versions.read_version(trainer, "nothing@1")
    with pytest.raises(PermissionDenied):
        versions.read_version(env.open("inference"), "customers@latest")
    with pytest.raises(PermissionDenied):
        objects.list_objects(trainer, "raw")


HOSTILE = {
    "empty.csv": b"",
    "header_only.csv": b"customer_id,age,plan,spend\n",
    "truncated.parquet": None,  # filled in below
    "semicolons.csv": GOOD.replace(",", ";").encode(),
    "ragged.csv": b"customer_id,age,plan,spend\nC-0001,34,basic,1,extra,more\nC-0002\n",
    "latin1.csv": "customer_id,age,plan,spend\nC-0001,34,b\xe1sic,1\n".encode("latin-1"),
    "wrong_types.csv": b"customer_id,age,plan,spend\nC-0001,old,basic,x\nC-0002,40,pro,1\nC-0003,41,pro,2\n",
    "mixed.jsonl": b'{"customer_id":"C-0001","age":34,"plan":"basic","spend":1}\n'
    b'{"customer_id":"C-0002","age":"forty","plan":"pro","spend":2}\n'
    b'{"customer_id":"C-0003","age":40,"plan":"pro","spend":[1]}\n',
    "not_json.jsonl": b'{"customer_id": "C-1"\nnot json at all\n',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_get_a_clear_outcome_and_keep_their_bytes(local_env, tmp_path, name):
    steward = local_env.open("steward")
    data = HOSTILE[name]
    if data is None:
        buf = io.BytesIO()
        pl.DataFrame({"customer_id": ["C-0001"] * 100, "age": list(range(100))}).write_parquet(buf)
        data = buf.getvalue()[: len(buf.getvalue()) // 2]
    path = write(tmp_path, name, data)
    result = ingest(steward, path, "customers", contract=contract())
    assert result.outcome in ("rejected", "unusable")
    assert result.exit_code in (1, 2)
    assert result.reason
    assert raw_bytes(steward, result.raw_object) == data
    assert raw_bytes(steward, result.quarantine_object) == data


def test_a_gzip_bomb_stops_at_the_decompressed_limit(make_env, tmp_path):
    env = make_env("sqlite", data={"max_decompressed_bytes": 1 << 20})
    steward = env.open("steward")
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"customer_id,age,plan,spend\n")
        for _ in range(64):
            out.write(b"0" * (1 << 20))
    assert path.stat().st_size < 200_000
    result = ingest(steward, path, "customers", contract=contract())
    assert result.outcome == "unusable" and "gzip bomb" in result.reason
    assert raw_bytes(steward, result.raw_object) == path.read_bytes()


@pytest.mark.slow
def test_a_100_mb_single_field_is_refused_cleanly(local_env, tmp_path):
    steward = local_env.open("steward")
    path = tmp_path / "huge.csv"
    with path.open("wb") as out:
        out.write(b"customer_id,age,plan,spend\nC-0001,34,basic,")
        out.write(b"9" * (100 << 20))
        out.write(b"\n")
    result = ingest(steward, path, "customers", contract=contract())
    assert result.outcome in ("rejected", "unusable") and result.reason
    zone, rest = result.raw_object.split("/", 1)
    object_id, version = rest.rsplit("@", 1)
    assert objects.info(steward, zone, object_id, int(version)).sha256 == sha(path)


def test_gzip_csv_parquet_and_jsonl_are_all_accepted(local_env, tmp_path):
    steward = local_env.open("steward")
    df = pl.read_csv(io.StringIO(GOOD), infer_schema=False)
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(GOOD.encode()))
    assert ingest(steward, gz, "ds", contract=contract()).outcome == "accepted"
    pq = tmp_path / "b.parquet"
    df.with_columns(
        customer_id=pl.col("customer_id").str.replace("C-0", "C-1"),
        age=pl.col("age").cast(pl.Int64),
        spend=pl.col("spend").cast(pl.Float64),
    ).write_parquet(pq)
    assert ingest(steward, pq, "ds").outcome == "accepted"
    jl = tmp_path / "c.jsonl"
    df.with_columns(
        customer_id=pl.col("customer_id").str.replace("C-0", "C-2"),
        age=pl.col("age").cast(pl.Int64),
    ).write_ndjson(jl)
    result = ingest(steward, jl, "ds")
    assert result.outcome == "accepted", result.report
    assert [v.version for v in versions.list_versions(steward, "ds")] == [1, 2, 3]


def test_arbitrary_bytes_never_escape_the_gate(local_env, tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    steward = local_env.open("steward")
    versions.set_contract(steward, "fuzz", contract())
    counter = iter(range(10_000))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        data=st.one_of(
            st.binary(max_size=400),
            st.text(max_size=300).map(lambda t: ("customer_id,age,plan,spend\n" + t).encode()),
        ),
        suffix=st.sampled_from([".csv", ".jsonl", ".parquet", ".csv.gz"]),
    )
    def offer(data: bytes, suffix: str) -> None:
        path = tmp_path / f"f{next(counter)}{suffix}"
        path.write_bytes(data)
        result = ingest(steward, path, "fuzz")
        assert result.outcome in ("accepted", "partial", "rejected", "unusable")
        assert raw_bytes(steward, result.raw_object) == data

    offer()
