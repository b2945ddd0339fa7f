"""Scale-out: convergence on a real Redis Cluster, and with 4 worker processes.

The generator and the oracle are `test_convergence`'s. On the cluster, publishers and
workers use `redis.asyncio.RedisCluster` (a `redis+cluster://` URL through
`dualsync.redisconn.connect`); the shard streams' hash tags spread them over the nodes.
The multi-process test starts 4 spawned processes, each a worker (`run_until_idle`) with
its own client, all consumers of one group, as `bench/apply.py --processes` deploys them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import multiprocessing as mp
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualsync.producers import EventSpec, Publisher, shard_for, stream_key
from dualsync.schema.codec import build_fields
from dualsync.schema.streams import (
    dlq_index_field,
    dlq_index_key,
    dlq_key,
    dlq_raw_key,
    readpath_key,
)
from dualsync.settings import get_settings
from dualsync.worker.context import StartOptions
from dualsync.worker.deadletter import DeadLetter, Redactor, dead_letter
from dualsync.worker.deadletter_cluster import PENDING
from dualsync.worker.entry import Entry
from dualsync.worker.run import run_until_idle
from tests.fix_cluster import delete_prefix
from tests.fix_shop import DATA, Shop, customer, spec
from tests.test_convergence import assert_converged, publish_all, random_history, reset_shop

PROCESSES = 4
_SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


@dataclasses.dataclass
class ClusterShop(Shop):
    """The shop with its streams on the Redis Cluster: `redis_url` is the cluster's, and
    `rc` the RedisCluster client that its publishers use."""

    cluster: aredis.RedisCluster | None = None

    @property
    def rc(self) -> aredis.RedisCluster:
        assert self.cluster is not None
        return self.cluster

    def publisher(self, **kw: Any) -> Publisher:
        kw.setdefault("prefix", self.prefix)
        return Publisher(self.rc, source="shop", shards=self.shards, **kw)


@pytest.fixture
async def cluster_shop(
    shop: Shop, redis_cluster_url: str, cluster_client: aredis.RedisCluster, cluster_prefix: str
) -> ClusterShop:
    """The shop, with its streams on the Redis Cluster."""
    return ClusterShop(
        shop.db, redis_cluster_url, cluster_prefix, shop.redis, shop.mappings, shop.shards,
        cluster=cluster_client,
    )  # fmt: skip


async def _nodes_of_streams(client: aredis.RedisCluster, prefix: str, shards: int) -> set[str]:
    await client.initialize()  # the slot map is loaded lazily
    nodes = [client.get_node_from_key(stream_key(prefix, n)) for n in range(shards)]
    return {n.name for n in nodes if n is not None}


@pytest.mark.cluster
@given(seed=st.integers(min_value=0, max_value=2**32), keys=st.integers(50, 200))
@settings(_SETTINGS, max_examples=3)
async def test_random_histories_converge_on_a_redis_cluster(
    cluster_shop: ClusterShop, seed: int, keys: int
) -> None:
    shop = cluster_shop
    client = shop.rc
    rng = random.Random(seed)
    await reset_shop(shop.db)
    prefix = f"{shop.prefix}x{seed}"
    assert len(await _nodes_of_streams(client, prefix, shop.shards)) >= 2  # really spread out
    h = random_history(rng, keys)
    await publish_all(shop.publisher(prefix=prefix), h.deliveries)

    o1 = shop.options(prefix=prefix, consumer_name="wa", batch_size=rng.choice([7, 50, 300]))
    o2 = shop.options(prefix=prefix, consumer_name="wb", batch_size=rng.choice([7, 50, 300]))
    w1, w2 = await asyncio.gather(run_until_idle(o1, 0.3), run_until_idle(o2, 0.3))
    assert isinstance(w1.redis, aredis.RedisCluster)

    await assert_converged(shop, h.final)
    assert w1.stats.read + w2.stats.read >= len(h.deliveries)


def _worker_process(jobs: Any, out: Any) -> None:
    """Child: for each job, drain as one consumer of the group and report the counters."""
    while (opts := jobs.get()) is not None:
        wctx = asyncio.run(run_until_idle(opts, 0.5))
        out.put(wctx.stats.as_dict())


@dataclasses.dataclass
class WorkerPool:
    """`PROCESSES` long-lived worker processes, each with its own job queue, so every job
    round runs on 4 distinct processes without paying 4 interpreter starts per example."""

    procs: list[Any]
    jobs: list[Any]
    out: Any

    async def drain(self, options: list[StartOptions]) -> list[dict[str, int]]:
        for q, opts in zip(self.jobs, options, strict=True):
            q.put(opts)
        get = functools.partial(self.out.get, timeout=120)
        return [await asyncio.to_thread(get) for _ in options]


@pytest.fixture(scope="module")
def worker_pool() -> Iterator[WorkerPool]:
    """Four spawned worker processes for the module; stopped and joined afterwards."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    jobs = [ctx.Queue() for _ in range(PROCESSES)]
    procs = [ctx.Process(target=_worker_process, args=(q, out), daemon=True) for q in jobs]
    for p in procs:
        p.start()
    yield WorkerPool(procs, jobs, out)
    for q in jobs:
        q.put(None)
    for p in procs:
        p.join(30)
    for q in (*jobs, out):
        q.close()
        q.join_thread()
    assert [p.exitcode for p in procs] == [0] * PROCESSES


