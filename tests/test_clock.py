"""The hybrid clock never goes below what it handed out, across restarts too.

A version lower than one already published loses the version gate: the later write is
dropped as stale. With a state file, the clock persists a reserve-ahead high-water mark
(at most one fsync per lease) and starts above it after a restart, even when the wall
clock is now behind.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aredis

import dualsync.producers.clock as clock_module
from dualsync.producers import ClockStateError, HybridClock, Publisher

T0 = 1_800_000_000_000_000  # a wall time in µs


class FakeTime:
    """Stands in for the `time` module inside `dualsync.producers.clock` only."""

    def __init__(self, us: int, step: int = 0) -> None:
        self.us = us
        self.step = step

    def time_ns(self) -> int:
        self.us += self.step
        return self.us * 1000


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime(T0)
    monkeypatch.setattr(clock_module, "time", fake)
    return fake


def _count_file_fsyncs(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    real = os.fsync
    calls: list[bool] = []

    def recording(fd: int) -> None:
        calls.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return lambda: sum(1 for is_dir in calls if not is_dir)


async def test_publisher_versions_do_not_regress_after_a_restart_with_the_wall_clock_behind(
    redis_client: aredis.Redis, redis_prefix: str, tmp_path: Path, wall: FakeTime
) -> None:
    spool_dir = tmp_path / "spool"
    async with Publisher(
        redis_client, source="app", prefix=redis_prefix, spool_dir=spool_dir
    ) as p1:
        before = [(await p1.publish("charts", str(i), payload={"i": i})).version for i in range(50)]
    wall.us -= 5_000_000  # restarted after an NTP step back of 5 s
    async with Publisher(
        redis_client, source="app", prefix=redis_prefix, spool_dir=spool_dir
    ) as p2:
        after = (await p2.publish("charts", "0", payload={"i": 0})).version
    assert after > max(before)


def test_a_clock_pushed_ahead_by_many_calls_resumes_above_every_value(
    tmp_path: Path, wall: FakeTime
) -> None:
    state = tmp_path / "clock.hwm"
    c1 = HybridClock(state, lease_us=1000)  # the wall stands still: each call is last + 1
    seen = [c1.now() for _ in range(5000)]
    assert seen[-1] == T0 + 4999
    c2 = HybridClock(state, lease_us=1000)
    assert c2.now() > max(seen)


def test_observe_then_restart_stays_above_the_observed_version(
    tmp_path: Path, wall: FakeTime
) -> None:
    state = tmp_path / "clock.hwm"
    c1 = HybridClock(state)
    c1.observe(T0 + 10**12)
    top = c1.now()
    assert top > T0 + 10**12
    wall.us -= 3_600_000_000
    assert HybridClock(state).now() > top


def test_the_hot_path_fsyncs_at_most_once_per_lease(
    tmp_path: Path, wall: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = HybridClock(tmp_path / "clock.hwm")  # lease 1 s
    fsyncs = _count_file_fsyncs(monkeypatch)
    wall.step = 20  # 175,000 calls, 20 µs apart: 3.5 s of simulated time
    for _ in range(175_000):
        clock.now()
    assert 1 <= fsyncs() <= 4


def test_clocks_sharing_a_state_file_keep_the_highest_reserve(
    tmp_path: Path, wall: FakeTime
) -> None:
    state = tmp_path / "clock.hwm"
    low = HybridClock(state)
    high = HybridClock(state)
    high.observe(T0 + 10**10)
    top = high.now()
    wall.us += 5_000_000  # `low` passes its own reserve and writes a lower one
    low.now()
    assert HybridClock(state).now() > top


def test_an_unreadable_state_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "clock.hwm"
    state.write_text("not a number")
    with pytest.raises(ClockStateError, match=r"clock\.hwm"):
        HybridClock(state)


def test_without_a_state_file_the_clock_stays_in_memory(tmp_path: Path) -> None:
    clock = HybridClock()
    a, b = clock.now(), clock.now()
    assert b > a
    assert not list(tmp_path.iterdir())
