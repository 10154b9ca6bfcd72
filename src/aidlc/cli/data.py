"""`aidlc data ...`: the data quality gate — contracts, ingest, dry runs, versions, diffs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from aidlc.cli.context import console, emit_json, open_workspace
from aidlc.errors import UsageError

app = typer.Typer(help="The data quality gate: contracts, ingest, versions.", no_args_is_help=True)
contract_app = typer.Typer(help="Data contracts: draft, set, show.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")

JSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
HTML = Annotated[Path | None, typer.Option("--html", help="Also write the report as an HTML page.")]
FORMAT = Annotated[
    str | None, typer.Option("--format", help="csv, parquet or jsonl (default: from the name).")
]


def _write_html(path: Path | None, report: dict[str, Any], title: str) -> None:
    if path is None:
        return
    from aidlc.data.report import render_html

    path.write_text(render_html(report, title=title), encoding="utf-8")


def _load(contract: Path) -> Any:
    from aidlc.data.contract import load_contract

    return load_contract(contract)


@app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file (optionally .gz).")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name.")],
    contract: Annotated[
        Path | None, typer.Option(help="Data contract (YAML); needed on a dataset's first ingest.")
    ] = None,
    fmt: FORMAT = None,
    json_out: JSON = False,
    html: HTML = None,
) -> None:
    """Store a file (encrypted), validate it, and make a new dataset version or quarantine it.

    Exit codes: 0 accepted (or partly accepted with rows quarantined), 1 rejected,
    2 unusable input or usage error. The file's bytes are kept whatever the outcome.
    """
    from aidlc.data.ingest import ingest as run_ingest
    from aidlc.data.report import render_table

    given = _load(contract) if contract else None
    with open_workspace() as ws:
        result = run_ingest(ws, file, dataset, contract=given, fmt=fmt)
        if result.ref:
            from aidlc.data.versions import resolve
            from aidlc.govern import openlineage

            openlineage.publish(ws, [openlineage.ingest_event(ws, resolve(ws, str(result.ref)))])
    _write_html(html, result.report, f"{file.name} → {dataset}")
    if json_out:
        emit_json(result.to_json())
    else:
        out = console()
        if result.outcome == "accepted":
            out.print(f"[green]✓ accepted[/] {result.ref}: {result.rows} rows from {file.name}")
        elif result.outcome == "partial":
            out.print(
                f"[yellow]✓ partly accepted[/] {result.ref}: "
                f"{(result.rows or 0) - (result.failed_rows or 0)} rows kept, "
                f"{result.failed_rows} rows quarantined with their reasons"
            )
        elif result.outcome == "rejected":
            out.print(f"[red]✗ rejected[/] {file.name}: {result.reason}", markup=True)
        else:
            out.print(f"[red]✗ unusable[/] {file.name}: {result.reason}")
        if result.report.get("checks"):
            out.print(render_table(result.report))
        if result.quarantine_object:
            out.print(
                f"quarantined as {result.quarantine_object}; raw bytes in {result.raw_object}"
            )
    raise typer.Exit(result.exit_code)


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="File, folder or quoted glob to check.")],
    contract: Annotated[Path, typer.Option(help="Data contract (YAML).")],
    baseline: Annotated[
        str | None, typer.Option(help="NAME@V whose profile is the drift baseline.")
    ] = None,
    fmt: FORMAT = None,
    json_out: JSON = False,
    html: HTML = None,
    engine: Annotated[
        Literal["local", "ray"],
        typer.Option(help="Where a folder or glob of Parquet partitions is validated."),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster for --engine ray (default: $RAY_ADDRESS, else a local one)."
        ),
    ] = None,
) -> None:
    """Dry run: validate a file against a contract; stores nothing. Exit 0 pass, 1 fail, 2 unusable.

    FILE may also be a folder or a quoted glob ('sales/*.parquet') of Parquet partitions,
    validated as one dataset, in process or with --engine ray on a Ray cluster.
    """
    from aidlc.data.ingest import validate_file
    from aidlc.data.report import render_table

    given = _load(contract)
    glob = not file.exists() and any(c in str(file) for c in "*?[")
    partitioned = engine == "ray" or file.is_dir() or glob
    if partitioned and fmt not in (None, "parquet"):
        raise UsageError("a folder, a glob or --engine ray reads Parquet files; drop --format")
    with open_workspace() as ws:
        if partitioned:
            from aidlc.data.engine import validate_dataset

            report = validate_dataset(
                ws, file, given, engine=engine, baseline_ref=baseline, ray_address=ray_address
            ).report
        else:
            report = validate_file(ws, file, given, fmt=fmt, baseline_ref=baseline).to_json()
    _write_html(html, report, f"{file.name} against {contract.name}")
    if json_out:
        emit_json(report)
    else:
        out = console()
        verdict = "[green]✓ passes[/]" if report["passed"] else "[red]✗ fails[/]"
        out.print(f"{verdict} {file.name}: {report.get('rows')} rows")
        out.print(render_table(report))
    raise typer.Exit(0 if report["passed"] else 1)


@contract_app.command("infer")
def contract_infer(
    file: Annotated[Path, typer.Argument(help="A sample of the data.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    name: Annotated[str | None, typer.Option(help="Contract name.")] = None,
    fmt: FORMAT = None,
) -> None:
    """Draft a contract from a sample; review it before using it (no workspace needed)."""
    from aidlc.core.config import DataConfig
    from aidlc.data.contract import infer_contract
    from aidlc.data.formats import read_file
    from aidlc.errors import InvalidInput

    if not file.is_file():
        raise InvalidInput(f"cannot read {file}: no such file")
    df = read_file(file, DataConfig(), fmt=fmt)
    text = infer_contract(df, name=name).to_yaml()
    header = f"# Drafted by `aidlc data contract infer` from {file.name}; review before use.\n"
    if output:
        output.write_text(header + text, encoding="utf-8")
        console().print(f"Wrote a draft contract to {output}.")
    else:
        typer.echo(header + text, nl=False)


@contract_app.command("set")
def contract_set(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    contract: Annotated[Path, typer.Argument(help="The new contract (YAML).")],
) -> None:
    """Replace a dataset's contract; later ingests are checked against the new version."""
    from aidlc.data.versions import set_contract

    given = _load(contract)
    with open_workspace() as ws:
        version = set_contract(ws, dataset, given)
    console().print(f"{dataset}: contract version {version} is current.")


