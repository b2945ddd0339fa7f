"""`dualsync backfill` on donna's real JSON tree: complete, resumable, and safe with live writes.

The legacy tree is written by the example generator exactly as the PHP app lays it out;
Postgres and Redis are the real test servers.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import redis.asyncio as aredis

from dualsync.consumers.pool import open_pool
from dualsync.ops.backfill_direct import DirectSink
from dualsync.ops.cli_backfill import run_backfill
from dualsync.producers import EventSpec, Publisher, stream_keys
from dualsync.producers.backfill import Backfill, BackfillOptions, Checkpoint
from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.settings import Settings
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_until_idle
from examples._stores import write_tree
from examples.donna.generator import generate
from tests.examples._support import count, migrator, query

ROOT = Path(__file__).resolve().parent.parent
DONNA = ROOT / "examples" / "donna"
TABLES = "user_memory, messages, chat_sessions, users, system_logs, dualsync.row_state"


@pytest.fixture(scope="module")
def donna_db(pg_url: str) -> str:
    migrator(DONNA, pg_url).up()
    return pg_url


@pytest.fixture
def db(donna_db: str) -> str:
    query_all(donna_db, f"truncate {TABLES}")
    return donna_db


def query_all(url: str, stmt: str) -> None:

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(stmt.encode())


@pytest.fixture
def ms() -> MappingSet:
    return load_mapping(DONNA / "mapping.yaml")


def tree(tmp_path: Path, ms: MappingSet, n: int, seed: int = 1) -> tuple[Path, dict[str, int]]:
    out = tmp_path / "donna"
    counts = write_tree(ms, generate(n, seed), out)
    return out, counts


def settings(prefix: str) -> Settings:
    return Settings(prefix=prefix, shards=2, source="test")


async def test_direct_backfill_fills_every_table(
    db: str, redis_url: str, redis_prefix: str, ms: MappingSet, tmp_path: Path
) -> None:
    out, counts = tree(tmp_path, ms, 300)
    opts = BackfillOptions(checkpoint=tmp_path / "cp.json", mode="direct", workers=3, chunk=64)
    cp, job = await run_backfill(settings(redis_prefix), ms, opts, database_url=db,
                                 redis_url=redis_url, legacy_root=out)  # fmt: skip
    assert cp.done
    assert job.bad == []
    for entity, n in counts.items():
        assert count(db, ms.entity(entity).table) == n
        assert cp.entities[entity].sent == n
    [(state,)] = query(db, "select count(*) from dualsync.row_state")
    assert state == sum(counts.values())
    [(versions,)] = query(db, "select count(distinct version) from dualsync.row_state")
    assert versions == 1  # one run, one snapshot version (no version_field in donna)


async def test_interrupted_and_resumed_applies_nothing_twice(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    out, counts = tree(tmp_path, ms, 400)
    total = sum(counts.values())
    pool = await open_pool(db)
    stores = open_stores(ms, root=out)
    sink = DirectSink(pool, ms)
    cp_path = tmp_path / "cp.json"
    first = Backfill(ms, dict(stores.stores), sink, BackfillOptions(checkpoint=cp_path, chunk=50))
    sent = 0

    class StopAfter:
        async def wait_applied(self) -> None:
            await sink.wait_applied()

        async def send(self, entity: str, records: Any, versions: Any) -> Any:
            nonlocal sent
            result = await sink.send(entity, records, versions)
            sent += result.sent
            if sent >= 450:
                first.stop()
            return result

    first.sink = StopAfter()
    cp = await first.run()
    assert first.stopped
    assert not cp.done
    applied_first = sink.applied
    assert 0 < applied_first < total
    with pytest.raises(Exception, match="--resume"):
        await Backfill(ms, dict(stores.stores), sink, BackfillOptions(checkpoint=cp_path)).run()
    resumed = Backfill(ms, dict(stores.stores), sink,
                       BackfillOptions(checkpoint=cp_path, chunk=50, resume=True))  # fmt: skip
    cp = await resumed.run()
    assert cp.done
    assert sink.applied == total  # every row applied exactly once over both runs
    for entity, n in counts.items():
        assert count(db, ms.entity(entity).table) == n
    await pool.close()


async def test_stopped_with_chunks_read_ahead_commits_only_what_it_records(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    """`--direct` maps the next chunks while one commits: a stop drops those unapplied, the
    checkpoint counts exactly the committed rows, and the resume applies the rest once."""
    out, counts = tree(tmp_path, ms, 300)
    pool = await open_pool(db)
    stores = open_stores(ms, root=out)
    cp_path = tmp_path / "cp.json"
    commits = 0

    class StopAfterThree(DirectSink):
        async def commit(self, prepared: Any) -> Any:
            nonlocal commits
            result = await super().commit(prepared)
            commits += 1
            if commits == 3:
                first.stop()
            return result

    sink = StopAfterThree(pool, ms)
    opts = BackfillOptions(checkpoint=cp_path, mode="direct", entities=("users",), chunk=20)
    first = Backfill(ms, dict(stores.stores), sink, opts)
    cp = await first.run()
    assert first.stopped
    assert commits == 3
    assert cp.entities["users"].sent == 60 == sink.applied == count(db, "users")
    saved = Checkpoint.load(cp_path)
    assert saved is not None
    assert saved.entities["users"].sent == 60  # on disk too: read-ahead chunks are not in it
    again = BackfillOptions(checkpoint=cp_path, mode="direct", entities=("users",), chunk=20,
                            resume=True)  # fmt: skip
    cp = await Backfill(ms, dict(stores.stores), sink, again).run()
    assert cp.done
    assert sink.applied == counts["users"]
    assert sink.stale == 0  # nothing committed was sent again
    assert count(db, "users") == counts["users"]
    await pool.close()


def backfill_cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`dualsync backfill ARGS` as a process, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "dualsync.ops.cli", "backfill", *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def resume_applies_the_rest(
    args: Sequence[str], env: dict[str, str], before: int, total: int
) -> str:
    """Run `backfill ARGS --resume` after a run that had applied `before` of `total`: it
    succeeds and applies exactly the rest (nothing twice, nothing lost). Its stdout."""
    again = backfill_cli(*args, "--resume", env=env)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    applied = int(stdout.split("applied=")[1].split()[0])
    assert before + applied == total, stdout  # nothing applied twice, nothing lost
    return stdout


@pytest.mark.slow
def test_sigkill_halfway_then_resume(db: str, ms: MappingSet, tmp_path: Path) -> None:
    out, counts = tree(tmp_path, ms, 4000)
    total = sum(counts.values())
    cp_path = tmp_path / "cp.json"
    env = {**os.environ, "DATABASE_URL": db, "DUALSYNC_HOME": str(tmp_path / "home"),
           "DUALSYNC_LOG_FORMAT": "json"}  # fmt: skip
    args = ("--mapping", str(DONNA / "mapping.yaml"), "--legacy-root", str(out), "--direct",
            "--chunk", "200", "--checkpoint", str(cp_path))  # fmt: skip
    proc = backfill_cli(*args, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # every process's progress (the CLI's default, --processes auto, may fork several)
        cp = Checkpoint.load_run(cp_path) if cp_path.exists() else None
        if cp is not None and sum(e.sent for e in cp.entities.values()) >= total // 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # count once the run's server backends are gone: a COMMIT sent just before the kill
    # (by it, or by a process it forked) is then in the count, not committed after it
    others = (
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 20
    while query(db, others) != [(0,)] and time.monotonic() < deadline:
        time.sleep(0.01)
    [(before,)] = query(db, "select count(*) from dualsync.row_state")
    assert 0 < before < total
    resume_applies_the_rest(args, env, before, total)
    for entity, n in counts.items():
        assert count(db, ms.entity(entity).table) == n
    [(state,)] = query(db, "select count(*) from dualsync.row_state")
    assert state == total


async def test_live_writes_during_a_backfill_end_at_their_newest_version(
    db: str, redis_url: str, redis_prefix: str, ms: MappingSet, tmp_path: Path
) -> None:
    """The app keeps writing while a backfill whose clock runs 500 ms ahead of the app's
    snapshots the tree: 5% of users updated (some twice), some deleted; all end newest."""
    out, _ = tree(tmp_path, ms, 600)
    memory = out / "data" / "memory"
    keys = sorted(p.stem for p in memory.glob("*.json"))
    rng = random.Random(5)
    edited = rng.sample(keys, len(keys) // 20)
    deleted = rng.sample([k for k in keys if k not in edited], 12)
    client = aredis.Redis.from_url(redis_url)
    app = Publisher(client, source="donna-php", prefix=redis_prefix, shards=2)

    async def live_app() -> None:
        for round_ in range(2):
            for key in edited:
                path = memory / f"{key}.json"
                doc = orjson.loads(path.read_bytes())
                doc["name"] = f"edited {round_} {key}"
                path.write_bytes(orjson.dumps(doc))  # the legacy write ...
                await app.publish("users", key, "upsert", doc)  # ... then its event
                await asyncio.sleep(0.001)
        for key in deleted:
            (memory / f"{key}.json").unlink()
            await app.publish("users", key, "delete")

    opts = BackfillOptions(
        checkpoint=tmp_path / "cp.json", entities=("users",), chunk=20,
        now_us=lambda: time.time_ns() // 1000 + 500_000,  # the backfill host's clock: +500 ms
    )  # fmt: skip
    backfill = asyncio.create_task(
        run_backfill(
            settings(redis_prefix), ms, opts, database_url=db, redis_url=redis_url, legacy_root=out
        )
    )
    await asyncio.sleep(0.05)
    assert not backfill.done()  # the app writes while the snapshot is being taken
    await live_app()
    await backfill
    await app.aclose()
    worker = StartOptions(
        WorkerConfig(prefix=redis_prefix, shards=2, consumer_name="w", block_ms=100),
        db, redis_url, {}, mappings=ms,
    )  # fmt: skip
    await run_until_idle(worker, 0.5)
    await client.aclose()
    rows = dict(query(db, "select clerk_id, name from users"))
    assert set(rows) == set(keys) - set(deleted)
    for key in edited:
        assert rows[key] == f"edited 1 {key}"
    for key in set(keys) - set(deleted):
        on_disk = orjson.loads((memory / f"{key}.json").read_bytes())
        assert rows[key] == on_disk.get("name"), key


async def test_reference_events_are_reread_through_the_mappings_source(
    db: str, redis_url: str, redis_prefix: str, ms: MappingSet, tmp_path: Path
) -> None:
    """A chat too big for the stream travels as a reference event; the worker re-reads
    it from the app's own file through the json_dir adapter the mapping names."""
    out, _ = tree(tmp_path, ms, 5)
    chats = out / "data" / "chat_sessions"
    path = min(chats.glob("*.json"))
    doc = orjson.loads(path.read_bytes())
    doc["title"] = "re-read from the file"
    doc["messages"] = [{**m, "content": "x" * 2000} for m in doc.get("messages", [])] or [
        {"role": "user", "content": "x" * 2000, "timestamp": doc["created_at"]}
    ]
    path.write_bytes(orjson.dumps(doc))
    client = aredis.Redis.from_url(redis_url)
    async with Publisher(client, source="donna-php", prefix=redis_prefix, shards=2,
                         max_payload_bytes=1024) as pub:  # fmt: skip
        users = [
            await pub.publish("users", p.stem, "upsert", orjson.loads(p.read_bytes()), version=1)
            for p in (out / "data" / "memory").glob("*.json")
        ]
        [ref] = await pub.publish_many([EventSpec("chat_sessions", path.stem, "upsert", doc, 1)])
    assert ref.ref
    assert users
    stores = open_stores(ms, root=out)
    worker = StartOptions(
        WorkerConfig(prefix=redis_prefix, shards=2, consumer_name="w", block_ms=100),
        db, redis_url, {}, legacy=stores, mappings=ms,
    )  # fmt: skip
    ctx = await run_until_idle(worker, 0.3)
    await client.aclose()
    assert ctx.stats.dead_lettered == 0
    assert query(db, "select title from chat_sessions where chat_id = %s", path.stem) == [
        ("re-read from the file",)
    ]


