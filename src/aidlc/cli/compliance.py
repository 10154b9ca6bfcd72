"""`aidlc compliance report|check`: controls evaluated from evidence (approver, auditor).

`check` is a CI gate: exit 1 when a control fails or could not be evaluated with the caller's
roles (run it as an auditor to evaluate every control), 0 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, open_workspace, write_private
from aidlc.errors import InvalidInput

app = typer.Typer(
    help="Compliance evidence for SOC 2, HIPAA, GDPR and PCI DSS (approver, auditor).",
    no_args_is_help=True,
)

FRAMEWORK_HELP = "soc2, hipaa, gdpr, pci or all."
_STATUSES = ("pass", "fail", "not_applicable", "not_evaluated")
_STYLE = dict(zip(_STATUSES, ("green", "red", "dim", "yellow"), strict=True))


@app.command("report")
def report(
    framework: Annotated[str, typer.Option(help=FRAMEWORK_HELP)] = "all",
    fmt: Annotated[str, typer.Option("--format", help="json, md or html.")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (mode 0600).")
    ] = None,
) -> None:
    """Evaluate every control of a framework and print or save the report with its evidence."""
    from aidlc.govern import compliance

    if fmt not in compliance.FORMATS:
        raise InvalidInput(f"--format must be one of: {', '.join(compliance.FORMATS)}")
    with open_workspace() as ws:
        rep = compliance.report(ws, framework)
    text = compliance.render(rep, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    write_private(output, text)
    counts = rep.counts()
    console(stderr=True).print(
        f"Wrote {output}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['not_evaluated']} not evaluated, {counts['not_applicable']} not applicable."
    )


@app.command("check")
def check(
    framework: Annotated[str, typer.Option(help=FRAMEWORK_HELP)] = "all",
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
) -> None:
    """Gate on the controls: exit 1 if any failed or could not be evaluated, else 0."""
    from rich.markup import escape
    from rich.table import Table

    from aidlc.govern import compliance

    with open_workspace() as ws:
        rep = compliance.report(ws, framework)
    if json_out:
        sys.stdout.write(compliance.render(rep, "json"))
    else:
        table = Table("control", "status", "summary")
        for c in rep.controls:
            table.add_row(c.id, f"[{_STYLE[c.status]}]{c.status}[/]", escape(c.summary))
        out = console()
        out.print(table)
        bad = [c.id for c in compliance.failed(rep)]
        if bad:
            out.print(f"[red]✗[/] {len(bad)} control(s) not passing: {', '.join(bad)}")
        else:
            out.print(f"[green]✓[/] {len(rep.controls)} controls pass or do not apply")
    if not rep.ok:
        raise typer.Exit(1)
