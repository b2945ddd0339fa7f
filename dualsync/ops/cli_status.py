"""`dualsync status`: shards, consumers, per-entity counts, verify and read-path modes."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Any

import orjson
import psycopg
import typer
from rich.console import Console
from rich.live import Live

from dualsync.ops.cli_options import MappingOption
from dualsync.ops.services import open_services
from dualsync.ops.status import StatusSnapshot, collect, render
from dualsync.redisconn import connect
from dualsync.schema.mapping import load_mapping
from dualsync.settings import Settings, get_settings

__all__ = ["status"]

#: columns of the screen when stdout is not a terminal (rich would assume 80)
_PIPE_WIDTH = 160


def _entities(mapping: Path | None, settings: Settings) -> tuple[str, ...]:
    """The mapping's entities, listed even before anything was counted for them."""
    path = mapping or settings.mapping
    if path is None or (mapping is None and not path.is_file()):
        return ()
    return tuple(sorted(load_mapping(path).entities))


async def _connect_pg(url: str) -> tuple[psycopg.AsyncConnection[Any] | None, str]:
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        return None, lines[0] if lines else type(exc).__name__
    return conn, ""


async def _loop(
    db_url: str, redis_url: str, settings: Settings, entities: tuple[str, ...], *,
    json_: bool, watch: bool, interval: float, iterations: int | None,
) -> None:  # fmt: skip
    client = connect(redis_url)
    conn, pg_error = await _connect_pg(db_url)
    try:

        async def snap() -> StatusSnapshot:
            return await collect(client, conn, prefix=settings.prefix, shards=settings.shards,
                                 entities=entities, postgres_error=pg_error)  # fmt: skip

        if json_:
            n = 0
            while True:
                typer.echo(orjson.dumps((await snap()).as_dict()).decode())
                n += 1
                if not watch or (iterations is not None and n >= iterations):
                    return
                await asyncio.sleep(interval)
        console = Console()
        if not console.is_terminal:  # piped or logged: no terminal to fit, keep rows whole
            console.width = max(console.width, _PIPE_WIDTH)
        if not watch:
            console.print(render(await snap()))
            return
        with Live(render(await snap()), console=console, auto_refresh=False) as live:
            n = 1
            while iterations is None or n < iterations:
                await asyncio.sleep(interval)
                live.update(render(await snap()), refresh=True)
                n += 1
    finally:
        if conn is not None:
            await conn.close()
        await client.aclose()


def status(
    json_: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    watch: Annotated[bool, typer.Option(help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between refreshes with --watch.")
    ] = 2.0,
    mapping: MappingOption = None,
    iterations: Annotated[
        int | None, typer.Option(min=1, hidden=True, help="Stop --watch after N screens.")
    ] = None,
) -> None:
    """Shards (length, lag, pending, consumers), entities (counts, DLQ, verify, read path)."""
    settings = get_settings()
    entities = _entities(mapping, settings)
    with open_services(settings) as svc, contextlib.suppress(KeyboardInterrupt):
        # Ctrl-C ends --watch: a normal way out, exit 0 without a traceback
        asyncio.run(_loop(svc.database_url, svc.redis_url, settings, entities, json_=json_,
                          watch=watch, interval=interval, iterations=iterations))  # fmt: skip
