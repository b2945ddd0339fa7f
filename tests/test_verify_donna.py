"""The verifier on donna's real JSON tree: clean after a backfill, then every planted fault
found with its class and field."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aredis

from dualsync.ops.cli import main
from dualsync.ops.cli_repair import run_repair
from dualsync.producers import Publisher
from dualsync.settings import Settings, get_settings
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_until_idle
from tests._verify_support import ROOT, App, by_key, donna_app


@pytest.fixture
async def donna(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> App:
    return await donna_app(pg_url, redis_url, redis_prefix, tmp_path, 60, 9)


async def test_clean_after_a_backfill(donna: App) -> None:
    for entity in ("users", "chat_sessions", "system_logs"):
        _, r = await donna.verify(entity)
        assert r.drift == 0, r.confirmed()
        assert r.matched == r.sampled
        assert r.sampled >= 60
        assert r.bound < 0.06  # exact bound for 0 of ~60


async def test_planted_faults_are_found_with_class_and_field(donna: App, tmp_path: Path) -> None:
    users = sorted(k for (k,) in donna.sql("select clerk_id from users"))
    missing, edited, shifted, child, gone = users[:5]
    donna.sql("delete from users where clerk_id = %s", missing)  # lost in Postgres
    donna.sql("update users set email = 'x@behind.example' where clerk_id = %s", edited)
    donna.sql("update users set updated_at = updated_at + interval '1 hour' "
              "where clerk_id = %s", shifted)  # fmt: skip
    donna.sql("update user_memory set value = '\"changed\"'::jsonb where ctid = (select m.ctid "
              "from user_memory m join users u on u.id = m.user_id where u.clerk_id = %s "
              "limit 1)", child)  # fmt: skip
    (tmp_path / "tree" / "data" / "memory" / f"{gone}.json").unlink()  # deleted only in legacy
    run_id, r = await donna.verify("users")
    found = by_key(r)
    assert found[missing] == ("missing_in_target", [])
    assert found[edited] == ("mismatch", ["email"])
    assert found[shifted] == ("mismatch", ["updated_at"])
    assert found[child] == ("mismatch", ["user_memory.value"])
    assert found[gone][0] == "extra_in_target"
    assert r.drift == 5
    assert r.bound > r.rate
    stored = donna.sql("select key, kind, fields, confirmed from dualsync.verify_findings "
                       "where run_id = %s", run_id)  # fmt: skip
    assert {k for k, _, _, c in stored if c} == {missing, edited, shifted, child, gone}
    [(drift, mismatched, canon)] = donna.sql(
        "select drift, mismatched, canon_version from dualsync.verify_runs where id = %s", run_id
    )
    assert (drift, mismatched, canon) == (5, 3, 1)


async def test_a_pending_event_is_in_flight_not_drift(donna: App, redis_prefix: str) -> None:
    """The legacy file changed and its event sits unapplied in the stream: in flight."""
    [(key,)] = donna.sql("select clerk_id from users order by clerk_id limit 1")
    memory = next(iter(donna.stores["users"].paths().values())).parent  # type: ignore[attr-defined]  # a JsonDirStore
    path = memory / f"{key}.json"
    doc = orjson.loads(path.read_bytes())
    doc["email"] = "new@app.example"
    path.write_bytes(orjson.dumps(doc))
    client = aredis.Redis.from_url(donna.redis_url)

    async with Publisher(client, source="donna-php", prefix=redis_prefix, shards=2) as pub:
        await pub.publish(
            "users", key, "upsert", doc, version=int(dt.datetime.now(dt.UTC).timestamp() * 1e6)
        )
    await client.aclose()
    _, r = await donna.verify("users")
    assert r.drift == 0
    assert r.in_flight == 1


async def test_repair_then_verify_is_clean(donna: App, tmp_path: Path) -> None:

    users = sorted(k for (k,) in donna.sql("select clerk_id from users"))
    missing, edited, gone = users[:3]
    donna.sql("delete from users where clerk_id = %s", missing)
    donna.sql("update users set name = 'behind your back' where clerk_id = %s", edited)
    (tmp_path / "tree" / "data" / "memory" / f"{gone}.json").unlink()
    run_id, r = await donna.verify("users")
    assert r.drift == 3
    settings = Settings(prefix=donna.prefix, shards=2, source="ops")
    plan, done = await run_repair(settings, donna.ms, donna.stores, donna.db, donna.redis_url,
                                  entities=("users",))  # fmt: skip
    assert done == 0  # a dry run publishes nothing
    assert {(p.key, p.action) for p in plan} == {
        (missing, "upsert"), (edited, "upsert"), (gone, "delete"),
    }  # fmt: skip
    plan, done = await run_repair(settings, donna.ms, donna.stores, donna.db, donna.redis_url,
                                  entities=("users",), apply=True)  # fmt: skip
    assert done == 3
    worker = StartOptions(
        WorkerConfig(prefix=donna.prefix, shards=2, consumer_name="w", block_ms=100),
        donna.db, donna.redis_url, {}, mappings=donna.ms,
    )  # fmt: skip
    await run_until_idle(worker, 0.3)
    _, after = await donna.verify("users")
    assert after.drift == 0, after.confirmed()
    audit = donna.sql("select key, action, run_id, repaired_by from dualsync.repairs")
    assert {(k, a, rid) for k, a, rid, _ in audit} == {
        (missing, "upsert", run_id), (edited, "upsert", run_id), (gone, "delete", run_id),
    }  # fmt: skip


async def test_the_cli_exits_3_on_drift_and_speaks_json(
    donna: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip

    monkeypatch.setenv("DATABASE_URL", donna.db)
    monkeypatch.setenv("REDIS_URL", donna.redis_url)
    monkeypatch.setenv("DUALSYNC_PREFIX", donna.prefix)
    monkeypatch.setenv("DUALSYNC_SHARDS", "2")
    get_settings.cache_clear()
    mapping = str(ROOT / "examples/donna/mapping.yaml")
    argv = ["verify", "--mapping", mapping, "--legacy-root", str(tmp_path / "tree"),
            "--entity", "users", "--grace", "0", "--generations", "0"]  # fmt: skip
    try:
        assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
        [report] = orjson.loads(capsys.readouterr().out)
        assert report["entity"] == "users"
        assert report["drift"] == 0
        assert 0 < report["upper_bound_95"] < 0.1
        [(key,)] = donna.sql("select clerk_id from users order by clerk_id limit 1")
        donna.sql("update users set email = 'cli@behind.example' where clerk_id = %s", key)
        assert await asyncio.to_thread(main, argv) == 3
        out = capsys.readouterr().out
        assert "1 confirmed drift" in out
        assert f"mismatch           {key} fields email" in out
        assert "dualsync repair --entity users --run" in out
        bad = ["verify", "--entity", "nope", "--mapping", mapping]
        assert await asyncio.to_thread(main, bad) == 1
        assert "cannot verify nope" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


async def test_verify_full_through_the_cli(
    donna: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip

    for name, value in (("DATABASE_URL", donna.db), ("REDIS_URL", donna.redis_url),
                        ("DUALSYNC_PREFIX", donna.prefix), ("DUALSYNC_SHARDS", "2"),
                        ("DUALSYNC_FINGERPRINT_KEY", "k" * 32)):  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    mapping = str(ROOT / "examples/donna/mapping.yaml")
    argv = ["verify", "--full", "--mapping", mapping, "--legacy-root", str(tmp_path / "tree"),
            "--grace", "0", "--generations", "0", "--json"]  # fmt: skip
    try:
        [(key,)] = donna.sql("select clerk_id from users order by clerk_id desc limit 1")
        donna.sql("update users set name = 'swept' where clerk_id = %s", key)
        assert await asyncio.to_thread(main, [*argv, "--entity", "users"]) == 3
        [report] = orjson.loads(capsys.readouterr().out)
        assert report["sampled"] == 60  # every record, not a sample
        assert [(f["key"], f["fields"]) for f in report["findings"]] == [(key, ["name"])]
        assert await asyncio.to_thread(main, argv) == 1  # --full wants one --entity
        assert "--full sweeps one entity" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
