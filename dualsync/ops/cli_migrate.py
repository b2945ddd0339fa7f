"""`dualsync migrate`: placeholder sub-app, filled in by the schema-layer work (issue 4)."""

from __future__ import annotations

import typer

app = typer.Typer(help="migrate commands.", no_args_is_help=True)
