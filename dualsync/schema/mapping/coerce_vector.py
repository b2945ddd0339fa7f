"""BSON binary vectors (float32), which `vector` columns take besides JSON arrays of numbers.

A MongoDB app may store embeddings as BSON binary vectors (`BinData` subtype 9, dtype
float32: a 0x27 byte, a padding byte of 0, then little-endian float32s); their Extended
JSON is `{"$binary": {"base64": ..., "subType": "09"}}`. Such a vector reaches the
mapping as a `bson.Binary` and is unpacked at C speed, with no JSON number to parse: the
values pgvector stores (float32) exactly.

The coercer hands such a vector on as a `PackedVector`: the bytes of pgvector's binary
value (dimensions, 0, big-endian float32s), made from the BSON bytes by one byte swap,
with no Python float per dimension; a binary COPY writes them as they are (stage.py),
and `to_list()` gives the floats to whatever needs them (the verifier, a text COPY).
"""

from __future__ import annotations

import math
import struct
from typing import Any, Final

import numpy as np
from bson.binary import Binary

from dualsync.schema.mapping.coerce_base import CoercionError

__all__ = [
    "BSON_VECTOR_SUBTYPE",
    "PackedVector",
    "bson_vector",
    "finite_floats",
    "packed_bson_vector",
]

#: `BinData` subtype of a BSON vector
BSON_VECTOR_SUBTYPE: Final = 9
_FLOAT32: Final = 0x27
#: the dtype and padding bytes before the values
_HEADER: Final = 2


#: pgvector's binary value starts with the dimensions and an unused 0 (two uint16)
_PG_HEADER: Final = struct.Struct(">HH")
#: the most dimensions pgvector's binary header can say
MAX_DIMS: Final = 65535
_LITTLE_F32: Final = np.dtype("<f4")
_BIG_F32: Final = np.dtype(">f4")


class PackedVector(bytes):
    """A float32 vector as pgvector's binary value: `>HH` dimensions and 0, then the values
    as big-endian float32s. Built only by `packed_bson_vector` (finite values)."""

    __slots__ = ()

    @property
    def dims(self) -> int:
        """The number of dimensions."""
        return _PG_HEADER.unpack_from(self)[0]  # type: ignore[no-any-return]  # struct: int

    def to_list(self) -> list[float]:
        """The values as Python floats (float32 exactly, widened)."""
        values: list[float] = np.frombuffer(self, _BIG_F32, offset=_PG_HEADER.size).tolist()
        return values


def finite_floats(values: list[Any] | tuple[Any, ...]) -> bool:
    """Every element exactly a float and the sum finite (so none is NaN or infinite): the
    values as they are, checked at C speed instead of one call per dimension. (list.count
    compares the types by identity first: a third cheaper than building the set of them.)"""
    return list(map(type, values)).count(float) == len(values) and math.isfinite(sum(values))


def _values(b: Binary) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The float32s of a BSON binary vector (a view of its bytes, not a copy)."""
    if len(b) < _HEADER or b[0] != _FLOAT32 or b[1] != 0 or (len(b) - _HEADER) % 4:
        kind = f"0x{b[0]:02x}" if len(b) else "none"
        raise CoercionError(
            f"a BSON vector must hold float32 values (dtype 0x27, padding 0), not dtype {kind}"
        )
    return np.frombuffer(b, _LITTLE_F32, offset=_HEADER)


def packed_bson_vector(b: Binary) -> PackedVector:
    """A BSON binary vector of dtype float32 as pgvector's binary value; raises
    `CoercionError` for another dtype, NaN or infinity, or more dimensions than pgvector's
    header can say."""
    values = _values(b)
    if len(values) > MAX_DIMS:
        raise CoercionError(f"a vector has at most {MAX_DIMS} dimensions, not {len(values)}")
    if not np.isfinite(values).all():
        raise CoercionError("vectors cannot hold NaN or infinity")
    return PackedVector(_PG_HEADER.pack(len(values), 0) + values.astype(_BIG_F32).tobytes())


def bson_vector(b: Binary) -> list[float]:
    """The floats of a BSON binary vector of dtype float32."""
    floats: list[float] = _values(b).tolist()
    return floats
