"""Shadow reads on donna's users: the caller's p99, a planted mismatch found by field name
and never by value, A/A over clean data, timeouts, the in-flight bound, batching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aredis
from psycopg_pool import AsyncConnectionPool
from structlog.testing import capture_logs

from dualsync.errors import ConfigError
from dualsync.ops.cutover.modes import change_mode, current_mode
from dualsync.producers.readpath import ReadPath
from dualsync.producers.shadow import ShadowConfig, aa_key
from dualsync.schema.migrate import Migrator, core_set
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import shadow_key
from tests._verify_support import App, donna_app

ENTITY = "users"
READS = 10_000
BLOCK = 250
BUDGET_MS = 5.0
#: the caller's pause between reads (not timed): a server's loop is not busy 100% of the
#: time, and the compares run in what is left; a loop with no idle time at all is slowed
#: by any background work, and there the budget only bounds how much
THINK_S = 0.001
#: for tests of what is counted, not of latency: every sampled read may be compared
UNBOUNDED: dict[str, Any] = {"budget_ms": 1000.0, "loop_share": 1.0}


@pytest.fixture
async def donna(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> App:
    Migrator(pg_url, [core_set()]).up()
    return await donna_app(pg_url, redis_url, redis_prefix, tmp_path, 40, 4)


@pytest.fixture
async def pool(donna: App) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p: AsyncConnectionPool[Any] = AsyncConnectionPool(
        donna.db, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    )
    await p.open(wait=True)
    yield p
    await p.close()


class Legacy:
    """The app's legacy read: the document from donna's JSON files, read per call."""

    def __init__(self, app: App) -> None:
        self.store = app.stores[ENTITY]
        self.calls = 0

    async def __call__(self, key: str) -> dict[str, Any] | None:
        self.calls += 1
        rec = await self.store.get(key)
        return rec.doc if rec is not None else None


async def never(key: str) -> dict[str, Any]:
    raise AssertionError(f"postgres({key}) must not be called in legacy or shadow mode")


async def keys_of(app: App) -> list[str]:
    return sorted(await app.stores[ENTITY].sample_keys(1000, 0))


async def set_mode(app: App, path: ReadPath, target: Mode) -> None:
    client = aredis.Redis.from_url(app.redis_url)
    async with await psycopg.AsyncConnection.connect(app.db, autocommit=True) as conn:
        if await current_mode(client, app.prefix, ENTITY) is not target:
            await change_mode(conn, client, app.prefix, ENTITY, target)
    await client.aclose()
    t0 = time.monotonic()
    while await path.mode(ENTITY) is not target:  # pub/sub brings it within a second
        assert time.monotonic() - t0 < 2.0
        await asyncio.sleep(0.01)


async def counters(app: App, key: str) -> dict[str, int]:
    client = aredis.Redis.from_url(app.redis_url)
    raw = await client.hgetall(key)
    await client.aclose()
    return {k.decode(): int(v) for k, v in raw.items()}


def p99(ms: list[float]) -> float:
    return sorted(ms)[int(len(ms) * 0.99)]


def plant(app: App, keys: list[str]) -> tuple[str, str, str]:
    """Change one user's name in Postgres only: (its key, the value legacy holds, the
    planted one)."""
    [(key, before)] = app.sql(
        "select clerk_id, name from users where length(name) >= 8 and clerk_id = any(%s) "
        "order by clerk_id limit 1", keys,
    )  # fmt: skip
    planted = f"PLANTED-{key[-6:]}-NAME"
    app.sql("update users set name = %s where clerk_id = %s", planted, key)
    return str(key), str(before), planted


async def test_p99_within_budget_and_a_planted_mismatch_is_named_not_shown(
    donna: App, pool: AsyncConnectionPool[Any]
) -> None:
    keys = await keys_of(donna)
    target, before, planted = plant(donna, keys)
    cfg = ShadowConfig(mappings=donna.ms, pool=pool, budget_ms=BUDGET_MS, recheck_after_s=0.05,
                       max_inflight=32, seed=1)  # fmt: skip
    legacy = Legacy(donna)
    path = ReadPath(aredis.Redis.from_url(donna.redis_url), prefix=donna.prefix, ttl_s=60,
                    shadow=cfg)  # fmt: skip
    await path.start()
    assert path.shadow is not None
    timings: dict[Mode, list[float]] = {Mode.LEGACY: [], Mode.SHADOW: []}
    with capture_logs() as logs:
        for block in range(2 * READS // BLOCK):  # alternate, so load drifts hit both alike
            mode = Mode.LEGACY if block % 2 == 0 else Mode.SHADOW
            await set_mode(donna, path, mode)
            for i in range(BLOCK):
                key = keys[(block * BLOCK + i) % len(keys)]
                t = time.perf_counter()
                doc = await path.read(ENTITY, key, legacy, never)
                timings[mode].append((time.perf_counter() - t) * 1000)
                assert doc is not None
                assert doc.get("name") == before or key != target  # the caller gets legacy's
                await asyncio.sleep(THINK_S)  # an app between requests: a loop with idle time
            await path.shadow.drain()  # a shadow block's compares never spill into the next
        await path.aclose()
    await path._redis.aclose()
    added = p99(timings[Mode.SHADOW]) - p99(timings[Mode.LEGACY])
    summary = (
        f"p99 legacy {p99(timings[Mode.LEGACY]):.3f} ms, shadow {p99(timings[Mode.SHADOW]):.3f}"
        f" ms, added {added:.3f} ms (budget {BUDGET_MS} ms); "
        f"{await counters(donna, shadow_key(donna.prefix, ENTITY))}"
    )
    print(summary)  # noqa: T201 - the measurement, shown with -s
    assert len(timings[Mode.SHADOW]) == READS
    assert added <= BUDGET_MS, summary

    got = await counters(donna, shadow_key(donna.prefix, ENTITY))
    compared = got.get("matched", 0) + got.get("mismatched", 0)
    assert got["reads"] == READS
    assert compared >= 200, got  # the measurement had compares in it, not skips only
    assert got.get("errors", 0) == 0
    assert got["reads"] == compared + got.get("skipped", 0) + got.get("in_flight", 0)
    fields = {k: v for k, v in got.items() if k.startswith("field:")}
    assert fields == {"field:name": got["mismatched"]}
    assert got["mismatched"] >= 1
    # what `dualsync verify` says of the same plant: the same field
    _run, result = await donna.verify(ENTITY)
    assert set(result.field_counts()) == {"name"}
    # never a value: not in Redis, not in a log line
    client = aredis.Redis.from_url(donna.redis_url)
    everything = repr(await client.hgetall(shadow_key(donna.prefix, ENTITY)))
    await client.aclose()
    for value in (before, planted):
        assert value not in everything
        assert value not in repr(logs)


async def test_aa_over_clean_data_counts_no_mismatch_and_its_own_hash(
    donna: App, pool: AsyncConnectionPool[Any]
) -> None:
    keys = await keys_of(donna)
    plant(donna, keys)  # Postgres differs: the real comparison sees it, A/A must not
    cfg = ShadowConfig(mappings=donna.ms, pool=pool, aa_rate=1.0, sample_rate=1.0,
                       recheck_after_s=0.02, max_inflight=8, **UNBOUNDED)  # fmt: skip
    legacy = Legacy(donna)
    async with ReadPath(aredis.Redis.from_url(donna.redis_url), prefix=donna.prefix,
                        shadow=cfg) as path:  # fmt: skip
        await set_mode(donna, path, Mode.SHADOW)
        assert path.shadow is not None
        for i in range(400):
            await path.read(ENTITY, keys[i % len(keys)], legacy, never)
            if i % 4 == 3:
                await path.shadow.drain()  # two compares a read, 8 at once: none skipped
    await path._redis.aclose()
    aa = await counters(donna, aa_key(donna.prefix, ENTITY))
    real = await counters(donna, shadow_key(donna.prefix, ENTITY))
    assert aa["reads"] == 400
    # every read compared with a second legacy read (but the first few: until a compare
    # of the entity is measured, one runs alone)
    assert aa["matched"] + aa.get("skipped", 0) == 400
    assert aa["matched"] >= 380, aa
    assert aa.get("mismatched", 0) == 0
    assert not [k for k in aa if k.startswith("field:")]
    assert real["mismatched"] >= 1  # the planted row, counted where it belongs
    assert legacy.calls > 400  # A/A read the legacy side a second time


async def test_a_slow_compare_is_a_timeout_not_a_mismatch(
    donna: App, pool: AsyncConnectionPool[Any]
) -> None:
    keys = await keys_of(donna)
    plant(donna, keys)
    cfg = ShadowConfig(mappings=donna.ms, pool=pool, timeout_s=1e-6, max_inflight=64,
                       **UNBOUNDED)  # fmt: skip
    async with ReadPath(aredis.Redis.from_url(donna.redis_url), prefix=donna.prefix,
                        shadow=cfg) as path:  # fmt: skip
        await set_mode(donna, path, Mode.SHADOW)
        assert path.shadow is not None
        for key in keys:
            await path.read(ENTITY, key, Legacy(donna), never)
            await path.shadow.drain()  # one at a time: none skipped, however loaded the box
    await path._redis.aclose()
    got = await counters(donna, shadow_key(donna.prefix, ENTITY))
    assert got["timeouts"] == got["errors"] == len(keys)
    assert "skipped" not in got
    assert "mismatched" not in got
    assert "matched" not in got


async def test_compares_are_bounded_skips_counted_and_counts_batched(
    donna: App, pool: AsyncConnectionPool[Any]
) -> None:
    keys = await keys_of(donna)
    cfg = ShadowConfig(mappings=donna.ms, pool=pool, max_inflight=2, flush_every=50,
                       **UNBOUNDED)  # fmt: skip
    legacy = Legacy(donna)
    async with ReadPath(aredis.Redis.from_url(donna.redis_url), prefix=donna.prefix,
                        shadow=cfg) as path:  # fmt: skip
        await set_mode(donna, path, Mode.SHADOW)
        assert path.shadow is not None
        peak = 0

        async def one(i: int) -> None:
            nonlocal peak
            await path.read(ENTITY, keys[i % len(keys)], legacy, never)
            peak = max(peak, path.shadow.inflight if path.shadow else 0)

        await asyncio.gather(*(one(i) for i in range(300)))
        await path.shadow.drain()
        flushes = path.shadow.counts.flushes
    await path._redis.aclose()
    got = await counters(donna, shadow_key(donna.prefix, ENTITY))
    assert peak <= 2
    assert got["skipped"] > 0
    assert got["reads"] == 300 == got["skipped"] + got["matched"]
    assert flushes <= 300 // 50 + 3  # pipelines, not a write per read


async def test_legacy_and_postgres_modes_read_as_before_and_bad_documents_are_errors(
    donna: App, pool: AsyncConnectionPool[Any]
) -> None:
    keys = await keys_of(donna)
    cfg = ShadowConfig(mappings=donna.ms, pool=pool, **UNBOUNDED)

    async def from_pg(key: str) -> str:
        return f"pg:{key}"

    async def text(key: str) -> str:
        return f"legacy:{key}"

    async with ReadPath(aredis.Redis.from_url(donna.redis_url), prefix=donna.prefix,
                        shadow=cfg) as path:  # fmt: skip
        assert (await path.read(ENTITY, keys[0], Legacy(donna), never))["name"]  # type: ignore[index]  # a user document
        await set_mode(donna, path, Mode.SHADOW)
        assert await path.read(ENTITY, keys[0], text, from_pg) == f"legacy:{keys[0]}"
        await set_mode(donna, path, Mode.POSTGRES)
        assert await path.read(ENTITY, keys[0], Legacy(donna), from_pg) == f"pg:{keys[0]}"
    await path._redis.aclose()
    got = await counters(donna, shadow_key(donna.prefix, ENTITY))
    assert got == {"reads": 1, "errors": 1}  # legacy and postgres reads are not counted


async def test_bad_config_says_what_to_fix(donna: App) -> None:
    with pytest.raises(ConfigError, match="sample_rate"):
        ShadowConfig(mappings=donna.ms, pool=None, sample_rate=2.0)  # type: ignore[arg-type]  # never used


async def test_a_secret_that_differs_is_named_by_its_column_only(
    donna: App, pool: AsyncConnectionPool[Any]
) -> None:
    path_ = "preferences->'integrations'->'google_calendar'->>'refresh_token'"
    rows = donna.sql(f"select clerk_id, {path_} from users where {path_} is not null limit 1")  # noqa: S608 - a constant path
    assert rows, "donna's generator (seeded) made no user with a calendar refresh token"
    [(key, token)] = rows
    planted = "rt-PLANTED-SECRET-0123456789"
    donna.sql("update users set preferences = jsonb_set(preferences, "
              "'{integrations,google_calendar,refresh_token}', to_jsonb(%s::text)) "
              "where clerk_id = %s", planted, key)  # fmt: skip
    cfg = ShadowConfig(mappings=donna.ms, pool=pool, recheck_after_s=0.01, **UNBOUNDED)
    with capture_logs() as logs:
        async with ReadPath(aredis.Redis.from_url(donna.redis_url), prefix=donna.prefix,
                            shadow=cfg) as path:  # fmt: skip
            await set_mode(donna, path, Mode.SHADOW)
            await path.read(ENTITY, key, Legacy(donna), never)
    await path._redis.aclose()
    got = await counters(donna, shadow_key(donna.prefix, ENTITY))
    assert got == {"reads": 1, "mismatched": 1, "field:preferences": 1}
    client = aredis.Redis.from_url(donna.redis_url)
    everything = repr(await client.hgetall(shadow_key(donna.prefix, ENTITY)))
    await client.aclose()
    for value in (str(token), planted):
        assert value not in everything
        assert value not in repr(logs)
