"""`aidlc compliance report|check`: controls evaluated from evidence."""

from __future__ import annotations

import typer

app = typer.Typer(help="Compliance reports and checks (being built).", no_args_is_help=True)
