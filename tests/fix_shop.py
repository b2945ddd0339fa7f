"""The `shop` test application: schema, mapping and a worker harness on real services."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aredis

from dualsync.producers import EventSpec, Publisher
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import Migrator, core_set
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions, WorkerContext
from dualsync.worker.run import run_until_idle

DATA = Path(__file__).with_name("data")
SIGN_KEY = b"shop-signing-key"


@pytest.fixture(scope="module")
def shop_db(pg_url: str) -> str:
    """The module's database with dualsync's tables and the shop schema."""
    Migrator(pg_url, [core_set()]).up()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute((DATA / "shop.sql").read_text())
    return pg_url


@dataclasses.dataclass
class Shop:
    """Everything a worker test needs."""

    db: str
    redis_url: str
    prefix: str
    redis: aredis.Redis
    mappings: MappingSet
    shards: int = 4

    def config(self, **kw: Any) -> WorkerConfig:
        base: dict[str, Any] = {
            "prefix": self.prefix,
            "shards": self.shards,
            "consumer_name": "w1",
            "batch_size": 500,
            "block_ms": 100,
            "claim_idle_ms": 1000,
            "reclaim_every_s": 0.2,
            "retry_base_s": 0.02,
            "retry_cap_s": 0.2,
        }
        base.update(kw)
        return WorkerConfig(**base)

    def options(self, **kw: Any) -> StartOptions:
        keys = kw.pop("signing_keys", {})
        legacy = kw.pop("legacy", None)
        mappings = kw.pop("mappings", self.mappings)
        return StartOptions(
            self.config(**kw), self.db, self.redis_url, keys, legacy=legacy, mappings=mappings
        )

    async def drain(self, idle_s: float = 0.3, **kw: Any) -> WorkerContext:
        return await run_until_idle(self.options(**kw), idle_s)

    def publisher(self, **kw: Any) -> Publisher:
        kw.setdefault("prefix", self.prefix)
        return Publisher(self.redis, source="shop", shards=self.shards, **kw)

    def worker_process(
        self, log: Path, *args: str, redis_url: str | None = None
    ) -> subprocess.Popen[bytes]:
        """A `dualsync worker` process on this shop; its logs go to a file (a full pipe
        would block it). `redis_url` points it at another Redis than the shop's."""
        env = {
            **os.environ,
            "DATABASE_URL": self.db,
            "REDIS_URL": redis_url or self.redis_url,
            "DUALSYNC_PREFIX": self.prefix,
            "DUALSYNC_SHARDS": str(self.shards),
            "DUALSYNC_LOG_FORMAT": "json",
        }
        cmd = [
            sys.executable,
            "-m",
            "dualsync.ops.cli",
            "worker",
            "--mapping",
            str(DATA / "shop.yaml"),
        ]
        with log.open("wb") as out:
            return subprocess.Popen([*cmd, *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.db) as conn:
            cur = await conn.execute(sql)
            return await cur.fetchall()


def customer(i: int, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "email": f"c{i}@shop.test",
        "tier": "pro" if i % 3 == 0 else "free",
        "profile": {"name": f"Customer {i} 🛒", "tags": ["a", i]},
        "apiToken": f"tok-{i}-secret",
        "createdAt": "2024-01-02T03:04:05Z",
    }
    doc.update(over)
    return doc


def order(i: int, customer_key: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "customerId": customer_key,
        "total": f"{i}.50",
        "note": f"order {i}",
        "items": [{"sku": f"sku-{i}-{j}", "qty": j + 1} for j in range(i % 3 + 1)],
    }
    doc.update(over)
    return doc


def spec(entity: str, key: str, doc: dict[str, Any] | None, version: int) -> EventSpec:
    return EventSpec(entity, key, "upsert" if doc is not None else "delete", doc, version)


@pytest.fixture
async def shop(shop_db: str, redis_url: str, redis_prefix: str) -> AsyncIterator[Shop]:
    """A clean shop database and a fresh stream prefix."""
    async with await psycopg.AsyncConnection.connect(shop_db, autocommit=True) as conn:
        await conn.execute(
            "truncate shop.order_items, shop.orders, shop.customers, dualsync.row_state"
        )
    client = aredis.Redis.from_url(redis_url)
    try:
        yield Shop(shop_db, redis_url, redis_prefix, client, load_mapping(DATA / "shop.yaml"))
    finally:
        await client.aclose()
