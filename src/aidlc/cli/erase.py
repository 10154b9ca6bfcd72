"""`aidlc erase --subject ID`: GDPR erasure of one data subject."""

from __future__ import annotations

from typing import Annotated

import typer

from aidlc.cli.context import emit_json, open_workspace


def erase(
    subject: Annotated[
        str, typer.Option("--subject", help="The subject id exactly as stored (e.g. P-00042).")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the certificate and audit log).")
    ] = "",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the certificate as JSON.")
    ] = False,
) -> None:
    """Erase a data subject: successor dataset versions without their rows, every object that
    held them crypto-shredded, models trained on them marked needs-retrain, and a signed
    certificate (naming the subject only by its keyed hash) stored in the reports zone.

    A subject of whom nothing is held gets a certificate saying so (exit 0).
    """
    from aidlc.govern.erasure import erase_subject

    with open_workspace() as ws:
        outcome = erase_subject(ws, subject, reason=reason)
    if json_out:
        emit_json(outcome.to_json())
        return
    cert = outcome.certificate
    if not outcome.held_data:
        typer.echo(f"no data held about this subject; certificate {outcome.certificate_ref}")
        return
    for d in cert["datasets"]:
        typer.echo(
            f"{d['superseded']} superseded by {d['successor']} ({d['rows_removed']} rows removed)"
        )
    typer.echo(f"{len(cert['objects_shredded'])} objects crypto-shredded")
    if cert["prediction_rows_removed"]:
        typer.echo(f"{cert['prediction_rows_removed']} prediction log rows removed")
    for held in cert["kept_under_legal_hold"]:
        typer.echo(f"{held['object']}: {held['note']}")
    for kept in cert["not_erased"]:
        typer.echo(f"{kept['object']}: NOT erased ({kept['why']})")
    if cert["models_marked_needs_retrain"]:
        typer.echo("marked needs-retrain: " + ", ".join(cert["models_marked_needs_retrain"]))
    typer.echo(f"certificate {outcome.certificate_ref} (subject {outcome.subject_digest[:16]}…)")
