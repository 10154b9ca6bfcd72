"""`aidlc init`: create a workspace and print its first admin token once; or, with `--ci`, write
CI/CD workflows into a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aidlc.cli.context import console, emit_json
from aidlc.errors import UsageError

CI_SYSTEMS = ("github",)


def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new workspace (with --ci: the project's root).")
    ] = Path("."),
    name: Annotated[str | None, typer.Option(help="Workspace name (default: folder name).")] = None,
    admin: Annotated[str, typer.Option(help="Name of the first admin principal.")] = "admin",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    ci: Annotated[
        str | None,
        typer.Option(
            "--ci",
            help="Write CI/CD workflows into DIRECTORY (a project) instead of a workspace: github.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --ci: overwrite existing workflow files.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Start from this aidlc.yaml (e.g. Terraform's aidlc_yaml output): its sections "
            "replace the defaults' (validated first).",
        ),
    ] = None,
) -> None:
    """Create a workspace: aidlc.yaml, a 0600 key ring, the metadata database and the object folder.

    The first admin's token is printed once; store it (for example in ~/.config/aidlc/token with
    mode 0600, or in AIDLC_TOKEN). aidlc keeps only its hash.

    `aidlc init --ci github [DIRECTORY]` writes .github/workflows/aidlc-ci.yml and aidlc-cd.yml
    instead (see docs/deploy.md); existing files are kept unless --force (exit 6).
    """
    if ci is not None:
        if name is not None or admin != "admin" or config is not None:
            raise UsageError(
                "--name, --admin and --config describe a workspace; --ci writes no workspace"
            )
        _init_ci(directory, ci, force=force, json_out=json_out)
        return
    if force:
        raise UsageError("--force only applies with --ci; a workspace is never overwritten")
    from aidlc.core.workspace import Workspace

    settings = _settings(config) if config is not None else None
    if settings and name is not None:
        settings.pop("workspace", None)
    ws, token = Workspace.init(directory, name=name, admin_name=admin, settings=settings)
    ws.close()
    if json_out:
        emit_json({"workspace": str(ws.root), "admin": admin, "admin_token": token})
        return
    out = console()
    out.print(f"Created workspace [bold]{ws.config.workspace}[/] in {ws.root}")
    out.print(f"  key provider: {ws.config.keys.provider}   store: {ws.config.store.backend}")
    out.print(f"\nFirst admin: [bold]{admin}[/]. Token (shown once, store it now):\n")
    out.print(f"  {token}\n", markup=False)
    out.print("Use it with:  export AIDLC_TOKEN=<token>   then   aidlc user add NAME --role ROLE")


def _init_ci(directory: Path, system: str, *, force: bool, json_out: bool) -> None:
    from aidlc.cicd import github

    if system not in CI_SYSTEMS:
        raise UsageError(f"--ci takes one of: {', '.join(CI_SYSTEMS)} (not {system[:40]!r})")
    written = github.write_workflows(directory, force=force)
    if json_out:
        emit_json({"written": [str(p) for p in written]})
        return
    out = console()
    for path in written:
        out.print(f"[green]✓[/] wrote {path}")
    out.print(
        "\nNext: add the secrets and variables named at the top of each file, and protect the "
        "`production` environment with required reviewers (docs/deploy.md)."
    )


def _settings(path: Path) -> dict[str, Any]:
    """The sections of a prepared aidlc.yaml, checked as a whole before any file is written."""
    import yaml

    from aidlc.core.config import load_config

    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    load_config(path)  # one clear ConfigError per problem, and the size and encoding limits
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {k: v for k, v in raw.items() if k != "version"}
