"""The `dualsync` command line: one Typer app, one sub-app per concern.

`main()` turns usage errors and `DualsyncError`s into a one-line message and a non-zero
exit code: operators never see a traceback for a bad argument or an unusable setting.
"""

from __future__ import annotations

import sys

import psycopg
import typer

# typer >= 0.20 vendors click; its exception types live here (no public re-export).
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from dualsync.errors import DualsyncError
from dualsync.logging import configure_logging
from dualsync.ops.cli_backfill import backfill
from dualsync.ops.cli_cutover import cutover_app, flip, readiness, rollback
from dualsync.ops.cli_demo import demo
from dualsync.ops.cli_dlq import app as dlq_app
from dualsync.ops.cli_doctor import doctor
from dualsync.ops.cli_drift import drift
from dualsync.ops.cli_mappings import app as mappings_app
from dualsync.ops.cli_migrate import app as migrate_app
from dualsync.ops.cli_repair import repair
from dualsync.ops.cli_scan import scan
from dualsync.ops.cli_status import status
from dualsync.ops.cli_verify import verify
from dualsync.ops.cli_worker import worker
from dualsync.settings import get_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="dualsync",
    help=(
        "Move a live application off MongoDB or JSON files onto PostgreSQL: apply change "
        "events, verify both sides, flip each entity's read path (and back)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command(help="Check the services dualsync would use and whether they are usable.")(doctor)
app.command(help="The whole story on the embedded default: two apps move while writing.")(demo)
app.command(help="Apply change events from the streams to PostgreSQL.")(worker)
app.command(help="Snapshot the legacy store into PostgreSQL while the app keeps writing.")(backfill)
app.command(help="Publish the changes of JSON sources whose app cannot publish them.")(scan)
app.command(help="Compare sampled records of both sides; drift with its 95% bound.")(verify)
app.command(help="Re-publish the legacy record of each confirmed drift key (dry run first).")(
    repair
)
app.command(help="Report drift between the legacy store and PostgreSQL, from verify runs.")(drift)
app.command(help="One screen: shards, consumers, per-entity counts, verify, read paths.")(status)
app.command(help="Check the gates an entity must pass before its reads move on.")(readiness)
app.command(help="Move an entity's reads one step on: legacy -> shadow -> postgres.")(flip)
app.command(help="Send an entity's reads back to the legacy store, now.")(rollback)
app.add_typer(cutover_app, name="cutover")
app.add_typer(dlq_app, name="dlq")
app.add_typer(migrate_app, name="migrate")
app.add_typer(mappings_app, name="mappings")


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one exit code per outcome
    """Entry point of the console script; returns the exit code."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        result = app(args=argv, prog_name="dualsync", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("dualsync: aborted", file=sys.stderr)  # noqa: T201 - CLI output
        return 130
    except NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)  # noqa: T201 - the help text itself
        return 0
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "dualsync"
        msg = exc.format_message().replace("\n", " ")
        print(f"dualsync: error: {msg} (see '{where} --help')", file=sys.stderr)  # noqa: T201 - CLI output
        return 2
    except ClickException as exc:
        print(f"dualsync: error: {exc.format_message()}", file=sys.stderr)  # noqa: T201 - CLI output
        return exc.exit_code
    except DualsyncError as exc:
        print(f"dualsync: error: {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return 1
    except psycopg.OperationalError as exc:  # the database is unreachable or refused us
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"dualsync: error: PostgreSQL: {first}", file=sys.stderr)  # noqa: T201 - CLI output
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script wrapper: exit with `main()`'s code."""
    sys.exit(main())
