"""Crash and shutdown of real worker processes: SIGKILL loses nothing, SIGTERM drains cleanly."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest

from dualsync.producers import EventSpec
from tests.fix_shop import Shop, customer

EVENTS = 50_000
KEYS = 10_000


async def _publish_history(shop: Shop) -> dict[str, str]:
    rng = random.Random(7)
    versions = dict.fromkeys(range(KEYS), 0)
    final: dict[str, str] = {}
    pub = shop.publisher()
    specs = []
    for _ in range(EVENTS):
        k = rng.randrange(KEYS)
        versions[k] += 1
        email = f"c{k}v{versions[k]}@x"
        specs.append(
            EventSpec("customers", f"c{k}", payload=customer(k, email=email), version=versions[k])
        )
        final[f"c{k}"] = email
    for i in range(0, EVENTS, 1000):
        await pub.publish_many(specs[i : i + 1000])
    await pub.aclose()
    return final


async def _wait_rows(shop: Shop, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        [(n,)] = await shop.rows("select count(*) from dualsync.row_state")
        if n >= at_least:
            return int(n)
        await asyncio.sleep(0.05)
    return int(n)


async def _pending(shop: Shop) -> int:
    total = 0
    for s in range(shop.shards):
        total += int(
            (await shop.redis.xpending(f"{shop.prefix}:events:{{{s}}}", "apply"))["pending"]
        )
    return total


@pytest.mark.slow
async def test_sigkill_mid_run_loses_nothing(shop: Shop, tmp_path: Path) -> None:
    final = await _publish_history(shop)
    log = tmp_path / "victim.log"
    victim = shop.worker_process(
        log, "--consumer-name", "victim", "--batch-size", "200", "--until-idle", "30"
    )
    try:
        applied = await _wait_rows(shop, 1_000, timeout=60)
        if applied < 1_000:
            pytest.fail(log.read_text()[-3000:])
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
    assert await _pending(shop) > 0, "the killed worker should have left entries pending"
    wctx = await shop.drain(consumer_name="survivor", claim_idle_ms=500, idle_s=1.0)
    rows = dict(await shop.rows("select id, email from shop.customers"))
    assert rows == final
    assert await _pending(shop) == 0
    assert wctx.stats.read > 0


@pytest.mark.slow
async def test_sigterm_finishes_the_batch_in_hand_and_exits_0(shop: Shop, tmp_path: Path) -> None:
    final = await _publish_history(shop)
    log = tmp_path / "graceful.log"
    proc = shop.worker_process(log, "--consumer-name", "graceful", "--batch-size", "500")
    try:
        await _wait_rows(shop, 2_000, timeout=60)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = log.read_text()
    assert code == 0, err[-3000:]
    assert took < 25
    assert "worker_stopped" in err
    for s in range(shop.shards):
        consumers = await shop.redis.xinfo_consumers(f"{shop.prefix}:events:{{{s}}}", "apply")
        assert all(int(c["pending"]) == 0 for c in consumers), "the batch in hand was acked"
    await shop.drain(consumer_name="rest")
    assert dict(await shop.rows("select id, email from shop.customers")) == final
