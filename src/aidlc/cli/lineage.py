"""`aidlc lineage`: where a model or dataset came from, and where it went."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from aidlc.cli.context import console, emit_json, open_workspace

if TYPE_CHECKING:
    from rich.tree import Tree

    from aidlc.govern.lineage import Lineage


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME@V or NAME@ALIAS (a model version), dataset:NAME@V, run:ID, a prediction "
            "id (32 hex digits), raw:SHA256 or a raw object (raw/...@N).",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        Literal["tree", "mermaid", "dot", "json"],
        typer.Option("--format", "-f", help="tree (terminal), mermaid, dot (Graphviz) or json."),
    ] = "tree",
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Show where REF came from (raw files, dataset versions, runs) and where it went (model
    versions, aliases and their history, rollouts, monitor reports).

    Exit 0, or 1 when records disagree (an unsigned or altered model statement, a dataset
    whose raw file is not the one the statement names)."""
    from aidlc.govern.lineage import to_dot, to_mermaid, trace

    with open_workspace() as ws:
        graph = trace(ws, ref)
    if json_out or fmt == "json":
        emit_json(graph.to_json())
    elif fmt == "mermaid":
        sys.stdout.write(to_mermaid(graph))
    elif fmt == "dot":
        sys.stdout.write(to_dot(graph))
    else:
        console().print(_tree(graph))
    for problem in graph.problems:
        console(stderr=True).print(f"[red]problem[/]: {_escape(problem)}")
    if graph.problems:
        raise typer.Exit(1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


_STYLE = {"raw": "yellow", "dataset": "cyan", "run": "magenta", "model": "bold green"}


def _tree(graph: Lineage) -> Tree:
    """The root, then what it came from (upstream) and what was made from it (downstream)."""
    from rich.tree import Tree

    root = graph.nodes[graph.root]
    tree = Tree(f"[{_STYLE.get(root.kind, 'bold')}]{_escape(root.label)}[/]")
    for title, upstream in (("came from", True), ("led to", False)):
        edges = graph.upstream(root.id) if upstream else graph.downstream(root.id)
        if edges:
            _branch(graph, tree.add(f"[dim]{title}[/]"), root.id, upstream, {root.id})
    return tree


def _branch(graph: Lineage, parent: Tree, node_id: str, upstream: bool, path: set[str]) -> None:
    edges = graph.upstream(node_id) if upstream else graph.downstream(node_id)
    for edge in edges:
        other = edge.source if upstream else edge.target
        if other in path:
            continue
        node = graph.nodes[other]
        # The edge kind is shown unless the node's label already says it (alias ...).
        kind = "" if node.label.startswith(edge.kind) else f"[dim]{edge.kind}[/] "
        style = _STYLE.get(node.kind)
        text = f"[{style}]{_escape(node.label)}[/]" if style else _escape(node.label)
        if edge.kind == "alias":
            text += " [bold](current)[/]" if edge.attrs.get("current") else " [dim](earlier)[/]"
        _branch(graph, parent.add(kind + text), other, upstream, path | {other})
