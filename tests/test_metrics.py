"""The worker's /metrics and /healthz, scraped over HTTP from a running worker on real services.

A known mix (upserts of two entities, stale repeats, one poison event, one entry another
consumer holds) must show up in the endpoint exactly as the worker's own `Stats` count it
and as the Redis counters behind `dualsync status` hold it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import AsyncConnectionPool

from dualsync.ops.embedded import EmbeddedRedis
from dualsync.producers import shard_for, stream_key
from dualsync.schema.codec import build_fields
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import readpath_key, worker_stats_key
from dualsync.worker import lifecycle
from dualsync.worker.context import StartOptions, WorkerContext
from dualsync.worker.metrics import METRIC_NAMES, Sampler
from tests.fix_http import TcpProxy, free_port, get, wait_status
from tests.fix_shop import Shop, customer, order, spec

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _by(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(k)[label]: v for (n, k), v in samples.items() if n == name}


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _options(shop: Shop, port: int, **kw: Any) -> StartOptions:
    base = shop.options(claim_idle_ms=600_000, **kw.pop("config", {}))
    return StartOptions(base.config, kw.pop("db", shop.db), base.redis_url,
                        mappings=base.mappings, metrics_port=port, metrics_interval_s=0.1,
                        **kw)  # fmt: skip


@pytest.fixture
async def worker(shop: Shop) -> AsyncIterator[tuple[WorkerContext, str]]:
    """A running worker (until_idle: a crash does not signal the test process) on a port."""
    port = free_port()
    wctx = await lifecycle.start(_options(shop, port), until_idle=3600)
    try:
        yield wctx, f"http://127.0.0.1:{port}"
    finally:
        await lifecycle.stop(wctx)


async def _poison(shop: Shop) -> None:
    fields = build_fields(event_id="bad-1", source="shop", entity="invoices", key="inv1",
                          op="upsert", version=1, occurred_at="2024-01-01T00:00:00Z",
                          payload_json='{"a": 1}', sign_key=None)  # fmt: skip
    stream = stream_key(shop.prefix, shard_for("invoices", "inv1", shop.shards))
    await shop.redis.xadd(stream, fields)  # type: ignore[arg-type]  # redis stub: dict invariance


async def _held_by_another_consumer(shop: Shop) -> int:
    """An entry read by consumer `other`, never acked: pending on its shard."""
    shard = shard_for("customers", "held", shop.shards)
    stream = stream_key(shop.prefix, shard)
    pub = shop.publisher()
    await pub.publish_many([spec("customers", "held", customer(99), 1)])
    await pub.aclose()
    await shop.redis.xgroup_create(stream, "apply", id="0", mkstream=True)
    got = await shop.redis.xreadgroup("apply", "other", {stream: ">"}, count=10)
    assert len(got[0][1]) == 1
    return shard


async def _verify_runs_and_modes(shop: Shop) -> None:
    await shop.redis.hset(readpath_key(shop.prefix), "customers", "shadow")  # type: ignore[misc]  # redis stubs: Awaitable|int
    async with await psycopg.AsyncConnection.connect(shop.db, autocommit=True) as conn:
        await conn.execute("delete from dualsync.verify_runs")
        await conn.execute(
            "insert into dualsync.verify_runs (entity, mode, started_at, status, "
            "drift_upper_bound) values ('customers', 'sample', now() - interval '1 hour', "
            "'done', 0.5), ('customers', 'sample', now(), 'done', 0.0123), "
            "('orders', 'sample', now(), 'running', 0.9)"
        )


def _check_gauges(m: Samples, held_shard: int, shards: int) -> None:
    pending = _by(m, "dualsync_stream_pending", "shard")
    assert pending == {str(n): (1.0 if n == held_shard else 0.0) for n in range(shards)}
    assert _by(m, "dualsync_stream_lag", "shard") == pending  # the held one, nothing undelivered
    assert _by(m, "dualsync_drift_rate_upper", "entity") == {"customers": 0.0123}
    modes = {(dict(k)["entity"], dict(k)["mode"]): v for (n, k), v in m.items()
             if n == "dualsync_read_path_mode"}  # fmt: skip
    assert modes[("customers", "shadow")] == 1
    assert modes[("customers", "legacy")] == modes[("customers", "postgres")] == 0
    assert modes[("orders", "legacy")] == 1
    assert sum(v for (e, _), v in modes.items() if e == "orders") == 1


async def test_metrics_match_stats_and_redis_counters(shop: Shop) -> None:
    held_shard = await _held_by_another_consumer(shop)
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 5) for i in range(10)])
    await pub.publish_many([spec("orders", f"o{i}", order(i, "c1"), 5) for i in range(3)])
    await _poison(shop)
    await _verify_runs_and_modes(shop)
    port = free_port()
    wctx = await lifecycle.start(_options(shop, port), until_idle=3600)
    try:
        st = wctx.stats
        await _until(lambda: st.applied == 13 and st.dead_lettered == 1, 30, "first round")
        # Stale: the same versions again (the gate), and an older one (c0 at version 1).
        await pub.publish_many([spec("customers", f"c{i}", customer(i), 5) for i in range(4)])
        await pub.publish_many([spec("customers", "c0", customer(0), 1)])
        await pub.publish_many([spec("orders", "o2", None, 6)])
        await pub.aclose()
        await _until(lambda: st.stale == 5 and st.deleted == 1, 30, "stale round")
        await asyncio.sleep(0.3)  # a sampler round after the last batch
        status, body = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        m = _samples(body.decode())
    finally:
        await lifecycle.stop(wctx)

    for name in METRIC_NAMES:
        assert any(n.startswith(name) for n, _ in m), f"{name} not served"
    applied = _by(m, "dualsync_events_applied_total", "entity")
    stale = _by(m, "dualsync_events_stale_total", "entity")
    assert applied == {"customers": 10, "orders": 3}
    assert stale == {"customers": 5}
    assert sum(applied.values()) == st.applied
    assert sum(stale.values()) == st.stale
    assert (
        _by(m, "dualsync_events_deleted_total", "entity") == {"orders": 1} == {"orders": st.deleted}
    )
    reasons = _by(m, "dualsync_dead_letters_total", "reason")
    assert reasons == {"unknown_entity": 1} == {k: float(v) for k, v in st.by_reason.items()}
    assert _by(m, "dualsync_events_dead_lettered_total", "entity") == {"invoices": 1}
    assert m[("dualsync_batches_total", ())] == st.batches
    assert m[("dualsync_apply_batch_seconds_count", ())] == st.batches
    # every event acked after an apply (applied or stale) had its lag observed; the poison not
    assert m[("dualsync_end_to_end_lag_seconds_count", ())] == st.applied + st.deleted + st.stale
    assert m[("dualsync_end_to_end_lag_seconds_sum", ())] > 0
    _check_gauges(m, held_shard, shop.shards)

    raw = await shop.redis.hgetall(worker_stats_key(shop.prefix))  # type: ignore[misc]  # redis stubs: Awaitable|dict
    counters = {k.decode(): int(v) for k, v in raw.items()}
    assert counters == {"applied:customers": 10, "applied:orders": 3, "stale:customers": 5,
                        "dead_lettered:invoices": 1, "deleted:orders": 1}  # fmt: skip
    assert counters == st.by_entity


async def test_health_is_ok_then_503_when_a_consumer_task_is_cancelled(
    worker: tuple[WorkerContext, str],
) -> None:
    wctx, base = worker
    status, body = await get(f"{base}/healthz")
    assert (status, orjson.loads(body)) == (200, {"status": "ok", "reasons": []})
    wctx.tasks[0].cancel()
    status, body = await wait_status(f"{base}/healthz", 503, 5)
    assert status == 503
    doc = orjson.loads(body)
    assert doc["status"] == "unhealthy"
    assert any("consumer task ended" in r for r in doc["reasons"])


async def test_health_503_when_a_consumer_raises(shop: Shop) -> None:
    port = free_port()
    wctx = await lifecycle.start(_options(shop, port), until_idle=3600)
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await get(f"{base}/healthz"))[0] == 200

        async def boom() -> bool:
            raise RuntimeError("planted")

        # a consumer whose turn raises, for the health check to see
        wctx.consumers[0]._turn = boom  # type: ignore[method-assign]  # planted on purpose
        status, body = await wait_status(f"{base}/healthz", 503, 5)
        assert status == 503
        reasons = orjson.loads(body)["reasons"]
        assert any("consumer crashed: RuntimeError" in r for r in reasons), reasons
    finally:
        await lifecycle.stop(wctx)


async def test_health_503_when_postgres_is_gone_past_the_window(shop: Shop) -> None:
    try:
        proxy = TcpProxy(shop.db)
    except FileNotFoundError as exc:
        pytest.skip(f"cannot proxy this PostgreSQL: {exc}")
    url = await proxy.open()
    port = free_port()
    opts = _options(shop, port, db=url, health_window_s=1.0)
    wctx = await lifecycle.start(opts, until_idle=3600)
    base = f"http://127.0.0.1:{port}"
    try:
        assert (await get(f"{base}/healthz"))[0] == 200
        await proxy.close()
        # Within the window the worker rides the outage out: still healthy.
        assert (await get(f"{base}/healthz"))[0] == 200
        status, body = await wait_status(f"{base}/healthz", 503, 10)
        assert status == 503
        reasons = orjson.loads(body)["reasons"]
        assert any(r.startswith("postgres unreachable for") for r in reasons), reasons
        assert not any(r.startswith("redis") for r in reasons)
    finally:
        await lifecycle.stop(wctx)
        await proxy.close()


async def test_sampler_counts_undelivered_entries_as_lag(shop: Shop) -> None:
    stream = stream_key(shop.prefix, 2)
    for i in range(3):
        await shop.redis.xadd(stream, {"n": str(i)})
    await shop.redis.xgroup_create(stream, "apply", id="0")
    await shop.redis.xreadgroup("apply", "other", {stream: ">"}, count=1)
    await shop.redis.xadd(stream_key(shop.prefix, 3), {"n": "x"})  # a stream with no group yet
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(shop.db, open=False, min_size=1)
    await pool.open()
    try:
        sampler = Sampler(shop.redis, pool, prefix=shop.prefix, shards=4, group="apply",
                          entities=["customers"])  # fmt: skip
        s = await sampler.take()
    finally:
        await pool.close()
    assert s.pending == {0: 0, 1: 0, 2: 1, 3: 0}
    assert s.lag == {0: 0, 1: 0, 2: 3, 3: 1}
    assert s.modes == {"customers": Mode.LEGACY}
    assert (s.redis_error, s.pg_error) == ("", "")


async def _until_groups(wctx: WorkerContext, stream: str) -> None:
    deadline = time.monotonic() + 10
    while not await wctx.redis.exists(stream):
        assert time.monotonic() < deadline, "the consumer never created its groups"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # and into its read loop


async def test_health_503_when_redis_is_gone_past_the_window(shop: Shop, tmp_path: Path) -> None:
    own = EmbeddedRedis(appendonly=False, data_dir=tmp_path / "redis")
    url = own.start()
    port = free_port()
    base = shop.options(claim_idle_ms=600_000, redis_outage_s=60)
    opts = StartOptions(base.config, shop.db, url, mappings=base.mappings, metrics_port=port,
                        metrics_interval_s=0.1, health_window_s=1.0)  # fmt: skip
    wctx = await lifecycle.start(opts, until_idle=3600)
    try:
        assert (await get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
        # Redis gone at start-up stops a consumer at once (ensure_groups): wait for its loop.
        last = stream_key(shop.prefix, shop.shards - 1)
        await _until_groups(wctx, last)
        own.stop()
        status, body = await wait_status(f"http://127.0.0.1:{port}/healthz", 503, 10)
        assert status == 503
        reasons = orjson.loads(body)["reasons"]
        assert any(r.startswith("redis unreachable for") for r in reasons), reasons
        assert not any("consumer" in r for r in reasons)  # still riding the outage out
    finally:
        await lifecycle.stop(wctx)
        own.close()
