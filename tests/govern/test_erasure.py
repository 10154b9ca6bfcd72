"""Erasure of a data subject: nothing of them left in any object, a certificate that verifies,
successor versions, models marked for retraining, holds respected, bad callers refused."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aidlc.errors import InvalidInput, PermissionDenied
from tests.serve.conftest import Served, served, served_template  # noqa: F401

SUBJECT = "P-00007"  # in the accepted file, so in breast-cancer@1 and the models trained on it
REJECTED_SUBJECT = "P-00450"  # only in the rejected batch: raw and quarantine
READERS = {
    "raw": "steward",
    "quarantine": "steward",
    "validated": "steward",
    "models": "trainer",
    "predictions": "monitor",
    "reports": "auditor",
}


def _row(subject: str) -> dict[str, Any]:
    from aidlc.demo import breast_cancer

    df = breast_cancer.frame()
    return df.filter(pl.col("patient_id") == subject).to_dicts()[0]


def _distinctive(subject: str) -> dict[str, float]:
    """The subject's feature values that no other patient shares: finding one means a trace."""
    from aidlc.demo import breast_cancer

    df = breast_cancer.frame()
    row = _row(subject)
    return {
        c: row[c]
        for c in df.columns[1:-1]
        if df.get_column(c).filter(df.get_column(c) == row[c]).len() == 1
    }


def _cells(df: pl.DataFrame, subject: str, distinctive: dict[str, float]) -> list[str]:
    found = []
    for name, dtype in df.schema.items():
        column = df.get_column(name)
        if dtype == pl.String:
            if (column == subject).any():
                found.append(f"{name}={subject}")
            if name == "inputs":
                for cell in column.drop_nulls().to_list():
                    found += _json_hits(json.loads(cell), subject, distinctive)
        if name in distinctive and dtype.is_numeric() and (column == distinctive[name]).any():
            found.append(f"{name}={distinctive[name]}")
    return found


def _json_hits(value: Any, subject: str, distinctive: dict[str, float], key: str = "") -> list[str]:
    if isinstance(value, dict):
        return [h for k, v in value.items() for h in _json_hits(v, subject, distinctive, str(k))]
    if isinstance(value, list):
        return [h for v in value for h in _json_hits(v, subject, distinctive, key)]
    if value == subject:
        return [f"{key}={subject}"]
    if key in distinctive and value == distinctive[key]:
        return [f"{key}={value}"]
    return []


def _traces(env: Served, subject: str) -> dict[str, list[str]]:
    """Every live object of every zone, decrypted by a principal allowed to read it, searched
    for the subject's id and distinctive values (as table cells, JSON values and text)."""
    from aidlc.core import objects

    distinctive = _distinctive(subject)
    word = re.compile(r"(?<![\w-])" + re.escape(subject) + r"(?![\w-])")
    found: dict[str, list[str]] = {}
    for zone, who in READERS.items():
        with env.open(who) as ws:
            for info in objects.list_objects(ws, zone):
                if info.deleted_at is not None:
                    continue
                data = objects.get_bytes(ws, zone, info.object_id, info.version)
                hits: list[str] = []
                if info.object_id.endswith(".parquet") or data[:4] == b"PAR1":
                    hits = _cells(pl.read_parquet(io.BytesIO(data)), subject, distinctive)
                elif info.object_id.endswith((".csv", ".tsv")):
                    hits = _cells(pl.read_csv(io.BytesIO(data)), subject, distinctive)
                elif info.object_id.endswith(".json"):
                    hits = _json_hits(json.loads(data), subject, distinctive)
                if word.search(data.decode("utf-8", "replace")):
                    hits.append("text")
                if hits:
                    found[info.ref] = hits
    return found


def _log_predictions(env: Served, subject: str) -> None:
    from aidlc.serve.predlog import write_batch

    rows = []
    for i, who in enumerate([subject, "P-00008"]):
        inputs = {k: v for k, v in _row(who).items() if k != "diagnosis"}
        rows.append(
            {
                "prediction_id": f"p{i}",
                "at": datetime.now(UTC),
                "model": "bc",
                "version": 1,
                "inputs": json.dumps(inputs),
                "output": json.dumps("benign"),
            }
        )
    with env.open("inference") as ws:
        write_batch(ws, "predictions", "bc", rows)


def _ingest_rejected(env: Served, tmp: Path) -> None:
    from aidlc.data.ingest import ingest
    from aidlc.demo import breast_cancer

    _, bad = breast_cancer.write_files(tmp)
    with env.open("steward") as ws:
        assert ingest(ws, bad, "breast-cancer").outcome == "rejected"