@contract_app.command("show")
def contract_show(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[int | None, typer.Option(help="An earlier contract version.")] = None,
    json_out: JSON = False,
) -> None:
    """Print a dataset's current (or an earlier) contract."""
    from aidlc.data.versions import contract_version

    with open_workspace() as ws:
        found = contract_version(ws, dataset, version)
    if json_out:
        emit_json(found.to_json())
    else:
        typer.echo(f"# {dataset} contract version {found.version} ({found.fingerprint[:12]})")
        typer.echo(found.body, nl=False)


@app.command("list")
def list_(json_out: JSON = False) -> None:
    """List datasets with their contract version and newest version."""
    from rich.table import Table

    from aidlc.data.versions import list_datasets

    with open_workspace() as ws:
        items = list_datasets(ws)
    if json_out:
        emit_json(items)
        return
    table = Table("dataset", "contract", "versions", "latest")
    for d in items:
        table.add_row(
            d["name"], str(d["contract_version"]), str(d["versions"]), str(d["latest"] or "-")
        )
    console().print(table)


@app.command("versions")
def versions_(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")], json_out: JSON = False
) -> None:
    """List the validated versions of a dataset."""
    from rich.table import Table

    from aidlc.data.versions import list_versions

    with open_workspace() as ws:
        items = list_versions(ws, dataset)
    if json_out:
        emit_json([v.to_json() for v in items])
        return
    table = Table("version", "rows", "contract", "source", "sha256", "by", "created")
    for v in items:
        table.add_row(
            v.ref,
            str(v.rows),
            str(v.contract_version),
            v.source_name,
            v.source_sha256[:12],
            v.created_by,
            f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    console().print(table)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME@V or NAME@latest.")], json_out: JSON = False
) -> None:
    """Show one version: provenance, columns and profile summary."""
    from aidlc.data.versions import read_profile, resolve

    with open_workspace() as ws:
        version = resolve(ws, ref)
        profile = read_profile(ws, version.ref)
    doc = {**version.to_json(), "profile": profile.to_json()}
    if json_out:
        emit_json(doc)
        return
    from rich.table import Table

    out = console()
    out.print(f"[bold]{version.ref}[/]: {version.rows} rows, contract v{version.contract_version}")
    out.print(
        f"  source {version.source_name} ({version.source_size} bytes, "
        f"sha256 {version.source_sha256})"
    )
    out.print(f"  ingested by {version.created_by} at {version.created_at:%Y-%m-%d %H:%M:%S} UTC")
    table = Table("column", "kind", "nulls", "distinct", "min", "max", "mean")
    for name, col in profile.columns.items():
        numeric = col.kind == "numeric"
        table.add_row(
            name,
            col.kind,
            str(col.nulls),
            str(col.distinct()),
            f"{col.min:.4g}" if numeric and col.min is not None else "",
            f"{col.max:.4g}" if numeric and col.max is not None else "",
            f"{col.mean:.4g}" if numeric and col.mean is not None else "",
        )
    out.print(table)


