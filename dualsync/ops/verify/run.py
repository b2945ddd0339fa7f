"""One `dualsync verify` invocation: every selected entity, parents first, stored as runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dualsync.consumers.pool import open_pool
from dualsync.errors import ConfigError
from dualsync.logging import get_logger
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.inflight import InFlight, unapplied
from dualsync.ops.verify.sample import SampleResult, verify_sample
from dualsync.ops.verify.store import (
    finish_run,
    mapping_digest,
    mark_failed,
    record_mapping_digest,
    start_run,
)
from dualsync.producers.stores import LegacyStores
from dualsync.redisconn import AnyRedis, connect
from dualsync.schema.mapping import MappingSet, load_enum_labels
from dualsync.schema.mapping.order import dependency_order

__all__ = ["VerifyOptions", "run_full", "run_verify"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """What to verify and how patiently."""

    entities: tuple[str, ...] = ()
    samples: int = 3000
    seed: int = 0
    grace_s: float = 2.0
    generations: int = 3
    prefix: str = "dualsync"
    shards: int = 4
    fingerprint_key: bytes | None = None


def _in_flight(client: AnyRedis | None, opts: VerifyOptions) -> Callable[[], Awaitable[InFlight]]:
    async def look() -> InFlight:
        if client is None:
            return InFlight()
        return await unapplied(client, opts.prefix, opts.shards)

    return look


async def run_verify(
    ms: MappingSet,
    stores: LegacyStores,
    opts: VerifyOptions,
    *,
    database_url: str,
    redis_url: str | None,
) -> list[tuple[int, SampleResult]]:
    """Verify each entity; (run id, result) per entity, in foreign-key order."""
    names = [n for n in dependency_order(ms) if n in stores.stores]
    if opts.entities:
        unknown = sorted(set(opts.entities) - set(names))
        if unknown:
            raise ConfigError(
                f"cannot verify {', '.join(unknown)}: no such entity with a source: in "
                f"{ms.path.name} (with one: {', '.join(names) or 'none'})"
            )
        names = [n for n in names if n in opts.entities]
    key = opts.fingerprint_key or os.urandom(32)
    group = str(uuid.uuid4())
    pool = await open_pool(database_url, max_size=2, name="dualsync-verify")
    client = connect(redis_url) if redis_url else None
    out: list[tuple[int, SampleResult]] = []
    try:
        async with pool.connection() as conn:
            ms.bind_enum_labels(await load_enum_labels(conn, ms))
        for name in names:
            em = ms.entity(name)
            async with pool.connection() as conn:
                run_id = await start_run(conn, name, samples=opts.samples, seed=opts.seed,
                                         group=group, digest=mapping_digest(ms, name))  # fmt: skip
            try:
                result = await verify_sample(
                    pool, em, stores[name], Canonicalizer(em, key), samples=opts.samples,
                    seed=opts.seed, in_flight=_in_flight(client, opts), grace_s=opts.grace_s,
                    generations=opts.generations,
                )  # fmt: skip
            except BaseException:
                async with pool.connection() as conn:
                    await mark_failed(conn, run_id)
                raise
            async with pool.connection() as conn:
                await finish_run(conn, run_id, result, group)
            out.append((run_id, result))
        return out
    finally:
        if client is not None:
            await client.aclose()
        await pool.close()


async def run_full(
    ms: MappingSet,
    stores: LegacyStores,
    opts: VerifyOptions,
    *,
    database_url: str,
    redis_url: str | None,
    buckets: int = 4096,
    resume: bool = True,
    progress: bool = True,
) -> list[tuple[int, SampleResult]]:
    """`verify --full`: a sweep of every record of one entity, resumable."""
    from dualsync.ops.verify.sweep import run_sweep  # noqa: PLC0415 - only for --full

    if len(opts.entities) != 1:
        raise ConfigError("--full sweeps one entity: pass --entity NAME")
    [name] = opts.entities
    if name not in stores.stores:
        raise ConfigError(f"cannot sweep {name}: no such entity with a source: in {ms.path.name}")
    if opts.fingerprint_key is None:
        hint = "set DUALSYNC_FINGERPRINT_KEY so a killed sweep can resume in a new process"
        log.warning("sweep_without_fingerprint_key", hint=hint)
    key = opts.fingerprint_key or os.urandom(32)
    pool = await open_pool(database_url, max_size=3, name="dualsync-sweep")
    client = connect(redis_url) if redis_url else None
    try:
        async with pool.connection() as conn:
            ms.bind_enum_labels(await load_enum_labels(conn, ms))
        em = ms.entity(name)
        digest = mapping_digest(ms, name)
        run_id, result = await run_sweep(
            pool, em, stores[name], Canonicalizer(em, key), group=str(uuid.uuid4()),
            resume=resume, buckets=buckets, in_flight=_in_flight(client, opts),
            grace_s=opts.grace_s, generations=opts.generations, progress=progress,
            mapping_digest=digest,
        )  # fmt: skip
        async with pool.connection() as conn:  # readiness's mapping gate reads it
            await record_mapping_digest(conn, run_id, digest)
        return [(run_id, result)]
    finally:
        if client is not None:
            await client.aclose()
        await pool.close()
