"""One scan pass over an entity's JSON source: publish what was created, changed or deleted.

For apps that cannot be changed to publish events themselves. Each record's content hash is
kept in Redis (`ScanState`), so a pass publishes only records whose bytes changed: one edited
record in a 10 MB `json_file` is one event, and a second pass over an unchanged tree
publishes nothing. Files whose stamp (inode, size, mtime) is unchanged are not even read.
Records that vanished are published as deletes; new lines of a `json_lines` file as
upserts. A file rewritten while it is read is read again (`read_json_stable`); one that
stays unreadable is reported and tried again on the next pass.

Versions follow the entity's one domain (docs/architecture.md, Versions): with a mapping
`version_field`, the document's own version, and a delete gets the last published version
+ 1; without one, the publisher's clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from dualsync.logging import get_logger
from dualsync.producers.builder import EventSpec
from dualsync.producers.scanner.state import ScanState, Seen
from dualsync.producers.stores import JsonDirStore, JsonFileStore, JsonLinesStore
from dualsync.producers.stores._base import as_document
from dualsync.producers.stores._files import UnreadableFileError, read_json_stable, stamp_of
from dualsync.producers.stores.json_lines import parse_lines

__all__ = ["PassResult", "Publish", "Scanner", "digest"]

log = get_logger(__name__)

#: sends a chunk of events (a `Publisher.publish_many`)
Publish = Callable[[list[EventSpec]], Any]
CHUNK = 500
_WHOLE_FILE = "$file"


def digest(doc: Any) -> str:
    """Content hash of a record, independent of key order and whitespace."""
    return hashlib.blake2b(
        orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).hexdigest()


def _stamp_text(st: Any) -> str:
    s = stamp_of(st) if not hasattr(st, "inode") else st
    return f"{s.inode}:{s.size}:{s.mtime_ns}"


@dataclass(slots=True)
class PassResult:
    """What one pass found and published."""

    entity: str
    upserts: int = 0
    deletes: int = 0
    unchanged: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # path or key -> why


class Scanner:
    """Scans one entity's store and publishes the differences."""

    def __init__(
        self,
        store: JsonDirStore | JsonFileStore | JsonLinesStore,
        state: ScanState,
        publish: Publish,
        *,
        app_versions: bool = False,
    ) -> None:
        self.store = store
        self.entity = store.entity
        self.state = state
        self._publish = publish
        self._app = app_versions

    async def baseline(self) -> PassResult:
        """Record every record as it is now as already published, publishing nothing.

        Run it just *before* a backfill of the same entity: the backfill snapshots what
        is there, and every change after the baseline is published by the next pass, with
        a later version than the backfill's. (After the backfill, edits made in between
        would be missed.)
        """
        publish, self._publish = self._publish, _discard
        try:
            return await self.scan()
        finally:
            self._publish = publish

    async def scan(self) -> PassResult:
        """One full pass."""
        if isinstance(self.store, JsonLinesStore):
            return await self._scan_lines(self.store)
        return await self._scan_records()

    # -- records (json_dir, json_file) ----------------------------------------------------
    def _read_changed(
        self, stamps: dict[str, str], res: PassResult
    ) -> tuple[dict[str, Any] | None, dict[str, str], set[str]]:
        """(records read now by key or None = all unchanged, new stamps, keys present)."""
        store = self.store
        if isinstance(store, JsonFileStore):
            try:
                st = store.path.stat()
            except FileNotFoundError:
                return {}, {}, set()
            if stamps.get(_WHOLE_FILE) == _stamp_text(st):
                return None, {}, set()
            try:
                records, _, stamp = store.snapshot()
            except UnreadableFileError as exc:
                res.skipped[str(exc.path)] = exc.why
                return None, {}, set()
            whole = {_WHOLE_FILE: _stamp_text(stamp)} if stamp is not None else {}
            return dict(records), whole, set(records)
        assert isinstance(store, JsonDirStore)  # noqa: S101 - the only other kind here
        read: dict[str, Any] = {}
        new: dict[str, str] = {}
        paths = store.paths()
        for key, path in paths.items():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if stamps.get(key) == _stamp_text(st):
                continue
            try:
                got = read_json_stable(path)
            except UnreadableFileError as exc:
                res.skipped[str(exc.path)] = exc.why
                continue
            if got is not None:
                read[key] = got[0]
                new[key] = _stamp_text(got[1])
        return read, new, set(paths)

    async def _scan_records(self) -> PassResult:
        res = PassResult(self.entity)
        seen = await self.state.records()
        stamps = await self.state.files()
        read, new_stamps, present = await _in_thread(self._read_changed, stamps, res)
        if read is None:  # one big file, unchanged (or unreadable): nothing to do
            res.unchanged = len(seen)
            return res
        whole = isinstance(self.store, JsonFileStore)
        specs: list[tuple[EventSpec, str, Seen | None]] = []
        for key in sorted(read):
            doc = as_document(read[key])
            d = digest(doc)
            old = seen.get(key)
            if old is not None and old.digest == d:
                res.unchanged += 1
                continue
            version = self._version(key, doc, res)
            if version is False:
                continue
            specs.append(
                (EventSpec(self.entity, key, "upsert", doc, version), key, Seen(d, version or 0))
            )
        if not whole:
            res.unchanged += sum(1 for k in seen if k in present and k not in read)
        gone = sorted(k for k in seen if k not in present)
        for key in gone:
            version = seen[key].version + 1 if self._app else None
            specs.append((EventSpec(self.entity, key, "delete", None, version), key, None))
        await self._send(specs, res, new_stamps, files_gone=[] if whole else gone)
        return res

    def _version(self, key: str, doc: dict[str, Any], res: PassResult) -> int | bool | None:
        if not self._app:
            return None
        v = self.store.version_of(doc)
        if v is None:
            res.skipped[key] = "no version: the mapping's version_field is missing or unreadable"
            log.warning("scan_record_skipped", entity=self.entity, key=key, why=res.skipped[key])
            return False
        return v

    async def _send(
        self,
        specs: list[tuple[EventSpec, str, Seen | None]],
        res: PassResult,
        stamps: dict[str, str],
        *,
        files_gone: list[str],
    ) -> None:
        for i in range(0, len(specs), CHUNK):
            part = specs[i : i + CHUNK]
            await _maybe_await(self._publish([s for s, _, _ in part]))
            ups = {k: v for _, k, v in part if v is not None}
            gone = [k for _, k, v in part if v is None]
            res.upserts += len(ups)
            res.deletes += len(gone)
            await self.state.save(
                records=ups, gone=gone,
                files={k: stamps[k] for k in ups if k in stamps},
            )  # fmt: skip
        # stamps of files read but unchanged in content, the whole file's, vanished files
        rest = {k: v for k, v in stamps.items() if k not in {k for _, k, _ in specs}}
        await self.state.save(files=rest, files_gone=files_gone)

    # -- json_lines ----------------------------------------------------------------------
    async def _scan_lines(self, store: JsonLinesStore) -> PassResult:
        res = PassResult(self.entity)
        files = await self.state.files()
        for name in store.files():
            prev = files.get(name, "0:0:0").split(":")
            specs, stamp = await _in_thread(self._new_lines, store, name, prev, res)
            for i in range(0, len(specs), CHUNK):
                await _maybe_await(self._publish(specs[i : i + CHUNK]))
            res.upserts += len(specs)
            if stamp is not None:
                await self.state.save(files={name: stamp})
        return res

    def _new_lines(
        self, store: JsonLinesStore, name: str, prev: list[str], res: PassResult
    ) -> tuple[list[EventSpec], str | None]:
        path = store.root / name
        try:
            st = path.stat()
            ino, offset, lines = int(prev[0]), int(prev[1]), int(prev[2])
            if ino != st.st_ino or st.st_size < offset:  # rotated or truncated: from the top
                offset, lines = 0, 0
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return [], None
        values, used, bad = parse_lines(data)
        specs = []
        for n, value in enumerate(values, start=lines + 1):
            key = f"{name}:{n}"
            if value is None:
                if n - lines in bad:
                    res.skipped[key] = "not valid JSON"
                    log.warning(
                        "scan_line_skipped", entity=self.entity, key=key, why="not valid JSON"
                    )
                continue
            doc = as_document(value)
            version = self._version(key, doc, res)
            if version is not False:
                specs.append(EventSpec(self.entity, key, "upsert", doc, version))
        return specs, f"{st.st_ino}:{offset + used}:{lines + len(values)}"


def _discard(_specs: list[EventSpec]) -> None:
    """The publish function of a baseline pass."""


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio  # noqa: PLC0415 - keeps the import list of the hot helpers short

    return await asyncio.to_thread(fn, *args)


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value
