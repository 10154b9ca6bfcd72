"""`aidlc audit ...`: read, verify, prove and export the tamper-evident audit log (auditor)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace
from aidlc.errors import InvalidInput

app = typer.Typer(help="The tamper-evident audit log (auditor).", no_args_is_help=True)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--since {value[:40]!r} is not an ISO date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("log")
def log(
    actor: Annotated[str | None, typer.Option(help="Only events by this principal.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action; a trailing * matches a prefix.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this ISO time.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N events.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show audit events, oldest first."""
    from rich.table import Table

    with open_workspace() as ws:
        ws.authorize("audit.read", "audit")
        events = ws.audit.events(actor=actor, action=action, since=_since(since), limit=limit)
    if json_out:
        emit_json([e.to_json() for e in events])
        return
    table = Table("seq", "time", "actor", "action", "resource", "outcome")
    for e in events:
        style = "red" if e.outcome != "ok" else None
        table.add_row(
            str(e.seq),
            e.time[:19].replace("T", " "),
            e.actor,
            e.action,
            e.resource,
            e.outcome,
            style=style,
        )
    console().print(table)


@app.command("verify")
def verify(
    against: Annotated[
        Path | None,
        typer.Option(
            help="A tree head saved earlier (from `audit head`); prove the log extends it."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Recompute the Merkle tree and check every signed tree head. Exit 0 intact, 1 tampered."""
    from aidlc.core import merkle

    head = None
    if against is not None:
        try:
            raw = against.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {against}: {exc.strerror}") from None
        if len(raw) > 1 << 16:
            raise InvalidInput(f"{against} is too large to be a tree head")
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"{against} is not JSON") from None
        if isinstance(obj, dict) and "tree_head" in obj:
            obj = obj["tree_head"]
        head = merkle.TreeHead.from_json(obj)
    with open_workspace() as ws:
        ws.authorize("audit.verify", "audit")
        verdict = ws.audit.verify(against=head)
        with ws.transaction() as session:
            ws.record(
                session,
                "audit.verify",
                "audit",
                {
                    "ok": verdict.ok,
                    "events": verdict.size,
                    "first_bad_event": verdict.first_bad_seq,
                    "against_tree_size": head.tree_size if head else None,
                },
            )
    if json_out:
        emit_json(verdict.to_json())
    elif verdict.ok:
        extra = f", and it extends the given head of size {head.tree_size}" if head else ""
        console().print(
            f"[green]✓[/] audit log intact: {verdict.size} events, "
            f"{verdict.heads_checked} signed tree heads{extra}"
        )
    else:
        where = f"event {verdict.first_bad_seq}: " if verdict.first_bad_seq else ""
        console(stderr=True).print(f"[red]✗ audit log tampered[/] — {where}{verdict.problem}")
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("head")
def head() -> None:
    """Print the newest signed tree head as JSON; keep it somewhere else (a ticket, a bucket)."""
    with open_workspace() as ws:
        ws.authorize("audit.read", "audit")
        emit_json(ws.audit.head().to_json())


@app.command("prove")
def prove(
    event_id: Annotated[int, typer.Argument(min=1, help="Sequence number of the event.")],
) -> None:
    """Print an inclusion proof of one event in the newest signed tree head (JSON)."""
    with open_workspace() as ws:
        ws.authorize("audit.read", f"audit:{event_id}")
        proof = ws.audit.prove(event_id)
    emit_json(proof.to_json())


@app.command("public-key")
def public_key() -> None:
    """Print the audit log's Ed25519 public key (PEM), for verifying heads and proofs elsewhere."""
    from cryptography.hazmat.primitives import serialization

    with open_workspace() as ws:
        ws.authorize("audit.read", "audit")
        pem = ws.audit_public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    sys.stdout.write(pem.decode("ascii"))


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="Only jsonl for now.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Export every event, one canonical JSON object per line, for an auditor's own tools."""
    from aidlc.core import merkle

    if fmt != "jsonl":
        raise InvalidInput("--format must be jsonl")
    with open_workspace() as ws:
        ws.authorize("audit.read", "audit")
        events = ws.audit.events()
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for e in events:
            sink.write(merkle.encode_event(e.to_json()).decode("utf-8") + "\n")
    finally:
        if output:
            sink.close()
