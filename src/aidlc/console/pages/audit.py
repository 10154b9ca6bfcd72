"""The audit pages: a searchable list of events with the chain's verification status, and one
event with its inclusion proof in the newest signed tree head and how to check it offline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode

from sqlalchemy import func, or_, select

from aidlc.console.markup import Html, Page, badge, h, table
from aidlc.core.audit import OUTCOMES, Event
from aidlc.core.meta import AuditEvent
from aidlc.core.workspace import Workspace
from aidlc.errors import InvalidInput, NotFound

__all__ = ["PAGE_SIZE", "event_page", "page", "search"]

PAGE_SIZE = 50
_MAX_TERM = 200


def _term(query: Mapping[str, str], key: str) -> str:
    value = (query.get(key) or "").strip()
    if len(value) > _MAX_TERM:
        raise InvalidInput(f"{key} is longer than {_MAX_TERM} characters")
    return value


def search(
    ws: Workspace,
    *,
    q: str = "",
    actor: str = "",
    action: str = "",
    outcome: str = "",
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[Event], int | None]:
    """Events newest first matching every filter given (`q`: case-insensitive text in action,
    resource or actor; `action` ending in `*`: a prefix), with sequence numbers below `before`;
    returns a page of them and the `before` of the next page (None on the last one).
    Needs `audit.read` (auditor). Events are decoded from their signed bodies."""
    ws.authorize("audit.read", "audit")
    if outcome and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of: {', '.join(OUTCOMES)}")
    stmt = select(AuditEvent.body).order_by(AuditEvent.seq.desc()).limit(limit + 1)
    if q:
        needle = q.lower()
        stmt = stmt.where(
            or_(
                *(
                    func.lower(column).contains(needle, autoescape=True)
                    for column in (AuditEvent.action, AuditEvent.resource, AuditEvent.actor)
                )
            )
        )
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action.endswith("*"):
        stmt = stmt.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
    elif action:
        stmt = stmt.where(AuditEvent.action == action)
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if before is not None:
        stmt = stmt.where(AuditEvent.seq < before)
    with ws.db.reading() as session:
        bodies = list(session.execute(stmt).scalars())
    events = [Event.from_body(bytes(b)) for b in bodies[:limit]]
    return events, (events[-1].seq if len(bodies) > limit else None)


def _status(ws: Workspace) -> Html:
    principal = ws.principal
    if principal is None or not principal.may("audit.verify"):
        return h("p", {"class": "note"}, "Verifying the chain needs the auditor role.")
    ws.authorize("audit.verify", "audit")
    verdict = ws.audit.verify()
    if verdict.ok:
        head = verdict.head
        detail = f"{verdict.size} events, {verdict.heads_checked} signed tree heads checked" + (
            f"; newest head: size {head.tree_size}, root {head.root_hash.hex()[:16]}…, "
            f"signed {head.timestamp}"
            if head
            else ""
        )
        return h(
            "section",
            {"class": "verdict", "aria-label": "Chain verification"},
            h("p", None, "Chain verification: ", badge("ok"), " ", detail, "."),
        )
    where = f"event {verdict.first_bad_seq}: " if verdict.first_bad_seq else ""
    return h(
        "section",
        {"class": "verdict", "aria-label": "Chain verification", "role": "alert"},
        h("p", None, "Chain verification: ", badge("failed"), " ", f"{where}{verdict.problem}"),
        h("p", None, "Re-check from a shell: ", h("code", None, "aidlc audit verify")),
    )


def _form(values: Mapping[str, str]) -> Html:
    def field(key: str, text: str) -> Html:
        return h(
            "p",
            None,
            h("label", {"for": f"audit-{key}"}, text),
            " ",
            h("input", {"id": f"audit-{key}", "name": key, "value": values.get(key, "")}),
        )

    chosen = values.get("outcome", "")
    return h(
        "form",
        {"method": "get", "action": "/console/audit", "class": "filters", "role": "search"},
        field("q", "Text in action, resource or actor"),
        field("actor", "Actor"),
        field("action", "Action (a trailing * matches a prefix)"),
        h(
            "p",
            None,
            h("label", {"for": "audit-outcome"}, "Outcome"),
            " ",
            h(
                "select",
                {"id": "audit-outcome", "name": "outcome"},
                h("option", {"value": "", "selected": not chosen}, "any"),
                [h("option", {"value": o, "selected": o == chosen}, o) for o in OUTCOMES],
            ),
        ),
        h("button", {"type": "submit"}, "Search"),
    )


def page(ws: Workspace, query: Mapping[str, str]) -> Page:
    """The newest events (50 a page, older pages by `before=SEQ`) matching `q`, `actor`,
    `action` and `outcome`, and whether the chain verifies. Needs `audit.read` (auditor)."""
    values = {k: _term(query, k) for k in ("q", "actor", "action", "outcome")}
    raw_before = _term(query, "before")
    if raw_before and (
        not raw_before.isascii() or not raw_before.isdigit() or len(raw_before) > 18
    ):
        raise InvalidInput("before must be an event sequence number")
    events, next_before = search(
        ws,
        q=values["q"],
        actor=values["actor"],
        action=values["action"],
        outcome=values["outcome"],
        before=int(raw_before) if raw_before else None,
    )
    rows = [
        [
            h("a", {"href": f"/console/audit/{e.seq}"}, str(e.seq)),
            e.time[:19].replace("T", " "),
            e.actor,
            e.action,
            e.resource,
            badge(e.outcome),
        ]
        for e in events
    ]
    filters = {k: v for k, v in values.items() if v}
    more = (
        h(
            "p",
            None,
            h(
                "a",
                {"href": "/console/audit?" + urlencode({**filters, "before": next_before})},
                "Older events",
            ),
        )
        if next_before is not None
        else None
    )
    body = h(
        "div",
        {"class": "audit"},
        _status(ws),
        _form(values),
        table(
            ["seq", "time (UTC)", "actor", "action", "resource", "outcome"],
            rows,
            caption="Audit events, newest first",
            empty="No event matches.",
        ),
        more,
    )
    return Page("Audit log", body)


def event_page(ws: Workspace, seq: int, query: Mapping[str, str]) -> Page:
    """One event, decoded from its signed body, with its inclusion proof in the newest signed
    tree head (checked here against the workspace's audit key) and how to check it offline."""
    ws.authorize("audit.read", f"audit:{seq}")
    event = ws.audit.event(seq)
    details = table(
        ["field", "value"],
        [
            ["seq", event.seq],
            ["time (UTC)", event.time],
            ["actor", event.actor],
            ["action", event.action],
            ["resource", event.resource],
            ["outcome", badge(event.outcome)],
            ["request id", event.request_id],
        ],
        caption=f"Event {seq}",
    )
    parts: list[object] = [
        details,
        h("h2", None, "Details"),
        h("pre", {"class": "details"}, json.dumps(event.details, indent=2, sort_keys=True)),
        h("h2", None, "Inclusion proof"),
    ]
    try:
        proof = ws.audit.prove(seq)
    except NotFound as exc:
        parts.append(h("p", {"class": "empty"}, exc.message))
        return Page(f"Audit event {seq}", h("div", {"class": "audit-event"}, parts))
    head = proof.tree_head
    checks = proof.verify(ws.audit_public_key())
    parts += [
        h(
            "p",
            {"class": "proof-status"},
            "Checked here against the workspace's audit key: ",
            badge("verified" if checks else "failed"),
        ),
        h(
            "dl",
            {"class": "proof"},
            h("dt", None, "Leaf index"),
            h("dd", {"data-field": "leaf-index"}, str(proof.leaf_index)),
            h("dt", None, "Leaf hash"),
            h("dd", None, h("code", {"data-field": "leaf-hash"}, proof.leaf_hash.hex())),
            h("dt", None, "Tree size"),
            h("dd", {"data-field": "tree-size"}, str(proof.tree_size)),
            h("dt", None, "Root hash"),
            h("dd", None, h("code", {"data-field": "root-hash"}, head.root_hash.hex())),
            h("dt", None, "Audit path (leaf to root)"),
            h(
                "dd",
                None,
                h(
                    "ol",
                    {"data-field": "audit-path"},
                    [h("li", None, h("code", None, p.hex())) for p in proof.audit_path],
                ),
            ),
            h("dt", None, "Signed tree head"),
            h(
                "dd",
                None,
                f"signed {head.timestamp} by key {head.key_id}; signature ",
                h("code", {"data-field": "signature"}, head.to_json()["signature"]),
            ),
        ),
        h(
            "details",
            None,
            h("summary", None, "The proof as JSON"),
            h("pre", {"class": "proof-json"}, json.dumps(proof.to_json(), indent=2)),
        ),
        h("h2", None, "Check it yourself"),
        h(
            "ol",
            {"class": "howto"},
            h("li", None, "Save the proof: ", h("code", None, f"aidlc audit prove {seq} > p.json")),
            h(
                "li",
                None,
                "Save the public key you trust: ",
                h("code", None, "aidlc audit public-key > audit.pem"),
            ),
            h(
                "li",
                None,
                "Check the head's signature, the event's hash and the audit path "
                "(docs/audit.md, RFC 9162 §2.1.3.2), for example: ",
                h(
                    "pre",
                    None,
                    'python -c "from aidlc.core.merkle import InclusionProof; '
                    "from cryptography.hazmat.primitives.serialization import "
                    "load_pem_public_key as k; "
                    "InclusionProof.from_json(open('p.json').read())"
                    ".check(k(open('audit.pem','rb').read())); print('ok')\"",
                ),
            ),
            h(
                "li",
                None,
                "Tie it to a head you kept earlier: ",
                h("code", None, "aidlc audit verify --against HEAD.json"),
            ),
        ),
    ]
    return Page(
        f"Audit event {seq}",
        h("div", {"class": "audit-event"}, parts),
        links=[("Audit log", "/console/audit")],
    )
