"""Parse JSON text with every integer exact: what payloads and legacy JSON files go through.

orjson, the serialiser here, turns integers beyond 64 bits into floats when it parses
(an id of 20 digits would lose its last ones, silently). The stdlib parser keeps them but
is 4-7x slower. msgspec's decoder keeps them (Python ints of any size), is as strict as
orjson (no NaN or Infinity, no byte order mark, no lone surrogates, valid UTF-8 only, no
trailing commas) and parses as fast or faster: 0.5 µs for a 400-byte document and 56 µs
for a 1536-number embedding, where orjson with the check that sent big integers to the
stdlib took 1.2 and 71 (`bench/vectors.py` profile, 2026-12-01).

Its error messages name a byte offset, never the text around it: they may go into dead
letters and logs, where a payload's secrets must not.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = ["JSONTextError", "loads_exact"]

_DECODER: Final = msgspec.json.Decoder()


class JSONTextError(ValueError):
    """The text is not valid JSON; the message says where (a byte offset) or why."""


def loads_exact(data: bytes | bytearray | memoryview | str) -> Any:
    """The value of a JSON text (objects as dicts, arrays as lists, integers exact).

    Raises `JSONTextError` when the text is not valid JSON or nests deeper than the
    interpreter's recursion limit allows.
    """
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError (a number out of range) included
        raise JSONTextError(str(exc)) from None
    except RecursionError:
        raise JSONTextError("nested too deeply (arrays or objects inside each other)") from None
