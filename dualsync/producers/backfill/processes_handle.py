"""The parent's handle on one child of a multi-process backfill: its pipes, its exit.

Messages are JSON lines (the protocol is in processes.py); a child that died is seen as
its event pipe closing, then as its exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Child", "Outcome"]


@dataclass(slots=True)
class Child:
    """The parent's handle on one child process."""

    index: int
    pid: int
    cmd: int
    events: asyncio.StreamReader
    transport: asyncio.BaseTransport | None = None
    status: int | None = None

    def send(self, msg: dict[str, Any]) -> None:
        if self.cmd < 0:
            return
        with contextlib.suppress(OSError):  # it died: its closed pipe says so below
            os.write(self.cmd, orjson.dumps(msg) + b"\n")

    def close_commands(self) -> None:
        if self.cmd >= 0:
            os.close(self.cmd)
            self.cmd = -1

    async def receive(self) -> dict[str, Any] | None:
        line = await self.events.readline()
        return orjson.loads(line) if line else None

    async def reap(self) -> int:
        """Wait for the process to end; its exit code (negative: killed by that signal)."""
        if self.status is None:
            _, raw = await asyncio.to_thread(os.waitpid, self.pid, 0)
            self.status = os.waitstatus_to_exitcode(raw)
        return self.status

    def ended(self, status: int) -> str:
        if status < 0:
            how = f"was killed by {signal.Signals(-status).name}"
        else:
            how = f"exited with code {status}"
        return f"backfill process {self.index + 1} (pid {self.pid}) {how}"


@dataclass(slots=True)
class Outcome:
    stopped: bool = False
    failure: str | None = None
