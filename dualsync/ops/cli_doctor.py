"""`dualsync doctor`: report the services in use and exit non-zero when one is unusable."""

from __future__ import annotations

import typer
from rich.console import Console

from dualsync.ops.doctor import Check, Level, check_cpu, check_postgres, check_redis
from dualsync.ops.services import open_services
from dualsync.settings import get_settings

_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "red"}


def doctor() -> None:
    """Check the CPU, PostgreSQL (version, a real pgvector probe) and Redis (>= 6.2, AOF)."""
    settings = get_settings()
    console = Console(soft_wrap=True)
    checks: list[Check] = [check_cpu()]
    with open_services(settings) as svc:
        checks += check_postgres(svc.database_url, embedded=svc.pg_embedded)
        checks += check_redis(svc.redis_url, embedded=svc.redis_embedded)
    for c in checks:
        console.print(f"[{_STYLE[c.level]}]{c.level.value:>4}[/] {c.name:<18} {c.detail}")
    failed = [c for c in checks if c.level is Level.FAIL]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed[/]: dualsync cannot run here.")
        raise typer.Exit(1)
    console.print("[green]dualsync can run here.[/]")