@app.command("diff")
def diff(
    reference: Annotated[str, typer.Argument(help="NAME@V or a file.")],
    current: Annotated[str, typer.Argument(help="NAME@V or a file.")],
    json_out: JSON = False,
) -> None:
    """Schema changes and per-column drift (PSI) between two versions or a version and a file."""
    from rich.table import Table

    from aidlc.data.versions import diff as run_diff

    with open_workspace() as ws:
        doc = run_diff(ws, reference, current)
    if json_out:
        emit_json(doc)
        return
    out = console()
    for key in ("added_columns", "removed_columns"):
        if doc[key]:
            out.print(f"{key.replace('_', ' ')}: {', '.join(doc[key])}")
    for column, (a, b) in doc["type_changes"].items():
        out.print(f"type change: {column} {a} → {b}")
    table = Table("column", "kind", "PSI", "verdict")
    for c in doc["columns"]:
        table.add_row(
            c["column"],
            c["kind"],
            "" if c["psi"] is None else f"{c['psi']:.4f}",
            c["verdict"] or "",
        )
    out.print(table)


@app.command("ingests")
def ingests(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
    json_out: JSON = False,
) -> None:
    """Every file offered to the gate, with its outcome and where its bytes are kept."""
    from rich.markup import escape
    from rich.table import Table

    from aidlc.data.versions import ingests as list_ingests

    with open_workspace() as ws:
        items = list_ingests(ws, dataset)
    if json_out:
        emit_json(items)
        return
    table = Table("id", "dataset", "source", "outcome", "version", "rows", "failed", "reason")
    for i in items:
        table.add_row(
            str(i["id"]),
            i["dataset"],
            escape(i["source"]),
            i["outcome"],
            str(i["version"] or ""),
            str(i["rows"] if i["rows"] is not None else ""),
            str(i["failed_rows"] or ""),
            escape(i["reason"][:80]),
        )
    console().print(table)


@app.command("watch")
def watch(
    inbox: Annotated[Path, typer.Argument(help="Folder to watch for new files.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset the files belong to.")],
    once: Annotated[bool, typer.Option(help="Process what is there now, then stop.")] = False,
) -> None:
    """Ingest each file dropped into INBOX; move it to processed/ or rejected/ beside it."""
    from aidlc.data.watch import watch_inbox

    with open_workspace() as ws:

        def report(name: str, outcome: str, detail: str) -> None:
            console().print(f"{name}: {outcome} {detail}")

        watch_inbox(ws, inbox, dataset, once=once, on_result=report)
