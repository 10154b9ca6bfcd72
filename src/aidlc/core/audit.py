"""The tamper-evident audit log: append events in the caller's transaction, sign tree heads,
verify the whole log, prove inclusion and consistency.

Events are leaves of an RFC 6962 Merkle tree (see `core.merkle` and docs/audit.md). Appending is
O(log n): the tree's right frontier lives in one locked state row, so the hot path never
recomputes the tree. A signed tree head is stored at the end of every audited transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aidlc.core import merkle
from aidlc.core.meta import AuditEvent, AuditState, Database, TreeHeadRecord
from aidlc.errors import NotFound

OUTCOMES = ("ok", "denied", "error")
_DIRTY = "aidlc_audit_dirty"
_request_id: ContextVar[str | None] = ContextVar("aidlc_request_id", default=None)


def new_request_id() -> str:
    """Start a new request: every event until the next call shares this id."""
    rid = uuid.uuid4().hex
    _request_id.set(rid)
    return rid


def set_request_id(rid: str) -> None:
    """Continue a request whose id was given (a server's X-Request-ID)."""
    _request_id.set(rid)


def current_request_id() -> str:
    rid = _request_id.get()
    return rid if rid is not None else new_request_id()


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, the form used inside event bodies and tree heads."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stored_time(value: object) -> str | None:
    """The `time` column as the body writes it (`format_time`), cheaply: SQLite hands back the
    text SQLAlchemy stored ("YYYY-MM-DD HH:MM:SS.ffffff"), PostgreSQL a naive UTC datetime.
    Anything else (a hand-edited value of another type) matches no body."""
    if isinstance(value, str):
        return value.replace(" ", "T", 1) + "Z"
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat(timespec="microseconds") + "Z"
    return None


@dataclass(frozen=True)
class Event:
    """One audit event as an auditor reads it."""

    seq: int
    time: str
    actor: str
    action: str
    resource: str
    outcome: str
    request_id: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "details": self.details,
        }

    @classmethod
    def from_body(cls, body: bytes) -> Event:
        obj = merkle.decode_event(body)
        return cls(
            seq=obj["seq"],
            time=obj["time"],
            actor=obj["actor"],
            action=obj["action"],
            resource=obj["resource"],
            outcome=obj["outcome"],
            request_id=obj["request_id"],
            details=obj.get("details", {}),
        )


@dataclass(frozen=True)
class Verdict:
    """The outcome of `verify`: intact, or the first bad event and what is wrong with it."""

    ok: bool
    size: int
    heads_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head: merkle.TreeHead | None = None
    consistency_proof: list[bytes] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "events": self.size,
            "tree_heads_checked": self.heads_checked,
        }
        if not self.ok:
            out["first_bad_event"] = self.first_bad_seq
            out["problem"] = self.problem
        if self.head is not None:
            out["tree_head"] = self.head.to_json()
        if self.consistency_proof is not None:
            out["consistency_proof"] = [h.hex() for h in self.consistency_proof]
        return out


def _clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    # Floats are refused by the canonical encoding; callers' numbers become strings here.
    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, datetime):
            return format_time(value)
        return value

    return clean(dict(details or {}))  # type: ignore[no-any-return]


