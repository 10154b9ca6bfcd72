"""`aidlc alerts ...`: alerts raised by gates, the registry, the server and monitors."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace

app = typer.Typer(
    help="Alerts raised by aidlc, and a check of where they are sent.", no_args_is_help=True
)

_SEVERITIES = ("INFO", "WARNING", "CRITICAL")
_STYLES = {"CRITICAL": "red", "WARNING": "yellow"}


def _severity(value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in _SEVERITIES:
        raise typer.BadParameter(f"{value[:20]!r} is not one of {', '.join(_SEVERITIES)}")
    return value.upper()


def _duration(value: str | None) -> str | None:
    from aidlc.core.config import parse_duration

    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


@app.command("list")
def list_(
    severity: Annotated[
        str | None,
        typer.Option(callback=_severity, help="Only this severity: INFO, WARNING or CRITICAL."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Only alerts from this source (data-gate, registry, ...).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            callback=_duration, help="Only alerts raised or repeated in the last 24h, 7d, ..."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List alerts, newest first; a repeat within the cooldown counts as one alert (`times`)."""
    from datetime import UTC, datetime, timedelta

    from rich.markup import escape
    from rich.table import Table

    from aidlc.core.alerts import list_alerts
    from aidlc.core.config import parse_duration

    start = datetime.now(UTC) - timedelta(seconds=parse_duration(since)) if since else None
    with open_workspace() as ws:
        items = list_alerts(ws, limit=limit, severity=severity, source=source, since=start)
    if json_out:
        emit_json([a.to_json() for a in items])
        return
    table = Table("id", "time", "severity", "source", "title", "times")
    for a in items:
        style = _STYLES.get(a.severity, "")
        table.add_row(
            str(a.id),
            f"{a.created_at:%Y-%m-%d %H:%M}",
            f"[{style}]{a.severity}[/]" if style else a.severity,
            escape(a.source),
            escape(a.title),
            str(a.occurrences),
        )
    console().print(table)


@app.command("test")
def test(
    severity: Annotated[
        str,
        typer.Option(callback=_severity, help="Severity of the test alert; sinks filter on it."),
    ] = "INFO",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Send a test alert to every configured sink that takes its severity and show what each
    did. Exit 1 when a sink failed or none takes the severity."""
    from rich.markup import escape
    from rich.table import Table

    from aidlc.core.alerts import send_test_alert

    with open_workspace() as ws:
        alert, deliveries = send_test_alert(ws, severity=severity)
    failed = not deliveries or not all(d.ok for d in deliveries)
    if json_out:
        emit_json({"alert": alert.id, "deliveries": [d.to_json() for d in deliveries]})
    elif not deliveries:
        console(stderr=True).print(
            f"alert {alert.id}: no sink takes {severity} alerts (see alerts.sinks in aidlc.yaml)"
        )
    else:
        table = Table("sink", "result", "detail", title=f"test alert {alert.id}")
        for d in deliveries:
            table.add_row(
                escape(d.sink), "[green]sent[/]" if d.ok else "[red]failed[/]", escape(d.detail)
            )
        console().print(table)
    if failed:
        raise typer.Exit(1)
