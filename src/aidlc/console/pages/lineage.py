"""The lineage page: the graph from raw files to datasets, runs, model versions, aliases and
deployments around one reference, as an SVG drawing and as a nested list for screen readers."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from aidlc.console import charts
from aidlc.console.markup import Html, Page, h
from aidlc.core.workspace import Workspace
from aidlc.errors import InvalidInput
from aidlc.govern import lineage
from aidlc.registry import versions

__all__ = ["default_ref", "page"]

_MAX_REF = 200
# How a node is re-rooted: the lineage reference each kind of node id stands for.
_REROOT = {"model": "", "dataset": "dataset:", "run": "run:", "raw": "raw:"}


def default_ref(ws: Workspace) -> str | None:
    """`NAME@V` of the first model in production (by name), or None."""
    for m in versions.list_models(ws):
        production = m.get("aliases", {}).get("production")
        if production is not None:
            return f"{m['name']}@{production}"
    return None


def _href(node: lineage.Node) -> str | None:
    prefix = _REROOT.get(node.kind)
    if prefix is None:
        return None
    key = node.id.partition(":")[2]
    return "/console/lineage?" + urlencode({"ref": prefix + key})


def _nested(graph: lineage.Lineage) -> Html:
    """Each node with what came out of it, from the nodes nothing flows into; a node reached
    twice is listed once and named again as "(see above)"."""
    targets = {e.target for e in graph.edges}
    roots = [n for n in graph.nodes.values() if n.id not in targets] or list(graph.nodes.values())
    seen: set[str] = set()

    def item(node_id: str, via: str | None) -> Html:
        node = graph.nodes[node_id]
        lead = f"{via}: " if via else ""
        if node_id in seen:
            return h("li", None, lead, node.label, " (see above)")
        seen.add(node_id)
        below = [item(e.target, e.kind) for e in graph.downstream(node_id)]
        return h(
            "li",
            {"data-id": node_id},
            lead,
            node.label,
            h("ul", None, below) if below else None,
        )

    return h("ul", {"class": "lineage-tree"}, [item(n.id, None) for n in roots])


def _form(ref: str) -> Html:
    return h(
        "form",
        {"method": "get", "action": "/console/lineage", "class": "picker"},
        h("label", {"for": "ref"}, "Reference (NAME@V, dataset:NAME@V, run:ID, raw:SHA256)"),
        " ",
        h("input", {"id": "ref", "name": "ref", "value": ref}),
        " ",
        h("button", {"type": "submit"}, "Trace"),
    )


def page(ws: Workspace, query: Mapping[str, str]) -> Page:
    """`?ref=` (default: the first production model, `NAME@production` resolved to `NAME@V`).
    Needs `lineage.read` (trainer, approver, monitor, auditor)."""
    ref = (query.get("ref") or "").strip()
    if len(ref) > _MAX_REF:
        raise InvalidInput(f"ref is longer than {_MAX_REF} characters")
    ws.authorize("lineage.read", f"lineage:{ref[:100]}")
    if not ref:
        ref = default_ref(ws) or ""
    if not ref:
        body = h(
            "div",
            None,
            _form(""),
            h("p", {"class": "empty"}, "No model is in production; name a reference to trace."),
        )
        return Page("Lineage", body)
    graph = lineage.trace(ws, ref)
    nodes = list(graph.nodes.values())
    hrefs = {n.id: href for n in nodes if (href := _href(n)) is not None}
    root = graph.nodes.get(graph.root)
    body = h(
        "div",
        {"class": "lineage"},
        _form(ref),
        h(
            "p",
            None,
            f"{len(nodes)} records and {len(graph.edges)} links around "
            f"{root.label if root else ref}.",
        ),
        h(
            "div",
            {"role": "alert", "class": "problems"},
            h("p", None, "These records disagree with each other:"),
            h("ul", None, [h("li", None, p) for p in graph.problems]),
        )
        if graph.problems
        else None,
        h(
            "figure",
            {"class": "chart"},
            charts.dag(nodes, graph.edges, label=f"Lineage of {ref}", hrefs=hrefs),
            h(
                "figcaption",
                None,
                "Left to right: raw files, datasets, runs, models, aliases, "
                "deployments and monitor reports.",
            ),
        ),
        h("h2", None, "As a list"),
        _nested(graph),
    )
    return Page(f"Lineage of {ref}", body)
