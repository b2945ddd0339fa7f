"""Read path across languages: 18 Python, 1 Node and 1 PHP client follow flips within a second.

The Node client (`dualsync/producers/node/test/readpath_follow.mjs`: a `ReadPath` with a 30 s
TTL, so only its pub/sub subscriber can make it follow) and the PHP client
(`dualsync/producers/php/tests/readpath_follow.php`: TTL 0.2 s, no pub/sub in PHP) run as
processes that poll `mode()` every 10 ms and print a JSON line, with the epoch ms, each time
the mode they observe changes; a flip counts when every client saw it within 1 s of
`change_mode` returning (wall clock). Then Redis is stopped: every client keeps `postgres`
(none falls back to `legacy`), none crashes, and each logs the outage once. Needs Node and
PHP with phpredis; skips, saying which is missing, without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

import psycopg
import pytest
import redis.asyncio as aredis
from structlog.testing import capture_logs

from dualsync.ops.cutover.modes import change_mode
from dualsync.ops.embedded import EmbeddedRedis, free_port
from dualsync.producers.readpath import ReadPath
from dualsync.schema.migrate import Migrator, core_set
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import readpath_channel, readpath_key
from tests import _polyglot as poly
from tests import test_node_publisher as node_pub
from tests import test_php_publisher as php_pub

node_package = node_pub.node_package  # npm ci once; skips without node/npm
php_runtime = php_pub.php_runtime  # skips without php or phpredis

NODE_SCRIPT = poly.NODE_DIR / "test" / "readpath_follow.mjs"
PHP_SCRIPT = poly.PHP_DIR / "tests" / "readpath_follow.php"
ENTITY = "users"
PY_TTL_S = 2.0  # > 1 s: following a flip within a second takes the pub/sub listener
OUTAGE_LOG = "read path cannot reach Redis"
UNKNOWN_LOG = "read path found an unknown mode"


@dataclass
class Follower:
    """A follower script: its JSON lines (each with the time it arrived) and its stderr."""

    name: str
    proc: subprocess.Popen[str]
    lines: list[dict[str, Any]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, cmd: list[str], redis_url: str) -> Follower:
        env = {**os.environ, "REDIS_URL": redis_url, "NODE_NO_WARNINGS": "1"}
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, bufsize=1,
        )  # fmt: skip
        f = cls(name, proc)
        for target in (f._read_stdout, f._read_stderr):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            f._threads.append(t)
        return f

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == kind]

    async def wait_for(self, kind: str, count: int, timeout: float = 10.0) -> dict[str, Any]:
        """The `count`-th line of `kind`; fails with the script's stderr if it does not come."""
        deadline = time.monotonic() + timeout
        while len(self.events(kind)) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                msg = f"{self.name}: no {kind!r} line #{count} (exit {self.proc.returncode}): "
                raise AssertionError(f"{msg}{self.lines[-5:]}\n" + "".join(self.stderr)[-3000:])
            await asyncio.sleep(0.01)
        return self.events(kind)[count - 1]

    async def report(self) -> list[str]:
        count = len(self.events("report")) + 1
        self.send("report")
        line = await self.wait_for("report", count)
        return list(line["modes"])

    def quit(self) -> int:
        """Ask it to exit; its exit code (stderr is complete afterwards)."""
        if self.proc.poll() is None:
            self.send("quit")
        try:
            self.proc.wait(timeout=10)
        finally:
            self.close()
        return self.proc.returncode

    def close(self) -> None:
        """Kill it if it still runs; read the rest of its output and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # stdin of a dead process: broken pipe
                    pipe.close()

    def warnings(self, text: str) -> list[str]:
        return [line for line in self.stderr if text in line]


@pytest.fixture
def db(pg_url: str) -> str:
    Migrator(pg_url, [core_set()]).up()
    return pg_url


Spawn: TypeAlias = Callable[..., Follower]  # (lang, redis url, prefix, ttl, *more args)
COMMANDS: Final = {"node": ["node", str(NODE_SCRIPT)], "php": ["php", str(PHP_SCRIPT)]}


@pytest.fixture
def spawn(node_package: Path, php_runtime: str) -> Iterator[Spawn]:
    """Start a follower (language, redis url, prefix, TTL, more args); each ended after the test."""
    del node_package, php_runtime  # these fixtures skip, saying why, when a runtime is missing
    started: list[Follower] = []

    def start(lang: str, url: str, prefix: str, ttl: str, *more: str) -> Follower:
        started.append(Follower.start(lang, [*COMMANDS[lang], prefix, ENTITY, ttl, *more], url))
        return started[-1]

    yield start
    for f in started:
        f.close()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    """A Redis of this test alone, so that it can be stopped."""
    server = EmbeddedRedis(data_dir=tmp_path / "r")
    server.start()
    yield server
    server.close()


@pytest.fixture
async def py_readers(
    private_redis: EmbeddedRedis, redis_prefix: str
) -> AsyncIterator[list[ReadPath]]:
    """18 started Python clients, each on its own connection, closed after the test."""
    # No socket_timeout: the Python listener would take an idle pub/sub read for an outage.
    clients = [
        aredis.Redis.from_url(private_redis.url, socket_connect_timeout=0.2) for _ in range(18)
    ]
    readers = [ReadPath(c, prefix=redis_prefix, ttl_s=PY_TTL_S) for c in clients]
    for r in readers:
        await r.start()
    yield readers
    for r in readers:
        await r.aclose()
    for c in clients:
        await c.aclose()


async def _py_modes(readers: list[ReadPath]) -> list[Mode]:
    return list(await asyncio.gather(*(r.mode(ENTITY) for r in readers)))


async def _legacy(key: str) -> str:
    return f"legacy:{key}"


async def _postgres(key: str) -> str:
    return f"postgres:{key}"


async def test_twenty_clients_in_three_languages_follow_flips_and_ride_out_an_outage(
    db: str,
    private_redis: EmbeddedRedis,
    redis_prefix: str,
    py_readers: list[ReadPath],
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    url, prefix, readers = private_redis.url, redis_prefix, py_readers
    state = str(tmp_path / "readpath.json")  # PHP's last known modes, for later processes
    procs = [spawn("node", url, prefix, "30000"), spawn("php", url, prefix, "0.2", state)]
    assert len(readers) + len(procs) == 20
    assert set(await _py_modes(readers)) == {Mode.LEGACY}
    for f in procs:
        assert (await f.wait_for("ready", 1))["modes"] == ["legacy"]  # started and subscribed
    await asyncio.sleep(0.3)  # the Python listeners subscribed

    control = aredis.Redis.from_url(url)
    lags: dict[str, list[float]] = {"python": [], "node": [], "php": []}
    path = [Mode.SHADOW, Mode.POSTGRES, Mode.LEGACY, Mode.SHADOW, Mode.POSTGRES]
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        before = Mode.LEGACY
        for step, target in enumerate(path, start=1):
            await change_mode(conn, control, prefix, ENTITY, target)
            returned = time.time()
            while set(await _py_modes(readers)) != {target}:
                assert time.time() - returned < 1.0, f"a Python client still reads {before}"
                await asyncio.sleep(0.01)
            lags["python"].append(time.time() - returned)
            for f in procs:
                change = await f.wait_for("change", step, timeout=2)
                assert (change["from"], change["mode"]) == (before.value, target.value)
                lag = change["t"] / 1000 - returned
                assert lag < 1.0, f"{f.name} saw {before} -> {target} {lag:.3f} s after the flip"
                lags[f.name].append(lag)
            before = target
    await control.aclose()

    with capture_logs() as logs:
        private_redis.stop()
        stopped = time.monotonic()
        while time.monotonic() - stopped < PY_TTL_S + 0.5:  # every cache expired: all ask Redis
            assert set(await _py_modes(readers)) == {Mode.POSTGRES}
            await asyncio.sleep(0.05)
        assert await readers[0].read(ENTITY, "u1", _legacy, _postgres) == "postgres:u1"
        for f in procs:
            assert await f.report() == ["postgres"], f"{f.name} left postgres with Redis gone"
        # A PHP process (an FPM request) that starts during the outage: its state file knows.
        late = spawn("php", url, prefix, "0.2", state)
        assert (await late.wait_for("ready", 1))["modes"] == ["postgres"]
        assert late.quit() == 0
        assert len(late.warnings(OUTAGE_LOG)) == 1
        amnesiac = spawn("php", url, prefix, "0.2")  # no state file: nothing known, so legacy
        assert (await amnesiac.wait_for("ready", 1))["modes"] == ["legacy"]
        assert amnesiac.quit() == 0
    outage = [e for e in logs if e["event"] == "readpath_redis_unreachable_keeping_mode"]
    assert len(outage) == 18, "each Python client logs the outage once"
    assert {e["mode"] for e in outage} == {"postgres"}
    for f in procs:
        assert f.proc.poll() is None, f"{f.name} died with Redis gone"
        assert len(f.events("change")) == len(path), f"{f.name} changed mode with Redis gone"
        assert f.quit() == 0, "".join(f.stderr)
        warned = f.warnings(OUTAGE_LOG)
        assert len(warned) == 1, (f.name, f.stderr)  # once per outage per client
        assert f"{ENTITY}=postgres" in warned[0]
    print(  # noqa: T201 - the measurement
        "flip seen after change_mode returned (max s): "
        + ", ".join(f"{k} {max(v):+.3f}" for k, v in lags.items())
    )


async def test_node_and_php_keep_their_mode_when_redis_holds_an_unknown_one(
    redis_client: aredis.Redis, redis_url: str, redis_prefix: str, spawn: Spawn
) -> None:
    """A hand-edited hash or a bad change message: warned about, the last mode stands."""
    key, channel = readpath_key(redis_prefix), readpath_channel(redis_prefix)
    await redis_client.hset(key, ENTITY, "shadow")  # type: ignore[misc]  # redis stubs: Awaitable|int
    procs = [
        spawn("node", redis_url, redis_prefix, "200"),
        spawn("php", redis_url, redis_prefix, "0.2"),
    ]
    for f in procs:
        assert (await f.wait_for("ready", 1))["modes"] == ["shadow"]
    await redis_client.hset(key, ENTITY, "postgress")  # type: ignore[misc]  # redis stubs: Awaitable|int
    await redis_client.publish(channel, json.dumps({"entity": ENTITY, "mode": "Postgres"}))
    await redis_client.publish(channel, "not json")
    await asyncio.sleep(0.6)  # past every TTL: each has read the unknown value
    for f in procs:
        assert await f.report() == ["shadow"], f.stderr
        assert f.quit() == 0, "".join(f.stderr)
        assert f.events("change") == []
        assert any('"postgress"' in w for w in f.warnings(UNKNOWN_LOG)), (f.name, f.stderr)
    node = procs[0].warnings(UNKNOWN_LOG)
    assert len(node) == 2, node  # Node also hears the bad message; each value warned once
    assert len(procs[1].warnings(UNKNOWN_LOG)) == 1


async def test_node_and_php_start_with_redis_down_then_follow_once_it_is_up(
    db: str, redis_prefix: str, tmp_path: Path, spawn: Spawn
) -> None:
    """Neither hangs at start: `legacy` meanwhile, the flips once Redis answers."""
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "r")
    try:
        procs = [spawn("node", server.url, redis_prefix, "30000"),
                 spawn("php", server.url, redis_prefix, "0.2")]  # fmt: skip
        for f in procs:
            assert (await f.wait_for("ready", 1, timeout=5))["modes"] == ["legacy"]
        server.start()
        control = aredis.Redis.from_url(server.url)
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            await change_mode(conn, control, redis_prefix, ENTITY, Mode.SHADOW)
        await control.aclose()
        for f in procs:  # within the reconnect backoffs (the app client's: up to 2.2 s)
            change = await f.wait_for("change", 1, timeout=5)
            assert (change["from"], change["mode"]) == ("legacy", "shadow")
            assert f.quit() == 0, "".join(f.stderr)
            assert len(f.warnings(OUTAGE_LOG)) == 1, (f.name, f.stderr)
    finally:
        server.close()
