"""`dualsync readiness`, `flip`, `rollback`, `cutover log` on donna, through the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from dualsync.ops.cli import main
from dualsync.schema.streams import dlq_key, stream_key
from dualsync.settings import get_settings
from tests._verify_support import App, donna_app


@pytest.fixture
async def donna(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> App:
    return await donna_app(pg_url, redis_url, redis_prefix, tmp_path, 40, 4)


@pytest.fixture
def env(donna: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (("DATABASE_URL", donna.db), ("REDIS_URL", donna.redis_url),
                        ("DUALSYNC_PREFIX", donna.prefix), ("DUALSYNC_SHARDS", "2")):  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def run(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_each_gate_fails_in_turn_then_all_pass(
    donna: App, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lenient = ["readiness", "users", "--max-drift", "0.2", "--json"]
    assert await run(lenient) == 3  # no verify run yet
    listed = orjson.loads(capsys.readouterr().out)["gates"]
    gates = {g["name"]: g["passed"] for g in listed if g["applies"]}
    assert gates == {"verify": False, "lag": True, "oldest_pending": True, "dead_letters": True}
    # users reads legacy: the flip to shadow needs no shadow reads nor a sweep yet
    assert {g["name"] for g in listed if not g["applies"]} == {"shadow", "mapping"}
    for seed in range(3):
        await donna.verify("users", seed=seed)
    assert await run(lenient) == 0
    assert orjson.loads(capsys.readouterr().out)["ready"]
    sync = redis.Redis.from_url(donna.redis_url)
    letter: str = sync.xadd(dlq_key(donna.prefix), {"entity": "users", "reason": "mapping"})  # type: ignore[assignment]  # sync client: an id
    assert await run(lenient) == 3
    assert "dead_letters" in {g["name"] for g in orjson.loads(capsys.readouterr().out)["gates"]
                              if not g["passed"]}  # fmt: skip
    sync.xdel(dlq_key(donna.prefix), letter)
    sync.xadd(stream_key(donna.prefix, 0), {"entity": "users", "key": "k"})
    assert await run([*lenient, "--max-lag", "0"]) == 3
    failed = {g["name"] for g in orjson.loads(capsys.readouterr().out)["gates"] if not g["passed"]}
    assert failed == {"lag"}
    sync.delete(stream_key(donna.prefix, 0))
    assert await run([*lenient, "--max-lag", "0"]) == 0
    assert await run(["readiness", "users"]) == 3  # 40 samples cannot bound drift to 0.1%
    out = capsys.readouterr().out
    assert "FAIL  users" in out
    assert "not ready" in out
    sync.close()


async def test_flip_refuses_skips_and_failing_gates_and_rollback_always_works(
    donna: App, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["flip", "users", "--to", "postgres"]) == 1
    assert "flip it to shadow first" in capsys.readouterr().err
    assert await run(["flip", "users", "--to", "shadow"]) == 3  # no verify runs: not ready
    assert "refused" in capsys.readouterr().err
    assert await run(["flip", "users", "--to", "shadow", "--force"]) == 1
    assert "--force needs --reason" in capsys.readouterr().err
    assert await run(["flip", "users", "--to", "shadow", "--force", "--reason", "demo day",
                      "--actor", "ana"]) == 0  # fmt: skip
    assert "legacy -> shadow" in capsys.readouterr().out
    assert await run(["rollback", "users", "--reason", "page at 3 a.m.", "--actor", "bo"]) == 0
    assert "shadow -> legacy" in capsys.readouterr().out
    assert await run(["cutover", "log", "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["from"], r["to"], r["actor"], r["forced"]) for r in rows] == [
        ("legacy", "shadow", "ana", True), ("shadow", "legacy", "bo", False),
    ]  # fmt: skip
    assert rows[0]["readiness"]["ready"] is False  # the snapshot at that moment
    assert rows[0]["reason"] == "demo day"
