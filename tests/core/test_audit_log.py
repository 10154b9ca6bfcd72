"""The audit log on its own (no workspace around it): what `append_many` stores, what
`checkpoint_if_needed` signs, what `prove` returns, and every verdict `verify` can give.

The database is migrated once per module and emptied before each test, so these run in
milliseconds (they are the tests mutation testing runs against `core.audit`)."""

from __future__ import annotations

import functools
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from aidlc.core import audit, merkle
from aidlc.core.audit import AuditLog
from aidlc.core.meta import Database
from aidlc.errors import NotFound

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


@functools.cache
def _migrated_sqlite() -> Path:
    """One migrated SQLite file per process, copied for each module run: mutation testing runs
    this module once per mutant in a fork, and the migrations cost more than the tests."""
    path = Path(tempfile.mkdtemp(prefix="aidlc-audit-")) / "meta.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.engine.dispose()
    return path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("audit") / "meta.db"
        shutil.copyfile(_migrated_sqlite(), path)
        db = Database(f"sqlite:///{path}")
    else:
        import psycopg

        server = request.getfixturevalue("pg_server")
        name = "t_" + secrets.token_hex(6)
        plain = server.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        db = Database(f"{server}/{name}")
        db.upgrade()
    yield db
    db.engine.dispose()


@pytest.fixture
def log(database: Database) -> Iterator[AuditLog]:
    _sql(database, "DELETE FROM audit_events")
    _sql(database, "DELETE FROM tree_heads")
    _sql(database, "DELETE FROM audit_state")
    audit.new_request_id()
    yield AuditLog(database, private_key=lambda: KEY, public_key=KEY.public_key)


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def _fill(log: AuditLog, n: int, *, per_transaction: int = 1) -> None:
    """n events, `per_transaction` at a time, each transaction closed by a signed head."""
    done = 0
    while done < n:
        batch = min(per_transaction, n - done)
        with log.db.transaction() as session:
            log.append_many(
                session,
                [
                    {"actor": "tester", "action": "test.event", "resource": f"thing:{done + i}"}
                    for i in range(batch)
                ],
            )
            log.checkpoint_if_needed(session)
        done += batch


def _bad(log: AuditLog, against: merkle.TreeHead | None = None) -> tuple[int | None, str]:
    verdict = log.verify(against)
    assert not verdict.ok and verdict.size == 0 and verdict.head is None
    with log.db.engine.connect() as conn:
        heads = conn.execute(text("SELECT count(*) FROM tree_heads")).scalar()
    assert verdict.heads_checked == heads
    assert verdict.problem is not None
    return verdict.first_bad_seq, verdict.problem


# -- appending ---------------------------------------------------------------------------------


def test_appended_rows_hold_the_signed_body_and_its_leaf_hash(log):
    rid = audit.new_request_id()
    with log.db.transaction() as session:
        seqs = log.append_many(
            session,
            [
                {"actor": "ann", "action": "a.one", "resource": "r:1", "details": {"x": 1.5}},
                {"actor": "bob", "action": "a.two", "resource": "r:2", "outcome": "denied"},
            ],
        )
    assert seqs == [1, 2]
    assert log.size() == 2
    with log.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT seq, actor, action, resource, outcome, request_id, body, leaf_hash "
                "FROM audit_events ORDER BY seq"
            )
        ).all()
    first, second = (json.loads(bytes(r.body)) for r in rows)
    assert first == {
        "v": 1,
        "seq": 1,
        "time": first["time"],
        "actor": "ann",
        "action": "a.one",
        "resource": "r:1",
        "outcome": "ok",
        "request_id": rid,
        "details": {"x": "1.5"},
    }
    assert second["outcome"] == "denied" and second["details"] == {}
    assert first["time"] == second["time"]
    for row, body in zip(rows, (first, second), strict=True):
        assert (row.seq, row.actor, row.action, row.resource, row.outcome, row.request_id) == (
            body["seq"],
            body["actor"],
            body["action"],
            body["resource"],
            body["outcome"],
            body["request_id"],
        )
        assert bytes(row.body) == merkle.encode_event(body)
        assert bytes(row.leaf_hash) == merkle.leaf_hash(bytes(row.body))
    assert [e.to_json() for e in log.events()] == [first, second]


