"""The compliance page: every control of a framework with its status, the clauses it serves, its
evidence and the commands that re-check it, as `govern.compliance.report` evaluates them."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aidlc.console.markup import Html, Page, badge, h, table
from aidlc.core.workspace import Workspace
from aidlc.errors import InvalidInput
from aidlc.govern import compliance

__all__ = ["page"]


def _picker(chosen: str) -> Html:
    options = [("all", "All frameworks"), *compliance.FRAMEWORKS.items()]
    return h(
        "form",
        {"method": "get", "action": "/console/compliance", "class": "picker"},
        h("label", {"for": "framework"}, "Framework"),
        " ",
        h(
            "select",
            {"id": "framework", "name": "framework"},
            [h("option", {"value": k, "selected": k == chosen}, text) for k, text in options],
        ),
        " ",
        h("button", {"type": "submit"}, "Evaluate"),
    )


def _control(c: compliance.ControlResult) -> Html:
    return h(
        "section",
        {"id": f"control-{c.id}", "class": "control", "data-status": c.status},
        h("h3", None, c.title, " ", badge(c.status)),
        h("p", None, c.summary),
        h(
            "ul",
            {"class": "clauses"},
            [
                h("li", None, f"{compliance.FRAMEWORKS[cl.framework]} {cl.id}: {cl.title}")
                for cl in c.clauses
            ],
        ),
        h(
            "details",
            None,
            h("summary", None, "Evidence"),
            h("pre", None, json.dumps(c.evidence, indent=2, sort_keys=True, default=str)),
        ),
        h("p", None, "Re-check:"),
        h("ul", {"class": "recheck"}, [h("li", None, h("code", None, cmd)) for cmd in c.recheck]),
    )


def page(ws: Workspace, query: Mapping[str, str]) -> Page:
    """`?framework=soc2|hipaa|gdpr|pci|all` (default all). Needs `compliance.read` (approver,
    auditor); a control whose evidence needs a role the viewer lacks shows as not evaluated.
    Evaluating records a `compliance.report` audit event, as the CLI does."""
    framework = (query.get("framework") or "all").strip()
    if framework != "all" and framework not in compliance.FRAMEWORKS:
        raise InvalidInput(
            f"unknown framework {framework[:40]!r}; use one of: "
            + ", ".join([*compliance.FRAMEWORKS, "all"])
        )
    report = compliance.report(ws, framework)
    counts = report.counts()
    body = h(
        "div",
        {"class": "compliance"},
        _picker(framework),
        h(
            "p",
            {"class": "verdict"},
            "Gate: ",
            badge("pass" if report.ok else "fail"),
            " — " + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items()),
            f"; evaluated {report.generated_at:%Y-%m-%d %H:%M} UTC as "
            f"{report.generated_by['principal']}.",
        ),
        table(
            ["control", "status", "summary"],
            [
                [h("a", {"href": f"#control-{c.id}"}, c.id), badge(c.status), c.summary]
                for c in report.controls
            ],
            caption=f"Controls: {compliance.FRAMEWORKS.get(framework, 'all frameworks')}",
        ),
        [_control(c) for c in report.controls],
    )
    return Page("Compliance", body)
