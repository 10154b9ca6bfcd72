"""`aidlc retention ...`: retention policies, legal holds and their application."""

from __future__ import annotations

import typer

app = typer.Typer(help="Retention policies and legal holds (being built).", no_args_is_help=True)
