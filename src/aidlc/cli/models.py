"""`aidlc models ...`: the registry — versions, verification, approval, aliases, export."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from aidlc.cli.context import console, emit_json, open_workspace
from aidlc.errors import UsageError

app = typer.Typer(help="The model registry: versions, approval, aliases.", no_args_is_help=True)
alias_app = typer.Typer(help="Move or remove aliases (candidate, staging, production).")
app.add_typer(alias_app, name="alias")

JSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
REF = Annotated[str, typer.Argument(help="NAME@V, NAME@ALIAS or NAME (the latest).")]
REASON = Annotated[str, typer.Option("--reason", help="Why (kept in the history and audit log).")]


@app.command("list")
def list_models(json_out: JSON = False) -> None:
    """Registered models with their latest version and aliases."""
    from rich.table import Table

    from aidlc.registry.versions import list_models as query

    with open_workspace() as ws:
        models = query(ws)
    if json_out:
        emit_json(models)
        return
    table = Table("model", "latest", "aliases", "created by")
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in m["aliases"].items())
        table.add_row(m["name"], str(m["latest"] or ""), aliases, m["created_by"])
    console().print(table)


@app.command("versions")
def list_versions(
    name: Annotated[str, typer.Argument(help="Model name.")], json_out: JSON = False
) -> None:
    """Every version of a model."""
    from rich.table import Table

    from aidlc.registry.versions import list_versions as query

    with open_workspace() as ws:
        found = query(ws, name)
    if json_out:
        emit_json([v.to_json() for v in found])
        return
    table = Table("version", "status", "gates", "aliases", "metrics", "trained by", "digest")
    for v in found:
        shown = ", ".join(f"{k}={x:.4f}" for k, x in list(v.metrics.items())[:3])
        table.add_row(
            str(v.version),
            v.status,
            "pass" if v.gates_passed else "FAIL",
            ", ".join(v.aliases),
            shown,
            v.trained_by,
            v.model_digest[:12],
        )
    console().print(table)


@app.command("show")
def show(ref: REF, json_out: JSON = False) -> None:
    """One version: status, aliases, metrics, gates, data, lineage."""
    from aidlc.registry.approval import approvals
    from aidlc.registry.versions import resolve

    with open_workspace() as ws:
        version = resolve(ws, ref)
        decisions = approvals(ws, version.ref)
    if json_out:
        emit_json({**version.to_json(), "approvals": decisions})
        return
    out = console()
    out.print(f"[bold]{version.ref}[/] {version.kind} {version.task}  status {version.status}")
    out.print(f"  aliases  {', '.join(version.aliases) or '-'}")
    out.print(f"  digest   {version.model_digest}")
    out.print(f"  trained  by {version.trained_by} (run {version.run_id or '-'})")
    out.print(f"  by       {version.registered_by} on {version.created_at:%Y-%m-%d %H:%M} UTC")
    imported = version.statement.get("imported")
    if imported:
        producer = imported.get("producer") or {}
        made = " ".join(str(producer.get(k) or "") for k in ("framework", "framework_version"))
        served = (imported.get("conversion") or {}).get("served")
        out.print(
            f"  imported {imported['format']} (sha256 {str(imported['sha256'])[:16]}…), made with "
            f"{made.strip() or 'unknown'}"
            + (f"; served by {'ONNX Runtime' if served == 'onnx' else 'skops'}" if served else "")
        )
    evaluation = version.statement.get("evaluation")
    if evaluation:
        kind = "in-sample, optimistic" if evaluation.get("in_sample") else "held out"
        out.print(f"  evaluated on {evaluation['rows']} rows of {evaluation['dataset']} ({kind})")
    for key, value in version.metrics.items():
        out.print(f"  metric   {key} = {value:.4f}")
    for gate in version.statement.get("gates", []):
        out.print(f"  gate     {'pass' if gate['passed'] else 'FAIL'} {gate['text']}")
    for d in version.statement.get("datasets", []):
        out.print(f"  data     {d['ref']} from {d.get('source_name')}")
    for d in decisions:
        out.print(f"  {d['decision']:<8} by {d['by']} {d['at'][:16]}: {d['reason']}")


@app.command("verify")
def verify(ref: REF, json_out: JSON = False) -> None:
    """Check a version's statement, digests and OpenSSF signature (exit 1 when it fails)."""
    from aidlc.registry.versions import verify as check

    with open_workspace() as ws:
        result = check(ws, ref)
    if json_out:
        emit_json(result.to_json())
    else:
        console().print(
            f"[green]✓ {result.ref} verifies[/]: signature, {len(result.files)} model files, "
            f"{len(result.documents)} documents; digest {result.model_digest}"
        )


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="A skops, ONNX (.onnx), XGBoost (.ubj/.json) or LightGBM (.txt) model file, "
            "or an MLflow model directory (holding MLmodel)."
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Registered model name.")],
    trained_on: Annotated[
        str,
        typer.Option(
            "--trained-on",
            help="DATASET@V: the validated version it was trained on; its data contract gives "
            "the input schema.",
        ),
    ],
    target: Annotated[str, typer.Option("--target", help="The column the model predicts.")],
    evaluate_on: Annotated[
        str | None,
        typer.Option(
            "--evaluate-on",
            help="DATASET@V held out from training (no shared row): aidlc computes the metrics "
            "and gates on it. Without it they are in-sample, and approval must accept that.",
        ),
    ] = None,
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--features",
            help="The columns the model takes, comma-separated or repeated (default: the "
            "model's own input names). In the model's input order when it names none.",
        ),
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option(
            "--gate",
            help="A quality gate, repeatable: 'roc_auc >= 0.85', 'roc_auc >= production - 0.01'.",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="classification or regression, when the model cannot say."),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            help="What each of the model's classes stands for in the data, comma-separated, "
            "in the model's order (when its labels are not the target's values).",
        ),
    ] = None,
    owner: Annotated[str, typer.Option("--owner", help="Who owns the model (card).")] = "",
    intended_use: Annotated[
        str, typer.Option("--intended-use", help="What it is for (card).")
    ] = "",
    limitations: Annotated[
        str, typer.Option("--limitations", help="What it must not be used for (card).")
    ] = "",
    description: Annotated[str, typer.Option("--description", help="One line (card).")] = "",
    json_out: JSON = False,
) -> None:
    """Register a model trained elsewhere (a notebook, MLflow, another team), judged by aidlc.

    Nothing in the file runs: pickle, custom classes, function references and custom ONNX
    operators are refused. aidlc computes the metrics, gates and drift baseline itself on
    validated data, signs the version and makes it a candidate; someone else approves it.
    Exit 0 registered (gates may have failed: see the output), 1 a check failed, 2 the model
    or an option is refused, 5 a dataset version is not found."""
    from aidlc.registry.importing import import_model

    chosen = [f.strip() for item in features or [] for f in item.split(",") if f.strip()]
    labels = [c.strip() for c in classes.split(",")] if classes is not None else None
    status = None if json_out else console(stderr=True).status("Importing...")
    if status is not None:
        status.start()
    try:
        with open_workspace() as ws:
            version = import_model(
                ws,
                path,
                name=name,
                trained_on=trained_on,
                target=target,
                evaluate_on=evaluate_on,
                features=chosen or None,
                gates=gate or [],
                task=task,
                classes=labels,
                owner=owner,
                intended_use=intended_use,
                limitations=limitations,
                description=description,
                progress=(lambda step: status.update(f"Importing... {step}")) if status else None,
            )
    finally:
        if status is not None:
            status.stop()
    statement = version.statement
    evaluation = statement.get("evaluation") or {}
    conversion = (statement.get("imported") or {}).get("conversion") or {}
    if json_out:
        emit_json(version.to_json())
        return
    out = console()
    out.print(
        f"[green]✓ imported[/] {version.ref} ({statement['imported']['format']}, "
        f"{version.task}), signed, alias candidate"
    )
    where = evaluation.get("dataset")
    if evaluation.get("in_sample"):
        out.print(
            f"  [yellow]metrics are in-sample[/] (computed on {where}, its training data); "
            "approval needs --accept-in-sample"
        )
    else:
        out.print(f"  evaluated on {evaluation.get('rows')} held-out rows of {where}")
    for key, value in version.metrics.items():
        out.print(f"  metric   {key} = {value:.4f}")
    for g in statement.get("gates", []):
        out.print(f"  gate     {'pass' if g['passed'] else 'FAIL'} {g['text']}  ({g['detail']})")
    if conversion:
        served = conversion.get("served")
        out.print(
            "  served by ONNX Runtime (converted, proven equal on the evaluation rows)"
            if served == "onnx"
            else f"  served from skops: {conversion.get('reason')}"
        )
    if not version.gates_passed:
        out.print("[red]  quality gates failed: this version cannot be approved[/]")


