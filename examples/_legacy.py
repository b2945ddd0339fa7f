"""What a legacy generator yields, and the Mongo-shaped values it is made of.

ObjectIds are minted the way a driver mints them (4-byte seconds, 5-byte process value,
3-byte counter) but from the generator's own `random.Random`, never from the clock or
the OS, so a seed always yields the same keys. Instants have BSON's precision
(milliseconds, UTC), as documents read back from MongoDB do.
"""

from __future__ import annotations

import datetime as dt
import random
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

__all__ = [
    "LegacyDoc",
    "ObjectIds",
    "Unique",
    "between",
    "micros",
    "mongo_documents",
    "optional",
    "version_of",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class LegacyDoc:
    """One legacy document: its entity (collection), `_id` hex, version and the document."""

    entity: str
    key: str
    version: int
    doc: dict[str, Any]


class ObjectIds:
    """Mints unique, deterministic ObjectIds whose timestamp is the document's creation."""

    def __init__(self, rng: random.Random, processes: int = 3) -> None:
        self._rng = rng
        # A few app servers, each with its own process value and counter, like a real fleet.
        self._procs = [rng.randbytes(5) for _ in range(processes)]
        self._counters = [rng.randrange(1 << 24) for _ in range(processes)]

    def mint(self, at: dt.datetime) -> ObjectId:
        """A new ObjectId generated "at" `at` by one of the servers."""
        p = self._rng.randrange(len(self._procs))
        self._counters[p] = (self._counters[p] + 1) % (1 << 24)
        seconds = struct.pack(">I", int((at - _EPOCH).total_seconds()))
        return ObjectId(seconds + self._procs[p] + self._counters[p].to_bytes(3, "big"))


class Unique:
    """Hands out values of a maker never handed out before (legacy keys, unique columns)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, make: Callable[[], str]) -> str:
        """A value of `make` never returned before: draws again until one is new."""
        while (value := make()) in self._seen:
            pass
        self._seen.add(value)
        return value


def between(rng: random.Random, lo: dt.datetime, hi: dt.datetime) -> dt.datetime:
    """A random instant in [lo, hi] with millisecond precision (lo when hi <= lo)."""
    span = int((hi - lo).total_seconds() * 1000)
    offset = rng.randint(0, span) if span > 0 else 0
    start = lo.replace(microsecond=lo.microsecond // 1000 * 1000)
    return start + dt.timedelta(milliseconds=offset)


def micros(at: dt.datetime) -> int:
    """Microseconds since the epoch: the version dualsync derives from a date field."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def version_of(doc: dict[str, Any]) -> int:
    """The document's version: `updatedAt` (else `createdAt`) in µs, else 1 (first write)."""
    stamp = doc.get("updatedAt") or doc.get("createdAt")
    return micros(stamp) if isinstance(stamp, dt.datetime) else 1


def optional(
    rng: random.Random, doc: dict[str, Any], key: str, value: Any, missing: float = 0.1
) -> None:
    """Set `key`; or leave it out (probability `missing`); or set it to null (as often)."""
    roll = rng.random()
    if roll >= 2 * missing:
        doc[key] = value
    elif roll >= missing:
        doc[key] = None


def mongo_documents(
    entities: Iterable[str],
    builders: Mapping[str, Callable[[], dict[str, Any]]],
    n_per_entity: int,
) -> Iterator[LegacyDoc]:
    """`n_per_entity` documents of each collection in `entities` order (parents first),
    each made by its builder and keyed by its `_id`, versioned by `version_of`."""
    for entity in entities:
        make = builders[entity]
        for _ in range(n_per_entity):
            doc = make()
            yield LegacyDoc(entity, str(doc["_id"]), version_of(doc), doc)