class AuditLog:
    """The audit log of one workspace database."""

    def __init__(
        self,
        db: Database,
        *,
        private_key: Callable[[], Ed25519PrivateKey],
        public_key: Callable[[], Ed25519PublicKey],
    ) -> None:
        self.db = db
        self._private_key = private_key
        self._public_key = public_key

    # -- writing -----------------------------------------------------------------------------

    def _state(self, session: Session) -> AuditState:
        state = session.execute(
            select(AuditState).where(AuditState.id == 1).with_for_update()
        ).scalar_one_or_none()
        if state is None:
            state = AuditState(id=1, size=0, frontier=json.dumps(merkle.CompactRange().to_json()))
            session.add(state)
            session.flush()
        return state

    def append(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        resource: str,
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one event inside the caller's transaction; returns its sequence number."""
        return self.append_many(
            session,
            [
                {
                    "actor": actor,
                    "action": action,
                    "resource": resource,
                    "outcome": outcome,
                    "details": details,
                }
            ],
        )[-1]

    def append_many(self, session: Session, events: list[Mapping[str, Any]]) -> list[int]:
        """Append several events in one transaction (group commit); returns their numbers."""
        state = self._state(session)
        frontier = merkle.CompactRange.from_json(json.loads(state.frontier))
        now = datetime.now(UTC)
        stamp = format_time(now)
        rid = current_request_id()
        seqs = []
        rows = []
        for ev in events:
            outcome = ev.get("outcome", "ok")
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown audit outcome {outcome!r}")
            seq = frontier.size + 1
            event = Event(
                seq=seq,
                time=stamp,
                actor=ev["actor"],
                action=ev["action"],
                resource=ev["resource"],
                outcome=outcome,
                request_id=rid,
                details=_clean_details(ev.get("details")),
            )
            body = merkle.encode_event(event.to_json())
            leaf = merkle.leaf_hash(body)
            frontier.append(leaf)
            rows.append(
                {
                    "seq": seq,
                    "time": now,
                    "actor": event.actor,
                    "action": event.action,
                    "resource": event.resource,
                    "outcome": event.outcome,
                    "request_id": rid,
                    "body": body,
                    "leaf_hash": leaf,
                }
            )
            seqs.append(seq)
        session.execute(insert(AuditEvent), rows)
        state.size = frontier.size
        state.frontier = json.dumps(frontier.to_json())
        session.info[_DIRTY] = True
        return seqs

    def checkpoint_if_needed(self, session: Session) -> merkle.TreeHead | None:
        """Sign and store a tree head when this transaction appended events."""
        if not session.info.pop(_DIRTY, False):
            return None
        state = self._state(session)
        frontier = merkle.CompactRange.from_json(json.loads(state.frontier))
        head = merkle.sign_tree_head(
            self._private_key(), frontier.size, frontier.root(), format_time(datetime.now(UTC))
        )
        session.add(
            TreeHeadRecord(
                tree_size=head.tree_size,
                root_hash=head.root_hash,
                timestamp=head.timestamp,
                key_id=head.key_id,
                signature=head.signature,
            )
        )
        return head

    def record(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one event in a transaction of its own (used for denials)."""
        with self.db.transaction() as session:
            seq = self.append(
                session,
                actor=actor,
                action=action,
                resource=resource,
                outcome=outcome,
                details=details,
            )
            self.checkpoint_if_needed(session)
        return seq

    # -- reading -----------------------------------------------------------------------------

    def size(self) -> int:
        with self.db.reading() as session:
            state = session.get(AuditState, 1)
            return 0 if state is None else state.size

    def head(self) -> merkle.TreeHead:
        """The newest signed tree head."""
        with self.db.reading() as session:
            rec = session.execute(
                select(TreeHeadRecord).order_by(TreeHeadRecord.tree_size.desc()).limit(1)
            ).scalar_one_or_none()
        if rec is None:
            raise NotFound("the audit log has no signed tree head yet")
        return _head_from_record(rec)

    def events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events, oldest first, decoded from their signed bodies."""
        query = select(AuditEvent.body).order_by(AuditEvent.seq)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        if action:
            if action.endswith("*"):
                query = query.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
            else:
                query = query.where(AuditEvent.action == action)
        if since:
            query = query.where(AuditEvent.time >= since)
        if limit:
            query = query.order_by(None).order_by(AuditEvent.seq.desc()).limit(limit)
        with self.db.reading() as session:
            bodies = list(session.execute(query).scalars())
        if limit:
            bodies.reverse()
        return [Event.from_body(b) for b in bodies]

    def event(self, seq: int) -> Event:
        with self.db.reading() as session:
            body = session.execute(
                select(AuditEvent.body).where(AuditEvent.seq == seq)
            ).scalar_one_or_none()
        if body is None:
            raise NotFound(f"no audit event {seq}")
        return Event.from_body(body)

    def _leaves(self, session: Session, upto: int | None = None) -> list[bytes]:
        query = select(AuditEvent.leaf_hash).order_by(AuditEvent.seq)
        if upto is not None:
            query = query.where(AuditEvent.seq <= upto)
        return list(session.execute(query).scalars())

    def prove(self, seq: int) -> merkle.InclusionProof:
        """An inclusion proof of event `seq` in the newest signed tree head."""
        head = self.head()
        if not 1 <= seq <= head.tree_size:
            raise NotFound(
                f"no audit event {seq} under the newest tree head (size {head.tree_size})"
            )
        with self.db.reading() as session:
            leaves = self._leaves(session, upto=head.tree_size)
            body = session.execute(
                select(AuditEvent.body).where(AuditEvent.seq == seq)
            ).scalar_one()
        # The event travels with its proof so a verifier can re-encode and hash it themselves.
        return merkle.InclusionProof(
            leaf_index=seq - 1,
            tree_size=head.tree_size,
            leaf_hash=bytes(leaves[seq - 1]),
            audit_path=tuple(merkle.inclusion_proof(seq - 1, leaves)),
            tree_head=head,
            event=bytes(body),
        )

    # -- verifying ---------------------------------------------------------------------------

    def verify(self, against: merkle.TreeHead | None = None) -> Verdict:
        """Recompute every leaf and every checkpoint root; check each tree head's signature.

        With `against`, also prove that today's log extends that (externally kept) head.
        """
        public_key = self._public_key()
        with self.db.reading() as session:
            heads = [
                _head_from_record(r)
                for r in session.execute(
                    select(TreeHeadRecord).order_by(TreeHeadRecord.tree_size)
                ).scalars()
            ]
            state = session.get(AuditState, 1)
            # The hot loop of verification: a raw DB-API cursor, local names, a C JSON parser.
            cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.arraysize = 10_000
            cursor.execute(
                "SELECT seq, time, actor, action, resource, outcome, request_id, body, leaf_hash "
                "FROM audit_events ORDER BY seq"
            )
            rows = iter(lambda: cursor.fetchmany(), [])
            leaves: list[bytes] = []
            append = leaves.append
            row_problem: tuple[int, str] | None = None
            sha256 = hashlib.sha256
            loads = orjson.loads
            for seq, stamp, actor, action, resource, outcome, rid, body, stored_leaf in (
                row for chunk in rows for row in chunk
            ):
                # A hand-edited row may hold TEXT, a number or NULL where bytes belong (SQLite
                # keeps any type): hash what is there, so it is named as edited, never a crash.
                if isinstance(body, str):
                    body = body.encode("utf-8", "surrogatepass")
                elif isinstance(body, bytes | bytearray | memoryview):
                    body = bytes(body)
                else:
                    body = repr(body).encode()
                leaf = sha256(b"\x00" + body).digest()
                append(leaf)
                if row_problem is not None:
                    continue
                expected = len(leaves)
                if seq != expected:
                    row_problem = (expected, f"event {expected} is missing (deleted)")
                    continue
                if leaf != stored_leaf:
                    row_problem = (seq, f"event {seq} was edited (its hash changed)")
                    continue
                try:
                    obj = loads(body)
                except orjson.JSONDecodeError:
                    row_problem = (seq, f"event {seq} has an unreadable body")
                    continue
                if (
                    not isinstance(obj, dict)
                    or obj.get("seq") != seq
                    or obj.get("actor") != actor
                    or obj.get("action") != action
                    or obj.get("resource") != resource
                    or obj.get("outcome") != outcome
                    or obj.get("request_id") != rid
                    or obj.get("time") != _stored_time(stamp)
                ):
                    row_problem = (
                        seq,
                        f"event {seq} was edited or moved (its columns disagree with its "
                        "signed body)",
                    )
        size = len(leaves)
        # Roots at every checkpoint, computed in one pass over the leaves.
        frontier = merkle.CompactRange()
        position = 0
        previous = 0
        head_problem: tuple[int, str] | None = None
        for head in heads:
            if head.tree_size > size:
                head_problem = (
                    size + 1,
                    f"the log has {size} events but a signed tree head covers {head.tree_size}: "
                    f"events {size + 1}..{head.tree_size} were deleted",
                )
                break
            frontier.extend(leaves[position : head.tree_size])
            position = head.tree_size
            # verify_tree_head also refuses a head carrying another key's id
            if not merkle.verify_tree_head(head, public_key):
                head_problem = (
                    previous + 1,
                    f"the tree head at size {head.tree_size} has an invalid signature",
                )
                break
            if frontier.root() != head.root_hash:
                head_problem = (
                    previous + 1,
                    f"events {previous + 1}..{head.tree_size} do not match the tree head signed "
                    f"at {head.timestamp}: an event was edited, inserted, deleted or reordered",
                )
                break
            previous = head.tree_size
        if head_problem is None and size > previous:
            head_problem = (
                previous + 1,
                f"events {previous + 1}..{size} are not covered by any signed tree head",
            )
        if head_problem is None and state is not None and state.size != size:
            head_problem = (
                min(state.size, size) + 1,
                f"the audit state records {state.size} events but the log holds {size}",
            )
        problems = [p for p in (row_problem, head_problem) if p is not None]
        if problems:
            seq, problem = min(problems, key=lambda p: p[0])
            return _bad(seq, problem, len(heads))
        newest = heads[-1] if heads else None
        proof = None
        if against is not None:
            if not merkle.verify_tree_head(against, public_key):
                return _bad(
                    None,
                    "the given tree head is not signed by this workspace's audit key",
                    len(heads),
                )
            if against.tree_size > size:
                return _bad(
                    size + 1,
                    f"the log has {size} events but the given head covers {against.tree_size}: "
                    f"events {size + 1}..{against.tree_size} were deleted",
                    len(heads),
                )
            if merkle.root(leaves[: against.tree_size]) != against.root_hash:
                return _bad(
                    None,
                    f"the first {against.tree_size} events differ from those of the given head: "
                    "the log was rewritten",
                    len(heads),
                )
            if newest is None:
                return _bad(None, "the log has no signed tree head to compare with", len(heads))
            # Both roots were just checked against these leaves (the newest head's above), so the
            # proof from them verifies; it goes out for an auditor to check on their own.
            proof = merkle.consistency_proof(against.tree_size, leaves)
        return Verdict(
            ok=True, size=size, heads_checked=len(heads), head=newest, consistency_proof=proof
        )


def _bad(seq: int | None, problem: str, heads: int) -> Verdict:
    return Verdict(ok=False, size=0, heads_checked=heads, first_bad_seq=seq, problem=problem)


def _head_from_record(rec: TreeHeadRecord) -> merkle.TreeHead:
    return merkle.TreeHead(
        tree_size=rec.tree_size,
        root_hash=bytes(rec.root_hash),
        timestamp=rec.timestamp,
        key_id=rec.key_id,
        signature=bytes(rec.signature),
    )