@app.command("approve")
def approve(
    ref: REF,
    reason: REASON,
    to: Annotated[str, typer.Option("--to", help="staging or production.")] = "production",
    accept_in_sample: Annotated[
        bool,
        typer.Option(
            "--accept-in-sample",
            help="Approve an imported version whose metrics were computed on its own "
            "training data (optimistic); recorded in the audit log.",
        ),
    ] = False,
    json_out: JSON = False,
) -> None:
    """Approve a version (not your own) whose gates passed and whose signature verifies.

    A retrained candidate whose model has a `canary` retraining policy, approved to staging,
    starts its canary at once."""
    from aidlc.monitor.retrain import approve as run

    with open_workspace() as ws:
        outcome = run(ws, ref, to=to, reason=reason, accept_in_sample=accept_in_sample)
    version, deployment = outcome["version"], outcome["deployment"]
    if json_out:
        emit_json(version.to_json())
    else:
        console().print(f"[green]✓ approved[/] {version.ref} → {to}")
        if deployment is not None:
            console().print(
                f"canary of {version.ref} started at {deployment.percent:g}% by the retraining "
                "policy; servers judge and conclude it"
            )


@app.command("reject")
def reject(ref: REF, reason: REASON, json_out: JSON = False) -> None:
    """Reject a version: it can never be approved."""
    from aidlc.registry.approval import reject as run

    with open_workspace() as ws:
        version = run(ws, ref, reason=reason)
    if json_out:
        emit_json(version.to_json())
    else:
        console().print(f"[yellow]✓ rejected[/] {version.ref}")


