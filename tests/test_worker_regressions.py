"""Regressions of the worker's failure handling, on real Postgres and real Redis.

- a delete whose key does not fit the key strategy is dead-lettered at decode, and no
  exception raised inside a batch retries that batch forever unbisected;
- outage retries do not use up the delivery budget of data failures;
- a crash between the dead-letter write and the XACK leaves one dead letter, replayable;
- only known outage and contention errors are systemic; backoff never overflows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
import psycopg_pool
import pytest
import redis.asyncio as aredis
from psycopg import errors as pge

from dualsync.consumers import apply as apply_mod
from dualsync.consumers.change import Change
from dualsync.errors import ServiceUnavailableError
from dualsync.ops import dlq
from dualsync.producers import shard_for, stream_key
from dualsync.schema.mapping import MappingError, MappingSet, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.schema.streams import dlq_index_key, dlq_key, dlq_raw_key
from dualsync.worker import lifecycle
from dualsync.worker.context import WorkerContext
from dualsync.worker.deadletter import DeadLetter, Redactor, dead_letter
from dualsync.worker.entry import parse_entries
from dualsync.worker.retry import Failure, backoff, classify, reason_of
from examples.tzurot.generator import generate
from tests.examples._support import EXAMPLES
from tests.fix_shop import Shop, customer, order, spec

#: a drain that takes longer than this is stuck (the batch is retried forever)
STUCK_S = 20.0


async def _drain(shop: Shop, **kw: Any) -> WorkerContext:
    try:
        return await asyncio.wait_for(shop.drain(**kw), timeout=STUCK_S)
    except TimeoutError:
        pytest.fail(f"the worker did not drain within {STUCK_S:.0f} s: a batch is stuck")


async def _pending(shop: Shop) -> int:
    total = 0
    for s in range(shop.shards):
        info = await shop.redis.xpending(stream_key(shop.prefix, s), "apply")
        total += int(info["pending"])
    return total


# -- 1. a delete whose key does not fit the key strategy -------------------------------


@pytest.fixture(scope="module")
def tzurot_db(shop_db: str) -> str:
    """The shop database with the tzurot tables beside it (public schema)."""
    Migrator(shop_db, [core_set(), MigrationSet.from_dir(EXAMPLES / "tzurot/migrations")]).up()
    return shop_db


@pytest.fixture(scope="module")
def tzurot() -> MappingSet:
    return load_mapping(EXAMPLES / "tzurot/mapping.yaml")


async def test_delete_with_a_key_that_breaks_the_strategy_is_dead_lettered(
    shop: Shop, tzurot_db: str, tzurot: MappingSet
) -> None:
    async with await psycopg.AsyncConnection.connect(tzurot_db, autocommit=True) as conn:
        await conn.execute("truncate auth_tokens")
    tokens = [d for d in generate(60, seed=3) if d.entity == "auth_tokens"]
    pub = shop.publisher()
    # The broken delete hides among good events of the same entity (one batch).
    specs = [spec("auth_tokens", d.key, d.doc, 1) for d in tokens[:30]]
    specs.append(spec("auth_tokens", "123456789012345678", None, 2))  # no ":" in the key
    specs += [spec("auth_tokens", d.key, d.doc, 1) for d in tokens[30:]]
    await pub.publish_many(specs)
    await pub.aclose()

    wctx = await _drain(shop, mappings=tzurot)

    assert await shop.rows("select count(*) from auth_tokens") == [(len(tokens),)]
    [letter] = await dlq.list_letters(shop.redis, shop.prefix)
    assert (letter.reason, letter.entity, letter.key) == (
        "mapping",
        "auth_tokens",
        "123456789012345678",
    )
    assert "composite key" in letter.error
    assert letter.deliveries == 1  # at decode, at once: retrying the same key cannot help
    assert await _pending(shop) == 0
    assert wctx.crashed is None


def _failing_stage(
    monkeypatch: pytest.MonkeyPatch, key: str, make: Callable[[], Exception]
) -> list[int]:
    """Make writing raise `make()` for any batch holding `key`; count the attempts.

    A fault injected in Python, between decode and Postgres: the apply path itself
    raising something it never raised before (a bug, a library surprise). Both ways a
    row reaches its table raise: staged, and COPYed straight in as a new key.
    """
    real_stage, real_copy = apply_mod._stage_rows, apply_mod._copy_or_stage
    calls = [0]

    def check(changes: Sequence[Change]) -> None:
        if any(c.key == key for c in changes):
            calls[0] += 1
            raise make()

    def stage(plan: Any, changes: Sequence[Change]) -> Any:
        check(changes)
        return real_stage(plan, changes)

    async def copy_or_stage(cur: Any, ep: Any, changes: list[Change], fresh: Any) -> Any:
        check(changes)
        return await real_copy(cur, ep, changes, fresh)

    monkeypatch.setattr(apply_mod, "_stage_rows", stage)
    monkeypatch.setattr(apply_mod, "_copy_or_stage", copy_or_stage)
    return calls


async def test_unexpected_exception_in_a_batch_is_bisected_then_dead_lettered(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing_stage(monkeypatch, "boom", lambda: RuntimeError("a bug in the apply path"))
    pub = shop.publisher()
    good = [spec("customers", f"c{i}", customer(i), 1) for i in range(40)]
    await pub.publish_many([*good[:20], spec("customers", "boom", customer(99), 1), *good[20:]])
    await pub.aclose()

    wctx = await _drain(shop, max_deliveries=3)

    assert await shop.rows("select count(*) from shop.customers") == [(40,)]
    [letter] = await dlq.list_letters(shop.redis, shop.prefix)
    assert (letter.reason, letter.key) == ("internal_error", "boom")
    assert letter.deliveries == 3
    assert "RuntimeError" in letter.error
    assert wctx.stats.bisections > 0
    assert calls[0] >= 3
    assert await _pending(shop) == 0


async def test_permanent_error_in_a_batch_is_bisected_and_dead_lettered(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_stage(
        monkeypatch,
        "perm",
        lambda: MappingError("customers 'perm': the key does not fit", entity="customers"),
    )
    pub = shop.publisher()
    good = [spec("customers", f"c{i}", customer(i), 1) for i in range(40)]
    await pub.publish_many([*good[:10], spec("customers", "perm", customer(98), 1), *good[10:]])
    await pub.aclose()

    wctx = await _drain(shop)

    assert await shop.rows("select count(*) from shop.customers") == [(40,)]
    [letter] = await dlq.list_letters(shop.redis, shop.prefix)
    assert (letter.reason, letter.key) == ("mapping", "perm")
    assert letter.deliveries == 1  # permanent: once alone, dead-lettered without retrying
    assert wctx.stats.bisections > 0
    assert await _pending(shop) == 0


# -- 2. outage retries do not use up the delivery budget ------------------------------


async def _times_delivered(client: aredis.Redis, stream: str) -> int:
    rows = await client.xpending_range(stream, "apply", "-", "+", 10)
    return int(rows[0]["times_delivered"]) if rows else 0


async def _wait_for(cond: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


class _Outage:
    """The orders table is missing (renamed away): every batch touching it fails with
    UndefinedTable, a systemic error, until `end()`."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.on = False

    async def _sql(self, stmt: str) -> None:
        async with await psycopg.AsyncConnection.connect(self.db, autocommit=True) as conn:
            await conn.execute(stmt)

    async def start(self) -> None:
        await self._sql("alter table shop.orders rename to orders_away")
        self.on = True

    async def end(self) -> None:
        if self.on:
            await self._sql("alter table shop.orders_away rename to orders")
            self.on = False


