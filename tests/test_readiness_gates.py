"""Readiness on donna's users: every gate fails in turn when its condition is planted and
all pass when all are met; shadow and mapping gates apply to the flip to postgres only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import redis
import redis.asyncio as aredis

from dualsync.ops.cli import main
from dualsync.ops.cutover.readiness import Limits, Readiness, check_readiness
from dualsync.ops.verify.run import VerifyOptions, run_full
from dualsync.ops.verify.store import mapping_digest
from dualsync.schema.mapping import load_mapping
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import dlq_key, shadow_key, stream_key
from dualsync.settings import get_settings
from tests._verify_support import ROOT, App, donna_app

ENTITY = "users"
MAPPING = ROOT / "examples" / "donna" / "mapping.yaml"


@pytest.fixture
async def donna(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> App:
    app = await donna_app(pg_url, redis_url, redis_prefix, tmp_path, 40, 4)
    app.sql("truncate dualsync.verify_runs, dualsync.cutover_log cascade")
    return app


@pytest.fixture
async def client(donna: App) -> AsyncIterator[aredis.Redis]:
    c = aredis.Redis.from_url(donna.redis_url)
    yield c
    await c.aclose()


def lenient(app: App, **kw: Any) -> Limits:
    """40 records cannot bound drift to 0.1%: the verify gate's bound is relaxed."""
    return Limits(prefix=app.prefix, shards=2, **{"max_drift": 0.2, **kw})


async def read(app: App, client: aredis.Redis, lim: Limits, **kw: Any) -> Readiness:
    async with await psycopg.AsyncConnection.connect(app.db, autocommit=True) as conn:
        return await check_readiness(conn, client, ENTITY, lim, **kw)


def failing(r: Readiness) -> set[str]:
    return {g.name for g in r.gates if not g.passed}


async def sweep(app: App) -> int:
    opts = VerifyOptions(entities=(ENTITY,), grace_s=0.05, generations=1, prefix=app.prefix,
                         shards=2, fingerprint_key=b"k" * 32)  # fmt: skip
    job = run_full(app.ms, app.stores, opts, database_url=app.db, redis_url=app.redis_url,
                   buckets=64, progress=False)  # fmt: skip
    [(run_id, result)] = await job
    assert result.drift == 0
    return run_id


async def all_met(app: App, client: aredis.Redis) -> None:
    for seed in range(3):
        await app.verify(ENTITY, seed=seed)
    await sweep(app)
    await client.hset(shadow_key(app.prefix, ENTITY), mapping={"matched": 1000, "reads": 1200})  # type: ignore[misc]  # redis stubs: Awaitable|int


async def test_each_gate_fails_in_turn_and_all_pass_when_met(
    donna: App, client: aredis.Redis
) -> None:
    lim = lenient(donna)
    to_pg = {"target": Mode.POSTGRES, "mappings": donna.ms}
    r = await read(donna, client, lim, **to_pg)
    assert failing(r) == {"verify", "shadow", "mapping"}
    gate = {g.name: g for g in r.gates}
    assert gate["shadow"].value == "0 of 1000 reads compared"
    assert gate["mapping"].value == "no finished full sweep"
    await all_met(donna, client)
    r = await read(donna, client, lim, **to_pg)
    assert r.ready, r.snapshot()
    assert all(g.applies for g in r.gates)

    # verify: the bound over the limit, then drift in the last runs
    assert failing(await read(donna, client, lenient(donna, max_drift=0.001), **to_pg)) == {
        "verify"
    }
    [(key, name)] = donna.sql("select clerk_id, name from users order by clerk_id limit 1")
    donna.sql("update users set name = 'drifted' where clerk_id = %s", key)
    await donna.verify(ENTITY, seed=9)
    assert failing(await read(donna, client, lim, **to_pg)) == {"verify"}
    donna.sql("update users set name = %s where clerk_id = %s", name, key)
    for seed in range(3):
        await donna.verify(ENTITY, seed=seed)
    assert failing(await read(donna, client, lim, **to_pg)) == set()

    # lag, then an old pending entry
    sync = redis.Redis.from_url(donna.redis_url)
    stream = stream_key(donna.prefix, 0)
    sync.xadd(stream, {"entity": ENTITY, "key": "k"})
    assert failing(await read(donna, client, lenient(donna, max_lag=0), **to_pg)) == {"lag"}
    sync.delete(stream)
    old = int((time.time() - 3600) * 1000)
    sync.xadd(stream, {"entity": ENTITY, "key": "k"}, id=f"{old}-0")
    sync.xgroup_create(stream, "apply", id="0")
    sync.xreadgroup("apply", "w1", {stream: ">"}, count=1)
    r = await read(donna, client, lim, **to_pg)
    assert failing(r) == {"oldest_pending"}
    sync.delete(stream)

    # a dead letter of the entity
    letter = sync.xadd(dlq_key(donna.prefix), {"entity": ENTITY, "reason": "mapping"})
    assert failing(await read(donna, client, lim, **to_pg)) == {"dead_letters"}
    sync.xdel(dlq_key(donna.prefix), letter)  # type: ignore[arg-type]  # sync client: an id
    sync.close()


