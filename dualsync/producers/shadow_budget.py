"""The shadow compares' CPU budget on the app's event loop.

A compare's CPU work (psycopg reading rows, the mapping, the canonical forms, the diff)
runs on the event loop, between the caller's awaits: whatever compare work is ready when
the caller's own read completes runs before the caller resumes. So what bounds the
caller's added latency is how much compare CPU can be outstanding at once, not how many
compares: that is what `CpuBudget` admits by. Each entity's compares are measured exactly
(`timed`: the synchronous time of every step of the compare coroutine, psycopg's included)
into a moving average; a new compare is admitted only while the estimated CPU of the
compares running now, plus its own, stays within `budget_ms / 2` (half: room for the
estimate's error and the caller's own sampling and snapshot). Until an entity has been
measured its estimate is the whole allowance, so one compare runs alone first. Over
time, compares take at most `share` of the loop's time (a token bucket): on a loop with
little idle time they are what gives way, not the caller.

A collection of the cyclic garbage collector that runs inside a compare's step is left out
of its time (`gc.callbacks`): it walks the whole app's heap, it is not the compare's work,
and charged to one compare a long one (hundreds of ms in a large process) would stop every
compare for five times its length while the bucket refills at `share`.

A thread would not help: it holds the GIL for up to the 5 ms switch interval while the
loop waits. A single step longer than `budget_ms` (a huge document) cannot be split here;
it is counted `over_budget` and logged, so the operator can lower that entity's rate.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["CpuBudget", "Timed", "timed"]

T = TypeVar("T")
#: weight of the newest measurement in an entity's moving average
ALPHA = 0.2


class _GcClock:
    """Seconds the cyclic garbage collector has run since it was installed."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._since = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._since = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._since


_GC_CLOCK: _GcClock | None = None


def _gc_clock() -> _GcClock:
    """The process's GC clock, installed on first use (only a process that shadows pays)."""
    global _GC_CLOCK  # noqa: PLW0603 - one clock per process, as gc.callbacks is
    if _GC_CLOCK is None:
        _GC_CLOCK = _GcClock()
        gc.callbacks.append(_GC_CLOCK)
    return _GC_CLOCK


@dataclass(slots=True)
class Timed(Generic[T]):
    """Drives a coroutine step by step, adding up each step's wall time (a step is
    synchronous: its wall time is loop time taken from everyone else), less the garbage
    collections that ran inside it."""

    coro: Coroutine[Any, Any, T]
    total_s: float = 0.0
    longest_s: float = 0.0

    def __await__(self) -> Generator[Any, Any, T]:
        send: Any = None
        throw: BaseException | None = None
        clock = _gc_clock()
        while True:
            t, gc_before = time.perf_counter(), clock.total_s
            try:
                step = self.coro.throw(throw) if throw is not None else self.coro.send(send)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]  # the coroutine's T
            finally:  # the step's time, however it ended
                self._add(time.perf_counter() - t - (clock.total_s - gc_before))
            try:
                send, throw = (yield step), None
            except BaseException as exc:  # noqa: BLE001 - cancellation goes into the coroutine
                send, throw = None, exc

    def _add(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.total_s += seconds
        self.longest_s = max(self.longest_s, seconds)


def timed(coro: Coroutine[Any, Any, T]) -> Timed[T]:
    """`await timed(coro)`: run `coro`, measured (see `Timed`)."""
    return Timed(coro)


@dataclass(slots=True)
class CpuBudget:
    """Admission of compares by their estimated CPU (see the module docstring)."""

    budget_ms: float
    #: the share of the loop's time compares may take, over time (a token bucket that
    #: fills at this rate up to the allowance)
    share: float = 0.2
    estimate_s: dict[str, float] = field(default_factory=dict)
    reserved_s: float = 0.0
    _tokens_s: float = -1.0  # full at first (set in __post_init__)
    _at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._tokens_s = self.allowance_s

    @property
    def allowance_s(self) -> float:
        return self.budget_ms / 2000

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens_s = min(self._tokens_s + (now - self._at) * self.share, self.allowance_s)
        self._at = now

    def admit(self, entity: str) -> float | None:
        """Reserve one compare of `entity`: its reservation, or None (over the budget)."""
        cost = self.estimate_s.get(entity, self.allowance_s)
        self._refill()
        if self._tokens_s < min(cost, self.allowance_s):
            return None  # the compares had their share of the loop lately
        if self.reserved_s > 0 and self.reserved_s + cost > self.allowance_s:
            return None  # (one compare is always admitted when none runs)
        self.reserved_s += cost
        return cost

    def release(self, reservation: float) -> None:
        """A reservation given back unused (the compare never started)."""
        self.reserved_s = max(self.reserved_s - reservation, 0.0)

    def done(self, entity: str, reservation: float, spent_s: float) -> None:
        """A compare finished after `spent_s` of loop time: release it, pay, and learn."""
        self.reserved_s = max(self.reserved_s - reservation, 0.0)
        self._refill()
        self._tokens_s -= spent_s  # may go below zero: admission waits until it is paid
        old = self.estimate_s.get(entity)
        self.estimate_s[entity] = spent_s if old is None else old + ALPHA * (spent_s - old)
