"""`dualsync dlq`: list, show, replay and purge dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from dualsync.ops import dlq
from dualsync.ops.ages import AGE_EXAMPLES, parse_age
from dualsync.ops.services import open_services
from dualsync.redisconn import AnyRedis, connect
from dualsync.settings import get_settings

app = typer.Typer(
    help="Dead letters: events that could not be applied, with the reason.", no_args_is_help=True
)
_console = Console(soft_wrap=True)
T = TypeVar("T")


def _run(fn: Callable[[AnyRedis], Awaitable[T]]) -> T:
    settings = get_settings()

    async def go(url: str) -> T:
        client = connect(url)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    with open_services(settings, need_pg=False) as svc:
        return asyncio.run(go(svc.redis_url))


def _duration(text: str) -> dt.timedelta:
    try:
        age = parse_age(text)
    except OverflowError:
        age = None
    if age is None:
        raise typer.BadParameter(f"{text!r}: use numbers with units, e.g. {AGE_EXAMPLES}")
    return age


@app.command("list")
def list_(
    entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List dead letters, oldest first (secrets are redacted)."""
    prefix = get_settings().prefix
    letters = _run(lambda c: dlq.list_letters(c, prefix, entity=entity, reason=reason, limit=limit))
    if as_json:
        for d in letters:
            typer.echo(orjson.dumps(d.as_dict()).decode())
        return
    table = Table("id", "reason", "entity", "key", "deliveries", "failed_at", "error")
    for d in letters:
        table.add_row(d.id, d.reason, d.entity, d.key, str(d.deliveries), d.failed_at, d.error[:80])
    _console.print(table)
    _console.print(f"{len(letters)} dead letter(s)")


@app.command()
def show(dead_letter_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Show one dead letter in full (secrets are redacted)."""
    prefix = get_settings().prefix
    [d] = _run(lambda c: dlq.list_letters(c, prefix, ids=[dead_letter_id]))
    typer.echo(orjson.dumps(d.as_dict(), option=orjson.OPT_INDENT_2).decode())


@app.command("replay")
def replay_cmd(
    ids: Annotated[
        list[str] | None, typer.Argument(metavar="ID...", help="Dead letter ids.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    entity: Annotated[str | None, typer.Option(help="With --all: only this entity.")] = None,
    reason: Annotated[str | None, typer.Option(help="With --all: only this reason.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed.")
    ] = False,
) -> None:
    """Re-queue dead letters through the normal apply path (after fixing the cause)."""
    if bool(ids) == all_:
        raise typer.BadParameter("give dead letter IDs or --all (not both)")
    settings = get_settings()

    async def go(c: AnyRedis) -> list[tuple[dlq.DeadLetterView, str]]:
        letters = await dlq.list_letters(
            c, settings.prefix, ids=ids or None, entity=entity, reason=reason
        )
        return await dlq.replay(c, settings.prefix, settings.shards, letters, dry_run=dry_run)

    done = _run(go)
    verb = "would replay" if dry_run else "replayed"
    for d, target in done:
        _console.print(f"{verb} {d.id} ({d.entity}/{d.key}, {d.reason}) -> {target}")
    _console.print(f"{len(done)} dead letter(s) {verb}")


@app.command()
def purge(
    older_than: Annotated[str, typer.Option(help="Age, e.g. 7d, 12h, 30m, 1h30m.")],
) -> None:
    """Delete dead letters older than the given age (and their stored originals)."""
    age = _duration(older_than)
    prefix = get_settings().prefix
    n = _run(lambda c: dlq.purge(c, prefix, age))
    _console.print(f"purged {n} dead letter(s) older than {older_than}")
