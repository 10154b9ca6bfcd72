"""Tamper evidence: every edit, deletion, insertion or reordering of audit events is caught."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text

from aidlc.core import merkle

# -- an independent RFC 6962 verifier, written from the RFC, sharing no code with aidlc ----------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc6962_root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf hash and its audit path."""
    assert 0 <= index < size
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        assert sn != 0
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return r


def _fill(ws, n: int) -> None:
    for i in range(n):
        ws.audit.record(
            actor="tester", action="test.event", resource=f"thing:{i}", details={"i": i}
        )


@pytest.fixture
def audited(env):
    admin = env.open("admin")
    _fill(admin, 12)
    admin.close()
    return env


def _sql(ws, statement: str, **params) -> None:
    with ws.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def _verdict(env):
    return env.open("auditor").audit.verify()


def _seq_of(env, resource: str) -> int:
    auditor = env.open("auditor")
    return next(e.seq for e in auditor.audit.events() if e.resource == resource)


def test_untouched_log_verifies(audited):
    verdict = _verdict(audited)
    assert verdict.ok and verdict.size >= 12 and verdict.heads_checked >= 12


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "'eve'"),
        ("action", "'test.other'"),
        ("resource", "'thing:6'"),
        ("outcome", "'denied'"),
        ("request_id", "'0123456789abcdef'"),
        # only used to filter and sort (`audit log --since`), and still part of the evidence
        ("time", "time - INTERVAL '1 hour'"),
    ],
)
def test_every_edited_column_is_named(audited, column, value):
    """Each column the log is queried by must agree with the signed body: an edit of any one of
    them names the event (dropping any column from the comparison makes one case fail)."""
    ws = audited.open("admin")
    if column == "time" and ws.db.engine.dialect.name == "sqlite":
        value = "datetime(time, '-1 hour')"
    seq = _seq_of(audited, "thing:5")
    _sql(ws, f"UPDATE audit_events SET {column} = {value} WHERE seq = :s", s=seq)
    verdict = _verdict(audited)
    assert not verdict.ok and verdict.first_bad_seq == seq
    assert "columns disagree with its signed body" in (verdict.problem or "")


@pytest.mark.parametrize(
    ("edit", "tampered"),
    [
        ("UPDATE audit_events SET body = replace(body, 'thing', 'thong') WHERE seq = :s", True),
        ("UPDATE audit_events SET body = 42 WHERE seq = :s", True),
        ("UPDATE audit_events SET leaf_hash = 'x' WHERE seq = :s", True),
        # the same bytes stored as TEXT: the event did not change
        ("UPDATE audit_events SET body = CAST(body AS TEXT) WHERE seq = :s", False),
    ],
)
def test_sqlite_values_of_another_type_are_named_not_a_crash(audited, edit, tampered):
    """SQLite keeps whatever type an UPDATE writes (replace() on a BLOB returns TEXT);
    verification names the event instead of failing with a TypeError."""
    ws = audited.open("admin")
    if ws.db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's bytea column refuses values of another type")
    seq = _seq_of(audited, "thing:5")
    _sql(ws, edit, s=seq)
    verdict = _verdict(audited)
    assert verdict.ok is not tampered
    if tampered:
        assert verdict.first_bad_seq == seq


def test_edited_body_with_recomputed_hash_is_named(audited):
    seq = _seq_of(audited, "thing:5")
    ws = audited.open("admin")
    with ws.db.engine.begin() as conn:
        body = conn.execute(
            text("SELECT body FROM audit_events WHERE seq = :s"), {"s": seq}
        ).scalar()
        obj = json.loads(body)
        obj["details"]["i"] = 999
        new = merkle.encode_event(obj)
        conn.execute(
            text("UPDATE audit_events SET body = :b, leaf_hash = :h WHERE seq = :s"),
            {"b": new, "h": merkle.leaf_hash(new), "s": seq},
        )
    verdict = _verdict(audited)
    assert not verdict.ok and verdict.first_bad_seq == seq
    assert "do not match the tree head" in verdict.problem


def test_deleted_event_is_named(audited):
    seq = _seq_of(audited, "thing:3")
    _sql(audited.open("admin"), "DELETE FROM audit_events WHERE seq = :s", s=seq)
    verdict = _verdict(audited)
    assert not verdict.ok and verdict.first_bad_seq == seq and "missing" in verdict.problem


