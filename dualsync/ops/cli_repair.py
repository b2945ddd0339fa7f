"""`dualsync repair`: re-publish the legacy record of each confirmed drift key (dry run first)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from dualsync.consumers.pool import open_pool
from dualsync.errors import ConfigError
from dualsync.ops.cli_options import (
    EntityOption,
    LegacyRootOption,
    MappingOption,
    MongoOption,
    mapping_path,
)
from dualsync.ops.services import open_services
from dualsync.ops.verify.repair import Repair, apply_repairs, latest_runs, plan_repairs
from dualsync.producers.publisher import Publisher
from dualsync.producers.stores import LegacyStores, open_stores
from dualsync.producers.vector_payload import BinaryVectors
from dualsync.redisconn import connect
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.settings import Settings, get_settings

__all__ = ["repair", "run_repair"]


def repair(
    mapping: MappingOption = None,
    entity: EntityOption = None,
    run: Annotated[
        int | None, typer.Option(help="The verify run (default: each entity's latest).")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Publish the repairs (default: only list them).")
    ] = False,
    legacy_root: LegacyRootOption = None,
    mongo: MongoOption = None,
) -> None:
    """For each confirmed drift key of a verify run, re-publish the authoritative legacy record
    (or a delete when it is gone). A dry run unless --apply; applied repairs are audited."""
    settings = get_settings()
    ms = load_mapping(mapping_path(mapping, settings))
    stores = open_stores(ms, root=legacy_root, mongo_url=mongo or settings.mongo_url)
    with open_services(settings) as svc, contextlib.closing(stores):
        job = run_repair(
            settings, ms, stores, svc.database_url, svc.redis_url,
            entities=tuple(entity or ()), run_id=run, apply=apply,
        )  # fmt: skip
        plan, done = asyncio.run(job)
    for r in plan:
        typer.echo(f"{'repaired' if apply else 'would'} {r.action:<6} {r.entity} {r.key} "
                   f"({r.kind}, run {r.run_id})")  # fmt: skip
    if not plan:
        typer.echo("nothing to repair: no confirmed drift in the run(s)")
    elif apply:
        typer.echo(f"{done} repair(s) published and audited in dualsync.repairs; the workers "
                   "apply them: verify again once they have")  # fmt: skip
    else:
        typer.echo(f"{len(plan)} repair(s) planned: run again with --apply to publish them")


async def run_repair(
    settings: Settings,
    ms: MappingSet,
    stores: LegacyStores,
    database_url: str,
    redis_url: str,
    *,
    entities: tuple[str, ...] = (),
    run_id: int | None = None,
    apply: bool = False,
) -> tuple[list[Repair], int]:
    """Plan (and with `apply`, publish) the repairs; (plan, how many were published)."""
    names = [n for n in stores.stores if not entities or n in entities]
    if entities and set(entities) - set(names):
        raise ConfigError(f"no source for {', '.join(sorted(set(entities) - set(names)))}")
    pool = await open_pool(database_url, max_size=1, name="dualsync-repair")
    try:
        async with pool.connection() as conn:
            if run_id is not None:
                cur = await conn.execute("select entity from dualsync.verify_runs where id = %s",
                                         [run_id])  # fmt: skip
                row = await cur.fetchone()
                if row is None:
                    raise ConfigError(f"there is no verify run {run_id}")
                runs = {str(row[0]): run_id}
            else:
                runs = await latest_runs(conn, names)
            plan: list[Repair] = []
            for name, rid in runs.items():
                if name in stores.stores:
                    plan += await plan_repairs(conn, ms.entity(name), stores[name], rid)
            if not apply or not plan:
                return plan, 0
            client = connect(redis_url)
            try:
                source = f"{settings.source}-repair"
                pub_ = Publisher(client, source=source, prefix=settings.prefix,
                                 shards=settings.shards)  # fmt: skip
                async with pub_ as pub:
                    return plan, await apply_repairs(conn, pub, plan, BinaryVectors(ms))
            finally:
                await client.aclose()
    finally:
        await pool.close()
