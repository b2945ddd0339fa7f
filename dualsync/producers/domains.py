"""One version domain per entity: versions come from the app, or from the clock, never both.

The version gate keeps the highest version per key, so versions of one entity must be
comparable. A counter (or `updatedAt` in µs) and the publisher's hybrid clock (µs since
1970, ~1.7e15) are not: a delete versioned by the clock after counter upserts can never
be beaten by a later counter, and the re-created key stays deleted forever, silently.

The rule (the Node and PHP publishers follow it too): an event with `version=` is in the
"app" domain, one without it in the "clock" domain. A publisher remembers each entity's
domain from its first event, or is told upfront (`app_versions`: entities whose every
event carries the app's version); an event in the other domain raises
`VersionDomainError` before anything is sent or spooled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

from dualsync.producers.errors import VersionDomainError
from dualsync.schema.envelope import Op

__all__ = ["APP", "CLOCK", "Domain", "VersionDomains"]

Domain = Literal["app", "clock"]
APP: Final = "app"
CLOCK: Final = "clock"

_APP_EXAMPLE: Final = {
    Op.DELETE.value: "the counter + 1 or the deletion time in µs",
    Op.UPSERT.value: "the counter or updatedAt in µs",
}


def _mixing(entity: str, known: Domain, op: str, *, declared: bool) -> VersionDomainError:
    if known == APP:
        tail = (
            "or remove it from app_versions and never pass versions for it"
            if declared
            else "or never pass versions for it"
        )
        return VersionDomainError(
            f"entity {entity!r} takes versions from the app (counter/updatedAt); pass "
            f"version= for its {op}s too (e.g. {_APP_EXAMPLE.get(op, 'the app version')}), " + tail
        )
    return VersionDomainError(
        f"entity {entity!r} takes versions from the publisher's clock (its first event had "
        "no version=); never pass version= for it, or pass version= for every one of its "
        "events, deletes included (declare it in app_versions= to enforce that)"
    )


class VersionDomains:
    """The version domain of every entity one publisher has published (or was told)."""

    def __init__(self, app_versions: Iterable[str] = ()) -> None:
        if isinstance(app_versions, str | bytes):
            raise TypeError(
                f"app_versions must be a collection of entity names, not {app_versions!r}: "
                f"write app_versions=[{app_versions!r}]"
            )
        self._declared = frozenset(app_versions)
        self._known: dict[str, Domain] = dict.fromkeys(self._declared, APP)

    def check(self, events: Sequence[tuple[str, str, int | None]]) -> dict[str, Domain]:
        """Check (entity, op, version) triples; return the entities new to this publisher.

        Raises `VersionDomainError` for the first event whose domain differs from its
        entity's; nothing is remembered until `remember()` (after the batch is built).
        """
        new: dict[str, Domain] = {}
        for entity, op, version in events:
            domain: Domain = APP if version is not None else CLOCK
            known = self._known.get(entity) or new.get(entity)
            if known is None:
                new[entity] = domain
            elif known != domain:
                raise _mixing(entity, known, op, declared=entity in self._declared)
        return new

    def remember(self, new: Mapping[str, Domain]) -> None:
        """Record the domains of entities first seen in a batch that was accepted."""
        self._known.update(new)

    def domain(self, entity: str) -> Domain | None:
        """The entity's domain, or None before its first event."""
        return self._known.get(entity)