def test_an_unknown_outcome_is_refused_and_nothing_is_stored(log):
    with (
        pytest.raises(ValueError, match="unknown audit outcome 'maybe'"),
        log.db.transaction() as session,
    ):
        log.append(session, actor="a", action="b", resource="c", outcome="maybe")
    assert log.size() == 0


def test_append_continues_the_tree_across_transactions(log):
    _fill(log, 3)
    with log.db.transaction() as session:
        assert log.append(session, actor="a", action="b", resource="c") == 4
        head = log.checkpoint_if_needed(session)
    assert head is not None and head.tree_size == 4
    with log.db.engine.connect() as conn:
        leaves = conn.execute(text("SELECT leaf_hash FROM audit_events ORDER BY seq")).scalars()
        assert head.root_hash == merkle.root([bytes(h) for h in leaves])
    assert merkle.verify_tree_head(head, KEY.public_key())


def test_a_transaction_without_events_signs_no_head(log):
    with log.db.transaction() as session:
        assert log.checkpoint_if_needed(session) is None
    with pytest.raises(NotFound, match="no signed tree head"):
        log.head()


def test_each_audited_transaction_stores_its_signed_head(log):
    _fill(log, 5, per_transaction=2)
    with log.db.engine.connect() as conn:
        sizes = conn.execute(text("SELECT tree_size FROM tree_heads ORDER BY tree_size")).all()
    assert [s for (s,) in sizes] == [2, 4, 5]
    head = log.head()
    assert head.tree_size == 5 and merkle.verify_tree_head(head, KEY.public_key())
    verdict = log.verify()
    assert verdict.ok and verdict.size == 5 and verdict.heads_checked == 3
    assert verdict.head == head and verdict.consistency_proof is None
    assert verdict.to_json() == {
        "ok": True,
        "events": 5,
        "tree_heads_checked": 3,
        "tree_head": head.to_json(),
    }


def test_stored_time_reads_both_dialects_and_nothing_else():
    assert audit._stored_time("2026-01-02 03:04:05.000006") == "2026-01-02T03:04:05.000006Z"
    # only SQLite's date-time separator is rewritten; a hand-edited value keeps its other spaces
    assert audit._stored_time("2026-01-02 03:04:05 .5") == "2026-01-02T03:04:05 .5Z"
    assert audit._stored_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"
    assert audit._stored_time(datetime(2026, 1, 2, tzinfo=UTC)) is None
    assert audit._stored_time(20260102) is None


