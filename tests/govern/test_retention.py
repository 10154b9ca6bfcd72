"""Retention policies, legal holds and `retention apply`: what is shredded, what is kept, and
that the rows pointing at shredded prediction logs are removed with them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aidlc.core import objects
from aidlc.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aidlc.govern import retention
from tests.cli.test_cli import run
from tests.monitor.helpers import serve_rows
from tests.serve.conftest import records, served, served_template  # noqa: F401

LATER = timedelta(days=31)


def _put(env: Any, *ids: str, zone: str = "raw") -> None:
    with env.open("steward") as steward:
        for object_id in ids:
            objects.put_bytes(steward, zone, object_id, f"data of {object_id}".encode())


def _events(ws: Any, action: str) -> list[Any]:
    return [e for e in ws.audit.events(action=action) if e.outcome == "ok"]


def _state(ws: Any) -> dict[str, Any]:
    """Row counts of every table, shredded-object count, and every stored file's digest."""
    from sqlalchemy import func, select

    from aidlc.core.meta import StoredObject
    from aidlc.core.meta.models import Base

    with ws.db.reading() as session:
        counts = {
            t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }
        counts["shredded"] = session.execute(
            select(func.count()).where(StoredObject.wrapped_key.is_(None))
        ).scalar_one()
    store = ws.root / ws.config.store.path
    files = {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }
    return {"counts": counts, "files": files}


def test_expired_objects_are_shredded_and_audited(env):
    _put(env, "bc/k1/a.csv", "iris.csv")
    with env.open("admin") as admin:
        retention.set_policy(admin, "raw", 30)
        soon = retention.apply(admin, now=datetime.now(UTC) + timedelta(days=29))
        assert soon.shredded == [] and soon.held == []
        outcome = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert [e.ref for e in outcome.shredded] == ["raw/bc/k1/a.csv@1", "raw/iris.csv@1"]
        assert {e.rule for e in outcome.shredded} == {"raw policy: 30 days"}
        assert outcome.bytes_shredded == len(b"data of bc/k1/a.csv") + len(b"data of iris.csv")
        deletes = _events(admin, "object.delete")
        assert [(e.actor, e.resource) for e in deletes] == [
            ("admin", "object:raw/bc/k1/a.csv@1"),
            ("admin", "object:raw/iris.csv@1"),
        ]
        assert deletes[0].details["reason"] == "retention: raw policy: 30 days"
        noop, summary = _events(
            admin, "retention.apply"
        )  # a run that shreds nothing is audited too
        assert noop.details["shredded"] == 0
        assert summary.details["shredded"] == 2 and summary.details["held"] == 0
        assert objects.verify_all(admin).ok  # the ciphertexts are gone, nothing stray
        assert admin.audit.verify().ok
        again = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert again.shredded == []
    with env.open("steward") as steward, pytest.raises(NotFound) as caught:
        objects.get_bytes(steward, "raw", "bc/k1/a.csv")
    assert caught.value.message == "raw/bc/k1/a.csv@1 was deleted (its key is destroyed)"


def test_legal_hold_keeps_expired_objects_until_released(env):
    _put(env, "bc/k1/a.csv", "other/k2/b.csv")
    with env.open("admin") as admin:
        retention.set_policy(admin, "raw", 30)
        hold = retention.place_hold(admin, "case 2026-17", zone="raw", prefix="bc/")
        everywhere = retention.place_hold(admin, "audit request", prefix="other/k2/")
        assert everywhere.zone is None and everywhere.active
        retention.release_hold(admin, everywhere.id)
        outcome = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert [e.ref for e in outcome.shredded] == ["raw/other/k2/b.csv@1"]
        assert [k.to_json() for k in outcome.held] == [
            {"ref": "raw/bc/k1/a.csv@1", "reason": f"legal hold {hold.id}: case 2026-17"}
        ]
        assert [h.id for h in retention.list_holds(admin)] == [hold.id]
        assert len(retention.list_holds(admin, include_released=True)) == 2
        with pytest.raises(Conflict, match="already released"):
            retention.release_hold(admin, everywhere.id)
    with env.open("steward") as steward:
        assert objects.get_bytes(steward, "raw", "bc/k1/a.csv") == b"data of bc/k1/a.csv"
    with env.open("admin") as admin:
        retention.release_hold(admin, hold.id)
        outcome = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert [e.ref for e in outcome.shredded] == ["raw/bc/k1/a.csv@1"]
        assert outcome.held == []


