"""The unit the SQL layer applies: one (entity, key) change, already mapped to rows."""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from dualsync.schema.mapping import RowSet

__all__ = ["Change", "collapse", "in_key_order"]


class Change(NamedTuple):
    """A decoded, mapped event: what the version gate decides on (a tuple: one is built
    per event, ten times faster than a frozen dataclass)."""

    entity: str
    key: str
    version: int
    deleted: bool
    event_id: str
    #: mapped rows of an upsert; None for a delete
    rows: RowSet | None


def collapse(changes: Iterable[Change]) -> list[Change]:
    """Keep the highest version per (entity, key), sorted by (entity, key).

    Postgres refuses to touch one row twice in one `INSERT ... ON CONFLICT` ("command
    cannot affect row a second time"), and sorting gives every worker the same lock
    order, so concurrent batches cannot deadlock on row_state. On equal versions the
    first seen wins (a duplicate delivery carries the same after-image).
    """
    best: dict[tuple[str, str], Change] = {}
    for c in changes:
        k = (c.entity, c.key)
        cur = best.get(k)
        if cur is None or c.version > cur.version:
            best[k] = c
    return in_key_order(best.values())


_ENTITY_KEY = itemgetter(0, 1)


def in_key_order(changes: Iterable[Change]) -> list[Change]:
    """Changes already one per (entity, key), sorted by it as `collapse` sorts them."""
    return sorted(changes, key=_ENTITY_KEY)
