"""`aidlc alerts ...`: alerts raised by gates, the registry, the server and monitors."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace

app = typer.Typer(help="Alerts raised by aidlc.", no_args_is_help=True)


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List alerts, newest first."""
    from rich.markup import escape
    from rich.table import Table

    from aidlc.core.alerts import list_alerts

    with open_workspace() as ws:
        items = list_alerts(ws, limit=limit)
    if json_out:
        emit_json([a.to_json() for a in items])
        return
    table = Table("id", "time", "severity", "source", "title")
    for a in items:
        style = {"CRITICAL": "red", "WARNING": "yellow"}.get(a.severity, "")
        table.add_row(
            str(a.id),
            f"{a.created_at:%Y-%m-%d %H:%M}",
            f"[{style}]{a.severity}[/]" if style else a.severity,
            a.source,
            escape(a.title),
        )
    console().print(table)
