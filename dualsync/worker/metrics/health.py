"""`/healthz`: is this worker doing its job? A verdict from thread-safe state only.

Unhealthy (503) when a consumer task has finished while the worker is meant to run (it
crashed or was cancelled), or when Redis or Postgres have not answered the sampler for
longer than the outage window, the same window after which the worker gives up on Redis
(`WorkerConfig.redis_outage_s`). Healthy (200) otherwise, including during a shorter
outage the worker is riding out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dualsync.worker.metrics.sampler import Sample

__all__ = ["HealthCheck", "HealthReport"]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The verdict and, when unhealthy, the reasons (short, no secrets)."""

    ok: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "unhealthy", "reasons": self.reasons}


class HealthCheck:
    """Judges the consumer tasks and the sampler's last answers against `window_s`."""

    def __init__(
        self,
        tasks: Sequence[asyncio.Task[None]],
        sample: Callable[[], Sample],
        *,
        window_s: float,
        crashed: Callable[[], BaseException | None],
    ) -> None:
        self._tasks = tasks
        self._sample = sample
        self.window_s = window_s
        self._crashed = crashed

    def __call__(self) -> HealthReport:
        reasons: list[str] = []
        # Task.done() reads one field of the task: safe to call from the HTTP thread.
        dead = [t.get_name() for t in list(self._tasks) if t.done()]
        if dead:
            reasons.append(f"consumer task ended: {', '.join(dead)}")
        crashed = self._crashed()
        if crashed is None:
            # the done-callback that records a crash runs a loop turn after the task ends:
            # a scrape in between reads the finished task's own exception
            for t in list(self._tasks):
                if t.done() and not t.cancelled() and t.exception() is not None:
                    crashed = t.exception()
                    break
        if crashed is not None:
            reasons.append(f"consumer crashed: {type(crashed).__name__}")
        s = self._sample()
        now = time.monotonic()
        for name, ok_at, error in (
            ("redis", s.redis_ok_at, s.redis_error),
            ("postgres", s.pg_ok_at, s.pg_error),
        ):
            if now - ok_at > self.window_s:
                why = f" ({error[:120]})" if error else ""
                reasons.append(f"{name} unreachable for {now - ok_at:.0f} s{why}")
        return HealthReport(not reasons, reasons)
