"""Counters of one worker process (exported as Prometheus metrics by `ops`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["Stats"]


@dataclass(slots=True)
class Stats:
    """Monotonic counters since the process started."""

    read: int = 0
    applied: int = 0
    deleted: int = 0
    stale: int = 0
    dead_lettered: int = 0
    retried: int = 0
    bisections: int = 0
    batches: int = 0
    redis_errors: int = 0
    #: monotonic time the first batch was read (for benchmarks: excludes start-up)
    first_batch_at: float = field(default=0.0, compare=False)
    #: monotonic time the last batch finished (for benchmarks: excludes idle waiting)
    last_batch_done: float = field(default=0.0, compare=False)

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}
