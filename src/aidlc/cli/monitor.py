"""`aidlc monitor ...`: drift, data quality and performance of served models; retraining."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from aidlc.cli.context import console, emit_json, open_workspace, write_private

app = typer.Typer(help="Monitor served models and retrain them.", no_args_is_help=True)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MODEL = Annotated[
    str | None, typer.Option("--model", help="One model (default: all in production).")
]


def _print_outcome(outcome: Any) -> None:
    from rich.markup import escape

    r, doc = outcome.report, outcome.document
    style = {"ok": "green", "breach": "red", "insufficient": "yellow"}.get(r.verdict, "")
    console().print(
        f"[bold]{escape(r.model)}@{r.version}[/] report {r.id}: [{style}]{r.verdict}[/] "
        f"over {r.rows} predictions ({doc['window']['start'][:16]} → {doc['window']['end'][:16]})"
    )
    if doc.get("drift"):
        d = doc["drift"]
        names = ", ".join(d["drifted"]) or "none"
        console().print(
            f"  drift: {len(d['drifted'])}/{len(d['features'])} features ({escape(names)}); "
            f"largest PSI {d['max_psi']:.3f}"
        )
    q = doc["quality"]
    console().print(
        f"  quality: OOD {q['ood_rate']:.1%}, anomalies {q['anomaly_rate']:.1%}, "
        f"nulls ≤ {q['null_rate']:.1%}, schema violations {q['schema_violation_rate']:.1%}"
    )
    p = doc["performance"]
    if p["metrics"]:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in p["metrics"].items())
        console().print(f"  performance on {p['labelled']} labels: {shown} (drop {p['drop']:.3f})")
    for b in doc["breaches"]:
        console().print(
            f"  [red]breach[/] {b['rule']}: {b['metric']} = {b['value']:.3g} ({b['severity']})"
        )
    if outcome.retraining:
        console().print(f"  retraining: {outcome.retraining}")


@app.command("run")
def run(
    model: MODEL = None,
    window: Annotated[
        str | None, typer.Option("--window", help="How far back, e.g. 24h, 7d (default: config).")
    ] = None,
    no_retrain: Annotated[
        bool, typer.Option("--no-retrain", help="Report and alert, but ask for no retraining.")
    ] = False,
    json_out: JSON = False,
) -> None:
    """Compare logged traffic with the training baseline; store a report; alert on breaches.

    Exit 0 when every model is fine or has too little data, 1 when a breach was found."""
    from aidlc.monitor.runner import run as run_monitor

    with open_workspace() as ws:
        outcomes = run_monitor(ws, model=model, window=window, retrain=not no_retrain)
        from aidlc.govern import openlineage

        openlineage.publish(ws, [openlineage.monitor_event(ws, o.report) for o in outcomes])
    if json_out:
        emit_json(
            [
                {**o.report.to_json(), "alerts": o.alerts, "retraining": o.retraining}
                for o in outcomes
            ]
        )
    else:
        if not outcomes:
            console().print("no model has a production version to monitor")
        for outcome in outcomes:
            _print_outcome(outcome)
    if any(o.report.verdict == "breach" for o in outcomes):
        raise typer.Exit(1)


@app.command("reports")
def reports(
    model: MODEL = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 20,
    json_out: JSON = False,
) -> None:
    """List monitor reports, newest first."""
    from rich.markup import escape
    from rich.table import Table

    from aidlc.monitor.runner import list_reports

    with open_workspace() as ws:
        items = list_reports(ws, model=model, limit=limit)
    if json_out:
        emit_json([r.to_json() for r in items])
        return
    table = Table("id", "model", "window end", "rows", "verdict", "drifted", "breaches")
    for r in items:
        table.add_row(
            str(r.id),
            escape(f"{r.model}@{r.version}"),
            f"{r.window_end:%Y-%m-%d %H:%M}",
            str(r.rows),
            r.verdict,
            escape(", ".join(r.summary.get("drifted", []))[:60]),
            escape(", ".join(r.summary.get("breaches", []))[:60]),
        )
    console().print(table)


@app.command("show")
def show(
    report_id: Annotated[int, typer.Argument(min=1, help="A report id (see `monitor reports`).")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the report's HTML page to this file.")
    ] = None,
) -> None:
    """Print a report's JSON, or write its self-contained HTML page."""
    from aidlc.monitor.runner import get_report

    with open_workspace() as ws:
        content = get_report(ws, report_id, html=html is not None)
    if html is not None:
        write_private(html, str(content))
        console().print(f"wrote {html}")
    else:
        emit_json(content)