async def _orphan_through_an_outage(
    shop: Shop, outage: _Outage, retries: int, **config: Any
) -> tuple[WorkerContext, str]:
    """Publish an order whose customer is absent, start a worker, keep the orders table
    missing for `retries` systemic retries, then restore it. Returns the running worker."""
    await outage.start()
    pub = shop.publisher()
    await pub.publish_many([spec("orders", "o1", order(1, "c1"), 1)])
    await pub.aclose()
    stream = stream_key(shop.prefix, shard_for("orders", "o1", shop.shards))
    wctx = await lifecycle.start(shop.options(**config), until_idle=0.5)

    async def outage_long_enough() -> bool:
        return wctx.stats.retried >= retries

    await _wait_for(outage_long_enough, 30, f"{retries} systemic retries")
    assert await dlq.list_letters(shop.redis, shop.prefix) == []
    await outage.end()
    return wctx, stream


@pytest.fixture
async def outage(shop: Shop) -> Any:
    o = _Outage(shop.db)
    yield o
    await o.end()


async def test_outage_retries_do_not_count_as_deliveries(shop: Shop, outage: _Outage) -> None:
    fast = {"retry_base_s": 0.01, "retry_cap_s": 0.05}
    wctx, stream = await _orphan_through_an_outage(shop, outage, 40, **fast)
    try:
        assert wctx.stats.retried >= 40
        # Now the FK violation (the parent is missing) counts: a few of those, no dead letter.
        before = await _times_delivered(shop.redis, stream)

        async def a_few_data_failures() -> bool:
            if await dlq.list_letters(shop.redis, shop.prefix):
                return True
            return await _times_delivered(shop.redis, stream) >= before + 3

        await _wait_for(a_few_data_failures, 30, "data failures")
        letters = await dlq.list_letters(shop.redis, shop.prefix)
        assert letters == [], (
            f"dead-lettered after the outage: {[(d.reason, d.deliveries) for d in letters]}"
        )
        pub = shop.publisher()
        await pub.publish_many([spec("customers", "c1", customer(1), 1)])
        await pub.aclose()
        await asyncio.wait_for(asyncio.gather(*wctx.tasks), timeout=60)
    finally:
        await lifecycle.stop(wctx)
    assert await shop.rows("select id, customer_id from shop.orders") == [("o1", "c1")]
    assert await dlq.list_letters(shop.redis, shop.prefix) == []
    assert await _pending(shop) == 0


