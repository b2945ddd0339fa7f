"""`dualsync status` on real services: after a worker run, with nothing ever run, --watch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import psycopg
import pytest
import redis.asyncio as aredis

from dualsync.ops.cli import main
from dualsync.producers import shard_for, stream_key
from dualsync.producers.backfill import group_lag
from dualsync.schema.codec import build_fields
from dualsync.schema.streams import readpath_key
from dualsync.settings import get_settings
from tests.fix_shop import DATA, Shop, customer, spec


def _env(monkeypatch: pytest.MonkeyPatch, db: str, redis_url: str, prefix: str) -> None:
    for name, value in (("DATABASE_URL", db), ("REDIS_URL", redis_url),
                        ("DUALSYNC_PREFIX", prefix), ("DUALSYNC_SHARDS", "4")):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DUALSYNC_MAPPING", raising=False)
    get_settings.cache_clear()


@pytest.fixture
def shop_env(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    _env(monkeypatch, shop.db, shop.redis_url, shop.prefix)
    yield shop
    get_settings.cache_clear()


async def run(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def _mix(shop: Shop) -> None:
    """8 upserts, 3 stale repeats, 1 poison event, drained by a worker."""
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 5) for i in range(8)])
    await shop.drain()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 4) for i in range(3)])
    await pub.aclose()
    fields = build_fields(event_id="bad-1", source="shop", entity="invoices", key="i1",
                          op="upsert", version=1, occurred_at="2024-01-01T00:00:00Z",
                          payload_json="{}", sign_key=None)  # fmt: skip
    stream = stream_key(shop.prefix, shard_for("invoices", "i1", shop.shards))
    await shop.redis.xadd(stream, fields)  # type: ignore[arg-type]  # redis stub: dict invariance
    await shop.drain()


async def test_status_json_after_a_run(shop_env: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    shop = shop_env
    await _mix(shop)
    await shop.redis.hset(readpath_key(shop.prefix), "customers", "shadow")  # type: ignore[misc]  # redis stubs: Awaitable|int
    async with await psycopg.AsyncConnection.connect(shop.db, autocommit=True) as conn:
        await conn.execute("delete from dualsync.verify_runs")
        await conn.execute(
            "insert into dualsync.verify_runs (entity, mode, status, sampled, drift, "
            "drift_upper_bound) values ('customers', 'sample', 'done', 8, 0, 0.3123)"
        )
    capsys.readouterr()  # the worker's log lines
    assert await run(["status", "--json", "--mapping", str(DATA / "shop.yaml")]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    ents = {e["entity"]: e for e in doc["entities"]}
    assert set(ents) == {"customers", "orders", "invoices"}  # mapped ones, and the poison's
    c = ents["customers"]
    assert (c["applied"], c["stale"], c["dead_lettered"], c["mode"]) == (8, 3, 0, "shadow")
    assert c["verify"]["bound"] == pytest.approx(0.3123)
    assert (c["verify"]["sampled"], c["verify"]["drift"]) == (8, 0)
    assert ents["orders"] == {"entity": "orders", "mode": "legacy", "applied": 0, "deleted": 0,
                              "stale": 0, "dead_lettered": 0, "dlq": 0, "verify": None}  # fmt: skip
    assert (ents["invoices"]["dead_lettered"], ents["invoices"]["dlq"]) == (1, 1)
    shards = doc["shards"]
    assert [s["shard"] for s in shards] == [0, 1, 2, 3]
    assert sum(s["length"] for s in shards) == 8 + 3 + 1
    assert doc["lag"] == 0 == sum(s["lag"] for s in shards)
    assert all(s["pending"] == 0 and s["oldest_pending_s"] is None for s in shards)
    names = {c["name"] for s in shards for c in s["consumers"]}
    assert names == {"w1"}
    assert all(c["idle_s"] >= 0 for s in shards for c in s["consumers"])

    # Unapplied entries show as lag, per shard and in total (as readiness counts it).
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"n{i}", customer(i), 1) for i in range(5)])
    await pub.aclose()
    assert await run(["status", "--json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["lag"] == 5 == sum(s["lag"] for s in doc["shards"])
    single = aredis.Redis.from_url(shop.redis_url)  # group_lag takes a single-server client
    try:
        assert doc["lag"] == await group_lag(single, shop.prefix, 4, "apply")
    finally:
        await single.aclose()


async def test_status_with_nothing_ever_run(
    pg_server_url: str, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _env(monkeypatch, pg_server_url, redis_url, redis_prefix)
    try:
        assert await run(["status", "--json"]) == 0
        doc = orjson.loads(capsys.readouterr().out)
        assert doc["entities"] == []
        assert doc["lag"] == 0
        assert [(s["length"], s["lag"], s["pending"], s["consumers"]) for s in doc["shards"]] == [
            (0, 0, 0, [])
        ] * 4
        assert await run(["status"]) == 0
        out = capsys.readouterr().out
        assert "shards" in out
        assert "(none yet)" in out
    finally:
        get_settings.cache_clear()


async def test_status_watch_stops_after_iterations(
    shop_env: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    await _mix(shop_env)
    capsys.readouterr()  # the worker's log lines
    started = time.monotonic()
    assert await run(["status", "--watch", "--interval", "0.05", "--iterations", "3"]) == 0
    assert time.monotonic() - started < 30
    out = capsys.readouterr().out
    assert "customers" in out
    assert "entities" in out
    assert (
        await run(["status", "--watch", "--json", "--interval", "0.05", "--iterations", "2"]) == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert all(orjson.loads(x)["prefix"] == shop_env.prefix for x in lines)


async def test_status_bad_interval_is_one_line(
    shop_env: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["status", "--interval", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--interval" in err[0]


async def _clients(shop: Shop) -> int:
    return int((await shop.redis.info("clients"))["connected_clients"])


async def test_status_watch_ctrl_c_exits_zero(shop_env: Shop) -> None:
    env = {**os.environ, "DUALSYNC_LOG_FORMAT": "json"}
    before = await _clients(shop_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dualsync.ops.cli", "status", "--watch", "--interval", "0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        # Ctrl-C while Python is still importing is not what this test is about: wait until
        # the command talks to Redis (its watch loop), however slow the machine is.
        deadline = time.monotonic() + 60
        while await _clients(shop_env) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "status --watch never connected to Redis"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert b"shards" in out