def test_a_log_written_away_from_utc_verifies(log, monkeypatch):
    """The time column and the body's time are the same instant whatever the host's zone."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        _fill(log, 2)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert log.verify().ok
    with log.db.engine.connect() as conn:
        stamp = conn.execute(text("SELECT time FROM audit_events WHERE seq = 1")).scalar()
    assert audit._stored_time(stamp) == log.event(1).time


# -- proving -----------------------------------------------------------------------------------


def test_inclusion_proofs_check_against_the_newest_head(log):
    _fill(log, 6)
    head = log.head()
    for seq in range(1, 7):
        proof = log.prove(seq)
        assert proof.leaf_index == seq - 1 and proof.tree_head == head
        assert proof.event == merkle.encode_event(log.event(seq).to_json())
        proof.check(KEY.public_key())
    with log.db.transaction() as session:
        log.append(session, actor="a", action="b", resource="not yet signed")
    log.prove(6).check(KEY.public_key())
    for seq in (0, 7):
        with pytest.raises(NotFound, match=f"no audit event {seq} under the newest tree head"):
            log.prove(seq)


# -- verifying ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "eve"),
        ("action", "test.other"),
        ("resource", "thing:0"),
        ("outcome", "denied"),
        ("request_id", "0123456789abcdef"),
    ],
)
def test_every_column_is_compared_with_the_signed_body(log, column, value):
    _fill(log, 4)
    _sql(log.db, f"UPDATE audit_events SET {column} = :v WHERE seq = 3", v=value)
    assert _bad(log) == (
        3,
        "event 3 was edited or moved (its columns disagree with its signed body)",
    )


def test_an_edited_time_column_is_named(log):
    _fill(log, 4)
    with log.db.engine.connect() as conn:
        stamp = conn.execute(text("SELECT time FROM audit_events WHERE seq = 2")).scalar()
    moved = stamp.replace("2", "1", 1) if isinstance(stamp, str) else stamp.replace(year=2001)
    _sql(log.db, "UPDATE audit_events SET time = :t WHERE seq = 2", t=moved)
    assert _bad(log)[0] == 2


def test_a_body_that_is_not_an_object_is_named(log):
    _fill(log, 3)
    body = b"[1,2]"
    _sql(
        log.db,
        "UPDATE audit_events SET body = :b, leaf_hash = :h WHERE seq = 2",
        b=body,
        h=merkle.leaf_hash(body),
    )
    assert _bad(log)[1].startswith("event 2 was edited or moved")


def test_an_unreadable_body_is_named(log):
    _fill(log, 3)
    body = b"{not json"
    _sql(
        log.db,
        "UPDATE audit_events SET body = :b, leaf_hash = :h WHERE seq = 2",
        b=body,
        h=merkle.leaf_hash(body),
    )
    assert _bad(log) == (2, "event 2 has an unreadable body")


def test_an_edited_body_is_named_by_its_hash(log):
    _fill(log, 3)
    _sql(log.db, "UPDATE audit_events SET leaf_hash = :h WHERE seq = 3", h=b"\x00" * 32)
    assert _bad(log) == (3, "event 3 was edited (its hash changed)")


def test_a_moved_sequence_number_is_named(log):
    _fill(log, 3)
    # event 1 renumbered 0: the log now starts at 0, and number 1 is gone
    _sql(log.db, "UPDATE audit_events SET seq = 0 WHERE seq = 1")
    seq, problem = _bad(log)
    assert (seq, problem) == (1, "event 1 is missing (deleted)")


def test_two_swapped_events_are_named(log):
    _fill(log, 4)
    _sql(log.db, "UPDATE audit_events SET seq = -1 WHERE seq = 2")
    _sql(log.db, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
    _sql(log.db, "UPDATE audit_events SET seq = 3 WHERE seq = -1")
    assert _bad(log)[0] == 2


@pytest.mark.parametrize(
    ("value", "tampered"), [("42", True), ("'text'", True), ("CAST(body AS TEXT)", False)]
)
def test_a_body_of_another_type_is_named_not_a_crash(log, value, tampered):
    """SQLite keeps whatever type an UPDATE writes; the same bytes as TEXT are the same event."""
    if log.db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's bytea column refuses values of another type")
    _fill(log, 3)
    _sql(log.db, f"UPDATE audit_events SET body = {value} WHERE seq = 2")
    if tampered:
        assert _bad(log) == (2, "event 2 was edited (its hash changed)")
    else:
        assert log.verify().ok


def test_a_body_of_another_type_is_hashed_as_stored(log):
    """A number written over a body (SQLite keeps it) with its own hash beside it is still read
    as that number: not an event, so named as edited."""
    if log.db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's bytea column refuses values of another type")
    _fill(log, 3)
    _sql(
        log.db,
        "UPDATE audit_events SET body = 42, leaf_hash = :h WHERE seq = 2",
        h=merkle.leaf_hash(b"42"),
    )
    assert _bad(log) == (
        2,
        "event 2 was edited or moved (its columns disagree with its signed body)",
    )


def test_the_first_of_two_problems_is_named(log):
    _fill(log, 6)
    _sql(log.db, "UPDATE audit_events SET actor = 'eve' WHERE seq = 5")
    _sql(log.db, "UPDATE audit_events SET actor = 'eve' WHERE seq = 2")
    assert _bad(log)[0] == 2
    _sql(log.db, "UPDATE tree_heads SET root_hash = :r WHERE tree_size = 1", r=b"\x00" * 32)
    assert _bad(log) == (1, "the tree head at size 1 has an invalid signature")


@pytest.mark.parametrize(
    ("edit", "first_bad", "problem"),
    [
        (
            "UPDATE audit_events SET actor = 'eve' WHERE seq = 5",
            2,
            "the audit state records 1 events but the log holds 9",
        ),
        (
            "UPDATE audit_events SET leaf_hash = :h WHERE seq = 5",
            2,
            "the audit state records 1 events but the log holds 9",
        ),
        ("UPDATE audit_events SET seq = 10 WHERE seq = 5", 4, "events 4..6 do not match"),
        (
            "UPDATE audit_events SET body = :b, leaf_hash = :bh WHERE seq = 5",
            4,
            "events 4..6 do not match",
        ),
    ],
    ids=["column", "hash", "moved", "unreadable"],
)
def test_an_earlier_problem_wins_over_a_later_bad_row(log, edit, first_bad, problem):
    """Reading goes on after a bad row (here event 5 of 9), so a problem that starts earlier is
    the one named: the state row's count, or the range of the tree head covering the bad row."""
    _fill(log, 9, per_transaction=3)
    with log.db.engine.begin() as conn:
        conn.execute(text(edit), {"h": b"\x00" * 32, "b": b"{", "bh": merkle.leaf_hash(b"{")})
        conn.execute(text("UPDATE audit_state SET size = 1"))
    seq, message = _bad(log)
    assert seq == first_bad and message.startswith(problem)