async def test_after_an_outage_data_failures_are_counted_from_one(
    shop: Shop, outage: _Outage
) -> None:
    cfg = {"retry_base_s": 0.01, "retry_cap_s": 0.05, "transient_max_deliveries": 4}
    wctx, _ = await _orphan_through_an_outage(shop, outage, 30, **cfg)
    try:
        await asyncio.wait_for(asyncio.gather(*wctx.tasks), timeout=60)
    finally:
        await lifecycle.stop(wctx)
    [letter] = await dlq.list_letters(shop.redis, shop.prefix)
    assert (letter.reason, letter.key) == ("db_foreign_key_violation", "o1")
    # Delivered once, then 3 counted retries: the 30 outage retries are not in the count.
    assert letter.deliveries == 4
    assert await _pending(shop) == 0


# -- a. a crash between the dead-letter write and the XACK ------------------------------


class _CrashError(RuntimeError):
    """The worker process dies here (in this test: its consumer task does)."""


async def test_crash_before_the_ack_of_a_dead_letter_leaves_one_replayable_letter(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = shop.publisher()
    await pub.publish_many([spec("customers", "bad", customer(1, tier="platinum"), 1)])
    await pub.aclose()

    real = aredis.client.Pipeline.execute

    async def execute(self: aredis.client.Pipeline, raise_on_error: bool = True) -> Any:
        if any(str(args[0]).upper() == "XACK" for args, _ in self.command_stack):
            raise _CrashError("killed before the XACK of a dead letter")
        return await real(self, raise_on_error)

    monkeypatch.setattr(aredis.client.Pipeline, "execute", execute)
    with pytest.raises(_CrashError):
        await asyncio.wait_for(shop.drain(consumer_name="victim"), timeout=STUCK_S)
    monkeypatch.undo()
    assert await _pending(shop) == 1  # not acked: it will be redelivered

    # A survivor reclaims the entry from the dead consumer and dead-letters it again.
    await _drain(shop, consumer_name="survivor", claim_idle_ms=200)
    assert await _pending(shop) == 0
    letters = await dlq.list_letters(shop.redis, shop.prefix)
    assert [(d.key, d.reason) for d in letters] == [("bad", "mapping")]
    [shown] = await dlq.list_letters(shop.redis, shop.prefix, ids=[letters[0].id])
    assert shown.entity == "customers"
    # Its unredacted original is there: replay works and the letter leaves the DLQ.
    [(_, target)] = await dlq.replay(shop.redis, shop.prefix, shop.shards, letters, dry_run=False)
    assert await dlq.list_letters(shop.redis, shop.prefix) == []
    replayed = await shop.redis.xrevrange(target, count=1)
    assert replayed[0][1][b"key"] == b"bad"


def test_only_outage_and_contention_errors_are_systemic() -> None:
    systemic = [
        psycopg.OperationalError("connection lost"),
        psycopg_pool.PoolTimeout("couldn't get a connection after 30 s"),
        pge.SerializationFailure("could not serialize access"),
        pge.DeadlockDetected("deadlock detected"),
        pge.LockNotAvailable("lock timeout"),
        pge.QueryCanceled("statement timeout"),
        pge.UndefinedTable("relation does not exist"),
        psycopg.InterfaceError("the connection is closed"),
        ServiceUnavailableError("Postgres is down"),
    ]
    assert [classify(e) for e in systemic] == [Failure.SYSTEMIC] * len(systemic)
    # Raised by one row's data although in the OperationalError family.
    assert classify(pge.ProgramLimitExceeded("index row size exceeds maximum")) == (
        Failure.DATA_PERMANENT
    )
    assert classify(MappingError("bad key")) == Failure.INVALID
    assert reason_of(MappingError("bad key")) == "mapping"
    assert classify(RuntimeError("bug")) == Failure.INTERNAL
    assert classify(KeyError("x")) == Failure.INTERNAL
    assert reason_of(RuntimeError("bug")) == "internal_error"
    assert classify(pge.ForeignKeyViolation("no parent")) == Failure.DATA_TRANSIENT


def test_backoff_of_a_long_outage_does_not_overflow() -> None:
    # An outage retried every 10 s for 3 hours is attempt ~1100: 2**1100 is no float.
    assert 5.0 <= backoff(1100, 0.2, 10.0) <= 10.0
    assert 5.0 <= backoff(10**6, 0.2, 10.0) <= 10.0


async def test_a_dead_letter_written_twice_is_stored_once(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """The same source entry dead-lettered by two deliveries (its XACK was lost): one DLQ
    entry and one original; replay and purge leave no index entry behind."""
    stream = stream_key(redis_prefix, 0)
    await redis_client.xgroup_create(stream, "apply", id="0", mkstream=True)
    fields = {"entity": "customers", "key": "k1", "payload": '{"a": 1}'}
    for _ in range(2):
        entry_id = await redis_client.xadd(stream, fields)  # type: ignore[arg-type]  # stub
    await redis_client.xreadgroup("apply", "w1", {stream: ">"})
    entries, _ = parse_entries(stream, await redis_client.xrange(stream))
    letters = [DeadLetter(e, "mapping", "bad", "customers", "k1", "ev") for e in entries]

    first = await dead_letter(redis_client, redis_prefix, "apply", "w1", letters, Redactor())
    again = await dead_letter(redis_client, redis_prefix, "apply", "w1", letters, Redactor())

    assert first == again
    assert len(set(first)) == 2  # two source entries, two letters
    assert await redis_client.xlen(dlq_key(redis_prefix)) == 2
    assert await redis_client.hlen(dlq_raw_key(redis_prefix)) == 2  # type: ignore[misc]  # redis stubs: Awaitable|int
    assert await redis_client.hlen(dlq_index_key(redis_prefix)) == 2  # type: ignore[misc]  # redis stubs: Awaitable|int
    assert (await redis_client.xpending(stream, "apply"))["pending"] == 0
    views = await dlq.list_letters(redis_client, redis_prefix)
    assert views[-1].entry_id == (entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
    await dlq.replay(redis_client, redis_prefix, 4, views[:1], dry_run=False)
    assert await redis_client.hlen(dlq_index_key(redis_prefix)) == 1  # type: ignore[misc]  # redis stubs: Awaitable|int
    assert await dlq.purge(redis_client, redis_prefix, dt.timedelta(0)) == 1
    assert await redis_client.xlen(dlq_key(redis_prefix)) == 0
    for key in (dlq_raw_key, dlq_index_key):  # nothing left behind
        assert not await redis_client.exists(key(redis_prefix))
