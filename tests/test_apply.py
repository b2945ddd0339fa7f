"""Apply semantics on real Postgres + Redis: version gate, tombstones, children, counts."""

from __future__ import annotations

from decimal import Decimal

from dualsync.consumers.change import Change, collapse
from dualsync.errors import RetryableError
from dualsync.ops import dlq
from dualsync.schema.legacy import InMemoryLegacyStore
from tests.fix_shop import Shop, customer, order, spec


def test_collapse_keeps_highest_version_sorted() -> None:
    cs = [
        Change("b", "1", 3, False, "e1", None),
        Change("a", "2", 1, False, "e2", None),
        Change("b", "1", 5, True, "e3", None),
        Change("b", "1", 4, False, "e4", None),
        Change("a", "2", 1, False, "e5", None),
    ]
    out = collapse(cs)
    assert [(c.entity, c.key, c.version, c.event_id) for c in out] == [
        ("a", "2", 1, "e2"),
        ("b", "1", 5, "e3"),
    ]


async def test_upsert_update_stale_delete_and_no_resurrection(shop: Shop) -> None:
    pub = shop.publisher()
    await pub.publish_many([spec("customers", "c1", customer(1), 10)])
    await shop.drain()
    assert await shop.rows("select email, tier::text from shop.customers") == [
        ("c1@shop.test", "free")
    ]

    await pub.publish_many(
        [
            spec("customers", "c1", customer(1, email="new@shop.test"), 20),
            spec("customers", "c1", customer(1, email="old@shop.test"), 15),  # stale within batch
        ]
    )
    wctx = await shop.drain()
    assert await shop.rows("select email from shop.customers") == [("new@shop.test",)]
    assert wctx.stats.applied == 1
    assert wctx.stats.stale == 1

    await pub.publish_many([spec("customers", "c1", customer(1, email="older@shop.test"), 12)])
    wctx = await shop.drain()
    assert await shop.rows("select email from shop.customers") == [("new@shop.test",)]
    assert wctx.stats.stale == 1

    await pub.publish_many([spec("customers", "c1", None, 30)])
    await shop.drain()
    assert await shop.rows("select count(*) from shop.customers") == [(0,)]
    # A late upsert older than the delete must not bring the row back.
    await pub.publish_many([spec("customers", "c1", customer(1), 25)])
    await shop.drain()
    assert await shop.rows("select count(*) from shop.customers") == [(0,)]
    assert await shop.rows("select version, deleted from dualsync.row_state where key = 'c1'") == [
        (30, True)
    ]
    # A newer upsert after the delete does apply (re-creation is legitimate).
    await pub.publish_many([spec("customers", "c1", customer(1), 31)])
    await shop.drain()
    assert await shop.rows("select count(*) from shop.customers") == [(1,)]
    await pub.aclose()


async def test_children_are_replaced_wholesale(shop: Shop) -> None:
    pub = shop.publisher()
    await pub.publish_many(
        [spec("customers", "c1", customer(1), 1), spec("orders", "o1", order(2, "c1"), 1)]
    )
    await shop.drain()
    items = await shop.rows("select position, sku, qty from shop.order_items order by position")
    assert items == [(0, "sku-2-0", 1), (1, "sku-2-1", 2), (2, "sku-2-2", 3)]
    await pub.publish_many(
        [spec("orders", "o1", order(2, "c1", items=[{"sku": "x", "qty": 9}]), 2)]
    )
    await shop.drain()
    assert await shop.rows("select position, sku, qty from shop.order_items") == [(0, "x", 9)]
    assert await shop.rows("select total from shop.orders") == [(Decimal("2.50"),)]
    await pub.publish_many([spec("orders", "o1", None, 3)])
    await shop.drain()
    assert await shop.rows("select count(*) from shop.order_items") == [(0,)]
    await pub.aclose()


