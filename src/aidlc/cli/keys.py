"""`aidlc keys ...`: master key versions and rotation (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace

app = typer.Typer(help="Master keys: list versions, rotate (admin).", no_args_is_help=True)


@app.command("rotate")
def rotate(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Add a new master key version and re-wrap every data key; no object is re-encrypted."""
    from aidlc.core import objects

    with open_workspace() as ws:
        result = objects.rotate_keys(ws)
    if json_out:
        emit_json(result)
        return
    console().print(
        f"Rotated to key {result['key_id']}; re-wrapped {result['rewrapped']} data keys."
    )


@app.command("list")
def list_(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List master key versions and their age."""
    from rich.table import Table

    with open_workspace() as ws:
        ws.authorize("key.manage", "keys")
        versions = ws.keys.key_versions()
    rows = [
        {"id": v.id, "created_at": v.created_at.isoformat(), "current": v.current} for v in versions
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table("key version", "created", "current")
    for v in versions:
        table.add_row(v.id, f"{v.created_at:%Y-%m-%d %H:%M}", "yes" if v.current else "")
    console().print(table)
