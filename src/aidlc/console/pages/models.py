"""The models page: registered models, and per model its versions with metrics, aliases and their
history, the model card and signature status, with approve and reject forms for approvers."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from aidlc.console.layout import action_form, text_field
from aidlc.console.markup import Html, Page, badge, h, table
from aidlc.errors import AidlcError, IntegrityError, InvalidInput
from aidlc.registry import approval, versions

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace
    from aidlc.registry.versions import ModelVersion


def _metrics(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted(values.items())) or "—"


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def page(ws: Workspace, query: Mapping[str, str]) -> Page:
    """The list of registered models."""
    rows = [
        (
            h("a", {"href": f"/console/models/{quote(m['name'], safe='')}"}, m["name"]),
            m["description"],
            m["latest"] if m["latest"] is not None else "—",
            ", ".join(f"{a} → {v}" for a, v in m["aliases"].items()) or "—",
            m["created_by"],
        )
        for m in versions.list_models(ws)
    ]
    body = table(
        ["Model", "Description", "Latest version", "Aliases", "Created by"],
        rows,
        caption="Registered models",
        empty="No model is registered yet.",
    )
    return Page("Models", body)


def _selected(found: list[ModelVersion], query: Mapping[str, str]) -> ModelVersion | None:
    if not found:
        return None
    wanted = query.get("version", "")
    if wanted:
        for v in found:
            if str(v.version) == wanted:
                return v
        raise InvalidInput(f"there is no version {wanted[:20]!r} of {found[0].name}")
    return found[-1]


def model_page(ws: Workspace, name: str, query: Mapping[str, str]) -> Page:
    """One model: versions, aliases, the selected version (`?version=N`, else the latest) with
    its card, signature status and decision forms, and the alias history."""
    found = versions.list_versions(ws, name)
    pointing = approval.aliases(ws, name)
    moves = approval.history(ws, name)
    link = f"/console/models/{quote(name, safe='')}"
    rows = [
        (
            h("a", {"href": f"{link}?version={v.version}"}, f"{v.name}@{v.version}"),
            badge(v.status),
            badge("pass" if v.gates_passed else "fail"),
            ", ".join(v.aliases) or "—",
            _metrics(v.metrics),
            v.trained_by,
            _when(v.created_at),
        )
        for v in found
    ]
    chosen = _selected(found, query)
    parts: list[object] = [
        h("h2", {"id": "versions"}, "Versions"),
        table(
            ["Version", "Status", "Gates", "Aliases", "Metrics", "Trained by", "Registered"],
            rows,
            caption=f"Versions of {name}",
            empty="This model has no versions yet.",
        ),
        h("h2", {"id": "aliases"}, "Aliases"),
        table(
            ["Alias", "Version"],
            [(a, v) for a, v in sorted(pointing.items())],
            caption="Where each alias points now",
            empty="No alias points at a version.",
        ),
    ]
    if chosen is not None:
        parts.append(_version(ws, chosen, query))
    parts += [
        h("h2", {"id": "history"}, "Alias history"),
        table(
            ["When", "Alias", "Version", "Previous", "By", "Reason"],
            [
                (
                    _when(e.at),
                    e.alias,
                    e.version if e.version is not None else "removed",
                    e.previous if e.previous is not None else "—",
                    e.by,
                    e.reason,
                )
                for e in reversed(moves)
            ],
            caption="Every alias move, newest first",
            empty="No alias has moved yet.",
        ),
    ]
    links = [("Versions", "#versions"), ("Aliases", "#aliases")]
    if chosen is not None:
        links += [("Selected version", "#version"), ("Model card", "#card")]
    links.append(("Alias history", "#history"))
    return Page(f"Model {name}", h("div", None, *parts), links)


def _signature(ws: Workspace, v: ModelVersion) -> tuple[Html, str]:
    """The signature status shown for a version, and its model card text ("" when unreadable)."""
    try:
        # Reading the card checks the registry statement's signature and the card's digest.
        card = versions.read_document(ws, v.ref, "model-card.md").decode("utf-8", "replace")
    except IntegrityError as exc:
        return h("span", None, badge("failed"), " ", exc.message), ""
    status: list[object] = [
        badge("verified"),
        " registry statement signed by this workspace; model digest ",
        h("code", None, v.model_digest[:16] + "…"),
    ]
    if ws.principal is not None and ws.principal.may("object.read:models"):
        from aidlc.registry import signing

        try:
            info = signing.signature_info(versions.read_document(ws, v.ref, "model.sig"))
            status.append(f"; OpenSSF model signature over {info['files']} files")
        except AidlcError as exc:
            status += ["; model signature: ", badge("failed"), " ", exc.message]
    status.append(". Approval and loading verify every file against it again.")
    return h("span", None, *status), card


def _version(ws: Workspace, v: ModelVersion, query: Mapping[str, str]) -> Html:
    principal = ws.principal
    signature, card = _signature(ws, v)
    decisions = approval.approvals(ws, v.ref)
    facts = [
        ("Status", badge(v.status)),
        ("Kind / task", f"{v.kind} / {v.task}"),
        ("Metrics", _metrics(v.metrics)),
        ("Gates", badge("pass" if v.gates_passed else "fail")),
        ("Trained by", v.trained_by),
        ("Registered by", v.registered_by),
        ("Registered", _when(v.created_at)),
        ("Run", v.run_id or "—"),
        ("Evaluated on", _evaluation(v)),
        ("Tags", ", ".join(f"{k}={val}" for k, val in sorted(v.tags.items())) or "—"),
        ("Signature", signature),
    ]
    parts: list[object] = [
        h("h2", {"id": "version"}, f"Version {v.ref}"),
        h("dl", {"class": "facts"}, [(h("dt", None, k), h("dd", None, val)) for k, val in facts]),
        table(
            ["Decision", "To", "By", "When", "Reason"],
            [(d["decision"], d["to"] or "—", d["by"], d["at"], d["reason"]) for d in decisions],
            caption="Approvals and rejections",
            empty="No approval decision yet.",
        ),
    ]
    csrf = query.get("csrf", "")
    base = f"/console/models/{quote(v.name, safe='')}"
    if principal is not None and principal.may("model.approve") and v.status != "rejected":
        target = h(
            "label",
            None,
            "Alias",
            h(
                "select",
                {"name": "to"},
                h("option", {"value": "staging"}, "staging"),
                h("option", {"value": "production"}, "production"),
            ),
        )
        fields: list[object] = [target, text_field("reason", "Reason for approving")]
        if (v.statement.get("evaluation") or {}).get("in_sample"):
            # approving in-sample metrics is a decision of its own, never a default
            fields.append(
                h(
                    "label",
                    None,
                    h("input", {"type": "checkbox", "name": "accept_in_sample", "value": "yes"}),
                    " I accept metrics computed on the training data (in-sample, optimistic)",
                )
            )
        parts.append(
            action_form(
                f"{base}/approve",
                csrf,
                f"Approve {v.ref}",
                hidden={"version": str(v.version)},
                fields=fields,
                label=f"Approve {v.ref}",
            )
        )
    if (
        principal is not None
        and principal.may("model.reject")
        and v.status != "rejected"
        and "production" not in v.aliases
    ):
        parts.append(
            action_form(
                f"{base}/reject",
                csrf,
                f"Reject {v.ref}",
                hidden={"version": str(v.version)},
                fields=[text_field("reason", "Reason for rejecting")],
                danger=True,
                label=f"Reject {v.ref}",
            )
        )
    parts += [
        h("h3", {"id": "card"}, "Model card"),
        # The card is Markdown with HTML entities escaped for Markdown renderers; shown as
        # text, those entities are decoded first and the text escaped once, here.
        h("pre", None, html.unescape(card))
        if card
        else h("p", {"class": "empty"}, "The card cannot be shown."),
    ]
    return h("section", {"aria-labelledby": "version"}, *parts)


def _evaluation(v: ModelVersion) -> str:
    """Where an imported version's metrics come from; trained versions say so in their run."""
    evaluation = v.statement.get("evaluation")
    if not evaluation:
        return "by its training run (holdout or cross-validation, see the run)"
    where = f"{evaluation.get('rows')} rows of {evaluation.get('dataset')}"
    return f"{where} — in-sample (optimistic)" if evaluation.get("in_sample") else where


def _ref(name: str, form: Mapping[str, str]) -> str:
    version = form.get("version", "")
    if not (version.isascii() and version.isdigit()) or len(version) > 18:
        raise InvalidInput("the form names no version")
    return f"{versions.check_model_name(name)}@{int(version)}"


def approve(ws: Workspace, name: str, form: Mapping[str, str]) -> str:
    """The approve action: approve `name@version` to `to` as the signed-in principal."""
    ref = _ref(name, form)
    done = approval.approve(
        ws,
        ref,
        to=form.get("to", "staging"),
        reason=form.get("reason", ""),
        accept_in_sample=form.get("accept_in_sample") == "yes",
    )
    return f"Approved {done.ref}; aliases now: {', '.join(done.aliases) or 'none'}."


def reject(ws: Workspace, name: str, form: Mapping[str, str]) -> str:
    """The reject action."""
    done = approval.reject(ws, _ref(name, form), reason=form.get("reason", ""))
    return f"Rejected {done.ref}."
