"""`vector` columns take BSON binary vectors (`$binary` subtype 9, float32) besides arrays.

The values are the float32s the vector holds; every refusal says why, as a
`CoercionError` (a `mapping` dead letter).
"""

from __future__ import annotations

import struct

import pytest
from bson.binary import Binary, BinaryVectorDtype
from hypothesis import given
from hypothesis import strategies as st

from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping.coerce import CoercionError, vector_coercer

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(f32, min_size=1, max_size=64))
def test_a_float32_vector_gives_its_values(values: list[float]) -> None:
    packed = Binary.from_vector(values, BinaryVectorDtype.FLOAT32)
    assert vector_coercer(len(values))(packed) == values
    # and the same after the payload codec (Extended JSON `$binary` subtype "09")
    again = loads_payload(dumps_payload({"v": packed}))["v"]
    assert vector_coercer(len(values))(again) == values


def test_the_values_are_little_endian_float32s() -> None:
    raw = Binary(b"\x27\x00" + struct.pack("<2f", 1.5, -2.0), subtype=9)
    assert vector_coercer(2)(raw) == [1.5, -2.0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Binary.from_vector([1, 2, 3], BinaryVectorDtype.INT8), "not dtype 0x03"),
        (Binary.from_vector([1.0, 2.0], BinaryVectorDtype.FLOAT32), "vector has 2 dimensions"),
        (Binary(b"\x27\x00" + struct.pack("<3f", 1, float("nan"), 2), 9), "NaN or infinity"),
        (Binary(b"\x27\x00" + struct.pack("<3f", 1, float("inf"), 2), 9), "NaN or infinity"),
        (Binary(b"\x27\x01" + struct.pack("<3f", 1, 2, 3), 9), "padding 0"),
        (Binary(b"\x27\x00\x00\x00", 9), "float32"),  # not a whole number of float32s
        (Binary(b"", 9), "not dtype none"),
        (Binary(struct.pack("<3f", 1, 2, 3), 5), "expected an array of 3 numbers"),
    ],
)
def test_what_is_not_a_float32_vector_is_refused_with_the_reason(
    value: Binary, message: str
) -> None:
    with pytest.raises(CoercionError, match=message):
        vector_coercer(3)(value)
