"""`aidlc init`: create a workspace and print its first admin token once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Workspace name (default: folder name).")] = None,
    admin: Annotated[str, typer.Option(help="Name of the first admin principal.")] = "admin",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Create a workspace: aidlc.yaml, a 0600 key ring, the metadata database and the object folder.

    The first admin's token is printed once; store it (for example in ~/.config/aidlc/token with
    mode 0600, or in AIDLC_TOKEN). aidlc keeps only its hash.
    """
    from aidlc.core.workspace import Workspace

    ws, token = Workspace.init(directory, name=name, admin_name=admin)
    ws.close()
    if json_out:
        emit_json({"workspace": str(ws.root), "admin": admin, "admin_token": token})
        return
    out = console()
    out.print(f"Created workspace [bold]{ws.config.workspace}[/] in {ws.root}")
    out.print(f"  key provider: {ws.config.keys.provider}   store: {ws.config.store.backend}")
    out.print(f"\nFirst admin: [bold]{admin}[/]. Token (shown once, store it now):\n")
    out.print(f"  {token}\n", markup=False)
    out.print("Use it with:  export AIDLC_TOKEN=<token>   then   aidlc user add NAME --role ROLE")