def test_erasure_leaves_no_trace_and_certifies_what_it_did(served: Served, tmp_path: Path) -> None:  # noqa: F811
    from aidlc.data import versions
    from aidlc.govern.erasure import erase_subject, verify_certificate
    from aidlc.registry import versions as registry

    _log_predictions(served, SUBJECT)
    assert _traces(served, SUBJECT)  # the scan does find the subject before erasure
    with served.open("steward") as ws:
        outcome = erase_subject(ws, SUBJECT, reason="Art. 17 request #12")
        successor = versions.resolve(ws, "breast-cancer@latest")
        kept = versions.read_version(ws, "breast-cancer@latest")
    cert = outcome.certificate
    # No trace is left anywhere: profiles (and so model baselines) never list the values of
    # the subject-id column, and everything else holding them was rewritten or shredded.
    assert _traces(served, SUBJECT) == {}
    assert cert["not_erased"] == []
    assert cert["held_data"] is True
    assert cert["datasets"] == [
        {
            "superseded": "breast-cancer@1",
            "successor": "breast-cancer@2",
            "rows_removed": 1,
            "rows_kept": 399,
        }
    ]
    assert (successor.ref, successor.rows, kept.height) == ("breast-cancer@2", 399, 399)
    assert SUBJECT not in kept.get_column("patient_id").to_list()
    assert cert["prediction_rows_removed"] == 1
    assert cert["models_marked_needs_retrain"] == ["bc@1", "bc@2", "bc@3"]
    assert any(r.startswith("raw/breast-cancer/") for r in cert["objects_shredded"])
    assert SUBJECT.encode() not in outcome.certificate_bytes
    assert cert["subject_hmac_sha256"] == outcome.subject_digest

    with served.open("auditor") as ws:
        assert verify_certificate(ws, outcome.certificate_bytes) is True
        altered = outcome.certificate_bytes.replace(b'"rows_removed": 1', b'"rows_removed": 0')
        assert altered != outcome.certificate_bytes
        assert verify_certificate(ws, altered) is False
        assert verify_certificate(ws, b"not json") is False
        assert verify_certificate(registry.public_key(ws), outcome.certificate_bytes) is True
        assert ws.audit.verify().ok is True
        events = ws.audit.events()
    erased = [e for e in events if e.action == "subject.erase" and e.outcome == "ok"]
    assert [(e.actor, e.resource) for e in erased] == [
        ("steward", f"subject:{outcome.subject_digest}")
    ]
    assert erased[0].details["certificate"] == outcome.certificate_ref
    assert not [e.seq for e in events if SUBJECT in json.dumps(e.to_json())]
    with served.open("trainer") as ws:
        tags = {v.ref: v.tags.get("needs-retrain") for v in registry.list_versions(ws, "bc")}
    assert tags == {"bc@1": "erasure", "bc@2": "erasure", "bc@3": "erasure"}
    with served.open("steward") as ws:
        again = erase_subject(ws, SUBJECT).certificate
    assert (again["held_data"], again["datasets"], again["objects_shredded"]) == (False, [], [])
    assert again["not_erased"] == []
    with served.open("monitor") as ws:
        from aidlc.serve.predlog import read_batches

        logged = read_batches(ws, "predictions", "bc")
    assert [r["prediction_id"] for r in logged] == ["p1"]
    # The gate still reads every version's row hashes: the superseded version points at its
    # successor's, so a later file is judged (rejected on its merits), not found unusable.
    _ingest_rejected(served, tmp_path)


def test_subject_only_in_a_rejected_file_is_shredded_from_raw_and_quarantine(
    served: Served,  # noqa: F811
    tmp_path: Path,
) -> None:
    from aidlc.govern.erasure import erase_subject

    _ingest_rejected(served, tmp_path)
    assert _traces(served, REJECTED_SUBJECT)
    with served.open("steward") as ws:
        outcome = erase_subject(ws, REJECTED_SUBJECT)
    shredded = outcome.certificate["objects_shredded"]
    assert sorted(r.split("/", 1)[0] for r in shredded) == ["quarantine", "raw"]
    assert outcome.certificate["datasets"] == []
    assert outcome.certificate["models_marked_needs_retrain"] == []
    assert _traces(served, REJECTED_SUBJECT) == {}


def test_legal_hold_keeps_the_raw_file_and_the_certificate_says_so(served: Served) -> None:  # noqa: F811
    from aidlc.core.meta import LegalHoldRecord
    from aidlc.govern.erasure import erase_subject

    with served.open("admin") as ws, ws.transaction() as session:
        hold = LegalHoldRecord(
            zone="raw", prefix="breast-cancer/", reason="litigation", placed_by="admin"
        )
        session.add(hold)
        session.flush()
        hold_id = hold.id
    with served.open("steward") as ws:
        outcome = erase_subject(ws, SUBJECT)
    held = outcome.certificate["kept_under_legal_hold"]
    assert [(h["object"].split("/")[0], h["hold"], h["note"]) for h in held] == [
        ("raw", hold_id, f"kept under legal hold {hold_id}")
    ]
    assert not any(r.startswith("raw/") for r in outcome.certificate["objects_shredded"])
    left = [held[0]["object"]] + [r["object"] for r in outcome.certificate["not_erased"]]
    assert sorted(_traces(served, SUBJECT)) == sorted(left)


