"""Sampled verify of one entity: keys from both sides, compared field by field, rechecked.

Keys are drawn from the legacy store (finds what is missing in Postgres) and from the gate's
row_state (finds what Postgres has extra), both seeded. Each key is classified `match`,
`missing_in_target`, `extra_in_target` or `mismatch` (with the fields). A key whose
difference can be explained by an event on its way is `in_flight`: the legacy version is
newer than row_state's, or an unacknowledged event for it sits in a stream. Every key that
does not match is read again after `grace_s`, up to `generations` times; only a difference
that persists through all of them, with nothing in flight, is confirmed drift. That is what
keeps the report from crying wolf while producers and backfills are writing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dualsync.errors import PermanentError
from dualsync.ops.verify.bound import upper_bound
from dualsync.ops.verify.canon import Canonicalizer, diff
from dualsync.ops.verify.fetch import Sides, fetch_sides, sample_target_keys
from dualsync.ops.verify.inflight import InFlight
from dualsync.producers.stores import FileStore
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.legacy import LegacyStore

__all__ = ["Finding", "SampleResult", "check_keys", "verify_sample"]

MATCH = "match"
MISSING = "missing_in_target"
EXTRA = "extra_in_target"
MISMATCH = "mismatch"
IN_FLIGHT = "in_flight"
BATCH = 1000


@dataclass(slots=True)
class Finding:
    """One key that did not match at first sight."""

    key: str
    kind: str
    fields: list[str] = field(default_factory=list)
    legacy_version: int | None = None
    pg_version: int | None = None
    legacy_fp: str | None = None
    pg_fp: str | None = None
    generation: int = 0
    confirmed: bool = False


@dataclass(slots=True)
class SampleResult:
    """What one entity's sampled verify found."""

    entity: str
    sampled: int = 0
    matched: int = 0
    in_flight: int = 0
    findings: list[Finding] = field(default_factory=list)

    def confirmed(self, kind: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.confirmed and (kind is None or f.kind == kind)]

    @property
    def drift(self) -> int:
        return len(self.confirmed())

    @property
    def rate(self) -> float:
        return self.drift / self.sampled if self.sampled else 0.0

    @property
    def bound(self) -> float:
        return upper_bound(self.drift, self.sampled)

    def field_counts(self) -> Counter[str]:
        return Counter(f for x in self.confirmed(MISMATCH) for f in x.fields)


def _classify(
    em: Any,
    canon: Canonicalizer,
    key: str,
    sides: Sides,
    flying: InFlight,
    *,
    plain_json: bool = False,
) -> Finding:
    rec = sides.legacy.get(key)
    row = sides.rows.get(key)
    version, _deleted = sides.state.get(key, (None, False))
    legacy_version = rec.version if rec is not None else None
    f = Finding(key, MATCH, legacy_version=legacy_version, pg_version=version)
    if rec is None and row is None:
        return f
    if rec is not None and row is None:
        f.kind = MISSING
    elif rec is None and row is not None:
        f.kind = EXTRA
    if rec is not None:
        try:
            # A Mongo document holds BSON types: take it the way its event would arrive. A
            # JSON file's is plain JSON already, and the round trip would only cost time.
            doc = rec.doc if plain_json else loads_payload(dumps_payload(rec.doc))
            rows = em.to_rows(key, doc)
            legacy = canon.record(rows.values, rows.children)
        except PermanentError:
            legacy = None  # a document the mapping refuses is dead-lettered, never applied
        if legacy is not None:
            f.legacy_fp = canon.fingerprint(legacy)
        if row is not None and legacy is not None:
            target = canon.record(row, sides.children.get(key, {}))
            f.pg_fp = canon.fingerprint(target)
            f.fields = diff(legacy, target)
            f.kind = MISMATCH if f.fields else MATCH
        elif row is not None:
            f.kind = MISMATCH
            f.fields = ["$document"]
    newer = legacy_version is not None and (version is None or legacy_version > version)
    if f.kind != MATCH and (newer or (em.name, key) in flying):
        f.kind = IN_FLIGHT
    return f


async def check_keys(
    pool: AsyncConnectionPool[Any],
    em: Any,
    store: LegacyStore,
    canon: Canonicalizer,
    keys: list[str],
    flying: InFlight,
    after: Callable[[], Awaitable[InFlight]] | None = None,
) -> list[Finding]:
    """Both sides of `keys`, classified. `flying`: the events in flight before the reads;
    `after`, if given, looks again once both sides are read, and a key in flight in either
    look is in flight. One look before is not enough under live writes: a document
    rewritten and its event published, applied and acked while the sides are being read
    shows the new document beside the old row, and no event in flight at the look."""
    read: list[tuple[list[str], Sides]] = []
    for i in range(0, len(keys), BATCH):
        part = keys[i : i + BATCH]
        async with pool.connection() as conn:
            read.append((part, await fetch_sides(conn, em, store, part)))
    if after is not None:
        flying = flying | await after()
    plain = isinstance(store, FileStore)
    return [
        _classify(em, canon, k, sides, flying, plain_json=plain)
        for part, sides in read
        for k in part
    ]


async def verify_sample(
    pool: AsyncConnectionPool[Any],
    em: Any,
    store: LegacyStore,
    canon: Canonicalizer,
    *,
    samples: int,
    seed: int,
    in_flight: Any,
    grace_s: float = 2.0,
    generations: int = 3,
) -> SampleResult:
    """Verify one entity; `in_flight()` is awaited before and after each read of both sides
    for unapplied events."""
    half = max(samples // 2, 1)
    legacy_keys = await store.sample_keys(samples - half, seed)
    keys: dict[str, None] = {}
    for k in legacy_keys:
        try:
            keys[em.canonical_key(k)] = None
        except PermanentError:
            continue  # not a key of this entity's strategy: never applied, nothing to compare
    async with pool.connection() as conn:
        for k in await sample_target_keys(conn, em.name, half, seed):
            keys[k] = None
    result = SampleResult(em.name, sampled=len(keys))
    first = await check_keys(pool, em, store, canon, list(keys), await in_flight(), in_flight)
    result.matched = sum(1 for f in first if f.kind == MATCH)
    open_ = [f for f in first if f.kind != MATCH]
    for generation in range(1, generations + 1):
        if not open_:
            break
        await asyncio.sleep(grace_s)
        again = await check_keys(
            pool, em, store, canon, [f.key for f in open_], await in_flight(), in_flight
        )
        for f in again:
            f.generation = generation
        settled = [f for f in again if f.kind == MATCH]
        result.in_flight += len(settled)  # it differed, then the pending event landed
        open_ = [f for f in again if f.kind != MATCH]
    for f in open_:
        if f.kind == IN_FLIGHT:
            result.in_flight += 1
        else:
            f.confirmed = True
        result.findings.append(f)
    return result
