"""The overview page: this server's health, open alerts, production models and the latest monitor
verdicts, each section shown only to principals whose roles may read it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from aidlc.console.markup import Html, Page, badge, h, table

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace
    from aidlc.serve.app import Server

# Alerts raised or repeated within this window count as open: alerts have no acknowledge step.
OPEN_ALERTS = timedelta(days=1)


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def _health(server: Server | None) -> Html:
    if server is None:
        return h("p", None, "No server state is available.")
    if server.revoked is not None:
        state = badge("failed")
        why = "the server's credentials were revoked"
    elif server.ready and server.slots:
        state, why = badge("ok"), "ready"
    else:
        state = badge("warn")
        why = "starting" if not server.ready else "no model is being served"
    served = [
        (
            name,
            f"{name}@{slot.production.version}",
            f"{slot.deployment.mode} of {name}@{slot.deployment.candidate}"
            if slot.deployment is not None
            else "—",
        )
        for name, slot in sorted(server.slots.items())
    ]
    return h(
        "div",
        None,
        h("p", None, "Server: ", state, " ", why, "."),
        table(
            ["Model", "Production", "Rollout"],
            served,
            caption="Models this server answers for",
            empty="This server serves no model.",
        ),
    )


def _alerts(ws: Workspace) -> Html:
    from aidlc.core.alerts import list_alerts

    recent = list_alerts(ws, limit=20, since=datetime.now(UTC) - OPEN_ALERTS)
    rows = [
        (badge(a.severity), a.source, a.title, _when(a.last_at or a.created_at), a.occurrences)
        for a in recent
    ]
    return table(
        ["Severity", "Source", "Title", "Last seen", "Times"],
        rows,
        caption="Alerts raised or repeated in the last 24 hours",
        empty="No alert in the last 24 hours.",
    )


def _production(ws: Workspace) -> Html:
    from aidlc.registry import versions

    rows = []
    for m in versions.list_models(ws):
        if "production" not in m["aliases"]:
            continue
        others = [f"{a} → {v}" for a, v in m["aliases"].items() if a != "production"]
        metrics = versions.production_metrics(ws, m["name"]) or {}
        rows.append(
            (
                h("a", {"href": f"/console/models/{quote(m['name'], safe='')}"}, m["name"]),
                m["aliases"]["production"],
                ", ".join(others) or "—",
                ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())) or "—",
            )
        )
    return table(
        ["Model", "Production version", "Other aliases", "Metrics"],
        rows,
        caption="Models with a production version",
        empty="No model is in production.",
    )


def _verdicts(ws: Workspace) -> Html:
    from aidlc.monitor.runner import ReportInfo, list_reports

    latest: dict[str, ReportInfo] = {}
    for report in list_reports(ws, limit=200):
        latest.setdefault(report.model, report)
    return table(
        ["Model", "Version", "Verdict", "Window end", "Rows"],
        [
            (r.model, r.version, badge(r.verdict), _when(r.window_end), r.rows)
            for r in latest.values()
        ],
        caption="The newest monitor report of each model",
        empty="No monitor report yet.",
    )


# (action needed, anchor, heading, section)
_SECTIONS = (
    ("alert.read", "alerts", "Open alerts", _alerts),
    ("model.read", "production", "Production models", _production),
    ("monitor.read", "verdicts", "Last monitor verdicts", _verdicts),
)


def page(ws: Workspace, query: Mapping[str, str], *, server: Server | None = None) -> Page:
    """Health, then what the principal may read of alerts, models and monitor verdicts."""
    principal = ws.principal
    parts: list[object] = [h("h2", {"id": "health"}, "Health"), _health(server)]
    links = [("Health", "#health")]
    for action, anchor, heading, section in _SECTIONS:
        if principal is not None and principal.may(action):
            parts += [h("h2", {"id": anchor}, heading), section(ws)]
            links.append((heading, f"#{anchor}"))
    return Page("Overview", h("div", None, *parts), links)