def test_tree_heads_are_checked_in_size_order_whatever_their_storage_order(log):
    _fill(log, 3)
    # a head deleted and restored (from a backup, say) now sits last in storage
    with log.db.engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM tree_heads WHERE tree_size = 1")).mappings().one()
        conn.execute(text("DELETE FROM tree_heads WHERE tree_size = 1"))
        columns = ", ".join(row)
        values = ", ".join(f":{c}" for c in row)
        conn.execute(text(f"INSERT INTO tree_heads ({columns}) VALUES ({values})"), dict(row))
    verdict = log.verify()
    assert verdict.ok and verdict.heads_checked == 3


def test_a_row_problem_before_a_head_problem_wins(log):
    _fill(log, 6)
    _sql(log.db, "UPDATE audit_events SET actor = 'eve' WHERE seq = 2")
    _sql(log.db, "UPDATE tree_heads SET root_hash = :r WHERE tree_size = 5", r=b"\x00" * 32)
    assert _bad(log)[0] == 2


def test_a_deleted_event_is_named(log):
    _fill(log, 5)
    _sql(log.db, "DELETE FROM audit_events WHERE seq = 4")
    assert _bad(log) == (4, "event 4 is missing (deleted)")


def test_deleted_newest_events_are_named_by_the_heads_that_covered_them(log):
    _fill(log, 5)
    _sql(log.db, "DELETE FROM audit_events WHERE seq > 3")
    assert _bad(log) == (
        4,
        "the log has 3 events but a signed tree head covers 4: events 4..4 were deleted",
    )


def test_a_head_signed_by_another_key_is_refused(log):
    _fill(log, 3)
    head = merkle.sign_tree_head(OTHER_KEY, 2, log.head().root_hash)
    _sql(
        log.db,
        "UPDATE tree_heads SET key_id = :k, signature = :s WHERE tree_size = 2",
        k=head.key_id,
        s=head.signature,
    )
    assert _bad(log) == (2, "the tree head at size 2 has an invalid signature")


