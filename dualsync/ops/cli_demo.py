"""`dualsync demo`: the whole story on the embedded default, in under two minutes."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from dualsync.logging import configure_logging
from dualsync.ops.demo.story import DemoOptions, run_demo
from dualsync.ops.services import open_services
from dualsync.settings import get_settings

__all__ = ["demo"]


def demo(
    scale: Annotated[
        int, typer.Option(min=10, max=200_000, help="Records per entity of each app.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the generated legacy data.")] = 7,
    verbose: Annotated[bool, typer.Option(help="Show dualsync's own log lines too.")] = False,
) -> None:
    """Two legacy apps (donna: PHP JSON files; panamia: MongoDB) move to PostgreSQL while
    they keep writing: backfill, change capture, workers, and both sides counted."""
    settings = get_settings()
    if not verbose:
        # the story is the output; dualsync's own warnings (e.g. a shadow compare over its
        # budget on a busy machine) are shown with --verbose
        configure_logging(settings.log_format, "ERROR", force=True)
    console = Console(soft_wrap=True)
    with open_services(settings) as svc:
        where = "embedded" if svc.pg_embedded else "DATABASE_URL"
        console.print(f"[bold]dualsync demo[/]: PostgreSQL ({where}), Redis "
                      f"({'embedded' if svc.redis_embedded else 'REDIS_URL'})")  # fmt: skip
        ok = asyncio.run(run_demo(svc.database_url, svc.redis_url,
                                  DemoOptions(home=settings.home, scale=scale, seed=seed,
                                              embedded_pg=svc.pg_embedded),
                                  console))  # fmt: skip
    if not ok:
        raise typer.Exit(1)