def test_inserted_event_is_named(audited):
    seq = _seq_of(audited, "thing:7")
    ws = audited.open("admin")
    with ws.db.engine.begin() as conn:
        rows = conn.execute(
            text("SELECT seq FROM audit_events WHERE seq >= :s ORDER BY seq DESC"), {"s": seq}
        ).scalars()
        for s in list(rows):
            conn.execute(
                text("UPDATE audit_events SET seq = :n WHERE seq = :o"), {"n": s + 1, "o": s}
            )
        forged = merkle.encode_event(
            {
                "v": 1,
                "seq": seq,
                "time": "2026-01-01T00:00:00.000000Z",
                "actor": "admin",
                "action": "principal.create",
                "resource": "principal:backdoor",
                "outcome": "ok",
                "request_id": "0" * 32,
                "details": {},
            }
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, time, actor, action, resource, outcome, request_id,"
                " body, leaf_hash) VALUES (:s, :t, 'admin', 'principal.create', "
                "'principal:backdoor', 'ok', :r, :b, :h)"
            ),
            {
                "s": seq,
                "t": "2026-01-01 00:00:00",
                "r": "0" * 32,
                "b": forged,
                "h": merkle.leaf_hash(forged),
            },
        )
    verdict = _verdict(audited)
    assert not verdict.ok and verdict.first_bad_seq == seq


def test_two_reordered_events_are_named(audited):
    a = _seq_of(audited, "thing:4")
    b = a + 1
    ws = audited.open("admin")
    _sql(ws, "UPDATE audit_events SET seq = -1 WHERE seq = :a", a=a)
    _sql(ws, "UPDATE audit_events SET seq = :a WHERE seq = :b", a=a, b=b)
    _sql(ws, "UPDATE audit_events SET seq = :b WHERE seq = -1", b=b)
    verdict = _verdict(audited)
    assert not verdict.ok and verdict.first_bad_seq == a


def test_forged_tree_head_is_caught(audited):
    ws = audited.open("admin")
    _sql(ws, "UPDATE tree_heads SET root_hash = :r WHERE tree_size = 5", r=b"\x00" * 32)
    verdict = _verdict(audited)
    assert not verdict.ok and "signature" in verdict.problem


def test_truncation_is_caught_against_an_earlier_head(audited):
    auditor = audited.open("auditor")
    saved = auditor.audit.head()
    _fill(audited.open("admin"), 3)
    assert auditor.audit.verify(against=saved).ok
    ws = audited.open("admin")
    size = saved.tree_size
    # Someone with the database deletes the newest events, their tree heads, and fixes the state.
    _sql(ws, "DELETE FROM audit_events WHERE seq > :n", n=size - 2)
    _sql(ws, "DELETE FROM tree_heads WHERE tree_size > :n", n=size - 2)
    with ws.db.engine.begin() as conn:
        leaves = [
            bytes(r)
            for r in conn.execute(text("SELECT leaf_hash FROM audit_events ORDER BY seq")).scalars()
        ]
        cr = merkle.CompactRange()
        for leaf in leaves:
            cr.append(leaf)
        conn.execute(
            text("UPDATE audit_state SET size = :n, frontier = :f"),
            {"n": len(leaves), "f": json.dumps(cr.to_json())},
        )
    # The log alone looks fine, but the head kept elsewhere proves it lost events.
    assert audited.open("auditor").audit.verify().ok
    verdict = audited.open("auditor").audit.verify(against=saved)
    assert not verdict.ok and "deleted" in verdict.problem


def test_rewritten_history_is_caught_against_an_earlier_head(audited):
    auditor = audited.open("auditor")
    saved = auditor.audit.head()
    other = merkle.TreeHead.from_json({**saved.to_json(), "root_hash": "00" * 32})
    verdict = auditor.audit.verify(against=other)
    assert not verdict.ok


def test_inclusion_proofs_verify_with_an_independent_rfc6962_check(audited):
    auditor = audited.open("auditor")
    head = auditor.audit.head()
    for event in auditor.audit.events():
        proof = auditor.audit.prove(event.seq).to_json()
        body = merkle.encode_event(event.to_json())
        leaf = hashlib.sha256(b"\x00" + body).digest()
        assert proof["leaf_hash"] == leaf.hex()
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        root = rfc6962_root_from_path(leaf, proof["leaf_index"], proof["tree_size"], path)
        assert root.hex() == proof["tree_head"]["root_hash"] == head.root_hash.hex()
    # And the signature over the head, checked with cryptography directly.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: F401

    assert merkle.verify_tree_head(head, auditor.audit_public_key())


def test_group_commit_appends_many_events_under_one_head(env):
    ws = env.open("admin")
    before = ws.audit.size()
    with ws.transaction() as session:
        ws.audit.append_many(
            session,
            [{"actor": "bulk", "action": "test.bulk", "resource": f"r:{i}"} for i in range(500)],
        )
    assert ws.audit.size() == before + 500
    assert ws.audit.head().tree_size == before + 500
    assert env.open("auditor").audit.verify().ok


def test_audit_events_hold_no_token(env):
    admin = env.open("admin")
    from aidlc.core import principals

    _, token = principals.add(admin, "zed", ["trainer"])
    with admin.db.engine.begin() as conn:
        bodies = conn.execute(text("SELECT body FROM audit_events")).scalars().all()
    assert not any(token.encode() in bytes(b) for b in bodies)
    assert not any(env.tokens["admin"].encode() in bytes(b) for b in bodies)
