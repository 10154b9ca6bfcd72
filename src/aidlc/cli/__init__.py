"""The `aidlc` command line: thin commands that parse, call a service function and render.

Exit codes: 0 success; 1 a check failed (validation, verification, integrity); 2 usage, input or
configuration error; 3 authentication failed; 4 permission denied; 5 not found; 6 conflict;
130 interrupted; 70 internal error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from aidlc import __version__
from aidlc.cli import (
    alerts,
    audit,
    backup,
    compliance,
    data,
    doctor,
    erase,
    health,
    init,
    keys,
    lineage,
    models,
    monitor,
    objects,
    quickstart,
    retention,
    serve,
    threats,
    train,
    users,
)
from aidlc.cli.context import set_workspace_option

app = typer.Typer(
    name="aidlc",
    help="A secure-by-default ML lifecycle: quality-gated data, signed models, audited serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"aidlc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace folder (default: $AIDLC_WORKSPACE, else the nearest aidlc.yaml up).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    set_workspace_option(workspace)


app.command("init")(init.init)
app.command("quickstart")(quickstart.quickstart)
app.add_typer(users.user_app, name="user")
app.add_typer(users.token_app, name="token")
app.add_typer(keys.app, name="keys")
app.add_typer(objects.app, name="objects")
app.add_typer(data.app, name="data")
app.add_typer(audit.app, name="audit")
app.command("train")(train.train)
app.add_typer(train.runs_app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(alerts.app, name="alerts")
app.add_typer(monitor.app, name="monitor")
app.command("serve")(serve.serve)
app.command("deploy")(serve.deploy)
app.add_typer(compliance.app, name="compliance")
app.command("lineage")(lineage.lineage)
app.add_typer(retention.app, name="retention")
app.command("erase")(erase.erase)
app.command("threat-model")(threats.threat_model)
app.command("doctor")(doctor.doctor)
app.command("health")(health.health)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)


def main() -> None:
    """Run the CLI, mapping every aidlc error to one message and its exit code."""
    from aidlc.errors import AidlcError

    try:
        code = app(standalone_mode=False)
    except AidlcError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.TyperException as exc:  # usage errors: the parser's own message, exit 2
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _fail(str(exc), 2)
        sys.exit(2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # the last line of defence: never a traceback for users
        if os.environ.get("AIDLC_DEBUG"):
            raise
        _fail(
            f"internal error ({type(exc).__name__}); rerun with AIDLC_DEBUG=1 for details and "
            "please report it",
            70,
        )
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"aidlc: error: {message}\n")
    sys.exit(code)