async def _converge_with_processes(shop: Shop, pool: WorkerPool, seed: int, keys: int) -> None:
    rng = random.Random(seed)
    await reset_shop(shop.db)
    prefix = f"{shop.prefix}p{seed}"
    h = random_history(rng, keys)
    await publish_all(shop.publisher(prefix=prefix), h.deliveries)
    options = [
        StartOptions(
            shop.config(
                prefix=prefix,
                consumer_name=f"p{i}",
                batch_size=rng.choice([7, 25, 100]),
                mapping_paths=(DATA / "shop.yaml",),
            ),
            shop.db,
            shop.redis_url,
        )
        for i in range(PROCESSES)
    ]
    stats = await pool.drain(options)

    assert all(p.is_alive() for p in pool.procs)
    await assert_converged(shop, h.final)
    # every delivery was read by one of them (more than once if reclaimed or retried)
    assert sum(s["read"] for s in stats) >= len(h.deliveries)
    await _delete_keys(shop, prefix)


async def _delete_keys(shop: Shop, prefix: str) -> None:
    if isinstance(shop, ClusterShop):
        await delete_prefix(shop.rc, prefix)
    elif keys := await shop.redis.keys(f"{prefix}:*"):
        await shop.redis.delete(*keys)


@given(seed=st.integers(min_value=0, max_value=2**32), keys=st.integers(50, 200))
@settings(_SETTINGS, max_examples=3)
async def test_random_histories_converge_with_four_worker_processes(
    shop: Shop, worker_pool: WorkerPool, seed: int, keys: int
) -> None:
    await _converge_with_processes(shop, worker_pool, seed, keys)


@pytest.mark.cluster
@given(seed=st.integers(min_value=0, max_value=2**32), keys=st.integers(50, 200))
@settings(_SETTINGS, max_examples=2)
async def test_four_worker_processes_converge_on_a_redis_cluster(
    cluster_shop: ClusterShop, worker_pool: WorkerPool, seed: int, keys: int
) -> None:
    await _converge_with_processes(cluster_shop, worker_pool, seed, keys)


def _poison(shop: ClusterShop, key: str) -> tuple[str, dict[str, str]]:
    fields = build_fields(
        event_id=f"bad-{key}",
        source="shop",
        entity="invoices",  # not in the mapping: dead-lettered on first delivery
        key=key,
        op="upsert",
        version=1,
        occurred_at="2024-01-01T00:00:00Z",
        payload_json=orjson.dumps({"a": 1, "apiToken": "s3cret"}).decode(),
        sign_key=None,
    )
    return stream_key(shop.prefix, shard_for("invoices", key, shop.shards)), fields


