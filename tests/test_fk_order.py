"""Children published before their parents apply once the parents arrive; no dead letters."""

from __future__ import annotations

import asyncio

from dualsync.ops import dlq
from tests.fix_shop import Shop, customer, order, spec


async def test_children_before_parents_eventually_apply(shop: Shop) -> None:
    pub = shop.publisher()
    await pub.publish_many([spec("orders", f"o{i}", order(i, f"c{i % 10}"), 1) for i in range(50)])
    worker = asyncio.create_task(shop.drain(idle_s=0.5))
    await asyncio.sleep(1.0)  # the worker has tried, failed on the FK, and is backing off
    assert await shop.rows("select count(*) from shop.orders") == [(0,)]
    await pub.publish_many([spec("customers", f"c{i}", customer(i), 1) for i in range(10)])
    wctx = await asyncio.wait_for(worker, timeout=60)
    assert await shop.rows("select count(*) from shop.orders") == [(50,)]
    assert await shop.rows("select count(*) from shop.order_items") == [
        (sum(i % 3 + 1 for i in range(50)),)
    ]
    assert await dlq.list_letters(shop.redis, shop.prefix) == []
    assert wctx.stats.retried > 0
    await pub.aclose()


async def test_database_data_error_is_bisected_and_dead_lettered(shop: Shop) -> None:
    """A value Postgres rejects (check constraint) poisons only its own event."""
    pub = shop.publisher()
    good = [spec("customers", f"c{i}", customer(i), 1) for i in range(40)]
    bad = spec("customers", "bad", customer(99, email="no-at-sign"), 1)
    await pub.publish_many([*good[:20], bad, *good[20:]])
    wctx = await shop.drain(max_deliveries=2)
    assert await shop.rows("select count(*) from shop.customers") == [(40,)]
    [letter] = await dlq.list_letters(shop.redis, shop.prefix)
    assert letter.key == "bad"
    assert letter.reason == "db_check_violation"
    assert letter.deliveries == 2
    assert "email_has_at" in letter.error
    assert wctx.stats.bisections > 0
    await pub.aclose()
