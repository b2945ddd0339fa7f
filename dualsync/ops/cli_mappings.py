"""`dualsync mappings check`: does a mapping fit the live database, before any event does?

Problems print like compiler diagnostics (`FILE:LINE: entity: message`) so editors and
CI annotate the offending line; the exit code is 1 when any mapping has an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from dualsync.ops.services import open_services
from dualsync.schema.mapping import MappingFileError, MappingSet, load_mapping
from dualsync.schema.mapping.check import Problem, check_mapping, schemas_of
from dualsync.schema.mapping.introspect import introspect
from dualsync.settings import get_settings

app = typer.Typer(
    help="Entity mappings: check them against the live database.", no_args_is_help=True
)


_ENTITY_LOC = re.compile(r"^entities\.([a-z][a-z0-9_]*)\b")


def _file_problem(exc: MappingFileError, path: Path) -> Problem:
    """A mapping that does not load, in the same FILE:LINE: entity: message shape."""
    where = f"{exc.path}:{exc.line}: "
    text = str(exc)
    message = text.removeprefix(where)
    m = _ENTITY_LOC.match(message)
    return Problem(exc.path or str(path), exc.line, m.group(1) if m else "mapping", message)


@app.command()
def check(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", help="Mapping YAML files.", exists=True, dir_okay=False),
    ],
) -> None:
    """Check mappings against the database (DATABASE_URL, or the embedded default).

    Every target table and column must exist, with a type the mapping can write (enum
    labels and vector dimensions included), and every NOT NULL column without a default
    must be filled. Problems print as FILE:LINE: entity: message; warnings do not fail.
    Exit 1 when any mapping has an error.
    """
    found: list[Problem] = []
    loaded: list[MappingSet] = []
    for path in paths:  # a file that does not load needs no database to say so
        try:
            loaded.append(load_mapping(path))
        except MappingFileError as exc:
            found.append(_file_problem(exc, path))
    if loaded:
        with (
            open_services(get_settings(), need_redis=False) as svc,
            psycopg.connect(svc.database_url, autocommit=True) as conn,
        ):
            for ms in loaded:
                found += check_mapping(ms, introspect(conn, schemas_of(ms)))
    order = {str(p): i for i, p in enumerate(paths)}
    for p in sorted(found, key=lambda p: order.get(p.path, 0)):  # stable: lines stay in order
        typer.echo(str(p))
    errors = sum(p.level == "error" for p in found)
    warnings = len(found) - errors
    files = len(paths)
    if errors:
        typer.echo(f"{errors} problem(s), {warnings} warning(s) in {files} mapping file(s)")
        raise typer.Exit(1)
    typer.echo(f"ok: {files} mapping file(s) match the database ({warnings} warning(s))")