def test_a_validly_signed_head_over_other_events_is_named(log):
    _fill(log, 4)
    forged = merkle.sign_tree_head(KEY, 3, b"\x07" * 32, "2026-01-02T03:04:05.000000Z")
    _sql(
        log.db,
        "UPDATE tree_heads SET root_hash = :r, timestamp = :t, signature = :s WHERE tree_size = 3",
        r=forged.root_hash,
        t=forged.timestamp,
        s=forged.signature,
    )
    assert _bad(log) == (
        3,
        "events 3..3 do not match the tree head signed at 2026-01-02T03:04:05.000000Z: an event "
        "was edited, inserted, deleted or reordered",
    )


def test_events_no_head_covers_are_named(log):
    _fill(log, 3)
    with log.db.transaction() as session:
        log.append_many(session, [{"actor": "a", "action": "b", "resource": str(i)} for i in "xy"])
    assert _bad(log) == (4, "events 4..5 are not covered by any signed tree head")


def test_a_log_without_heads_is_not_covered(log):
    with log.db.transaction() as session:
        log.append(session, actor="a", action="b", resource="c")
    assert _bad(log) == (1, "events 1..1 are not covered by any signed tree head")


def test_a_state_row_that_disagrees_with_the_log_is_named(log):
    _fill(log, 3)
    _sql(log.db, "UPDATE audit_state SET size = 2")
    assert _bad(log) == (3, "the audit state records 2 events but the log holds 3")
    _sql(log.db, "UPDATE audit_state SET size = 7")
    assert _bad(log) == (4, "the audit state records 7 events but the log holds 3")


def test_an_empty_log_verifies(log):
    verdict = log.verify()
    assert verdict.ok and verdict.size == 0 and verdict.heads_checked == 0 and verdict.head is None


def test_a_failed_verdict_names_the_problem_in_json(log):
    _fill(log, 2)
    _sql(log.db, "DELETE FROM audit_events WHERE seq = 1")
    assert log.verify().to_json() == {
        "ok": False,
        "events": 0,
        "tree_heads_checked": 2,
        "first_bad_event": 1,
        "problem": "event 1 is missing (deleted)",
    }


# -- verifying against a head kept elsewhere -----------------------------------------------------


def test_a_grown_log_is_proven_consistent_with_an_earlier_head(log):
    _fill(log, 3)
    saved = log.head()
    _fill(log, 4)
    verdict = log.verify(against=saved)
    assert verdict.ok and verdict.head == log.head() and verdict.consistency_proof is not None
    assert merkle.verify_consistency(
        3, 7, saved.root_hash, verdict.head.root_hash, verdict.consistency_proof
    )
    assert verdict.to_json()["consistency_proof"] == [h.hex() for h in verdict.consistency_proof]
    assert log.verify(against=log.head()).ok


def test_a_head_of_another_key_is_not_a_reference(log):
    _fill(log, 3)
    theirs = merkle.sign_tree_head(OTHER_KEY, 3, log.head().root_hash)
    assert _bad(log, theirs) == (
        None,
        "the given tree head is not signed by this workspace's audit key",
    )


def test_a_reference_head_beyond_the_log_names_the_deleted_events(log):
    _fill(log, 3)
    bigger = merkle.sign_tree_head(KEY, 5, b"\x01" * 32)
    assert _bad(log, bigger) == (
        4,
        "the log has 3 events but the given head covers 5: events 4..5 were deleted",
    )


def test_a_rewritten_prefix_is_caught_against_a_reference_head(log):
    _fill(log, 3)
    other = merkle.sign_tree_head(KEY, 2, b"\x01" * 32)
    assert _bad(log, other) == (
        None,
        "the first 2 events differ from those of the given head: the log was rewritten",
    )


def test_a_reference_head_needs_a_signed_head_to_compare_with(log):
    empty = merkle.sign_tree_head(KEY, 0, merkle.EMPTY_ROOT)
    assert _bad(log, empty) == (None, "the log has no signed tree head to compare with")
