"""`dualsync migrate`: apply, revert, list and create SQL migrations.

dualsync's own set (`row_state`, verifier and cutover tables) is always included; an
application's folders are added with `--dir`. The work is `Migrator`'s (checksums, the
advisory lock, one transaction per file): this module parses arguments and prints.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Final

import typer

from dualsync.ops.services import open_services
from dualsync.schema.migrate import (
    Applied,
    ChecksumMismatchError,
    MigrationError,
    MigrationSet,
    MigrationStatus,
    Migrator,
    core_set,
    parse_file,
)
from dualsync.settings import get_settings

app = typer.Typer(
    help=(
        "SQL migrations: dualsync's own tables always, an application's folders with --dir. "
        "Files are YYYYMMDDHHMMSS_snake_name.sql with a header and a '-- down' section; "
        "applied files are checksummed and must never be edited."
    ),
    no_args_is_help=True,
)

_SNAKE: Final = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_VERSION: Final = re.compile(r"^\d{14}$")
_STAMP: Final = "%Y%m%d%H%M%S"
_TEMPLATE: Final = """\
-- Purpose: describe what this migration does and why
-- Ticket: n/a
-- Reversible: yes
-- Rollback: describe how the down section undoes it

-- Replace this placeholder with the change. It fails on purpose, so an unwritten
-- migration cannot be applied (and then frozen by its checksum) by accident.
do $$ begin raise exception 'unwritten migration {file}: replace its placeholder'; end $$;

