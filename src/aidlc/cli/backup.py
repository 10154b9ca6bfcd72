"""`aidlc backup DIR` and `aidlc restore DIR --into NEWDIR`: encrypted, verified snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace, read_token


def backup(
    directory: Annotated[Path, typer.Argument(help="A new or empty folder for the snapshot.")],
    include_keys: Annotated[
        bool,
        typer.Option(
            "--include-keys",
            help="Also copy the key ring (protected only by its passphrase, if it has one).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write a consistent, still-encrypted snapshot of the workspace (admin).

    The snapshot holds the metadata (a SQLite database file, or a dump of every table taken in
    one transaction from PostgreSQL, with the audit log), every live object's ciphertext (from
    the local folder or S3), aidlc.yaml and a signed manifest. Without --include-keys, keep the
    key ring (.aidlc/keys/keyring.json) safe separately: restoring needs it.
    """
    from aidlc.govern import backup as service

    with open_workspace() as ws, console(stderr=True).status("Backing up...") as status:
        result = service.create(
            ws,
            directory,
            include_keys=include_keys,
            progress=lambda name: status.update(f"Backing up... {name}"),
        )
    for warning in result.warnings:
        console(stderr=True).print(f"warning: {warning}")
    if json_out:
        emit_json(result.to_json())
        return
    keys = "with the key ring" if result.include_keys else "without keys"
    console().print(
        f"Backed up {result.objects} objects and the database ({result.files} files, "
        f"{result.bytes} bytes, {keys}) to {result.path}; audit head at {result.tree_size} events."
    )


def restore(
    directory: Annotated[Path, typer.Argument(help="The snapshot folder written by `backup`.")],
    into: Annotated[
        Path, typer.Option("--into", help="A new or empty folder for the restored workspace.")
    ],
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="The workspace's key ring file, when the snapshot holds none "
            "(set AIDLC_PASSPHRASE if it has a passphrase).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A prepared aidlc.yaml (as `aidlc init --config` takes) naming the empty "
            "database and object store to restore into; its sections replace the snapshot's.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Rebuild a workspace from a snapshot and verify it before reporting success.

    By default NEWDIR gets a SQLite database and a local object folder, whatever the backed-up
    workspace used; with --config, the database (e.g. PostgreSQL) and store (e.g. an S3 prefix)
    it names, which must be empty. Checked: every file's SHA-256, the manifest's signature, the
    audit log and its newest signed head, and that every object decrypts to its recorded digest.
    The token must be an admin's of the backed-up workspace. On failure the folder is marked
    RESTORE-FAILED; a failed check exits 1.
    """
    from aidlc.core.audit import new_request_id
    from aidlc.govern import backup as service

    new_request_id()
    result = service.restore(directory, into, token=read_token(), keys=keys, config=config)
    if json_out:
        emit_json(result.to_json())
        return
    console().print(
        f"Restored {result.path}: {result.files} files, {result.objects_verified} objects and "
        f"{result.audit_events} audit events verified (keys from {result.keys_from})."
    )