async def test_bad_documents_are_reported_and_the_run_goes_on(
    db: str, redis_url: str, redis_prefix: str, ms: MappingSet, tmp_path: Path
) -> None:
    out, counts = tree(tmp_path, ms, 40)
    memory = out / "data" / "memory"
    victim = min(memory.glob("*.json"))
    doc = orjson.loads(victim.read_bytes())
    doc["created_at"] = "the day after tomorrow"
    victim.write_bytes(orjson.dumps(doc))
    direct = BackfillOptions(checkpoint=tmp_path / "d.json", mode="direct", entities=("users",))
    cp, job = await run_backfill(settings(redis_prefix), ms, direct, database_url=db,
                                 redis_url=redis_url, legacy_root=out)  # fmt: skip
    assert [(b.entity, b.key, b.reason) for b in job.bad] == [("users", victim.stem, "mapping")]
    assert "created_at" in job.bad[0].error
    assert cp.entities["users"].bad == 1
    assert count(db, "users") == counts["users"] - 1
    # through the stream: reported by the backfill, dead-lettered by the worker
    query_all(db, f"truncate {TABLES}")
    stream = BackfillOptions(checkpoint=tmp_path / "s.json", entities=("users",))
    _, job = await run_backfill(settings(redis_prefix), ms, stream, database_url=db,
                                redis_url=redis_url, legacy_root=out)  # fmt: skip
    assert [b.key for b in job.bad] == [victim.stem]
    worker = StartOptions(
        WorkerConfig(prefix=redis_prefix, shards=2, consumer_name="w", block_ms=100),
        db, redis_url, {}, mappings=ms,
    )  # fmt: skip
    ctx = await run_until_idle(worker, 0.3)
    assert ctx.stats.dead_lettered == 1
    assert count(db, "users") == counts["users"] - 1


