"""`aidlc objects ...`: put, get, list and crypto-shred encrypted objects."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace
from aidlc.errors import InvalidInput

app = typer.Typer(help="Encrypted objects in the store's zones.", no_args_is_help=True)

ZONE_HELP = "Zone: raw, validated, quarantine, models, predictions, reports."


@app.command("put")
def put(
    zone: Annotated[str, typer.Argument(help=ZONE_HELP)],
    object_id: Annotated[str, typer.Argument(help="Object id, for example customers.csv.")],
    file: Annotated[Path, typer.Argument(help="File to encrypt and store ('-' for stdin).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Encrypt a file into a new version of an object."""
    from aidlc.core import objects

    with open_workspace() as ws:
        if str(file) == "-":
            info = objects.put(ws, zone, object_id, sys.stdin.buffer)
        else:
            try:
                handle = file.open("rb")
            except OSError as exc:
                raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
            with handle:
                info = objects.put(ws, zone, object_id, handle)
    if json_out:
        emit_json(info.to_json())
        return
    console().print(
        f"Stored {info.ref} ({info.size} bytes, sha256 {info.sha256[:16]}…), encrypted."
    )


@app.command("get")
def get(
    ref: Annotated[str, typer.Argument(help="ZONE/OBJECT_ID or ZONE/OBJECT_ID@VERSION.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Write here ('-' = stdout).")],
) -> None:
    """Decrypt an object (verifying every segment) into a file."""
    from aidlc.cli.context import parse_version_ref
    from aidlc.core import objects

    zone, sep, rest = ref.partition("/")
    if not sep:
        raise InvalidInput("name the object as ZONE/OBJECT_ID[@VERSION]")
    object_id, version = parse_version_ref(rest)
    with open_workspace() as ws:
        if str(output) == "-":
            objects.get(ws, zone, object_id, sys.stdout.buffer, version)
            return
        tmp = output.with_name(output.name + ".part")
        try:
            with tmp.open("wb") as out:
                objects.get(ws, zone, object_id, out, version)
            tmp.replace(output)
        finally:
            tmp.unlink(missing_ok=True)


@app.command("list")
def list_(
    zone: Annotated[str, typer.Argument(help=ZONE_HELP)],
    prefix: Annotated[str, typer.Option(help="Only ids starting with this.")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the objects of a zone with their versions."""
    from rich.table import Table

    from aidlc.core import objects

    with open_workspace() as ws:
        items = objects.list_objects(ws, zone, prefix)
    if json_out:
        emit_json([i.to_json() for i in items])
        return
    table = Table("object", "version", "bytes", "sha256", "key", "created", "by", "status")
    for i in items:
        table.add_row(
            i.object_id,
            str(i.version),
            str(i.size),
            i.sha256[:12],
            i.key_id,
            f"{i.created_at:%Y-%m-%d %H:%M}",
            i.created_by,
            "shredded" if i.deleted_at else "live",
        )
    console().print(table)


@app.command("delete")
def delete(
    ref: Annotated[str, typer.Argument(help="ZONE/OBJECT_ID@VERSION")],
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
) -> None:
    """Crypto-shred one object version: its data key is destroyed, then its bytes."""
    from aidlc.cli.context import parse_version_ref
    from aidlc.core import objects

    zone, sep, rest = ref.partition("/")
    object_id, version = parse_version_ref(rest)
    if not sep or version is None:
        raise InvalidInput("name the object as ZONE/OBJECT_ID@VERSION")
    with open_workspace() as ws:
        objects.delete(ws, zone, object_id, version, reason=reason)
    console().print(f"Shredded {zone}/{object_id}@{version}.")


@app.command("verify")
def verify(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Decrypt every object and check its digest (admin). Exit 1 if any fails."""
    from aidlc.core import objects

    with open_workspace() as ws:
        verdict = objects.verify_all(ws)
    if json_out:
        emit_json(verdict.to_json())
    elif verdict.ok:
        console().print(f"All {verdict.checked} objects decrypt and match their digests.")
    else:
        out = console(stderr=True)
        for p in verdict.problems:
            out.print(f"[red]✗[/] {p}")
    if not verdict.ok:
        raise typer.Exit(1)
