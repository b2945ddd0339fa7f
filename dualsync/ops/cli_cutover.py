"""`dualsync readiness`, `flip`, `rollback` and `cutover log`: moving an entity's reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import psycopg
import typer

from dualsync.errors import ConfigError
from dualsync.ops.cli_options import MappingOption, mapping_path
from dualsync.ops.cutover.modes import change_mode, current_mode
from dualsync.ops.cutover.readiness import Limits, Readiness, check_readiness
from dualsync.ops.services import open_services
from dualsync.producers.shadow import aa_key
from dualsync.redisconn import AnyRedis, connect
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.readpath import Mode, check_transition
from dualsync.schema.streams import shadow_key
from dualsync.settings import Settings, get_settings

__all__ = ["NOT_READY_EXIT", "cutover_app", "flip", "readiness", "rollback"]

#: exit status when a gate fails (0: ready; 1: the check itself could not run)
NOT_READY_EXIT = 3
T = TypeVar("T")
cutover_app = typer.Typer(help="The audit of read-path changes.", no_args_is_help=True)

Entity = Annotated[str, typer.Argument(help="The entity, as the mapping names it.")]
Actor = Annotated[str | None, typer.Option(help="Who does it (default: the OS user).")]


def _limits(settings: Settings, **kw: Any) -> Limits:
    return Limits(prefix=settings.prefix, shards=settings.shards, **kw)


def _mappings(given: Path | None, settings: Settings) -> MappingSet | None:
    """The mapping the `mapping` gate digests, found as `dualsync verify` finds it (--mapping,
    else DUALSYNC_MAPPING); None when neither is set (the gate then fails where it applies)."""
    if given is None and settings.mapping is None:
        return None
    return load_mapping(mapping_path(given, settings))


def _with_services(work: Callable[[psycopg.AsyncConnection[Any], AnyRedis], Awaitable[T]]) -> T:
    settings = get_settings()
    with open_services(settings) as svc:

        async def run() -> T:
            client = connect(svc.redis_url)
            try:
                pg = psycopg.AsyncConnection.connect(svc.database_url, autocommit=True)
                async with await pg as conn:
                    return await work(conn, client)
            finally:
                await client.aclose()

        return asyncio.run(run())


def _print(r: Readiness) -> None:
    for g in r.gates:
        mark = "n/a " if not g.applies else "pass" if g.passed else "FAIL"
        typer.echo(f"{mark}  {r.entity:<20} {g.name:<16} {g.value:<34} limit {g.limit}")
    typer.echo(f"{r.entity}: {'ready' if r.ready else 'not ready'}")


def readiness(
    entity: Entity,
    json_: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    max_drift: Annotated[float, typer.Option(min=0.0, max=1.0, help="95% bound of drift.")] = 0.001,
    runs: Annotated[int, typer.Option(min=1, help="Recent verify runs that must be clean.")] = 3,
    max_lag: Annotated[int, typer.Option(min=0, help="Unapplied stream entries.")] = 1000,
    max_pending_age: Annotated[float, typer.Option(min=0.0, help="Seconds.")] = 60.0,
    max_shadow_mismatch: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Shadow reads' mismatch rate.")
    ] = 0.001,
    min_shadow_reads: Annotated[
        int, typer.Option(min=1, help="Shadow reads compared, at least.")
    ] = 1000,
    mapping: MappingOption = None,
) -> None:
    """Check the gates an entity must pass before its reads move on (the next step from its
    mode; shadow and mapping gates apply to the flip to postgres). Exit 0 ready, 3 not."""
    settings = get_settings()
    lim = _limits(settings, runs=runs, max_drift=max_drift, max_lag=max_lag,
                  max_pending_age_s=max_pending_age, max_shadow_mismatch=max_shadow_mismatch,
                  min_shadow_reads=min_shadow_reads)  # fmt: skip
    ms = _mappings(mapping, settings)
    r = _with_services(lambda conn, client: check_readiness(conn, client, entity, lim, mappings=ms))
    if json_:
        typer.echo(orjson.dumps(r.snapshot()).decode())
    else:
        _print(r)
    if not r.ready:
        raise typer.Exit(NOT_READY_EXIT)


def flip(
    entity: Entity,
    to: Annotated[Mode, typer.Option(help="shadow (compare) or postgres (serve).")],
    force: Annotated[
        bool, typer.Option(help="Flip although a gate fails (needs --reason).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
    actor: Actor = None,
    mapping: MappingOption = None,
) -> None:
    """Move an entity's reads one step on (legacy -> shadow -> postgres), if the gates pass.

    A flip to shadow starts the shadow-read counters from zero: the shadow gate of the
    flip to postgres counts only what this shadow phase compared."""
    if to is Mode.LEGACY:
        raise ConfigError(f"to go back to legacy, run: dualsync rollback {entity}")
    if force and not reason:
        raise ConfigError("--force needs --reason: the audit log keeps why a gate was overridden")
    settings = get_settings()
    lim = _limits(settings)
    ms = _mappings(mapping, settings) if to is Mode.POSTGRES else None

    async def work(conn: psycopg.AsyncConnection[Any], client: AnyRedis) -> tuple[Readiness, Any]:
        # an illegal step is refused before any gate is read: its message says what to do
        check_transition(entity, await current_mode(client, lim.prefix, entity), to)
        r = await check_readiness(conn, client, entity, lim, target=to, mappings=ms)
        if not r.ready and not force:
            return r, None
        if to is Mode.SHADOW:
            # a fresh shadow phase: no count of an earlier one stands. Cleared before the
            # flip is announced (the entity is in legacy mode, nothing compares yet), so no
            # count of the new phase is lost.
            await client.delete(shadow_key(lim.prefix, entity), aa_key(lim.prefix, entity))
        t = await change_mode(conn, client, lim.prefix, entity, to, actor=actor, reason=reason,
                              forced=force and not r.ready, readiness=r.snapshot())  # fmt: skip
        return r, t

    r, t = _with_services(work)
    if t is None:
        _print(r)
        typer.echo(f"refused: {entity} is not ready; fix the failing gates, or --force --reason",
                   err=True)  # fmt: skip
        raise typer.Exit(NOT_READY_EXIT)
    typer.echo(f"{entity}: {t.from_mode} -> {t.to_mode} (audit {t.audit_id}"
               f"{', forced' if t.forced else ''})")  # fmt: skip


def rollback(
    entity: Entity,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
    actor: Actor = None,
) -> None:
    """Send an entity's reads back to the legacy store, now; no gate stands in the way."""
    prefix = get_settings().prefix

    async def work(conn: psycopg.AsyncConnection[Any], client: AnyRedis) -> Any:
        return await change_mode(conn, client, prefix, entity, Mode.LEGACY, actor=actor,
                                 reason=reason)  # fmt: skip

    t = _with_services(work)
    typer.echo(f"{entity}: {t.from_mode} -> legacy (audit {t.audit_id})")


@cutover_app.command("log")
def log_(
    entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Every read-path change: who, when, from, to, why, forced, and the readiness then."""

    async def work(conn: psycopg.AsyncConnection[Any], _client: AnyRedis) -> list[Any]:
        cur = await conn.execute(
            "select id, at, entity, from_mode, to_mode, actor, reason, forced, readiness "
            "from dualsync.cutover_log where %s::text is null or entity = %s order by id",
            [entity, entity],
        )
        return list(await cur.fetchall())

    for i, at, e, a, b, who, why, forced, ready in _with_services(work):
        if json_:
            typer.echo(orjson.dumps({"id": i, "at": at.isoformat(), "entity": e, "from": a,
                                     "to": b, "actor": who, "reason": why, "forced": forced,
                                     "readiness": ready}).decode())  # fmt: skip
        else:
            flag = " FORCED" if forced else ""
            typer.echo(f"{i:>5} {at:%Y-%m-%d %H:%M:%S} {e:<20} {a:>8} -> {b:<8} {who}{flag}"
                       f"{': ' + why if why else ''}")  # fmt: skip
