"""Overlapping batches in one process: waiting for a sibling's parents; the batch read ahead.

Two consumers of one process read consecutive entries: orders can reach Postgres while
their customers are still uncommitted in the other consumer's batch. The failing batch
waits for the batches the others have in hand and is tried whole once more, instead of
being bisected into single events that would each wait for a backoff. And a consumer
reads and decodes its next batch while the one before is in Postgres: that batch is in
hand, and a stop applies it before returning.
"""

from __future__ import annotations

import asyncio

import orjson
import psycopg

from dualsync.consumers.pool import open_pool
from dualsync.schema.codec import build_fields
from dualsync.worker.consumer import Consumer
from dualsync.worker.entry import Entry
from dualsync.worker.inflight import InFlight
from tests.fix_shop import Shop, customer, order, spec

ORDERS = 6
INSERT_PARENT = "insert into shop.customers (id, email) values ('c1', 'c1@shop.test')"


def _order(i: int) -> Entry:
    fields = build_fields(
        event_id=f"o{i}",
        source="shop",
        entity="orders",
        key=f"o{i}",
        op="upsert",
        version=1,
        occurred_at="2024-01-01T00:00:00Z",
        payload_json=orjson.dumps(order(i, "c1")).decode(),
    )
    return Entry("s", f"1-{i}", {k.encode(): v.encode() for k, v in fields.items()})


async def test_children_wait_for_the_sibling_batch_then_apply_whole(shop: Shop) -> None:
    inflight = InFlight()
    pool = await open_pool(shop.db)
    consumer = Consumer(
        shop.config(), name="b", pool=pool, redis=shop.redis, block_redis=shop.redis,
        mappings=shop.mappings, inflight=inflight,
    )  # fmt: skip
    try:
        # the sibling's batch: its parent written, not yet committed
        async with (
            inflight.applying("a"),
            await psycopg.AsyncConnection.connect(shop.db) as sibling,
        ):
            await sibling.execute(INSERT_PARENT)
            task = asyncio.create_task(consumer.process([_order(i) for i in range(ORDERS)]))
            await asyncio.sleep(0.5)
            assert not task.done(), "the batch must wait for the sibling, not give up"
            await sibling.commit()
        await asyncio.wait_for(task, timeout=10)
    finally:
        await pool.close()
    assert consumer.stats.settled == 1
    assert consumer.stats.bisections == 0
    assert consumer.stats.retried == 0
    assert await shop.rows("select count(*) from shop.orders") == [(ORDERS,)]


async def test_without_a_sibling_in_flight_the_batch_is_bisected(shop: Shop) -> None:
    """A parent that is simply missing: nobody to wait for, bisect and retry as before."""
    pool = await open_pool(shop.db)
    consumer = Consumer(
        shop.config(), name="b", pool=pool, redis=shop.redis, block_redis=shop.redis,
        mappings=shop.mappings, inflight=InFlight(),
    )  # fmt: skip
    try:
        await consumer.process([_order(i) for i in range(ORDERS)])
    finally:
        await pool.close()
    assert consumer.stats.settled == 0
    assert consumer.stats.bisections > 0
    assert await shop.rows("select count(*) from shop.orders") == [(0,)]
    assert len(consumer._retries) == ORDERS  # each child waits for its parent alone


async def test_stopping_applies_the_batch_read_ahead(shop: Shop) -> None:
    """The batch decoded while the one before it was in Postgres is in hand: a stop
    applies and acks it before returning, leaving nothing pending."""
    pub = shop.publisher()
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 1) for i in range(200)])
    await pub.aclose()
    pool = await open_pool(shop.db)
    consumer = Consumer(
        shop.config(batch_size=20, linger_ms=0), name="b", pool=pool, redis=shop.redis,
        block_redis=shop.redis, mappings=shop.mappings,
    )  # fmt: skip
    consumer.stats.on_batch = consumer.stop  # stop after the first batch is done
    try:
        await asyncio.wait_for(consumer.run(), timeout=30)
    finally:
        await pool.close()
    assert consumer.stats.batches == 2, "the first batch, then the one read ahead"
    pending = 0
    for stream in consumer.streams:
        pending += int((await shop.redis.xpending(stream, "apply"))["pending"])
    assert pending == 0
    applied = await shop.rows("select count(*) from shop.customers")
    assert applied == [(consumer.stats.read,)]
    assert 20 < consumer.stats.read < 200
