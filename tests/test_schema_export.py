"""The committed JSON Schema of the envelope matches the pydantic model."""

from __future__ import annotations

import orjson

from dualsync.schema.export import SCHEMA_PATH, envelope_json_schema, render


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_bytes() == render(), (
        "envelope.schema.json is stale: run `python -m dualsync.schema.export` and commit it"
    )


def test_schema_describes_the_stream_fields() -> None:
    schema = envelope_json_schema()
    assert set(schema["required"]) == {
        "event_id",
        "source",
        "entity",
        "key",
        "op",
        "version",
        "occurred_at",
    }
    assert schema["additionalProperties"] is False
    assert all(
        p.get("type") == "string" or "$ref" in p or "enum" in p
        for p in schema["properties"].values()
    )
    assert orjson.loads(SCHEMA_PATH.read_bytes())["properties"]["version"]["pattern"]
