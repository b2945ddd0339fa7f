"""One entity's shadow comparison, in the verifier's canonical form (`ops/verify/canon`).

The legacy side is the document the app's legacy read returned, snapshotted as the event
path would carry it (`dumps_payload` on the caller's path, `loads_payload` here), mapped
with the entity's `to_rows` and canonicalised: exactly what `dualsync verify` does with a
legacy record. The Postgres side is the entity's row and child rows read with the
verifier's own target queries (`ops/verify/fetch.target_queries` / `fetch_rows`) and
canonicalised by the same `Canonicalizer`. So a shadow mismatch and a verify mismatch mean
the same thing, and name the same fields (`name`, `messages.content`, `messages[]`), plus
`$missing_in_target` / `$extra_in_target` when only one side has the record.

Nothing here keeps or reports a value: secret columns are keyed fingerprints inside the
canonical records, and what leaves this module is field names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool

from dualsync.errors import PermanentError
from dualsync.ops.verify.canon import Canonicalizer, CanonRecord, diff
from dualsync.ops.verify.fetch import fetch_rows, target_queries
from dualsync.schema.extjson import dumps_payload, loads_payload

__all__ = [
    "EXTRA_FIELD",
    "MISSING_FIELD",
    "EntityComparer",
    "NotADocumentError",
    "Side",
    "snapshot",
]

MISSING_FIELD: Final = "$missing_in_target"
EXTRA_FIELD: Final = "$extra_in_target"

#: one side of a look: the record now in canonical form (None: the side has none)
Side = Callable[[], Awaitable[CanonRecord | None]]


class NotADocumentError(PermanentError):
    """The legacy read returned something that is not a document: shadow reads need the
    legacy read to return the document as the legacy store holds it (a dict, or None)."""

    reason = "shadow_not_a_document"


def snapshot(doc: Any) -> bytes | None:
    """The legacy document frozen as the event path carries it (the caller may change
    its dict after `read()` returns); None when the legacy store has no such record."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise NotADocumentError(
            f"the legacy read returned a {type(doc).__name__}, not a dict: pass a legacy "
            "function that returns the document as the legacy store holds it"
        )
    return dumps_payload(doc)


class EntityComparer:
    """Both sides of one entity, canonicalised alike."""

    def __init__(self, em: Any, canon: Canonicalizer, pool: AsyncConnectionPool[Any]) -> None:
        self.em = em
        self._canon = canon
        self._pool = pool
        self._queries = target_queries(em)  # built once per entity, as the verifier does
        self._rendered: list[bytes] | None = None

    def key(self, legacy_key: str) -> str:
        """The canonical key (raises `MappingError` for a key the strategy refuses)."""
        return str(self.em.canonical_key(legacy_key))

    def legacy_side(self, key: str, frozen: bytes | None) -> Side:
        """The legacy side from a snapshot (raises `MappingError` for a document the
        mapping refuses: it is dead-lettered, never applied, so it is no mismatch)."""

        async def side() -> CanonRecord | None:
            if frozen is None:
                return None
            rows = self.em.to_rows(key, loads_payload(frozen))
            await asyncio.sleep(0)  # CPU in short stretches: a ready caller runs between
            return self._canon.record(rows.values, rows.children)

        return side

    def reread_side(self, key: str, legacy_key: str, read: Callable[[str], Awaitable[Any]]) -> Side:
        """The legacy side read again through the app's own legacy function."""

        async def side() -> CanonRecord | None:
            return await self.legacy_side(key, snapshot(await read(legacy_key)))()

        return side

    def target_side(self, key: str) -> Side:
        """The Postgres side, through the verifier's target queries."""

        async def side() -> CanonRecord | None:
            async with self._pool.connection() as conn:
                if self._rendered is None:  # rendering a Composed costs ~1 ms a query
                    self._rendered = [q.as_bytes(conn) for q in self._queries]
                rows, children = await fetch_rows(conn, self.em, self._rendered, [key])
            row = rows.get(key)
            if row is None:
                return None
            await asyncio.sleep(0)  # let a caller whose read completed run first
            return self._canon.record(row, children.get(key, {}))

        return side

    @staticmethod
    async def look(first: Side, second: Side) -> tuple[str, ...]:
        """Read both sides (first, then second) and name what differs (empty: equal)."""
        a = await first()
        b = await second()
        await asyncio.sleep(0)
        if a is None and b is None:
            return ()
        if b is None:
            return (MISSING_FIELD,)
        if a is None:
            return (EXTRA_FIELD,)
        return tuple(diff(a, b))
