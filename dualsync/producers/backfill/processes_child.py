"""The child side of a multi-process `--direct` backfill (`processes.py` is the parent's).

A forked child runs on a fresh event loop in a thread of its own, opens its own stores,
pool and sink (`ChildSetup`), then runs the entities the parent sends it, one at a time,
each as an ordinary `Backfill` over its own checkpoint part. It reports over a pipe, as
JSON lines: `{"ready": true}`, `{"advance": entity, "n": docs}`, `{"done": entity, ...}`,
`{"error": "one line"}`; the protocol is described in `processes.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import orjson
import psycopg

from dualsync.errors import DualsyncError
from dualsync.producers.backfill.progress import Progress
from dualsync.producers.backfill.run import Backfill, BackfillOptions
from dualsync.producers.backfill.sink import StagedSink
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import MappingSet

__all__ = ["ChildSetup", "CountingSink", "child_main", "die_with_parent", "one_line"]

_PR_SET_PDEATHSIG = 1


class CountingSink(StagedSink, Protocol):
    """A sink that counts what the version gate applied and found stale (`DirectSink`)."""

    applied: int
    stale: int


#: opens a child's stores and sink (in the child, after the fork) and closes them after
ChildSetup = Callable[
    [], contextlib.AbstractAsyncContextManager[tuple[dict[str, LegacyStore], CountingSink]]
]


def one_line(exc: BaseException) -> str:
    if isinstance(exc, DualsyncError):
        text = str(exc)
    elif isinstance(exc, psycopg.OperationalError):
        text = f"PostgreSQL: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


# -- the child --------------------------------------------------------------------------


class _Out:
    """The child's end of its event pipe."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, msg: dict[str, Any]) -> None:
        data = memoryview(orjson.dumps(msg) + b"\n")
        with contextlib.suppress(OSError):  # the parent is gone: its EOF stops this child
            while data:
                data = data[os.write(self._fd, data) :]


class _Relay(Progress):
    """A child's progress: every durable chunk is told to the parent, which shows the bar."""

    __slots__ = ("_out",)

    def __init__(self, out: _Out) -> None:
        super().__init__(bar=False)
        self._out = out

    def start(self, entity: str, total: int, done: int) -> None:
        """The parent shows the entity's start."""

    def advance(self, entity: str, n: int) -> None:
        """Tell the parent."""
        self._out.send({"advance": entity, "n": n})

    def finish(self, entity: str, sent: int, bad: int) -> None:
        """The parent shows the entity's end."""

    def close(self) -> None:
        """Nothing to close."""


class _Commands:
    """What the parent asks a child: entities to run, queued; a stop, or EOF, at once."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self.todo: asyncio.Queue[str | None] = asyncio.Queue()
        self.stopping = False
        self.job: Backfill | None = None

    def _stop(self) -> None:
        self.stopping = True
        if self.job is not None:
            self.job.stop()

    async def listen(self) -> None:
        while line := await self._reader.readline():
            msg = orjson.loads(line)
            if "run" in msg:
                await self.todo.put(str(msg["run"]))
            elif msg.get("stop"):
                self._stop()
        self._stop()  # EOF: the parent closed the pipe, or died
        await self.todo.put(None)


async def _serve(
    ms: MappingSet, options: BackfillOptions, setup: ChildSetup, cmd_fd: int, out: _Out
) -> int:
    """A child's life: set up, then run the entities it is told to, one at a time."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        functools.partial(asyncio.StreamReaderProtocol, reader), os.fdopen(cmd_fd, "rb", 0)
    )
    commands = _Commands(reader)
    listener = asyncio.create_task(commands.listen())
    try:
        async with setup() as (stores, sink):
            out.send({"ready": True})
            while (name := await commands.todo.get()) is not None:
                applied, stale = sink.applied, sink.stale
                opts = replace(options, entities=(name,), resume=True, restart=False)
                bf = commands.job = Backfill(ms, stores, sink, opts, progress=_Relay(out))
                if commands.stopping:
                    bf.stop()
                else:
                    await bf.run()
                commands.job = None
                out.send(
                    {
                        "done": name,
                        "stopped": bf.stopped,
                        "applied": sink.applied - applied,
                        "stale": sink.stale - stale,
                        "bad": [[b.entity, b.key, b.reason, b.error] for b in bf.bad],
                    }
                )
    except Exception as exc:  # noqa: BLE001 - every failure becomes the one line the parent shows
        out.send({"error": one_line(exc)})
        return 1
    else:
        return 0
    finally:
        listener.cancel()


def die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this child when the parent dies (a SIGKILL of the parent
    must not leave children applying); elsewhere the command pipe's EOF stops it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the call above
        os._exit(1)


def child_main(
    ms: MappingSet, options: BackfillOptions, setup: ChildSetup, cmd_fd: int, ev_fd: int
) -> int:
    """Runs in the forked child, on a fresh event loop in a thread of its own: the main
    thread is still inside the parent's loop, which the child must never touch."""
    gc.freeze()  # the parent's objects are never collected (nor their finalizers run) here
    with contextlib.suppress(ValueError):  # not the main thread of the parent
        signal.set_wakeup_fd(-1)  # the parent loop's wakeup socket is shared: let go of it
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards Ctrl-C as a stop
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = [1]

    def run() -> None:
        code[0] = asyncio.run(_serve(ms, options, setup, cmd_fd, _Out(ev_fd)))

    thread = threading.Thread(target=run, name="dualsync-backfill-child")
    thread.start()
    thread.join()
    return code[0]