-- down
do $$ begin raise exception 'unwritten migration {file}: replace its placeholder'; end $$;
"""

Dirs = Annotated[
    list[Path] | None,
    typer.Option(
        "--dir",
        metavar="PATH",
        exists=True,
        file_okay=False,
        help="An application's migration folder (repeatable), e.g. examples/astro/migrations.",
    ),
]
LockTimeout = Annotated[
    float | None,
    typer.Option(
        # Postgres reads lock_timeout = 0 as "no limit": the smallest limit is 1 ms.
        min=0.001,
        metavar="SECONDS",
        help="Give up after waiting this long for another migration runner, or for a table "
        "lock while migrating (default: wait).",
    ),
]


def _sets(dirs: Sequence[Path] | None) -> list[MigrationSet]:
    """The core set plus one set per `--dir`, with distinct names (history is by name)."""
    sets = [core_set()]
    for d in dirs or ():
        if d.resolve() == sets[0].path.resolve():
            raise typer.BadParameter(
                f"{d} is dualsync's own set, always included", param_hint="--dir"
            )
        s = MigrationSet.from_dir(d)
        other = next((x for x in sets if x.name == s.name), None)
        if other is not None:
            raise typer.BadParameter(
                f"{d} would be set {s.name!r}, already used by {other.path}", param_hint="--dir"
            )
        sets.append(s)
    return sets


@contextmanager
def _migrator(sets: list[MigrationSet], lock_timeout: float | None) -> Iterator[Migrator]:
    with open_services(get_settings(), need_redis=False) as svc:
        yield Migrator(svc.database_url, sets, lock_timeout=lock_timeout)


def _echo_runs(runs: list[Applied]) -> None:
    width = max((len(f"{a.set_name}/{a.version}_{a.name}") for a in runs), default=0)
    for a in runs:
        label = f"{a.set_name}/{a.version}_{a.name}"
        typer.echo(f"{a.direction:<4}  {label:<{width}}  {a.duration_ms:>6} ms")


def _version(value: str | None) -> str | None:
    if value is not None and not _VERSION.match(value):
        raise typer.BadParameter(f"{value!r} is not a version: use YYYYMMDDHHMMSS")
    return value


@app.command()
def up(
    dirs: Dirs = None,
    post_load: Annotated[
        bool,
        typer.Option(
            "--post-load",
            help="Also run '-- Phase: post-load' files (e.g. HNSW indexes), after the bulk load.",
        ),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            metavar="VERSION", callback=_version, help="Stop after this version (YYYYMMDDHHMMSS)."
        ),
    ] = None,
    lock_timeout: LockTimeout = None,
) -> None:
    """Apply every pending migration, in version order, one transaction per file.

    Refuses to run anything when an applied file was edited. A second runner waits for
    the first (advisory lock), then finds nothing left to do.
    """
    with _migrator(_sets(dirs), lock_timeout) as m:
        done = m.up(post_load=post_load, to=to)
        deferred = [s for s in m.status() if s.state == "deferred"]
    _echo_runs(done)
    typer.echo(f"applied {len(done)} migration(s)" if done else "nothing to apply")
    if deferred:
        typer.echo(
            f"{len(deferred)} post-load migration(s) deferred: run "
            "'dualsync migrate up --post-load' after the bulk load"
        )


@app.command()
def down(
    steps: Annotated[
        int, typer.Argument(metavar="N", min=1, help="How many applied files to revert.")
    ] = 1,
    dirs: Dirs = None,
    set_name: Annotated[
        str | None,
        typer.Option(
            "--set",
            metavar="NAME",
            help="Only this set: 'dualsync', or a --dir folder's name (its parent's for "
            "a folder called migrations).",
        ),
    ] = None,
    lock_timeout: LockTimeout = None,
) -> None:
    """Revert the N most recently applied migrations (default 1), newest first.

    Refuses before reverting anything when one of them is irreversible (Reversible: no);
    the error shows its Rollback note.
    """
    sets = _sets(dirs)
    if set_name is not None and set_name not in {s.name for s in sets}:
        known = ", ".join(s.name for s in sets)
        raise typer.BadParameter(f"unknown set {set_name!r} (known: {known})", param_hint="--set")
    with _migrator(sets, lock_timeout) as m:
        done = m.down(steps, set_name=set_name)
    _echo_runs(done)
    typer.echo(f"reverted {len(done)} migration(s)" if done else "nothing to revert")


def _when(applied_at: str | None) -> str:
    if applied_at is None:
        return "-"
    return dt.datetime.fromisoformat(applied_at).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(rows: list[MigrationStatus]) -> None:
    cells = [("set", "version", "name", "state", "applied_at")]
    cells += [(r.set_name, r.version, r.name, r.state, _when(r.applied_at)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    for row in cells:
        typer.echo("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]))


@app.command()
def status(dirs: Dirs = None, lock_timeout: LockTimeout = None) -> None:
    """List every migration: applied, pending, deferred (post-load), changed or missing.

    Exits non-zero when an applied file was edited (changed) or deleted (missing).
    """
    sets = _sets(dirs)
    with _migrator(sets, lock_timeout) as m:
        rows = m.status()
    _table(rows)
    counts = {s: sum(r.state == s for r in rows) for s in ("applied", "pending", "deferred")}
    typer.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    paths = {s.name: s.path for s in sets}
    changed = [
        str(paths[r.set_name] / f"{r.version}_{r.name}.sql") for r in rows if r.state == "changed"
    ]
    missing = [f"{r.set_name}/{r.version}_{r.name}" for r in rows if r.state == "missing"]
    if changed:
        raise ChecksumMismatchError(
            f"changed after it was applied: {', '.join(changed)} (applied migrations are "
            "immutable: restore the file and write a new migration)"
        )
    if missing:
        raise MigrationError(f"applied but the file is gone: {', '.join(missing)}")


def _next_version(directory: Path) -> str:
    """UTC now, or one second after the newest file in the folder when that is later."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    versions = [p.name[:14] for p in directory.glob("*.sql") if _VERSION.match(p.name[:14])]
    if versions:
        newest = dt.datetime.strptime(max(versions), _STAMP)  # noqa: DTZ007 - UTC by convention
        now = max(now, newest + dt.timedelta(seconds=1))
    return now.strftime(_STAMP)


@app.command()
def new(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="snake_case, e.g. add_users_email_index.")
    ],
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", metavar="PATH", exists=True, file_okay=False, help="The folder to write into."
        ),
    ],
) -> None:
    """Write YYYYMMDDHHMMSS_NAME.sql (UTC now) with the header template, and print its path.

    The placeholder statements fail on purpose until you replace them.
    """
    if not _SNAKE.match(name):
        raise typer.BadParameter(
            f"{name!r} is not snake_case (lower-case letters, digits and single underscores, "
            "starting with a letter), e.g. add_users_email_index",
            param_hint="NAME",
        )
    path = directory / f"{_next_version(directory)}_{name}.sql"
    with path.open("x", encoding="utf-8") as f:
        f.write(_TEMPLATE.format(file=path.name))
    parse_file(MigrationSet.from_dir(directory).name, path)  # the template must stay valid
    typer.echo(str(path))