@pytest.mark.cluster
async def test_poison_is_dead_lettered_once_on_a_redis_cluster(cluster_shop: ClusterShop) -> None:
    shop = cluster_shop
    pub = shop.publisher()
    await pub.publish_many(
        [EventSpec("customers", f"c{i}", payload=customer(i)) for i in range(50)]
    )
    await pub.aclose()
    poisons = [_poison(shop, f"inv{i}") for i in range(3)]
    for stream, fields in poisons:
        await shop.rc.xadd(stream, fields)  # type: ignore[arg-type]  # redis stub: dict invariance
    await shop.drain()

    assert await shop.rows("select count(*) from shop.customers") == [(50,)]
    letters = await shop.rc.xrange(dlq_key(shop.prefix))
    assert sorted(f[b"key"] for _, f in letters) == [b"inv0", b"inv1", b"inv2"]
    assert {f[b"reason"] for _, f in letters} == {b"unknown_entity"}
    assert all(b"s3cret" not in f[b"fields"] for _, f in letters)  # redacted where shown
    raw = await shop.rc.hgetall(dlq_raw_key(shop.prefix))  # type: ignore[misc]  # redis stubs: Awaitable|dict
    assert {i for i, _ in letters} == set(raw)
    index = await shop.rc.hgetall(dlq_index_key(shop.prefix))  # type: ignore[misc]  # redis stubs: Awaitable|dict
    assert sorted(index.values()) == sorted(i for i, _ in letters)
    for s in {s for s, _ in poisons}:
        assert (await shop.rc.xpending(s, "apply"))["pending"] == 0


async def _letter(shop: ClusterShop, key: str) -> DeadLetter:
    stream, fields = _poison(shop, key)
    entry_id = await shop.rc.xadd(stream, fields)  # type: ignore[arg-type]  # redis stub: dict invariance
    await shop.rc.xgroup_create(stream, "apply", id="0", mkstream=True)
    await shop.rc.xreadgroup("apply", "w1", {stream: ">"})
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    return DeadLetter(Entry(stream, entry_id.decode(), raw), "unknown_entity", "no mapping")


@pytest.mark.cluster
@pytest.mark.parametrize("crash_after", ["marker", "xadd", "raw", "index"])
async def test_cluster_dead_letter_survives_a_crash_between_its_steps(
    cluster_shop: ClusterShop, crash_after: str
) -> None:
    """A crash after any step of the cluster write, then redelivery: one letter, with its
    original, in the index, and the source entry acked."""
    shop = cluster_shop
    d = await _letter(shop, "inv7")
    dlq, raw_key, index = dlq_key(shop.prefix), dlq_raw_key(shop.prefix), dlq_index_key(shop.prefix)
    field = dlq_index_field(d.entry.stream, d.entry.id)
    # what the steps before the crash left behind (an unrelated letter first, so the
    # marker names a real id to search after)
    await shop.rc.xadd(dlq, {"stream": "other", "entry_id": "1-1"})
    last = (await shop.rc.xrevrange(dlq, count=1))[0][0].decode()
    await shop.rc.hset(index, field, PENDING + last)  # type: ignore[misc]  # redis stubs: Awaitable|int
    if crash_after != "marker":
        written = await shop.rc.xadd(dlq, {"stream": d.entry.stream, "entry_id": d.entry.id})
        if crash_after in {"raw", "index"}:
            await shop.rc.hset(raw_key, written, "{}")  # type: ignore[misc]  # redis stubs: Awaitable|int
        if crash_after == "index":
            await shop.rc.hset(index, field, written)  # type: ignore[misc]  # redis stubs: Awaitable|int

    ids = await dead_letter(shop.rc, shop.prefix, "apply", "w1", [d], Redactor(shop.mappings))

    mine = [i for i, f in await shop.rc.xrange(dlq) if f.get(b"entry_id") == d.entry.id.encode()]
    assert [i.decode() for i in mine] == ids  # exactly one letter for the entry
    if crash_after == "marker":
        assert b"unknown_entity" in (await shop.rc.xrange(dlq, ids[0], ids[0]))[0][1][b"reason"]
    assert await shop.rc.hget(raw_key, ids[0]) is not None  # type: ignore[misc]  # redis stubs: Awaitable|Any
    assert (await shop.rc.hget(index, field)).decode() == ids[0]  # type: ignore[misc]  # redis stubs: Awaitable|Any
    assert (await shop.rc.xpending(d.entry.stream, "apply"))["pending"] == 0

    again = await dead_letter(shop.rc, shop.prefix, "apply", "w1", [d], Redactor(shop.mappings))
    assert again == ids  # a second redelivery finds it in the index: still one letter
    assert await shop.rc.xlen(dlq) == 2  # the unrelated one and ours


