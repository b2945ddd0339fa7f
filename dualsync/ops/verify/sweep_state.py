"""What a sweep has done so far, as a checkpoint it can resume from after a SIGKILL.

A sweep is two phases. `digest`: each side streams once, in its own order, and the state is
per side the resume point (the last key of the last chunk counted), whether it is done,
and the per-bucket digests so far; a chunk is counted whole or not at all, so the digests
always describe exactly the records before the resume point. `compare`: the differing
buckets are read again key by key, and the state is per side the resume point of that
stream, the counts so far and the keys that did not match at first look (only keys:
their findings are rebuilt by reading them again, which the recheck does anyway).

Completed work is never redone: a resumed digest phase continues each side after its last
counted chunk, a resumed compare phase after its last compared chunk. What was read after
the last checkpoint is read again (at most `checkpoint_every_s` of work).

A checkpoint belongs to a plan: entity, bucket count, canonical-form version, a hash of the
entity's mapping (columns, types, secrets, children) and a check value of the fingerprint
key. A checkpoint of another plan is ignored, and the sweep starts over: digests made with
another key or mapping cannot be added to. The check value is a fingerprint of a constant,
never the key itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from dualsync.ops.verify.canon import CANON_VERSION, Canonicalizer, CanonRecord
from dualsync.ops.verify.sweep_hash import Digests

__all__ = ["Checkpoint", "CompareState", "SideState", "SweepState", "plan_of"]

FORMAT: Final = 1
DIGEST: Final = "digest"
COMPARE: Final = "compare"
RECHECK: Final = "recheck"


class Checkpoint(Protocol):
    """Where a sweep keeps its state (`RunCheckpoint`: the verify_runs row)."""

    async def load(self) -> dict[str, Any] | None:
        """The last saved state, or None."""
        ...

    async def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state, durably, in one step."""
        ...


def plan_of(
    em: Any, canon: Canonicalizer, buckets: int, mapping_digest: str | None = None
) -> dict[str, Any]:
    """What a checkpoint must have been made with to be resumed: the tables' shape and,
    when known, the digest of the whole entity mapping (`store.mapping_digest`). The shape
    alone misses a change of what fills the columns (a `from:` path, a zone, a coercion):
    a sweep resumed across such a change would add digests of the old mapping to digests
    of the new one, and its run would then be recorded as a check of the new one."""
    children = [
        [cm.table, list(cm.column_names), list(cm.pg_types), list(cm.key_columns),
         sorted(c.name for c in cm.columns if c.secret)]
        for cm in em.children
    ]  # fmt: skip
    shape = orjson.dumps(
        [em.schema, em.table, list(em.key_columns), list(em.column_names), list(em.pg_types),
         sorted(c.name for c in em.columns if c.secret), children]
    )  # fmt: skip
    return {
        "format": FORMAT,
        "entity": em.name,
        "buckets": buckets,
        "canon_version": CANON_VERSION,
        "mapping": hashlib.blake2b(shape, digest_size=16).hexdigest(),
        "key_check": canon.fingerprint(CanonRecord({"dualsync.sweep": FORMAT})),
        "mapping_digest": mapping_digest,
    }


@dataclass(slots=True)
class SideState:
    """One side of the digest phase."""

    digests: Digests
    after: str | None = None
    done: bool = False
    #: records counted into the digests (over every run of this sweep)
    scanned: int = 0
    #: legacy keys the key strategy refuses (skipped, as sample.py does)
    skipped: int = 0

    def count(self, pairs: list[tuple[int, int]], last: str | None, n: int, skipped: int) -> None:
        """A whole chunk: its pairs, its last key and its size, in one step."""
        self.digests.add(pairs)
        if last is not None:
            self.after = last
        self.scanned += n
        self.skipped += skipped

    def dump(self) -> dict[str, Any]:
        return {"after": self.after, "done": self.done, "scanned": self.scanned,
                "skipped": self.skipped, **self.digests.dump()}  # fmt: skip

    @classmethod
    def load(cls, data: dict[str, Any], buckets: int) -> SideState:
        return cls(Digests.load(data, buckets), data["after"], bool(data["done"]),
                   int(data["scanned"]), int(data["skipped"]))  # fmt: skip


@dataclass(slots=True)
class CompareState:
    """The key-by-key phase over the differing buckets."""

    legacy_after: str | None = None
    legacy_done: bool = False
    target_after: str | None = None
    target_done: bool = False
    #: keys compared, and of those the ones that matched at first look
    checked: int = 0
    matched: int = 0
    #: keys that did not match at first look (rechecked before anything is confirmed)
    open: list[str] = field(default_factory=list)
    #: the compare stopped at `max_findings` open keys
    truncated: bool = False

    def dump(self) -> dict[str, Any]:
        return {"legacy_after": self.legacy_after, "legacy_done": self.legacy_done,
                "target_after": self.target_after, "target_done": self.target_done,
                "checked": self.checked, "matched": self.matched, "open": self.open,
                "truncated": self.truncated}  # fmt: skip

    @classmethod
    def load(cls, data: dict[str, Any]) -> CompareState:
        return cls(data["legacy_after"], bool(data["legacy_done"]), data["target_after"],
                   bool(data["target_done"]), int(data["checked"]), int(data["matched"]),
                   [str(k) for k in data["open"]], bool(data["truncated"]))  # fmt: skip


@dataclass(slots=True)
class SweepState:
    """Everything a resumed sweep needs."""

    plan: dict[str, Any]
    legacy: SideState
    target: SideState
    phase: str = DIGEST
    compare: CompareState = field(default_factory=CompareState)
    #: how many times this sweep was resumed from a checkpoint
    resumes: int = 0

    @classmethod
    def fresh(cls, plan: dict[str, Any]) -> SweepState:
        n = int(plan["buckets"])
        return cls(plan, SideState(Digests(n)), SideState(Digests(n)))

    def dump(self) -> dict[str, Any]:
        return {"plan": self.plan, "phase": self.phase, "resumes": self.resumes,
                "legacy": self.legacy.dump(), "target": self.target.dump(),
                "compare": self.compare.dump()}  # fmt: skip

    @classmethod
    def load(cls, data: dict[str, Any] | None, plan: dict[str, Any]) -> SweepState | None:
        """The state of a checkpoint of this plan; None when there is none, it is of
        another plan, or it cannot be read."""
        if not data or data.get("plan") != plan:
            return None
        n = int(plan["buckets"])
        try:
            return cls(plan, SideState.load(data["legacy"], n), SideState.load(data["target"], n),
                       str(data["phase"]), CompareState.load(data["compare"]),
                       int(data.get("resumes", 0)))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None
