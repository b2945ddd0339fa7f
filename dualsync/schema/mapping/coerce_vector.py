"""BSON binary vectors (float32), which `vector` columns take besides JSON arrays of numbers.

A MongoDB app may store embeddings as BSON binary vectors (`BinData` subtype 9, dtype
float32: a 0x27 byte, a padding byte of 0, then little-endian float32s); their Extended
JSON is `{"$binary": {"base64": ..., "subType": "09"}}`. Such a vector reaches the
mapping as a `bson.Binary` and is unpacked at C speed, with no JSON number to parse: the
values pgvector stores (float32) exactly.
"""

from __future__ import annotations

import sys
from array import array
from typing import Final

from bson.binary import Binary

from dualsync.schema.mapping.coerce_base import CoercionError

__all__ = ["BSON_VECTOR_SUBTYPE", "bson_vector"]

#: `BinData` subtype of a BSON vector
BSON_VECTOR_SUBTYPE: Final = 9
_FLOAT32: Final = 0x27
#: the dtype and padding bytes before the values
_HEADER: Final = 2


def bson_vector(b: Binary) -> list[float]:
    """The floats of a BSON binary vector of dtype float32."""
    if len(b) < _HEADER or b[0] != _FLOAT32 or b[1] != 0 or (len(b) - _HEADER) % 4:
        kind = f"0x{b[0]:02x}" if len(b) else "none"
        raise CoercionError(
            f"a BSON vector must hold float32 values (dtype 0x27, padding 0), not dtype {kind}"
        )
    values = array("f")
    values.frombytes(memoryview(b)[_HEADER:])
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()
