"""`aidlc train` and `aidlc runs ...`: training from a config file, and the runs it records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aidlc.cli.context import console, emit_json, open_workspace
from aidlc.errors import UsageError

runs_app = typer.Typer(help="Training runs: list, show, compare.", no_args_is_help=True)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_MAX_CONFIG = 1024 * 1024


def _progress() -> Any:
    """Progress lines on stderr: a live bar on a terminal, plain lines otherwise."""
    err = console(stderr=True)
    last: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if err.is_terminal or done == total or done - last.get(stage, 0) >= step:
            last[stage] = done
            label = "tuning trials" if stage == "tuning" else "boosting rounds"
            err.print(f"  {label}: {done}/{total}", end="\r" if err.is_terminal else "\n")

    return report


def train(
    config: Annotated[
        Path | None, typer.Argument(help="Training config (YAML); see docs/training.md.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue an interrupted run by its id.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="Where tuning trials run: local or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster (default: $RAY_ADDRESS).")
    ] = None,
    json_out: JSON = False,
) -> None:
    """Train a model from a config on a validated dataset version, record the run, and register
    a signed version when the config has a `register:` block.

    SIGTERM or Ctrl-C checkpoints finished tuning trials and boosting rounds, then exits 130;
    `aidlc train --resume RUN` ends with the same model an uninterrupted run makes.
    Exit codes: 0 trained (gates may still have failed: see the output), 1 gates failed,
    2 bad config, 130 interrupted.
    """
    from aidlc.registry import versions
    from aidlc.train import runner

    if engine not in ("local", "ray"):
        raise UsageError("--engine is local or ray")
    if (config is None) == (resume is None):
        raise UsageError("give a CONFIG file, or --resume RUN (not both)")
    with open_workspace() as ws:
        common: dict[str, Any] = {
            "engine": engine,
            "ray_address": ray_address,
            "progress": _progress(),
            "register": versions.registrar(ws),
            "production_metrics": lambda name: versions.production_metrics(ws, name),
        }
        if config is not None:
            outcome = runner.train(
                ws,
                _read_config(config),
                source=str(config),
                directory=config.resolve().parent,
                **common,
            )
        else:
            outcome = runner.resume(ws, resume or "", **common)
        from aidlc.govern import openlineage
        from aidlc.train import tracking

        openlineage.publish(
            ws, openlineage.training_events(ws, tracking.get_run(ws, outcome.run_id))
        )
    if json_out:
        emit_json(outcome.to_json())
    else:
        out = console()
        out.print(
            f"[green]✓ run {outcome.run_id}[/] ({outcome.name}) trained on {outcome.dataset}"
            + (" [resumed]" if outcome.resumed else "")
        )
        for key, value in outcome.metrics.items():
            out.print(f"  {key:<10} {value:.4f}")
        for gate in outcome.gates:
            mark = "[green]pass[/]" if gate["passed"] else "[red]FAIL[/]"
            out.print(f"  gate {mark} {gate['text']}  ({gate['detail']})")
        if outcome.model_version:
            out.print(f"  registered {outcome.model_version} (candidate), signed")
    if not outcome.gates_passed:
        raise typer.Exit(1)


def _read_config(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"{path}: no such config file")
    with path.open("rb") as fh:
        raw = fh.read(_MAX_CONFIG + 1)
    if len(raw) > _MAX_CONFIG:
        raise UsageError(f"{path} is larger than 1 MiB; a training config is small")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


@runs_app.command("list")
def list_runs(
    name: Annotated[str | None, typer.Option("--name", help="Only runs with this name.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="running, interrupted, finished or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    json_out: JSON = False,
) -> None:
    """Runs, newest first."""
    from rich.table import Table

    from aidlc.train.tracking import list_runs as query

    with open_workspace() as ws:
        runs = query(ws, name=name, status=status, limit=limit)
    if json_out:
        emit_json([r.to_json(with_config=False) for r in runs])
        return
    table = Table("run", "name", "status", "started", "by", "metrics", "model")
    for r in runs:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in list(r.metrics.items())[:3])
        table.add_row(
            r.id,
            r.name,
            r.status,
            f"{r.started_at:%Y-%m-%d %H:%M}",
            r.created_by,
            shown,
            r.model_version or "",
        )
    console().print(table)


@runs_app.command("show")
def show_run(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    json_out: JSON = False,
) -> None:
    """Everything a run recorded: config, data, environment, parameters, metrics, result."""
    from aidlc.train.tracking import get_run

    with open_workspace() as ws:
        info = get_run(ws, run)
    if json_out:
        emit_json(info.to_json())
        return
    out = console()
    out.print(f"run {info.id}  {info.name}  [bold]{info.status}[/]  by {info.created_by}")
    out.print(f"  started {info.started_at:%Y-%m-%d %H:%M:%S} UTC, {info.seconds or 0:.1f} s")
    git = info.environment.get("git", {})
    out.print(
        f"  code    git {git.get('commit') or 'none'}"
        + (" (dirty)" if git.get("dirty") else "")
        + f", python {info.environment.get('python')}, packages "
        + f"{str(info.environment.get('packages_digest'))[:16]}…"
    )
    for d in info.datasets:
        out.print(f"  data    {d['ref']} ({d['rows']} rows, sha256 {d['data_sha256'][:16]}…)")
    out.print(f"  seed    {info.seed}")
    for key, value in info.params.items():
        out.print(f"  param   {key} = {value}")
    for key, metric in info.metrics.items():
        out.print(f"  metric  {key} = {metric:.4f}")
    if info.model_version:
        out.print(f"  model   {info.model_version}")


@runs_app.command("compare")
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    json_out: JSON = False,
) -> None:
    """Parameters and metrics of runs side by side; differences marked with *."""
    from rich.table import Table

    from aidlc.train.tracking import compare_runs

    with open_workspace() as ws:
        result = compare_runs(ws, runs)
    if json_out:
        emit_json(result)
        return
    table = Table("", *[r["id"] for r in result["runs"]])
    for section in ("params", "metrics"):
        for row in result[section]:
            mark = "*" if row["differs"] else " "
            table.add_row(
                f"{mark} {row['key']}",
                *[
                    "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
                    for v in row["values"]
                ],
            )
    console().print(table)
