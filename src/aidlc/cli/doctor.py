"""`aidlc doctor`: the security posture of the running configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace

_COLOUR = {"warn": "yellow", "fail": "red"}


def _label(status: str) -> str:
    shown = "FAIL" if status == "fail" else status
    return f"[{_COLOUR.get(status, 'green')}]{shown}[/]"


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Check the workspace's security posture: key ring, encryption, access, tokens, audit,
    serving, alerts, metadata and retention. Each check passes, warns or fails with its evidence
    and the fix. Exit 0 when nothing fails (warnings allowed), 1 when a check fails.

    Needs the admin or auditor role; only an auditor can verify the audit log itself.
    """
    from rich.markup import escape
    from rich.table import Table

    from aidlc.govern.doctor import exit_code, run_checks, summary

    with open_workspace() as ws:
        checks = run_checks(ws)
    counts = summary(checks)
    code = exit_code(checks)
    if json_out:
        emit_json({"ok": code == 0, "summary": counts, "checks": [c.to_json() for c in checks]})
    else:
        table = Table("status", "check", "evidence", "fix")
        for c in checks:
            table.add_row(_label(c.status), c.id, escape(c.evidence), escape(c.fix))
        out = console()
        out.print(table)
        out.print(f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed")
    if code:
        raise typer.Exit(code)
