"""`aidlc retention ...`: retention policies, legal holds and their application (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace

app = typer.Typer(
    help="How long objects are kept, legal holds that keep them anyway, and shredding what "
    "expired (admin).",
    no_args_is_help=True,
)

_JSON = typer.Option("--json", help="Print JSON for scripts.")


@app.command("policy")
def policy(
    zone: Annotated[
        str,
        typer.Argument(help="raw, validated, quarantine, models, predictions or reports."),
    ],
    days: Annotated[int, typer.Argument(help="Keep objects this many days (1 to 36500).")],
    dataset: Annotated[
        str | None,
        typer.Option(help="Only this dataset's objects (raw, validated and quarantine zones)."),
    ] = None,
    json_out: Annotated[bool, _JSON] = False,
) -> None:
    """Set how long objects of ZONE are kept; a --dataset policy beats the zone's."""
    from aidlc.govern import retention

    with open_workspace() as ws:
        found = retention.set_policy(ws, zone, days, dataset=dataset)
    if json_out:
        emit_json(found.to_json())
        return
    plural = "" if found.days == 1 else "s"
    console().print(f"{found.scope}: objects are kept {found.days} day{plural}")


@app.command("remove")
def remove(
    zone: Annotated[str, typer.Argument(help="The zone of the policy to remove.")],
    dataset: Annotated[str | None, typer.Option(help="The dataset's own policy.")] = None,
) -> None:
    """Remove a policy: its objects are kept (or follow the zone's policy again)."""
    from aidlc.govern import retention

    with open_workspace() as ws:
        retention.remove_policy(ws, zone, dataset=dataset)
    console().print(
        f"removed the retention policy for {zone if dataset is None else f'{zone}/{dataset}'}"
    )


@app.command("policies")
def policies(json_out: Annotated[bool, _JSON] = False) -> None:
    """List the retention policies."""
    from rich.table import Table

    from aidlc.govern import retention

    with open_workspace() as ws:
        found = retention.list_policies(ws)
    if json_out:
        emit_json([p.to_json() for p in found])
        return
    if not found:
        console().print("no retention policies: every object is kept")
        return
    table = Table("zone", "dataset", "days", "set by", "set at")
    for p in found:
        table.add_row(p.zone, p.dataset or "*", str(p.days), p.set_by, f"{p.set_at:%Y-%m-%d %H:%M}")
    console().print(table)


@app.command("hold")
def hold(
    reason: Annotated[str, typer.Option(help="The case or request the hold serves.")],
    zone: Annotated[str | None, typer.Option(help="Only this zone (default: every zone).")] = None,
    prefix: Annotated[
        str, typer.Option(help="Only objects whose id starts with this (e.g. DATASET/).")
    ] = "",
    json_out: Annotated[bool, _JSON] = False,
) -> None:
    """Place a legal hold: matching objects are kept whatever their age, until released."""
    from aidlc.govern import retention

    with open_workspace() as ws:
        placed = retention.place_hold(ws, reason, zone=zone, prefix=prefix)
    if json_out:
        emit_json(placed.to_json())
        return
    console().print(
        f"legal hold {placed.id} placed on {placed.zone or 'every zone'}"
        + (f", ids starting {placed.prefix!r}" if placed.prefix else "")
    )


@app.command("release")
def release(
    hold_id: Annotated[int, typer.Argument(help="The hold's id (`aidlc retention holds`).")],
    json_out: Annotated[bool, _JSON] = False,
) -> None:
    """Release a legal hold: what it kept expires again under its policy."""
    from aidlc.govern import retention

    with open_workspace() as ws:
        released = retention.release_hold(ws, hold_id)
    if json_out:
        emit_json(released.to_json())
        return
    console().print(f"legal hold {released.id} released")


@app.command("holds")
def holds(
    all_: Annotated[bool, typer.Option("--all", help="Released holds too.")] = False,
    json_out: Annotated[bool, _JSON] = False,
) -> None:
    """List legal holds (active ones unless --all)."""
    from rich.markup import escape
    from rich.table import Table

    from aidlc.govern import retention

    with open_workspace() as ws:
        found = retention.list_holds(ws, include_released=all_)
    if json_out:
        emit_json([h.to_json() for h in found])
        return
    if not found:
        console().print("no legal holds")
        return
    table = Table("id", "zone", "prefix", "reason", "placed", "released")
    for h in found:
        table.add_row(
            str(h.id),
            h.zone or "*",
            escape(h.prefix) or "*",
            escape(h.reason[:80]),
            f"{h.placed_at:%Y-%m-%d} {h.placed_by}",
            f"{h.released_at:%Y-%m-%d} {h.released_by}" if h.released_at else "",
        )
    console().print(table)


@app.command("apply")
def apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; change nothing.")
    ] = False,
    json_out: Annotated[bool, _JSON] = False,
) -> None:
    """Crypto-shred every object past its retention that no legal hold keeps."""
    from rich.markup import escape

    from aidlc.govern import retention

    with open_workspace() as ws:
        outcome = retention.apply(ws, dry_run=dry_run)
    if json_out:
        emit_json(outcome.to_json())
        return
    out = console()
    verb = "would shred" if dry_run else "shredded"
    for e in outcome.shredded:
        out.print(f"{verb} {escape(e.ref)} ({e.rule})")
    for k in outcome.held:
        out.print(f"kept {escape(k.ref)}: {escape(k.reason)}")
    for k in outcome.protected:
        out.print(f"kept {escape(k.ref)}: {escape(k.reason)}")
    for ref in outcome.unavailable_versions:
        out.print(f"dataset version {ref} {'would become' if dry_run else 'is now'} unavailable")
    out.print(
        f"{verb} {len(outcome.shredded)} objects ({outcome.bytes_shredded} bytes); "
        f"kept {len(outcome.held)} under legal hold and {len(outcome.protected)} protected; "
        f"{len(outcome.batches_removed)} prediction batches and "
        f"{outcome.batch_profiles_removed} cached batch profiles "
        + ("would be removed" if dry_run else "removed")
    )
