"""The deployments page: per model the traffic split between production and a canary or shadow,
the canary's progress as this server judges it, past rollouts, and the roll-back buttons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aidlc.console.layout import action_form, text_field
from aidlc.console.markup import Html, Page, badge, h, table
from aidlc.registry import approval, versions
from aidlc.serve import rollout

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace
    from aidlc.serve.app import Server


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def page(ws: Workspace, query: Mapping[str, str], *, server: Server | None = None) -> Page:
    """Every model with a production version: its rollouts and what may be done about them."""
    sections: list[object] = []
    for model in versions.list_models(ws):
        if "production" not in model["aliases"] and not rollout.deployments(ws, model["name"]):
            continue
        sections.append(_model(ws, model, query, server))
    if not sections:
        sections.append(h("p", {"class": "empty"}, "No model is deployed yet."))
    return Page("Deployments", h("div", None, *sections))


def _progress(server: Server | None, name: str, deployment: rollout.Deployment) -> Html:
    """How far the candidate has come towards promotion, from this server's judge."""
    slot = server.slots.get(name) if server is not None else None
    judge = slot.judge if slot is not None and slot.deployment is not None else None
    if judge is None or slot is None or slot.deployment is None:
        return h("p", None, "This server has not routed requests to the candidate yet.")
    if slot.deployment.id != deployment.id:
        return h("p", None, "This server is still loading the candidate.")
    goal = deployment.policy.promote_after
    evidence = judge.evidence()
    done = min(judge.requests, goal)
    return h(
        "div",
        None,
        h(
            "label",
            None,
            f"Canary progress: {judge.requests} of {goal} requests judged",
            h("progress", {"max": str(goal), "value": str(done)}, f"{done} of {goal}"),
        ),
        table(
            ["Requests", "Error rate", "Divergence", "p95 latency ratio"],
            [
                (
                    evidence["requests"],
                    f"{evidence['error_rate']:.3f} (max {deployment.policy.max_error_rate})",
                    f"{evidence['divergence']:.3f} (max {deployment.policy.max_divergence})",
                    f"{evidence['latency_ratio']:.2f} (max {deployment.policy.max_latency_ratio})",
                )
            ],
            caption="Evidence so far (this server)",
        ),
    )


def _model(
    ws: Workspace, model: dict[str, Any], query: Mapping[str, str], server: Server | None
) -> Html:
    name: str = model["name"]
    production = model["aliases"].get("production")
    current = rollout.active(ws, name)
    history = rollout.deployments(ws, name)
    principal = ws.principal
    may_deploy = principal is not None and principal.may("model.deploy")
    csrf = query.get("csrf", "")
    base = f"/console/deployments/{quote(name, safe='')}"
    heading = f"deploy-{name}"
    parts: list[object] = [h("h2", {"id": heading}, name)]
    if current is None:
        split = [(f"{name}@{production}", "production", "100 %")] if production else []
    else:
        share = current.percent if current.mode == "canary" else 0.0
        split = [
            (f"{name}@{current.production}", "production", f"{100 - share:g} %"),
            (
                f"{name}@{current.candidate}",
                current.mode,
                f"{share:g} %" if current.mode == "canary" else "0 % (a copy of every request)",
            ),
        ]
    parts.append(table(["Version", "Role", "Traffic"], split, caption="Traffic split"))
    if current is not None:
        parts += [
            h(
                "p",
                None,
                f"A {current.mode} of {name}@{current.candidate} started by {current.started_by} "
                f"at {_when(current.started_at)} is ",
                badge(current.status),
                ".",
            ),
            _progress(server, name, current),
        ]
        if may_deploy:
            parts.append(
                action_form(
                    f"{base}/stop",
                    csrf,
                    f"Roll back the {current.mode} of {name}@{current.candidate}",
                    fields=[text_field("reason", "Reason for rolling back")],
                    danger=True,
                    label=f"Roll back the {current.mode} of {name}",
                )
            )
    moves = approval.history(ws, name, alias="production")
    previous = moves[-1].previous if moves and moves[-1].version == production else None
    if may_deploy and previous is not None:
        parts.append(
            action_form(
                f"{base}/rollback",
                csrf,
                f"Put {name}@{previous} back in production",
                fields=[text_field("reason", "Reason for the production rollback")],
                danger=True,
                label=f"Roll back production of {name}",
            )
        )
    parts.append(
        table(
            ["Id", "Mode", "Candidate", "Production", "Traffic", "Status", "Started", "Ended"],
            [
                (
                    d.id,
                    d.mode,
                    d.candidate,
                    d.production,
                    f"{d.percent:g} %",
                    badge(d.status),
                    f"{_when(d.started_at)} by {d.started_by}",
                    f"{_when(d.ended_at)} by {d.ended_by}" if d.ended_at else "—",
                )
                for d in history
            ],
            caption=f"Rollouts of {name}, newest first",
            empty="No canary or shadow has run yet.",
        )
    )
    return h("section", {"aria-labelledby": heading}, *parts)


def stop(ws: Workspace, name: str, form: Mapping[str, str]) -> str:
    """Roll back a running canary or shadow: all traffic goes back to production."""
    reason = form.get("reason", "").strip() or "rolled back from the console"
    ended = rollout.stop(ws, name, reason=reason[:500])
    return (
        f"Rolled back the {ended.mode} of {name}@{ended.candidate}; "
        f"{name}@{ended.production} answers all traffic."
    )


def rollback(ws: Workspace, name: str, form: Mapping[str, str]) -> str:
    """Put the previous production version back (ending any rollout)."""
    reason = form.get("reason", "").strip() or "rolled back from the console"
    restored = rollout.rollback(ws, name, reason=reason[:500])
    return f"{restored.ref} is production again."