@alias_app.command("set")
def alias_set(
    ref: REF,
    alias: Annotated[str, typer.Argument(help="candidate, staging or production.")],
    reason: REASON,
) -> None:
    """Point an alias at a version (staging and production take approved versions only)."""
    from aidlc.registry.approval import set_alias

    with open_workspace() as ws:
        version = set_alias(ws, ref, alias, reason=reason)
    console().print(f"✓ {version.name}@{alias} → {version.version}")


@alias_app.command("rm")
def alias_rm(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="candidate, staging or production.")],
    reason: REASON,
) -> None:
    """Remove an alias."""
    from aidlc.registry.approval import remove_alias

    with open_workspace() as ws:
        previous = remove_alias(ws, name, alias, reason=reason)
    console().print(f"✓ removed {name}@{alias} (was {previous})")


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Which version held --alias at this time (ISO 8601, with zone)."),
    ] = None,
    json_out: JSON = False,
) -> None:
    """Every alias move: which version held each alias when, who moved it and why."""
    from aidlc.registry.approval import alias_at
    from aidlc.registry.approval import history as query

    with open_workspace() as ws:
        if at is not None:
            if alias is None:
                raise UsageError("--at needs --alias")
            try:
                when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError:
                raise UsageError(f"--at {at[:40]!r} is not an ISO 8601 time") from None
            event = alias_at(ws, name, alias, when)
            result = {
                "model": name,
                "alias": alias,
                "at": when.isoformat(),
                "version": event.version if event else None,
                "moved": event.to_json() if event else None,
            }
            if json_out:
                emit_json(result)
            else:
                held = result["version"]
                console().print(
                    f"{name}@{alias} at {when.isoformat()}: "
                    + (f"version {held}" if held is not None else "no version")
                )
            return
        events = query(ws, name, alias=alias)
    if json_out:
        emit_json([e.to_json() for e in events])
        return
    from rich.table import Table

    table = Table("when (UTC)", "alias", "version", "was", "by", "reason")
    for e in events:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.alias,
            "-" if e.version is None else str(e.version),
            "-" if e.previous is None else str(e.previous),
            e.by,
            e.reason,
        )
    console().print(table)


@app.command("export")
def export(
    ref: REF,
    directory: Annotated[Path, typer.Argument(help="New or empty directory to write into.")],
) -> None:
    """Write a verified version for third parties: model/, model.sig, signing-key.pub.pem,
    model-card.md/.json and ml-bom.json (check with `model_signing verify key`)."""
    from aidlc.registry.versions import export as run

    with open_workspace() as ws:
        written = run(ws, ref, directory)
    out = console()
    out.print(f"✓ exported to {directory}: {', '.join(written)}")
    out.print(
        "  verify offline: python -m model_signing verify key "
        f"--signature {directory}/model.sig --public_key {directory}/signing-key.pub.pem "
        f"{directory}/model"
    )


@app.command("card")
def card(
    ref: REF,
    fmt: Annotated[str, typer.Option("--format", help="md or json.")] = "md",
) -> None:
    """Print a version's model card."""
    from aidlc.registry.versions import read_document

    if fmt not in ("md", "json"):
        raise UsageError("--format is md or json")
    with open_workspace() as ws:
        data = read_document(ws, ref, "model-card.md" if fmt == "md" else "model-card.json")
    typer.echo(data.decode("utf-8"), nl=False)


@app.command("bom")
def bom(ref: REF) -> None:
    """Print a version's CycloneDX ML-BOM (JSON)."""
    from aidlc.registry.versions import read_document

    with open_workspace() as ws:
        data = read_document(ws, ref, "ml-bom.json")
    typer.echo(data.decode("utf-8"), nl=False)


@app.command("tag")
def tag(
    ref: REF,
    key: Annotated[str, typer.Argument(help="Tag name.")],
    value: Annotated[str | None, typer.Argument(help="Value; omit with --remove.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tag.")] = False,
) -> None:
    """Set or remove a tag on a version."""
    from aidlc.registry.versions import set_tag

    if remove == (value is not None):
        raise UsageError("give a VALUE, or --remove (not both)")
    with open_workspace() as ws:
        set_tag(ws, ref, key, None if remove else value)
    console().print(f"✓ {ref} {key}" + (" removed" if remove else f"={value}"))


@app.command("public-key")
def public_key() -> None:
    """Print the workspace's model-signing public key (PEM), for `model_signing verify key`."""
    from aidlc.registry.versions import public_key_pem

    with open_workspace() as ws:
        pem = public_key_pem(ws)
    typer.echo(pem.decode("ascii"), nl=False)