@pytest.mark.cluster
async def test_dualsync_worker_runs_on_a_redis_cluster(
    cluster_shop: ClusterShop, tmp_path: Path
) -> None:
    """`dualsync worker` with a cluster URL: hosted without arq (it has no cluster client),
    it applies what is published and stops cleanly on SIGTERM."""
    shop = cluster_shop
    log = tmp_path / "worker.log"
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 1) for i in range(120)])
    proc = shop.worker_process(log, redis_url=shop.redis_url)
    try:
        for _ in range(300):
            [(n,)] = await shop.rows("select count(*) from shop.customers")
            if n == 120 or proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert n == 120, log.read_text()[-3000:]
        await pub.publish_many([spec("customers", "late", customer(999), 1)])
        for _ in range(100):
            if await shop.rows("select count(*) from shop.customers where id = 'late'") == [(1,)]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(log.read_text()[-3000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        await pub.aclose()
    out = log.read_text()
    assert code == 0, out[-3000:]
    assert "worker_hosted_without_arq" in out
    assert "worker_stopped" in out
    assert "Traceback" not in out


@pytest.mark.cluster
async def test_operator_commands_work_on_a_redis_cluster(
    cluster_shop: ClusterShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """status, dlq list/replay, readiness, flip, rollback and the cutover log on the cluster."""
    shop = cluster_shop
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 1) for i in range(30)])
    await pub.aclose()
    bad = build_fields(
        event_id="bad-1", source="shop", entity="invoices", key="i1", op="upsert", version=1,
        occurred_at="2024-01-01T00:00:00Z", payload_json='{"a": 1}',
    )  # fmt: skip
    await shop.rc.xadd(stream_key(shop.prefix, shard_for("invoices", "i1", shop.shards)), bad)  # type: ignore[arg-type]  # redis stub: dict invariance
    await run_until_idle(shop.options(), 0.3)
    for name, value in {"DATABASE_URL": shop.db, "REDIS_URL": shop.redis_url,
                        "DUALSYNC_PREFIX": shop.prefix, "DUALSYNC_SHARDS": str(shop.shards),
                        "DUALSYNC_MAPPING": str(DATA / "shop.yaml")}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    def run(*args: str, code: int = 0) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dualsync.ops.cli", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == code, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    try:
        status = orjson.loads(run("status", "--json"))
        assert status, "status printed nothing"
        assert "invoices" in run("dlq", "list")
        run("flip", "customers", "--to", "shadow", "--reason", "cluster test", "--force")
        mode = await shop.rc.hget(readpath_key(shop.prefix), "customers")  # type: ignore[misc]  # redis stubs: Awaitable|Any
        assert mode == b"shadow"
        run("rollback", "customers", "--reason", "cluster test")
        assert "cluster test" in run("cutover", "log")
        gates = run("readiness", "customers", code=3)  # no verify run yet: not ready
        assert "lag" in gates
        assert "customers: not ready" in gates
    finally:
        get_settings.cache_clear()