async def test_back_pressure_keeps_the_streams_under_max_lag(
    db: str, redis_url: str, redis_prefix: str, ms: MappingSet, tmp_path: Path
) -> None:
    """No worker yet: the backfill publishes up to --max-lag and waits; a worker that starts
    lets it finish. The streams never hold much more than the limit."""
    out, counts = tree(tmp_path, ms, 300)
    opts = BackfillOptions(checkpoint=tmp_path / "cp.json", entities=("system_logs",), chunk=25)
    task = asyncio.create_task(
        run_backfill(
            settings(redis_prefix),
            ms,
            opts,
            database_url=db,
            redis_url=redis_url,
            legacy_root=out,
            max_lag=100,
        )
    )
    client = aredis.Redis.from_url(redis_url)
    await asyncio.sleep(1.0)
    assert not task.done()  # waiting for room
    held = sum([await client.xlen(s) for s in stream_keys(redis_prefix, 2)])
    assert 0 < held <= 100
    worker = StartOptions(
        WorkerConfig(prefix=redis_prefix, shards=2, consumer_name="w", block_ms=50),
        db, redis_url, {}, mappings=ms,
    )  # fmt: skip
    drain = asyncio.create_task(run_until_idle(worker, 1.0))
    cp, _ = await task
    await drain
    await client.aclose()
    assert cp.entities["system_logs"].sent == counts["system_logs"]
    assert count(db, "system_logs") == counts["system_logs"]