def test_unknown_subject_gets_a_no_data_held_certificate(served: Served) -> None:  # noqa: F811
    from aidlc.core.meta import ErasureRecord
    from aidlc.govern.erasure import erase_subject, verify_certificate

    with served.open("steward") as ws:
        outcome = erase_subject(ws, "P-99999")
        assert verify_certificate(ws, outcome.certificate_bytes)
        with ws.db.reading() as session:
            rec = session.get(ErasureRecord, outcome.record_id)
            assert rec is not None
            assert (rec.subject_digest, rec.certificate_ref) == (
                outcome.subject_digest,
                outcome.certificate_ref,
            )
    cert = outcome.certificate
    assert (cert["held_data"], cert["summary"]) == (False, "no data held about this subject")
    assert cert["objects_shredded"] == cert["datasets"] == cert["models_marked_needs_retrain"] == []


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("x" * 100_000, "the subject id is 100000 characters; the limit is 256"),
        ("P-0\x00007", "the subject id contains control characters"),
        ("P-\udcff", "the subject id contains control characters"),
        ("   ", "the subject id is empty"),
    ],
)
def test_hostile_subject_ids_are_refused(served: Served, subject: str, message: str) -> None:  # noqa: F811
    from aidlc.govern.erasure import erase_subject

    with served.open("steward") as ws, pytest.raises(InvalidInput, match=re.escape(message)):
        erase_subject(ws, subject)


def test_trainer_may_not_erase(served: Served) -> None:  # noqa: F811
    from aidlc.govern.erasure import erase_subject

    with (
        served.open("trainer") as ws,
        pytest.raises(PermissionDenied, match=r"may not subject\.erase"),
    ):
        erase_subject(ws, SUBJECT)


@pytest.mark.slow
def test_cli_erases_refuses_trainer_and_bad_ids(served: Served) -> None:  # noqa: F811
    from tests.cli.test_cli import run

    denied = run(
        "erase", "--subject", SUBJECT, token=served.tokens["trainer"], workspace=served.root
    )
    assert denied.returncode == 4, denied.stderr
    assert "may not subject.erase" in denied.stderr
    bad = run("erase", "--subject", "a\x01b", token=served.tokens["steward"], workspace=served.root)
    assert bad.returncode == 2, bad.stderr
    done = run(
        "erase",
        "--subject",
        SUBJECT,
        "--json",
        token=served.tokens["steward"],
        workspace=served.root,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["certificate"]["datasets"][0]["successor"] == "breast-cancer@2"
    assert SUBJECT not in done.stdout
    nobody = run(
        "erase", "--subject", "P-99999", token=served.tokens["steward"], workspace=served.root
    )
    assert nobody.returncode == 0, nobody.stderr
    assert nobody.stdout.startswith("no data held about this subject; certificate reports/erasure/")


def test_erasure_under_a_retraining_policy_retrains_on_the_successor(served: Served) -> None:  # noqa: F811
    """With a retraining policy, the erasure records a request that a trainer's scheduler (or
    `aidlc monitor retrain --pending`) carries out: the new candidate is trained on the
    successor version, which no longer holds the subject, and still needs an approval."""
    from aidlc.data import versions
    from aidlc.govern.erasure import erase_subject
    from aidlc.monitor import retrain
    from aidlc.registry import versions as registry
    from aidlc.train import tracking

    with served.open("approver") as ws:
        retrain.set_policy(ws, "bc", "approval")
    with served.open("steward") as ws:
        outcome = erase_subject(ws, SUBJECT, reason="Art. 17 request #13")
    [request_id] = outcome.certificate["retrain_requests"]
    with served.open("trainer") as ws:
        [done] = retrain.run_pending(ws)
        candidate = registry.resolve(ws, f"bc@{done.candidate_version}")
        run = tracking.get_run(ws, candidate.run_id)
        data = versions.read_version(ws, "breast-cancer@2")
    assert (done.id, done.status) == (request_id, "registered")
    assert candidate.statement["lineage"]["datasets"] == ["breast-cancer@2"]
    assert "breast-cancer@latest" in run.config
    assert SUBJECT not in data.get_column("patient_id").to_list()
    assert candidate.tags.get("needs-retrain") is None
    assert "production" not in candidate.aliases and "staging" not in candidate.aliases