async def test_shadow_and_mapping_gates_fail_on_their_own_conditions(
    donna: App, client: aredis.Redis, tmp_path: Path
) -> None:
    lim = lenient(donna)
    to_pg = {"target": Mode.POSTGRES, "mappings": donna.ms}
    await all_met(donna, client)
    assert failing(await read(donna, client, lim, **to_pg)) == set()
    sync = redis.Redis.from_url(donna.redis_url)

    # shadow: a mismatch rate over the limit, then too few compared reads
    key_ = shadow_key(donna.prefix, ENTITY)
    sync.hset(key_, mapping={"mismatched": 2, "field:name": 2})
    r = await read(donna, client, lim, **to_pg)
    assert failing(r) == {"shadow"}
    assert "2 of 1002 mismatched (0.200%; most: name)" in {g.value for g in r.gates}
    assert failing(await read(donna, client, lenient(donna, max_shadow_mismatch=0.002),
                              **to_pg)) == set()  # fmt: skip
    sync.delete(key_)
    sync.hset(key_, mapping={"matched": 999})
    assert failing(await read(donna, client, lim, **to_pg)) == {"shadow"}
    sync.hset(key_, mapping={"matched": 1000})
    sync.close()

    # mapping: a change since the last sweep fails; a comment-only edit does not count
    text = MAPPING.read_text()
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("status:         {from: status, type: text, max_length: 50}",
                                    "status:         {from: status, type: text, max_length: 60}",
                                    1))  # fmt: skip
    cosmetic = tmp_path / "cosmetic.yaml"
    cosmetic.write_text("# reworded\n" + text.replace("  users:\n", "  users:   # the people\n"))
    ms_changed, ms_cosmetic = load_mapping(changed), load_mapping(cosmetic)
    assert mapping_digest(ms_changed, ENTITY) != mapping_digest(donna.ms, ENTITY)
    assert mapping_digest(ms_cosmetic, ENTITY) == mapping_digest(donna.ms, ENTITY)
    r = await read(donna, client, lim, target=Mode.POSTGRES, mappings=ms_changed)
    assert failing(r) == {"mapping"}
    assert any(g.value.startswith("changed since sweep run") for g in r.gates)
    assert r.ready is False
    r = await read(donna, client, lim, target=Mode.POSTGRES, mappings=ms_cosmetic)
    assert r.ready
    assert failing(await read(donna, client, lim, target=Mode.POSTGRES)) == {"mapping"}


async def test_the_flip_to_shadow_needs_neither_shadow_reads_nor_a_sweep(
    donna: App, client: aredis.Redis
) -> None:
    for seed in range(3):
        await donna.verify(ENTITY, seed=seed)
    r = await read(donna, client, lenient(donna))  # users reads legacy: the next step is shadow
    assert r.ready
    na = {g.name for g in r.gates if not g.applies}
    assert na == {"shadow", "mapping"}
    assert all(g.passed for g in r.gates if not g.applies)


@pytest.fixture
def env(donna: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (("DATABASE_URL", donna.db), ("REDIS_URL", donna.redis_url),
                        ("DUALSYNC_PREFIX", donna.prefix), ("DUALSYNC_SHARDS", "2")):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DUALSYNC_MAPPING", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def cli(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_cli_gates_by_mode_and_the_shadow_flip_starts_counting_afresh(
    donna: App, env: None, client: aredis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in range(3):
        await donna.verify(ENTITY, seed=seed)
    await client.hset(shadow_key(donna.prefix, ENTITY), mapping={"mismatched": 5})  # type: ignore[misc]  # redis stubs: Awaitable|int
    assert await cli(["readiness", ENTITY, "--max-drift", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "n/a   users" in out
    assert f"{ENTITY}: ready" in out
    # `flip --to shadow` uses the default drift bound, which 40 records cannot meet
    assert await cli(["flip", ENTITY, "--to", "shadow", "--force", "--reason", "demo"]) == 0
    assert "legacy -> shadow" in capsys.readouterr().out
    assert await client.exists(shadow_key(donna.prefix, ENTITY)) == 0  # an earlier phase's
    lenient_pg = ["readiness", ENTITY, "--max-drift", "0.2", "--json"]
    assert await cli([*lenient_pg, "--mapping", str(MAPPING)]) == 3
    doc = orjson.loads(capsys.readouterr().out)
    gates = {g["name"]: g for g in doc["gates"]}
    assert all(g["applies"] for g in gates.values())
    assert not gates["shadow"]["passed"]
    assert gates["shadow"]["value"] == "0 of 1000 reads compared"
    assert gates["mapping"]["value"] == "no finished full sweep"
    await sweep(donna)
    await client.hset(shadow_key(donna.prefix, ENTITY), mapping={"matched": 5000})  # type: ignore[misc]  # redis stubs: Awaitable|int
    assert await cli([*lenient_pg, "--mapping", str(MAPPING), "--min-shadow-reads", "5000"]) == 0
    capsys.readouterr()
    assert await cli([*lenient_pg]) == 3  # no mapping given: the mapping gate cannot pass
    doc = orjson.loads(capsys.readouterr().out)
    assert {g["name"] for g in doc["gates"] if not g["passed"]} == {"mapping"}
    assert await cli(["readiness", ENTITY, "--mapping", str(MAPPING), "--max-shadow-mismatch",
                      "2"]) == 2  # fmt: skip
    assert "--max-shadow-mismatch" in capsys.readouterr().err
