"""Backfill progress: a rich bar with rate and ETA on a terminal, log lines otherwise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from dualsync.logging import get_logger

__all__ = ["Progress"]

log = get_logger(__name__)
LOG_EVERY_S = 2.0


@dataclass(slots=True)
class _Entity:
    total: int
    done: int
    started: float
    logged: float


@dataclass(slots=True)
class Progress:
    """Per-entity progress; `bar=None` decides from whether stderr is a terminal."""

    bar: bool | None = None
    _entities: dict[str, _Entity] = field(default_factory=dict)
    _rich: Any = None
    _tasks: dict[str, Any] = field(default_factory=dict)

    def _use_bar(self) -> bool:
        if self.bar is None:
            self.bar = sys.stderr.isatty()
        return self.bar

    def start(self, entity: str, total: int, done: int) -> None:
        """An entity begins (or resumes at `done`)."""
        now = time.monotonic()
        self._entities[entity] = _Entity(total, done, now, now)
        if self._use_bar():
            if self._rich is None:
                from rich.progress import (  # noqa: PLC0415 - only on a terminal
                    BarColumn,
                    MofNCompleteColumn,
                    TaskProgressColumn,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )
                from rich.progress import Progress as RichProgress  # noqa: PLC0415 - same: only on a terminal

                self._rich = RichProgress(
                    TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                    TimeRemainingColumn(), transient=False,
                )  # fmt: skip
                _ = TransferSpeedColumn  # bytes/s reads wrong for documents; rate is ours
                self._rich.start()
            self._tasks[entity] = self._rich.add_task(entity, total=total, completed=done, rate="")
        else:
            log.info("backfill_entity_start", entity=entity, total=total, done=done)

    def advance(self, entity: str, n: int) -> None:
        """`n` more documents of `entity` are durable."""
        e = self._entities[entity]
        e.done += n
        now = time.monotonic()
        rate = e.done / max(now - e.started, 1e-6)
        if self._rich is not None and entity in self._tasks:
            self._rich.update(self._tasks[entity], completed=e.done, rate=f"{rate:,.0f} docs/s")
        elif now - e.logged >= LOG_EVERY_S:
            e.logged = now
            left = max(e.total - e.done, 0)
            log.info("backfill_progress", entity=entity, done=e.done, total=e.total,
                     rate=round(rate), eta_s=round(left / rate) if rate else None)  # fmt: skip

    def finish(self, entity: str, sent: int, bad: int) -> None:
        """An entity is done (or was stopped)."""
        e = self._entities.get(entity)
        elapsed = time.monotonic() - e.started if e else 0.0
        if self._rich is not None:
            return  # the bar says it
        log.info("backfill_entity_done", entity=entity, sent=sent, bad=bad,
                 seconds=round(elapsed, 2))  # fmt: skip

    def close(self) -> None:
        """Stop the bar."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