def test_dry_run_changes_nothing_and_lists_what_would_go(env):
    _put(env, "bc/k1/a.csv", "held/k/b.csv")
    _put(env, "bc/k1/report.json", zone="quarantine")
    with env.open("admin") as admin:
        retention.set_policy(admin, "raw", 30)
        retention.set_policy(admin, "quarantine", 7)
        retention.place_hold(admin, "keep", prefix="held/")
        before = _state(admin)
        dry = retention.apply(admin, dry_run=True, now=datetime.now(UTC) + LATER)
        assert _state(admin) == before
        assert dry.dry_run
        would = [e.ref for e in dry.shredded]
        assert would == ["quarantine/bc/k1/report.json@1", "raw/bc/k1/a.csv@1"]
        assert [k.ref for k in dry.held] == ["raw/held/k/b.csv@1"]
        real = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert [e.ref for e in real.shredded] == would
        after = _state(admin)
        assert after["counts"]["shredded"] == before["counts"]["shredded"] + 2
        assert len(after["files"]) == len(before["files"]) - 2


def test_dataset_policy_beats_zone_policy(env):
    from aidlc.data.contract import parse_contract
    from aidlc.data.versions import set_contract
    from aidlc.demo import breast_cancer

    contract = parse_contract(breast_cancer.contract(breast_cancer.frame()), source="demo")
    with env.open("steward") as steward:
        set_contract(steward, "long", contract)
        set_contract(steward, "short", contract)
    _put(env, "long/k/a.csv", "short/k/b.csv", "loose/k/c.csv", "long.csv")
    with env.open("admin") as admin:
        retention.set_policy(admin, "raw", 30)
        retention.set_policy(admin, "raw", 365, dataset="long")
        retention.set_policy(admin, "raw", 3, dataset="short")
        assert [(p.zone, p.dataset, p.days) for p in retention.list_policies(admin)] == [
            ("raw", None, 30),
            ("raw", "long", 365),
            ("raw", "short", 3),
        ]
        week = retention.apply(admin, dry_run=True, now=datetime.now(UTC) + timedelta(days=7))
        assert [(e.ref, e.rule) for e in week.shredded] == [
            ("raw/short/k/b.csv@1", "raw/short policy: 3 days")
        ]
        month = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert [e.ref for e in month.shredded] == [
            "raw/long.csv@1",  # no slash: not the dataset's object, the zone policy rules it
            "raw/loose/k/c.csv@1",
            "raw/short/k/b.csv@1",
        ]
        retention.remove_policy(admin, "raw", dataset="long")
        later = retention.apply(admin, now=datetime.now(UTC) + LATER)
        assert [e.ref for e in later.shredded] == ["raw/long/k/a.csv@1"]
        with pytest.raises(NotFound, match="no dataset named 'nope'"):
            retention.set_policy(admin, "raw", 3, dataset="nope")


def test_policy_and_hold_input_is_checked(env):
    with env.open("admin") as admin:
        with pytest.raises(InvalidInput, match="from 1 to 36500, not -5"):
            retention.set_policy(admin, "raw", -5)
        with pytest.raises(InvalidInput, match="unknown zone 'tape'"):
            retention.set_policy(admin, "tape", 5)
        with pytest.raises(InvalidInput, match="dataset policy applies to the raw, validated"):
            retention.set_policy(admin, "models", 5, dataset="bc")
        with pytest.raises(InvalidInput, match="needs a reason"):
            retention.place_hold(admin, "  ")
        with pytest.raises(InvalidInput, match="invalid prefix"):
            retention.place_hold(admin, "case", prefix="../x")
        with pytest.raises(NotFound, match="no legal hold 99"):
            retention.release_hold(admin, 99)
        with pytest.raises(NotFound, match="no retention policy for raw"):
            retention.remove_policy(admin, "raw")
        with pytest.raises(InvalidInput, match="aware datetime"):
            retention.apply(admin, now=datetime(2030, 1, 1))
    with env.open("steward") as steward:
        with pytest.raises(PermissionDenied, match=r"steward may not retention\.apply"):
            retention.apply(steward)
        with pytest.raises(PermissionDenied, match=r"may not legal_hold\.manage"):
            retention.place_hold(steward, "case")


@pytest.mark.slow  # seven CLI processes
def test_cli_manages_policies_and_holds_for_admins_only(local_env):
    admin, steward = local_env.tokens["admin"], local_env.tokens["steward"]
    root = local_env.root
    done = run("retention", "policy", "raw", "30", "--json", token=admin, workspace=root)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["days"] == 30
    held = run(
        "retention", "hold", "--reason", "case 9", "--zone", "raw", "--prefix", "bc/", "--json",
        token=admin, workspace=root,
    )  # fmt: skip
    hold_id = json.loads(held.stdout)["id"]
    released = run("retention", "release", str(hold_id), token=admin, workspace=root)
    assert released.stdout.strip() == f"legal hold {hold_id} released"
    applied = run("retention", "apply", "--dry-run", "--json", token=admin, workspace=root)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["dry_run"] is True

    denied = run("retention", "policy", "raw", "5", token=steward, workspace=root)
    assert denied.returncode == 4
    assert "steward may not retention.manage (needs role: admin)" in denied.stderr
    negative = run("retention", "policy", "raw", "--", "-5", token=admin, workspace=root)
    assert negative.returncode == 2
    assert "retention days must be a whole number from 1 to 36500, not -5" in negative.stderr
    zone = run("retention", "policy", "tape", "5", token=admin, workspace=root)
    assert zone.returncode == 2
    assert "unknown zone 'tape'; zones are: raw, validated" in zone.stderr


