"""The full sweep on donna's real JSON tree and panamia's Mongo collections: clean after a
backfill; a single planted difference among all rows (changed field, changed child row,
missing row, extra row) found with its class and field, reading again only its bucket; a
pending event, or one applied while the sweep ran, not called drift; an interrupted sweep
resumed from its checkpoint without reading again what it had counted; one sweep of an
entity at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import psycopg
import pytest
import redis.asyncio as aredis
from psycopg import sql

from dualsync.consumers.pool import open_pool
from dualsync.errors import ConfigError
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.inflight import InFlight, unapplied
from dualsync.ops.verify.sweep import SweepResult, run_sweep
from dualsync.ops.verify.sweep_store import SweepLock
from dualsync.producers.stores import open_stores
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import load_enum_labels, load_mapping
from examples._stores import write_mongo, write_tree
from examples.donna.generator import generate
from examples.panamia.generator import generate as panamia_docs
from tests._verify_support import ROOT, App, backfill, by_key, migrate

PER_ENTITY = 150


@pytest.fixture
async def donna(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> App:
    migrate("donna", pg_url)
    ms = load_mapping(ROOT / "examples" / "donna" / "mapping.yaml")
    write_tree(ms, generate(PER_ENTITY, 11), tmp_path / "tree")
    app = App(ms, open_stores(ms, root=tmp_path / "tree"), pg_url, redis_url, redis_prefix)
    app.sql("truncate user_memory, messages, chat_sessions, users, system_logs, "
            "dualsync.row_state, dualsync.verify_runs cascade")  # fmt: skip
    await backfill(app, tmp_path)
    return app


async def full(app: App, entity: str, store: Any = None, **kw: Any) -> tuple[int, SweepResult]:
    """`verify --full --entity` as the CLI would run it (short rechecks)."""
    pool = await open_pool(app.db, max_size=3, name="sweep-test")
    client = aredis.Redis.from_url(app.redis_url)

    async def look() -> InFlight:
        return await unapplied(client, app.prefix, 2)

    try:
        async with pool.connection() as conn:
            app.ms.bind_enum_labels(await load_enum_labels(conn, app.ms))
        em = app.ms.entity(entity)
        options: dict[str, Any] = {"grace_s": 0.05, "generations": 1, "progress": False,
                                   "in_flight": look, **kw}  # fmt: skip
        return await run_sweep(pool, em, cast("LegacyStore", store or app.stores[entity]),
                               Canonicalizer(em, b"k" * 32), group="g", **options)  # fmt: skip
    finally:
        await client.aclose()
        await pool.close()


def run_row(app: App, run_id: int) -> dict[str, Any]:
    [row] = app.sql("select mode, status, sampled, matched, missing, extra, mismatched, drift, "
                    "drift_upper_bound, details from dualsync.verify_runs where id = %s",
                    run_id)  # fmt: skip
    names = ("mode", "status", "sampled", "matched", "missing", "extra", "mismatched", "drift",
             "bound", "details")  # fmt: skip
    return dict(zip(names, row, strict=True))


async def test_a_clean_sweep_finds_nothing(donna: App) -> None:
    for entity in ("users", "chat_sessions", "system_logs"):
        run_id, r = await full(donna, entity, buckets=64)
        assert r.drift == 0, r.confirmed()
        assert r.sampled == r.matched == r.legacy_rows == r.target_rows == PER_ENTITY
        assert (r.differing_buckets, r.compared, r.bound) == (0, 0, 0.0)
        row = run_row(donna, run_id)
        assert (row["mode"], row["status"], row["sampled"], row["drift"]) == (
            "sweep", "done", PER_ENTITY, 0,
        )  # fmt: skip
        assert "sweep" not in row["details"]  # the checkpoint went with the finished run
        assert row["details"]["sweep_stats"]["buckets"] == 64


def plant(app: App, case: str) -> tuple[str, str, tuple[str, list[str]]]:
    """One difference among every row: (entity, key, (class, fields))."""
    if case == "changed field":
        [(key,)] = app.sql("select chat_id from chat_sessions order by chat_id offset 9 limit 1")
        app.sql("update chat_sessions set title = 'edited behind your back' where chat_id = %s",
                key)  # fmt: skip
        return "chat_sessions", key, ("mismatch", ["title"])
    if case == "changed child row":
        [(key,)] = app.sql("select distinct s.chat_id from chat_sessions s join messages m "
                           "on m.chat_session_id = s.id order by 1 offset 30 limit 1")  # fmt: skip
        app.sql("update messages set content = 'edited' where ctid = (select m.ctid from "
                "messages m join chat_sessions s on s.id = m.chat_session_id where "
                "s.chat_id = %s order by m.sequence_number desc limit 1)", key)  # fmt: skip
        return "chat_sessions", key, ("mismatch", ["messages.content"])
    if case == "missing row":
        [(key,)] = app.sql("select key from dualsync.row_state where entity = 'system_logs' "
                           "order by key offset 40 limit 1")  # fmt: skip
        [uid] = app.ms.entity("system_logs").translate_key(key)
        app.sql("delete from system_logs where id = %s", uid)
        return "system_logs", key, ("missing_in_target", [])
    key = "user_2zzzzzzzzzzzzzzzzzzzzzzzzzz"  # a row only Postgres has, applied as any other
    [uid] = app.ms.entity("users").translate_key(key)
    app.sql("insert into users (id, clerk_id, created_at, updated_at) values (%s, %s, now(), "
            "now())", uid, key)  # fmt: skip
    app.sql("insert into dualsync.row_state (entity, key, version) values ('users', %s, 1)", key)
    return "users", key, ("extra_in_target", [])


@pytest.mark.parametrize("case", ["changed field", "changed child row", "missing row", "extra row"])
async def test_a_single_difference_among_all_rows(donna: App, case: str) -> None:
    entity, key, expected = plant(donna, case)
    run_id, r = await full(donna, entity, buckets=32)
    assert by_key(r) == {key: expected}
    rows = PER_ENTITY + (case == "extra row")
    assert (r.sampled, r.matched, r.drift, r.differing_buckets) == (rows, rows - 1, 1, 1)
    assert r.compared < PER_ENTITY // 8  # one bucket of 32 read again, not every row
    row = run_row(donna, run_id)
    counts = {"missing_in_target": row["missing"], "extra_in_target": row["extra"],
              "mismatch": row["mismatched"]}  # fmt: skip
    assert (counts[expected[0]], row["drift"], row["sampled"]) == (1, 1, rows)
    assert row["bound"] == pytest.approx(1 / rows)  # every row compared: the rate is exact
    stored = donna.sql("select key, kind, fields from dualsync.verify_findings where run_id = %s "
                       "and confirmed", run_id)  # fmt: skip
    assert stored == [(key, expected[0], expected[1] or None)]


async def test_log_lines_and_a_changed_timestamp(donna: App) -> None:
    donna.sql("update system_logs set created_at = created_at + interval '1 second' where id = "
              "(select id from system_logs order by id offset 3 limit 1)")  # fmt: skip
    _, r = await full(donna, "system_logs", buckets=4096)  # a bucket per key, nearly
    [(found, (kind, fields))] = by_key(r).items()
    assert (kind, fields) == ("mismatch", ["created_at"])
    assert found.startswith("donna-")
    assert r.compared <= 2


async def test_a_pending_event_is_in_flight_not_drift(donna: App, redis_prefix: str) -> None:
    from dualsync.producers import Publisher  # noqa: PLC0415 - only this test publishes

    key = sorted(k for (k,) in donna.sql("select clerk_id from users"))[3]
    path = donna.stores["users"].path_of(key)  # type: ignore[attr-defined]  # a JsonDirStore
    doc = orjson.loads(path.read_bytes())
    doc["email"] = "new@app.example"
    path.write_bytes(orjson.dumps(doc))
    client = aredis.Redis.from_url(donna.redis_url)
    async with Publisher(client, source="donna-php", prefix=redis_prefix, shards=2) as pub:
        await pub.publish(
            "users", key, "upsert", doc, version=int(dt.datetime.now(dt.UTC).timestamp() * 1e6)
        )
    await client.aclose()
    _, r = await full(donna, "users")
    assert (r.drift, r.in_flight, r.matched) == (0, 1, PER_ENTITY - 1)


class Stalls:
    """The store, except that one stream stops answering after `after` chunks (as a sweep
    that is killed there sees it); counts the records and keys it hands out."""

    def __init__(self, inner: Any, stream: str, after: int) -> None:
        self.inner, self.stream, self.after = inner, stream, after
        self.reached = asyncio.Event()
        self.handed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _stall(self, it: AsyncIterator[list[Any]], stream: str) -> AsyncIterator[list[Any]]:
        n = 0
        async for chunk in it:
            if stream == self.stream and n == self.after:
                self.reached.set()
                await asyncio.Event().wait()  # until cancelled
            n += 1
            self.handed += len(chunk)
            yield chunk

    def iter_records(self, after: str | None = None, chunk: int = 1000) -> Any:
        return self._stall(self.inner.iter_records(after, chunk), "records")

    def iter_keys(self, after: str | None = None, chunk: int = 1000) -> Any:
        return self._stall(self.inner.iter_keys(after, chunk), "keys")


class LandsLate:
    """The store, except that one record changes in it as the sweep starts, and its event is
    applied to Postgres only once the digests are done: they differ, nothing drifted."""

    def __init__(self, app: App, key: str) -> None:
        self.app, self.key = app, key
        self.inner: Any = app.stores["users"]  # a JsonDirStore

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def iter_records(self, after: str | None = None, chunk: int = 1000) -> Any:
        path = self.inner.path_of(self.key)
        doc = orjson.loads(path.read_bytes())
        path.write_bytes(orjson.dumps(doc | {"email": "live@app.example"}))
        return self.inner.iter_records(after, chunk)

    def iter_keys(self, after: str | None = None, chunk: int = 1000) -> Any:
        # the event is applied between the digests and the compare
        self.app.sql("update users set email = 'live@app.example' where clerk_id = %s", self.key)
        return self.inner.iter_keys(after, chunk)


async def test_a_record_changed_during_the_sweep_is_not_drift(donna: App) -> None:
    key = sorted(k for (k,) in donna.sql("select clerk_id from users"))[17]
    _, r = await full(donna, "users", store=LandsLate(donna, key), buckets=64)
    assert r.differing_buckets == 1
    assert (r.drift, r.sampled, r.matched) == (0, PER_ENTITY, PER_ENTITY)


async def interrupted(app: App, stalls: Stalls, **kw: Any) -> dict[str, Any]:
    """A sweep cancelled where `stalls` stops; its checkpoint."""
    task = asyncio.create_task(full(app, "users", store=stalls, **kw))
    await asyncio.wait_for(stalls.reached.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [(status, state)] = app.sql("select status, details->'sweep'->'state' from "
                                "dualsync.verify_runs where mode = 'sweep' order by id desc "
                                "limit 1")  # fmt: skip
    assert status == "running"
    return cast("dict[str, Any]", state)


async def test_an_interrupted_sweep_resumes_where_it_was(donna: App) -> None:
    users = sorted(k for (k,) in donna.sql("select clerk_id from users"))
    donna.sql("update users set name = 'behind your back' where clerk_id = %s", users[5])
    kw: dict[str, Any] = {"buckets": 8, "chunk": 10, "checkpoint_every_s": 3600.0}
    _, reference = await full(donna, "users", **kw)
    store = donna.stores["users"]
    # 1: cancelled in the digest phase, after 6 chunks of legacy records
    cp = await interrupted(donna, Stalls(store, "records", 6), **kw)
    assert (cp["phase"], cp["legacy"]["scanned"], cp["legacy"]["done"]) == ("digest", 60, False)
    # 2: resumed, then cancelled in the compare phase after 9 chunks of legacy keys
    second = Stalls(store, "keys", 9)
    cp = await interrupted(donna, second, **kw)
    assert second.handed == (PER_ENTITY - 60) + 90  # the rest of the records, then 90 keys
    assert (cp["phase"], cp["legacy"]["scanned"], cp["target"]["scanned"]) == (
        "compare", PER_ENTITY, PER_ENTITY,
    )  # fmt: skip
    assert cp["compare"]["legacy_after"] is not None
    # 3: resumed to the end: the same result as the uninterrupted sweep, one run row
    run_id, r = await full(donna, "users", **kw)
    assert r.resumes == 2
    assert set(r.scanned) == {"compare.legacy", "compare.target"}  # no digest read again
    assert r.scanned["compare.legacy"] == PER_ENTITY - 90
    assert r.scanned["compare.target"] == reference.scanned["compare.target"]
    assert by_key(r) == by_key(reference) == {users[5]: ("mismatch", ["name"])}
    assert (r.sampled, r.matched, r.differing_buckets) == (
        reference.sampled, reference.matched, reference.differing_buckets,
    )  # fmt: skip
    runs = donna.sql("select id, status from dualsync.verify_runs where mode = 'sweep' "
                     "order by id")  # fmt: skip
    assert [s for _, s in runs] == ["done", "done"]
    assert runs[-1][0] == run_id


async def test_another_plan_starts_over_and_one_sweep_at_a_time(donna: App) -> None:
    store = donna.stores["users"]
    await interrupted(donna, Stalls(store, "records", 2), buckets=8, chunk=10)
    run_id, r = await full(donna, "users", buckets=16)  # another bucket count: a new sweep
    assert (r.resumes, r.drift, r.sampled) == (0, 0, PER_ENTITY)
    statuses = donna.sql("select id, status from dualsync.verify_runs order by id")
    assert [s for _, s in statuses] == ["failed", "done"]
    assert statuses[-1][0] == run_id
    pool = await open_pool(donna.db, max_size=2)
    try:
        async with SweepLock(pool, "users"):
            with pytest.raises(ConfigError, match="already running"):
                await full(donna, "users")
    finally:
        await pool.close()


async def test_a_changed_mapping_starts_over(donna: App) -> None:
    """The tables' shape alone would let a sweep resume across a change of what fills the
    columns (a `from:` path): its old digests would count toward a run then recorded as a
    check of the new mapping. The mapping's digest is part of the plan."""
    store = donna.stores["users"]
    kw: dict[str, Any] = {"buckets": 8, "chunk": 10}
    await interrupted(donna, Stalls(store, "records", 2), mapping_digest="before", **kw)
    _, r = await full(donna, "users", mapping_digest="after", **kw)
    assert (r.resumes, r.drift, r.sampled) == (0, 0, PER_ENTITY)
    await interrupted(donna, Stalls(store, "records", 2), mapping_digest="after", **kw)
    _, r = await full(donna, "users", mapping_digest="after", **kw)
    assert r.resumes == 1  # the same mapping resumes
    statuses = donna.sql("select status from dualsync.verify_runs order by id")
    assert [s for (s,) in statuses] == ["failed", "done", "done"]


