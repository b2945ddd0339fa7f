"""Several processes for one `--direct` backfill, each reading, mapping and applying its own keys.

This is the parent's side (the child's is `processes_child.py`, the parent's handle on a
child `processes_handle.py`, the count `processes_plan.py`). In one process a direct
backfill runs at about a third of the rate its files can be read (bench/backfill.py):
reading, mapping and the apply's Python side share one interpreter. With `processes` > 1
the run forks that many children once, at its start (a fork, not a new interpreter: the
imports and the loaded mapping are inherited, a child is ready in
milliseconds), and each opens its own stores, pool and sink (`ChildSetup`).

The plan. Entities go in foreign-key order, as in one process. When an entity is reached
the parent lists its keys once and cuts them into `processes x workers` contiguous ranges
(`split_segments`: the same cut for every adapter, file-name order for files, `_id` order for
Mongo; the last range runs to the end, so keys created meanwhile are covered); process i owns
ranges `[i*workers, (i+1)*workers)`. Its ranges go into its own checkpoint file,
`<stem>.part<i><suffix>` (checkpoint.py), before the main file records the plan, and only
then is the process told to run the entity. Each process runs an ordinary `Backfill` over
its part file (`resume`), so it records every committed chunk exactly as a one-process run
does. An entity starts only once every process has finished the one before it: parents are
applied before their children.

Failures. A child that fails sends one line saying why and exits 1; one that dies (a kill,
a crash) is seen when its pipe closes. The parent then asks the others to stop (each
finishes and records the chunk in hand), waits for them, and raises `BackfillProcessError`:
one line, the checkpoint saved; `--resume` goes on from every part's last recorded chunk,
re-sending at most one chunk per range, which the version gate counts as stale. If the
parent dies, the children die with it (Linux: `PR_SET_PDEATHSIG`; elsewhere they stop at the
chunk in hand when their command pipe closes). Ctrl-C and SIGTERM reach the parent, which
asks every child to stop the same way; children ignore SIGINT themselves.

Protocol: JSON lines over two pipes per child. Parent to child: `{"run": entity}`,
`{"stop": true}` (and EOF: stop and exit). Child to parent: `{"ready": true}`,
`{"advance": entity, "n": docs}`, `{"done": entity, "stopped", "applied", "stale", "bad"}`,
`{"error": "one line"}`. No secret crosses a pipe: a child inherits its settings.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dualsync.errors import ConfigError, DualsyncError
from dualsync.logging import get_logger
from dualsync.producers.backfill.checkpoint import (
    Checkpoint,
    EntityProgress,
    Segment,
    part_path,
    write_durably,
)
from dualsync.producers.backfill.processes_child import (
    ChildSetup,
    CountingSink,
    child_main,
    die_with_parent,
)
from dualsync.producers.backfill.processes_handle import Child, Outcome
from dualsync.producers.backfill.processes_plan import (
    MAX_AUTO_PROCESSES,
    auto_processes,
    planned_processes,
)
from dualsync.producers.backfill.progress import Progress
from dualsync.producers.backfill.run import (
    BackfillOptions,
    open_checkpoint,
    select_entities,
    split_segments,
)
from dualsync.producers.backfill.sink import BadDoc
from dualsync.producers.stores import LegacyStores
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import MappingSet

__all__ = [
    "MAX_AUTO_PROCESSES",
    "BackfillProcessError",
    "ChildSetup",
    "CountingSink",
    "ProcessBackfill",
    "auto_processes",
    "planned_processes",
]

log = get_logger(__name__)


class BackfillProcessError(DualsyncError):
    """A backfill process failed or died; the others stopped and the checkpoint is saved."""

    reason = "backfill_process"


@dataclass(slots=True)
class ProcessBackfill:
    """A `--direct` run over `options.processes` forked processes (see the module doc)."""

    ms: MappingSet
    #: the parent's stores, to list keys (opened after the fork, so no client is shared)
    open_stores: Callable[[], LegacyStores]
    #: each child's stores and sink
    open_child: ChildSetup
    options: BackfillOptions
    progress: Progress = field(default_factory=Progress)
    bad: list[BadDoc] = field(default_factory=list)
    #: what the version gate applied and found stale, over every process
    applied: int = 0
    stale: int = 0
    _stopped: bool = False
    _children: list[Child] = field(default_factory=list)

    @property
    def processes(self) -> int:
        """How many processes the run uses."""
        return self.options.processes or 1

    def stop(self) -> None:
        """Every process finishes the chunks in hand, records them and stops."""
        self._stopped = True
        for c in self._children:
            c.send({"stop": True})

    @property
    def stopped(self) -> bool:
        """True when `stop()` cut the run short."""
        return self._stopped

    async def run(self) -> Checkpoint:
        """Fork, snapshot every selected entity, reap; return the merged checkpoint."""
        cp = open_checkpoint(self.ms, self.options)
        if cp.processes != self.processes and cp.entities:
            raise ConfigError(  # planned_processes() says this before a run gets here
                f"{self.options.checkpoint} was started with {cp.processes} process(es)"
            )
        try:
            await self._fork()
            stores = self.open_stores()
            try:
                await self._run(cp, dict(stores.stores))
            finally:
                await stores.aclose()
        finally:
            await self._close()
        merged = Checkpoint.load_run(self.options.checkpoint)
        if merged is None:  # pragma: no cover - saved at the start of _run
            raise ConfigError(f"{self.options.checkpoint} disappeared during the run")
        return merged

    async def _fork(self) -> None:
        loop = asyncio.get_running_loop()
        mine: list[int] = []  # the parent's ends of earlier children's pipes
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        for i in range(self.processes):
            cmd_r, cmd_w = os.pipe()
            ev_r, ev_w = os.pipe()
            with warnings.catch_warnings():
                # Python 3.12+ warns when other threads exist (in the CLI none do yet; a
                # caller's idle executor threads may): the child touches nothing of theirs,
                # it runs a new loop on a new thread over its own pipes, pool and stores.
                warnings.filterwarnings(
                    "ignore", "This process .* is multi-threaded", DeprecationWarning
                )
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child (coverage cannot follow a fork)
                code = 1
                try:
                    for fd in (cmd_w, ev_r, *mine):
                        os.close(fd)
                    die_with_parent(parent)
                    opts = replace(self.options, checkpoint=part_path(self.options.checkpoint, i))
                    code = child_main(self.ms, opts, self.open_child, cmd_r, ev_w)
                finally:
                    os._exit(code)
            os.close(cmd_r)
            os.close(ev_w)
            mine += [cmd_w, ev_r]
            reader = asyncio.StreamReader(limit=1 << 24)
            child = Child(i, pid, cmd_w, reader)
            self._children.append(child)
            child.transport, _ = await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader), os.fdopen(ev_r, "rb", 0)
            )
        log.info("backfill_processes_started", pids=[c.pid for c in self._children])

    async def _close(self) -> None:
        """Close every command pipe (EOF: finish and exit), drain and reap every child."""
        for c in self._children:
            c.close_commands()
        for c in self._children:
            while await c.receive() is not None:
                pass
            await c.reap()
            if c.transport is not None:
                c.transport.close()

    async def _run(self, cp: Checkpoint, stores: dict[str, LegacyStore]) -> None:
        path = self.options.checkpoint
        if not cp.entities:  # a new run: parts of an earlier one must not be taken for its own
            cp.processes = self.processes
            for old in path.parent.glob(f"{path.stem}.part*{path.suffix}"):
                if re.fullmatch(
                    rf"{re.escape(path.stem)}\.part\d+{re.escape(path.suffix)}", old.name
                ):
                    old.unlink()
        names = select_entities(self.ms, stores, self.options.entities)
        raw = Checkpoint.load(path) if cp.entities else None
        main = raw or cp.model_copy(deep=True)
        write_durably(path, main.dump())
        for name in names:
            if self._stopped:
                break
            if name not in main.entities:
                main.entities[name] = await self._plan(main, name, stores[name])
            merged = Checkpoint.load_run(path)
            ep = merged.entities[name] if merged else EntityProgress()
            if ep.done:
                continue
            self.progress.start(name, ep.total, ep.sent)
            owners = sorted({i for i in ep.parts if not self._part_done(i, name)})
            outcomes = await asyncio.gather(
                *(self._entity(self._children[i], name) for i in owners)
            )
            merged = Checkpoint.load_run(path)
            done = merged.entities[name] if merged else ep
            self.progress.finish(name, done.sent, done.bad)
            failures = [o.failure for o in outcomes if o.failure]
            if failures:
                first = failures[0].rstrip(".")
                more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
                todo = (
                    "" if "--resume" in first else ": fix the cause, then run again with --resume"
                )
                raise BackfillProcessError(
                    f"{first}{more} while backfilling {name}; the other processes stopped at a "
                    f"recorded chunk ({path}){todo}"
                )
            if any(o.stopped for o in outcomes):
                self._stopped = True

    def _part_done(self, index: int, name: str) -> bool:
        part = Checkpoint.load(part_path(self.options.checkpoint, index))
        ep = part.entities.get(name) if part else None
        return ep is not None and ep.done

    async def _plan(self, main: Checkpoint, name: str, store: LegacyStore) -> EntityProgress:
        """Cut the entity's keys into ranges, give each process its own in its part file,
        then record the plan in the main file: a crash in between plans it again."""
        path, workers = self.options.checkpoint, self.options.workers
        total, segments = await split_segments(store, self.processes * workers)
        parts: list[int] = []
        for i in range(self.processes):
            mine = segments[i * workers : (i + 1) * workers]
            if not mine:
                continue
            parts.append(i)
            file = part_path(path, i)
            part = Checkpoint.load(file)
            if part is None or part.version != main.version:
                part = main.model_copy(update={"entities": {}, "part": i}, deep=True)
            part.entities[name] = EntityProgress(segments=mine)
            await asyncio.to_thread(write_durably, file, part.dump())
        planned = [Segment(start_after=s.start_after, last=s.last) for s in segments]
        ep = EntityProgress(total=total, segments=planned, parts=parts)
        main.entities[name] = ep
        await asyncio.to_thread(write_durably, path, main.dump())
        return ep

    async def _entity(self, child: Child, name: str) -> Outcome:
        """Run one entity in one child; follow its progress until it says it is done."""
        child.send({"run": name})
        out = Outcome()
        while True:
            msg = await child.receive()
            if msg is None:
                out.failure = child.ended(await child.reap())
                break
            if "advance" in msg:
                self.progress.advance(name, int(msg["n"]))
            elif "done" in msg:
                out.stopped = bool(msg["stopped"])
                self.applied += int(msg["applied"])
                self.stale += int(msg["stale"])
                self.bad += [BadDoc(*b) for b in msg["bad"]]
                return out
            elif "error" in msg:
                out.failure = f"backfill process {child.index + 1} failed: {msg['error']}"
                await child.reap()
                break
        self._halt_others(child)
        return out

    def _halt_others(self, failed: Child) -> None:
        for c in self._children:
            if c is not failed:
                c.send({"stop": True})
