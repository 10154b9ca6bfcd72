"""`aidlc threat-model`: the workspace's threat model from its actual configuration."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace, write_private
from aidlc.errors import UsageError

FORMATS = ("md", "html", "json")


def threat_model(
    format: Annotated[
        str, typer.Option("--format", help="md (default), html (self-contained page) or json.")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (mode 0600).")
    ] = None,
) -> None:
    """Print the workspace's threat model: components, data flows, trust boundaries, and threats
    (MITRE ATLAS / OWASP ML Top 10) with the mitigations in force, their evidence, and the gaps.

    Needs the posture.read permission (admin, auditor). Exit codes: 0 written; 2 bad option;
    4 permission denied.
    """
    from aidlc.govern.threats import render_html, render_markdown
    from aidlc.govern.threats import threat_model as build

    if format not in FORMATS:
        raise UsageError(f"--format is one of {', '.join(FORMATS)}, not {format[:20]!r}")
    with open_workspace() as ws:
        model = build(ws)
    if format == "json" and output is None:
        emit_json(model)
        return
    if format == "json":
        import json

        text = json.dumps(model, indent=2) + "\n"
    else:
        text = render_html(model) if format == "html" else render_markdown(model)
    if output is None:
        sys.stdout.write(text)
        return
    write_private(output, text)
    console(stderr=True).print(f"wrote {output}")
