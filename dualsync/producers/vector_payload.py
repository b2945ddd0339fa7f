"""Snapshot events carry their embeddings as BSON binary vectors, not JSON arrays.

A 1536-number embedding is ~33 KB of JSON text, and parsing it is most of what a worker
spends on such an event (bench/vectors.py: JSON arrays apply at about a third of the
events/s of the same events with BSON binary vectors). When dualsync itself builds the
events from legacy documents (the stream backfill, the change scanner, `repair`), it
sends the cheap form: a `bson.Binary` vector of float32s (`$binary` subtype 9, as
`Binary.from_vector`, the Node SDK's `ext.vector()` and the PHP SDK's `Ext::vector()`
write it), which the worker unpacks at C speed. pgvector stores float32, so the row is
the same either way (the float64 a JSON file holds is rounded to the nearest float32 by
both paths).

Only a field the mapping reads for `vector` columns and for nothing else is converted (a
field that also feeds a `jsonb` column, a child table, the version or a secret keeps the
document's own value), and only a value that is a list of finite floats within float32's
range: anything else (ints, strings, a wrong shape) is sent as it is, and the worker
coerces or refuses it exactly as before. A dead letter of such an event (a bad field
elsewhere in the document) shows the vector as its `$binary` value.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from bson.binary import Binary, BinaryVectorDtype

from dualsync.producers.builder import EventSpec
from dualsync.schema.mapping.coerce_vector import finite_floats

if TYPE_CHECKING:
    from dualsync.schema.mapping import EntityMapping, MappingSet

__all__ = ["BinaryVectors", "vector_fields"]


def _head(source: str) -> str:
    """The top-level document field a source path starts from."""
    return source.split(".", 1)[0]


def vector_fields(em: EntityMapping) -> tuple[str, ...]:
    """The top-level fields of `em` read only by `vector` columns (plain names)."""
    vectors = {c.field for c in em.columns if c.type == "vector" and c.field is not None}
    others = {_head(c.source) for c in em.columns if c.type != "vector" or c.field is None}
    others |= {_head(ch.source) for ch in em.children}
    others |= {_head(f) for f in em.secret_fields}
    if em.version_field is not None:
        others.add(_head(em.version_field))
    return tuple(sorted(f for f in vectors if f not in others))


def _packed(value: Any) -> Binary | None:
    """`value` as a float32 BSON vector, or None when it is not a list of finite floats
    that float32 can hold."""
    if type(value) is not list or not value or not finite_floats(value):
        return None
    try:
        return Binary.from_vector(value, BinaryVectorDtype.FLOAT32)
    except (OverflowError, ValueError):  # a value beyond float32's range
        return None


class BinaryVectors:
    """Per entity of a mapping set: its documents with embeddings as binary vectors."""

    def __init__(self, ms: MappingSet) -> None:
        self._fields = {name: vector_fields(ms.entity(name)) for name in ms.entities}

    def payload(self, entity: str, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` itself when nothing converts, else a shallow copy with the vectors packed
        (the record's own document is never changed)."""
        fields = self._fields.get(entity)
        if not fields:
            return doc
        out: dict[str, Any] | None = None
        for f in fields:
            packed = _packed(doc.get(f))
            if packed is not None:
                if out is None:
                    out = dict(doc)
                out[f] = packed
        return doc if out is None else out

    def spec(self, spec: EventSpec) -> EventSpec:
        """`spec` with its payload's vectors packed (itself when nothing converts)."""
        if spec.payload is None:
            return spec
        payload = self.payload(spec.entity, spec.payload)
        return spec if payload is spec.payload else dataclasses.replace(spec, payload=payload)
