"""`dualsync scan --once` through the CLI, and `--watch` picking up edits as they happen."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aredis

from dualsync.ops.cli import main
from dualsync.ops.cli_scan import make_scanners
from dualsync.producers import Publisher
from dualsync.producers.scanner import PassResult
from dualsync.producers.scanner.watch import watch
from dualsync.schema.mapping import load_mapping
from dualsync.settings import get_settings
from examples._stores import write_tree
from examples.donna.generator import generate

DONNA = Path(__file__).resolve().parent.parent / "examples" / "donna" / "mapping.yaml"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_prefix: str) -> Iterator[None]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DUALSYNC_PREFIX", redis_prefix)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_scan_once_then_nothing_new(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(load_mapping(DONNA), generate(50, 3), tmp_path)
    argv = ["scan", "--mapping", str(DONNA), "--legacy-root", str(tmp_path), "--once"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "users" in first
    assert "50 upserts" in first
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "0 upserts" in again
    assert "50 upserts" not in again


def test_scan_of_a_mongo_app_says_why_not(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    panamia = DONNA.parent.parent / "panamia" / "mapping.yaml"
    assert main(["scan", "--mapping", str(panamia)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "nothing to scan" in err[0]


async def test_watch_publishes_edits_as_they_happen(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    ms = load_mapping(DONNA)
    write_tree(ms, generate(20, 4), tmp_path)
    client = aredis.Redis.from_url(redis_url)
    pub = Publisher(client, source="scan", prefix=redis_prefix, shards=2)
    scanners = make_scanners(ms, client, pub, redis_prefix, entities=("users",),
                             legacy_root=tmp_path)  # fmt: skip
    seen: list[PassResult] = []
    stop = asyncio.Event()
    task = asyncio.create_task(watch(scanners, stop, rescan_every_s=3600, on_pass=seen.append))
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    assert seen[0].upserts == 20
    memory = tmp_path / "data" / "memory"
    victim = min(memory.glob("*.json"))
    doc = orjson.loads(victim.read_bytes())
    doc["name"] = "edited while watched"
    victim.write_bytes(orjson.dumps(doc))
    for _ in range(100):
        if any(r.upserts == 1 for r in seen[1:]):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert sum(r.upserts for r in seen[1:]) == 1
    await pub.aclose()
    await client.aclose()