@pytest.fixture
def panamia_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own: panamia's tables share names with donna's (`users`)."""
    name = f"t_sweep_panamia_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(pg_server_url)
    info["dbname"] = name
    yield psycopg.conninfo.make_conninfo("", **info)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


async def test_panamia_mongo_rounded_decimal(
    panamia_url: str, redis_url: str, redis_prefix: str, tmp_path: Path, mock_mongo_db: Any
) -> None:
    pg_url = panamia_url
    migrate("panamia", pg_url)
    ms = load_mapping(ROOT / "examples" / "panamia" / "mapping.yaml")
    await write_mongo(ms, panamia_docs(60, 5), mock_mongo_db)
    app = App(ms, open_stores(ms, mongo_db=mock_mongo_db), pg_url, redis_url, redis_prefix)
    app.sql("truncate bookings, listings, sessions, accounts, verification_tokens, users, "
            "dualsync.row_state, dualsync.verify_runs cascade")  # fmt: skip
    await backfill(app, tmp_path)
    [(listing,)] = app.sql("select id from listings order by id offset 17 limit 1")
    app.sql("update listings set price_per_day = round(price_per_day) + 0.5 where id = %s",
            listing)  # fmt: skip
    _, r = await full(app, "listings", buckets=32)
    assert list(by_key(r).values()) == [("mismatch", ["price_per_day"])]
    assert r.sampled == r.legacy_rows == 60
    _, clean = await full(app, "bookings", buckets=32)
    assert clean.drift == 0
    assert clean.sampled == 60
