"""`scan --watch`: rescan an entity when the file system says its files changed, and rescan
everything every `rescan_every_s` as the safety net (notifications can be dropped: an
overflowing inotify queue, network file systems, a folder replaced wholesale)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import awatch

from dualsync.logging import get_logger
from dualsync.producers.scanner.scan import PassResult, Scanner
from dualsync.producers.stores import JsonDirStore, JsonFileStore, JsonLinesStore

__all__ = ["watch", "watched_path"]

log = get_logger(__name__)

OnPass = Callable[[PassResult], Awaitable[None] | None]


def watched_path(scanner: Scanner) -> Path:
    """The folder whose changes concern a scanner's entity."""
    store = scanner.store
    if isinstance(store, JsonDirStore):
        return store.directory
    if isinstance(store, JsonFileStore):
        return store.path.parent
    assert isinstance(store, JsonLinesStore)  # noqa: S101 - the three file kinds
    return store.root


async def _pass(scanner: Scanner, on_pass: OnPass | None) -> None:
    result = await scanner.scan()
    if result.upserts or result.deletes or result.skipped:
        log.info("scan_pass", entity=result.entity, upserts=result.upserts,
                 deletes=result.deletes, skipped=len(result.skipped))  # fmt: skip
    if on_pass is not None:
        maybe = on_pass(result)
        if maybe is not None:
            await maybe


async def watch(
    scanners: list[Scanner],
    stop: asyncio.Event,
    *,
    rescan_every_s: float = 60.0,
    on_pass: OnPass | None = None,
) -> None:
    """Scan once, then on every change notification and every `rescan_every_s`."""
    for s in scanners:
        await _pass(s, on_pass)
    roots = {s: watched_path(s).resolve() for s in scanners}
    for path in set(roots.values()):
        path.mkdir(parents=True, exist_ok=True)
    next_full = time.monotonic() + rescan_every_s
    changes = awatch(*set(roots.values()), stop_event=stop, rust_timeout=500, yield_on_timeout=True)
    async for batch in changes:
        touched = {Path(p) for _, p in batch}  # watchfiles reports absolute paths
        due = time.monotonic() >= next_full
        for s, root in roots.items():
            if due or any(root == t or root in t.parents for t in touched):
                await _pass(s, on_pass)
        if due:
            next_full = time.monotonic() + rescan_every_s
        if stop.is_set():
            break