@app.command("policy")
def policy(
    name: Annotated[str, typer.Argument(help="The model.")],
    action: Annotated[
        str | None, typer.Option("--action", help="approval, canary or none (omit to show).")
    ] = None,
    trigger: Annotated[
        list[str] | None,
        typer.Option(
            "--trigger",
            help="drift, performance, quality (repeatable; default: drift and performance).",
        ),
    ] = None,
    canary_percent: Annotated[
        float, typer.Option("--canary-percent", help="Canary traffic.")
    ] = 10.0,
    min_interval: Annotated[
        str, typer.Option("--min-interval", help="At most one retraining per this time.")
    ] = "24h",
    json_out: JSON = False,
) -> None:
    """Show or set the model's retraining policy (setting it is an approver's decision)."""
    from aidlc.monitor import retrain

    with open_workspace() as ws:
        if action is None:
            current = retrain.get_policy(ws, name)
        else:
            current = retrain.set_policy(
                ws,
                name,
                action,
                triggers=trigger,
                canary_percent=canary_percent,
                min_interval=min_interval,
            )
    if json_out:
        emit_json(None if current is None else current.to_json())
    elif current is None:
        console().print(f"{name} has no retraining policy: breaches only alert")
    else:
        console().print(
            f"{name}: on {', '.join(current.triggers)} → retrain, then {current.action}"
            + (f" ({current.canary_percent:g}% canary)" if current.action == "canary" else "")
            + f"; set by {current.set_by}"
        )


@app.command("retrain")
def retrain_cmd(
    name: Annotated[str | None, typer.Argument(help="Retrain this model now.")] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Carry out every pending retraining request.")
    ] = False,
    json_out: JSON = False,
) -> None:
    """Train a candidate with the production version's config on the latest validated data."""
    from aidlc.errors import UsageError
    from aidlc.monitor import retrain

    if (name is None) == (not pending):
        raise UsageError("give a model name or --pending (not both)")
    with open_workspace() as ws:
        if pending:
            done = retrain.run_pending(ws)
        else:
            request = retrain.request_now(ws, name or "")
            done = [request]
    if json_out:
        emit_json([r.to_json() for r in done])
        return
    if not done:
        console().print("no pending retraining requests")
    for r in done:
        shown = f"{r.model}@{r.candidate_version}" if r.candidate_version else "-"
        console().print(f"request {r.id} ({r.model}): {r.status} {shown} {r.detail}")
    if any(r.status == "failed" for r in done):
        raise typer.Exit(1)


@app.command("kpi")
def kpi(
    name: Annotated[str, typer.Argument(help="The model the KPI belongs to.")],
    values: Annotated[list[str], typer.Argument(help="KPI=VALUE pairs, e.g. revenue=1234.5")],
) -> None:
    """Record business KPIs beside a model's metrics (also `POST /v1/kpis`)."""
    from aidlc.errors import UsageError
    from aidlc.serve.kpis import push_kpis

    items: list[Any] = []
    for pair in values:
        key, sep, raw = pair.partition("=")
        try:
            items.append({"name": key, "value": float(raw)})
        except ValueError:
            raise UsageError(f"{pair[:60]!r} is not KPI=NUMBER") from None
        if not sep:
            raise UsageError(f"{pair[:60]!r} is not KPI=NUMBER")
    with open_workspace() as ws:
        count = push_kpis(ws, name, items)
    console().print(f"recorded {count} KPI value(s) for {name}")


@app.command("schedule")
def schedule(
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now, then exit (for an external cron).")
    ] = False,
) -> None:
    """Run the monitor schedules of aidlc.yaml (and pending retraining, when this principal may
    train) until SIGTERM or Ctrl-C."""
    from aidlc.monitor.jobs import run_all, scheduler_for

    with open_workspace() as ws:
        if once:
            ran = run_all(ws)
            console().print(f"ran {', '.join(ran) or 'nothing'}")
            return
        scheduler = scheduler_for(ws)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        scheduler.start()
        console().print(
            "scheduler running: "
            + ", ".join(
                f"{k} next {v:%Y-%m-%d %H:%M}" for k, v in scheduler.next_runs().items() if v
            )
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            scheduler.stop()
