"""Sweep progress: a rich bar per stream with rows/s on a terminal, log lines otherwise.

Like the backfill's (dualsync/producers/backfill/progress.py): the bar is drawn on stderr
only when it is a terminal; elsewhere `sweep_progress` lines (key=value, every
`LOG_EVERY_S`) say the phase, rows done per stream, the totals and the rate.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from dualsync.logging import get_logger

__all__ = ["SweepProgress"]

log = get_logger(__name__)
LOG_EVERY_S = 2.0


@dataclass(slots=True)
class _Stream:
    total: int | None
    done: int
    base: int  # done when this process started the stream: rates count only its own rows
    started: float


@dataclass(slots=True)
class SweepProgress:
    """`enabled=False`: nothing at all; `bar=None`: a bar when stderr is a terminal."""

    entity: str
    enabled: bool = True
    bar: bool | None = None
    phase: str = ""
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _rich: Any = None
    _tasks: dict[str, Any] = field(default_factory=dict)
    _logged: float = 0.0

    def _use_bar(self) -> bool:
        if self.bar is None:
            self.bar = sys.stderr.isatty()
        return self.bar

    def start(self, phase: str, streams: dict[str, tuple[int | None, int]]) -> None:
        """A phase begins: per stream its total (None: unknown) and what is done already."""
        self.close()
        self.phase = phase
        now = time.monotonic()
        self._streams = {n: _Stream(t, d, d, now) for n, (t, d) in streams.items()}
        self._logged = now
        if not self.enabled:
            return
        if self._use_bar():
            from rich.progress import (  # noqa: PLC0415 - only on a terminal
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress  # noqa: PLC0415 - as above

            self._rich = RichProgress(
                TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False,
            )  # fmt: skip
            self._rich.start()
            for name, s in self._streams.items():
                self._tasks[name] = self._rich.add_task(
                    f"{self.entity} {phase} {name}", total=s.total, completed=s.done, rate=""
                )
        else:
            log.info("sweep_phase", entity=self.entity, phase=phase,
                     **{f"{n}_total": s.total for n, s in self._streams.items()},
                     **{f"{n}_done": s.done for n, s in self._streams.items()})  # fmt: skip

    def advance(self, stream: str, n: int) -> None:
        """`n` more rows of `stream` are counted."""
        s = self._streams[stream]
        s.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if self._rich is not None:
            rate = (s.done - s.base) / max(now - s.started, 1e-6)
            self._rich.update(self._tasks[stream], completed=s.done, rate=f"{rate:,.0f} rows/s")
        elif now - self._logged >= LOG_EVERY_S:
            self._logged = now
            self._log(now)

    def _log(self, now: float) -> None:
        fields: dict[str, Any] = {}
        for name, s in self._streams.items():
            fields[name] = s.done
            fields[f"{name}_total"] = s.total
            fields[f"{name}_rate"] = round((s.done - s.base) / max(now - s.started, 1e-6))
        log.info("sweep_progress", entity=self.entity, phase=self.phase, **fields)

    def close(self) -> None:
        """Stop the bar (the phase is over, or the sweep stopped)."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
            self._tasks = {}
