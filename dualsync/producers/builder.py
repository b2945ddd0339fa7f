"""Turn what an application says ("users/42 changed to this document") into stream entries.

Shared by the async and sync publishers, so both produce byte-identical events: the
same routing, versions, reference-event rule and signatures. Versions follow the
one-domain-per-entity rule of `dualsync.producers.domains`: an app-supplied version is
used as is and never fed into the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from dualsync.producers.clock import HybridClock, uuid7
from dualsync.producers.domains import VersionDomains
from dualsync.schema.codec import build_fields, format_time
from dualsync.schema.envelope import ENTITY_PATTERN, Op
from dualsync.schema.errors import EnvelopeError
from dualsync.schema.extjson import dumps_payload
from dualsync.schema.streams import shard_for, stream_key

__all__ = ["BuiltEvent", "EventBuilder", "EventSpec", "Published"]

# fullmatch: `^...$` with re.match lets a trailing newline through ("users\n")
_ENTITY: Final = re.compile(ENTITY_PATTERN.removeprefix("^").removesuffix("$"))
_SOURCE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MAX_KEY: Final = 512
_MAX_TRACE: Final = 128
_MAX_VERSION: Final = 2**63


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One change, as the legacy application describes it."""

    entity: str
    key: str
    op: Op | str = Op.UPSERT
    payload: dict[str, Any] | None = None
    version: int | None = None
    trace_id: str | None = None
    occurred_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """What happened to one published event."""

    event_id: str
    stream: str
    version: int
    #: the stream entry id, or None while the event waits in the local spool
    entry_id: str | None
    spooled: bool = False
    ref: bool = False


@dataclass(frozen=True, slots=True)
class BuiltEvent:
    """A ready-to-send stream entry."""

    stream: str
    fields: dict[str, str]
    event_id: str
    version: int
    ref: bool


@dataclass(slots=True)
class EventBuilder:
    """Validates, versions, routes, sizes and signs events."""

    source: str
    prefix: str = "dualsync"
    shards: int = 4
    max_payload_bytes: int = 1024 * 1024
    sign_key: bytes | None = None
    clock: HybridClock = field(default_factory=HybridClock)
    domains: VersionDomains = field(default_factory=VersionDomains)

    def __post_init__(self) -> None:
        if not _SOURCE.fullmatch(self.source):
            raise EnvelopeError(
                f"{self.source[:64]!r} is not a source name: 1-128 of A-Z a-z 0-9 _ . : -",
                field="source",
            )

    def build(self, spec: EventSpec, now: str | None = None) -> BuiltEvent:
        """Build one entry; raise `EnvelopeError` for input no worker could accept.

        `now` is the RFC 3339 time used when the spec has no `occurred_at`. Raises
        `VersionDomainError` if the spec's version domain is not its entity's.
        """
        op = _op(spec.op)
        new = self.domains.check([(spec.entity, op.value, spec.version)])
        built = self._build(spec, op, now)
        self.domains.remember(new)
        return built

    def build_many(self, specs: Iterable[EventSpec]) -> list[BuiltEvent]:
        """Build a batch, all or nothing; events without `occurred_at` share one timestamp."""
        items = list(specs)
        ops = [_op(s.op) for s in items]
        new = self.domains.check(
            [(s.entity, o.value, s.version) for s, o in zip(items, ops, strict=True)]
        )
        now = format_time(dt.datetime.now(dt.UTC))
        built = [self._build(s, o, now) for s, o in zip(items, ops, strict=True)]
        self.domains.remember(new)
        return built

    def _build(self, spec: EventSpec, op: Op, now: str | None) -> BuiltEvent:
        if not _ENTITY.fullmatch(spec.entity):
            raise EnvelopeError(f"{spec.entity[:64]!r} is not an entity name", field="entity")
        if not spec.key or len(spec.key) > _MAX_KEY or "\x00" in spec.key:
            raise EnvelopeError("must be 1-512 characters without NUL", field="key")
        if op is Op.UPSERT and spec.payload is None:
            raise EnvelopeError("an upsert needs the full document", field="payload")
        if spec.payload is not None and not isinstance(spec.payload, dict):
            raise EnvelopeError("the after-image must be an object (a dict)", field="payload")
        if spec.trace_id is not None and (
            not spec.trace_id or len(spec.trace_id) > _MAX_TRACE or "\x00" in spec.trace_id
        ):
            raise EnvelopeError("must be 1-128 characters without NUL", field="trace_id")
        if spec.version is not None and (
            type(spec.version) is not int or not 0 <= spec.version < _MAX_VERSION
        ):
            raise EnvelopeError("must be an integer in [0, 2^63)", field="version")
        # An app version is the app's (its own domain): it never feeds the clock.
        version = spec.version if spec.version is not None else self.clock.now()
        payload_json: str | None = None
        ref = False
        if op is Op.UPSERT and spec.payload is not None:
            raw = dumps_payload(spec.payload)
            if len(raw) > self.max_payload_bytes:
                ref = True  # too big for the stream: the worker re-reads the legacy record
            else:
                payload_json = raw.decode()
        event_id = uuid7()
        if spec.occurred_at is not None:
            occurred = format_time(spec.occurred_at)
        else:
            occurred = now or format_time(dt.datetime.now(dt.UTC))
        fields = build_fields(
            event_id=event_id,
            source=self.source,
            entity=spec.entity,
            key=spec.key,
            op=op.value,
            version=version,
            occurred_at=occurred,
            payload_json=payload_json,
            ref=ref,
            trace_id=spec.trace_id,
            sign_key=self.sign_key,
        )
        stream = stream_key(self.prefix, shard_for(spec.entity, spec.key, self.shards))
        return BuiltEvent(stream, fields, event_id, version, ref)


def _op(op: Op | str) -> Op:
    if type(op) is Op:
        return op
    try:
        return Op(op)
    except ValueError:
        raise EnvelopeError(
            f"{str(op)[:16]!r} is not an op: upsert or delete", field="op"
        ) from None