def test_apply_keeps_serving_models_and_removes_rows_of_shredded_logs(served, records):  # noqa: F811
    from sqlalchemy import func, select

    from aidlc.core.meta import BatchProfileRecord, PredictionBatchRecord
    from aidlc.data.versions import read_version
    from aidlc.monitor import runner
    from aidlc.registry import approval, versions

    with served.open("approver") as approver:
        approval.reject(approver, "bc@3", reason="retired for the retention test")
    serve_rows(served, records[:50])
    with served.open("monitor") as monitor:
        runner.run(monitor, model="bc", window="1h", retrain=False)

    def count(ws: Any, table: Any) -> int:
        with ws.db.reading() as session:
            return int(session.execute(select(func.count()).select_from(table)).scalar_one())

    with served.open("admin") as admin:
        assert count(admin, PredictionBatchRecord) >= 1
        assert count(admin, BatchProfileRecord) >= 1
        for zone in ("models", "predictions", "validated"):
            retention.set_policy(admin, zone, 1)
        outcome = retention.apply(admin, now=datetime.now(UTC) + timedelta(days=2))
        shredded = {e.ref.split("@")[0] for e in outcome.shredded}
        assert any(r.startswith("models/bc/v3/") for r in shredded)
        assert not any(r.startswith(("models/bc/v1/", "models/bc/v2/")) for r in shredded)
        reasons = {k.reason for k in outcome.protected}
        assert "model bc@1 is production" in reasons
        assert "model bc@2 is approved" in reasons  # rejecting bc@3 emptied staging
        assert "row hashes of a dataset version, which every later ingest reads" in reasons
        assert outcome.unavailable_versions == ["breast-cancer@1"]
        assert outcome.batches_removed and outcome.batch_profiles_removed >= 1
        assert any(
            e.rule.startswith("derived from shredded prediction batch") for e in outcome.shredded
        )
        assert count(admin, PredictionBatchRecord) == 0
        assert count(admin, BatchProfileRecord) == 0
    with served.open("monitor") as monitor:
        (after,) = runner.run(monitor, model="bc", window="1h", retrain=False)
        assert after.report.rows == 0  # nothing dangles: the monitor sees no traffic, and no error
    with served.open("trainer") as trainer:
        assert versions.verify(trainer, "bc@1").ref == "bc@1"
        with pytest.raises(NotFound, match="was deleted"):
            versions.load_model(trainer, "bc@3")
    with served.open("steward") as steward, pytest.raises(NotFound, match="key is destroyed"):
        read_version(steward, "breast-cancer@1")
    # `latest` never resolves to shredded data: with no readable version left, training is told
    from aidlc.data.versions import resolve

    with served.open("steward") as steward:
        with pytest.raises(NotFound, match="every version of dataset 'breast-cancer' was deleted"):
            resolve(steward, "breast-cancer@latest")
        assert resolve(steward, "breast-cancer@1").version == 1  # named explicitly: its record


def test_latest_skips_a_newer_version_whose_data_was_shredded(served, tmp_path):  # noqa: F811
    import polars as pl

    from aidlc.core import objects
    from aidlc.data.ingest import ingest
    from aidlc.data.versions import resolve
    from aidlc.demo import breast_cancer

    fresh = (
        breast_cancer.frame()
        .head(60)
        .with_columns(pl.format("P-9{}", pl.col("patient_id").str.slice(3)).alias("patient_id"))
    )
    path = tmp_path / "more.csv"
    fresh.write_csv(path)
    with served.open("steward") as steward:
        second = ingest(steward, path, "breast-cancer")
        failing = [c for c in second.report["checks"] if c.get("passed") is False]
        assert second.outcome == "accepted", failing
        assert resolve(steward, "breast-cancer@latest").version == 2
        zone, object_id, version = objects.parse_ref(
            resolve(steward, "breast-cancer@2").data_object
        )
        objects.delete(steward, zone, object_id, version, reason="test")
        assert resolve(steward, "breast-cancer@latest").version == 1
