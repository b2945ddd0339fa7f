"""Generate `envelope.schema.json` from `WireEnvelope`: `python -m dualsync.schema.export`.

The file is committed so Node and PHP publishers (and their tests) read the contract
without Python; `tests/test_schema_export.py` fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

import orjson

from dualsync.schema.envelope import WireEnvelope

__all__ = ["SCHEMA_PATH", "envelope_json_schema", "render"]

SCHEMA_PATH: Final = Path(__file__).with_name("envelope.schema.json")


def envelope_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a stream entry's fields."""
    schema = WireEnvelope.model_json_schema()
    # Optional fields are *absent* from a stream entry, never null: drop the null branch.
    for prop in schema["properties"].values():
        options = prop.pop("anyOf", None)
        if options:
            prop.update(next(o for o in options if o.get("type") != "null"))
            prop.pop("default", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://dualsync.dev/schema/envelope-1.json"
    schema["allOf"] = [
        {
            "if": {"properties": {"op": {"const": "delete"}}},
            "then": {"not": {"required": ["payload"]}},
        },
        {
            "if": {
                "properties": {"op": {"const": "upsert"}},
                "not": {"properties": {"ref": {"const": "true"}}, "required": ["ref"]},
            },
            "then": {"required": ["payload"]},
        },
    ]
    return schema


def render() -> bytes:
    """The file's exact bytes."""
    return (
        orjson.dumps(envelope_json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        + b"\n"
    )


def main() -> int:
    """Write the schema file; `--check` exits 1 when the committed file is stale."""
    if "--check" in sys.argv[1:]:
        return 0 if SCHEMA_PATH.read_bytes() == render() else 1
    SCHEMA_PATH.write_bytes(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