async def test_reference_event_rereads_the_legacy_store(shop: Shop) -> None:
    store = InMemoryLegacyStore()
    big = customer(7, profile={"blob": "z" * 5000})
    store.put("customers", "c7", big)
    pub = shop.publisher(max_payload_bytes=1024)
    [p] = await pub.publish_many([spec("customers", "c7", big, 5)])
    assert p.ref
    await shop.drain(legacy=store)
    rows = await shop.rows("select profile->>'blob' from shop.customers where id = 'c7'")
    assert rows == [("z" * 5000,)]
    await pub.aclose()


class _FlakyStore:
    """A legacy store that fails its first reads: unreachable, then fine."""

    def __init__(self, failures: int, exc: Exception) -> None:
        self.inner = InMemoryLegacyStore()
        self.failures = failures
        self.exc = exc
        self.calls = 0

    async def read(self, entity: str, key: str) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return await self.inner.read(entity, key)


async def test_unreachable_legacy_store_is_retried_not_fatal(shop: Shop) -> None:
    store = _FlakyStore(2, RetryableError("legacy store did not answer"))
    big = customer(8, profile={"blob": "y" * 4000})
    store.inner.put("customers", "c8", big)
    pub = shop.publisher(max_payload_bytes=1024)
    await pub.publish_many([spec("customers", "c8", big, 5)])
    wctx = await shop.drain(legacy=store, idle_s=0.5)
    assert wctx.crashed is None
    assert store.calls == 3
    assert await shop.rows("select length(profile->>'blob') from shop.customers") == [(4000,)]
    assert wctx.stats.dead_lettered == 0
    await pub.aclose()


async def test_unforeseen_decode_failure_is_dead_lettered_after_retries(shop: Shop) -> None:
    store = _FlakyStore(10**6, RuntimeError("adapter bug"))
    big = customer(9, profile={"blob": "x" * 4000})
    pub = shop.publisher(max_payload_bytes=1024)
    await pub.publish_many(
        [spec("customers", "c9", big, 5), spec("customers", "c10", customer(10), 1)]
    )
    wctx = await shop.drain(legacy=store, idle_s=0.5, max_deliveries=3)
    assert wctx.crashed is None
    assert store.calls == 3  # delivered 3 times, then dead-lettered
    assert await shop.rows("select id from shop.customers") == [("c10",)]
    [letter] = await dlq.list_letters(shop.redis, shop.prefix)
    assert (letter.reason, letter.key) == ("internal_error", "c9")
    await pub.aclose()


async def test_children_are_diffed_not_rewritten(shop: Shop) -> None:
    """Replacing children leaves identical rows untouched: same end state, fewer writes."""
    pub = shop.publisher()
    items = [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": 3}]
    await pub.publish_many(
        [
            spec("customers", "c1", customer(1), 1),
            spec("orders", "o1", order(1, "c1", items=items), 1),
        ]
    )
    await shop.drain()
    before = dict(await shop.rows("select position, ctid::text from shop.order_items"))
    changed = [{"sku": "a", "qty": 1}, {"sku": "B", "qty": 2}]  # same, changed, removed
    await pub.publish_many([spec("orders", "o1", order(1, "c1", items=changed), 2)])
    await shop.drain()
    after = await shop.rows(
        "select position, sku, qty, ctid::text from shop.order_items order by 1"
    )
    assert [r[:3] for r in after] == [(0, "a", 1), (1, "B", 2)]
    assert after[0][3] == before[0]  # the unchanged row was not rewritten ...
    assert after[1][3] != before[1]  # ... the changed one was
    grown = [*changed, {"sku": "d", "qty": 4}]
    await pub.publish_many([spec("orders", "o1", order(1, "c1", items=grown), 3)])
    await shop.drain()
    rows = await shop.rows("select position, sku, qty from shop.order_items order by 1")
    assert rows == [(0, "a", 1), (1, "B", 2), (2, "d", 4)]
    await pub.publish_many([spec("orders", "o1", order(1, "c1", items=[]), 4)])
    await shop.drain()
    assert await shop.rows("select count(*) from shop.order_items") == [(0,)]
    await pub.aclose()
