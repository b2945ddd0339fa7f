"""`vector` columns take BSON binary vectors (`$binary` subtype 9, float32) besides arrays.

The values are the float32s the vector holds, handed on as pgvector's binary value (a
`PackedVector`: one byte swap, no Python float per dimension), which reaches Postgres as
it is, in a COPY and as a query parameter; every refusal says why, as a `CoercionError`
(a `mapping` dead letter).
"""

from __future__ import annotations

import struct

import psycopg
import pytest
from bson.binary import Binary, BinaryVectorDtype
from hypothesis import given
from hypothesis import strategies as st
from pgvector import Vector

from dualsync.consumers.pool import configure_connection
from dualsync.consumers.stage import vector_text
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping.coerce import CoercionError, vector_coercer
from dualsync.schema.mapping.coerce_vector import PackedVector

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(f32, min_size=1, max_size=64))
def test_a_float32_vector_gives_its_values(values: list[float]) -> None:
    packed = Binary.from_vector(values, BinaryVectorDtype.FLOAT32)
    out = vector_coercer(len(values))(packed)
    assert type(out) is PackedVector
    assert out.to_list() == values
    assert out == Vector(values).to_binary()  # byte for byte pgvector's own binary value
    assert out.dims == len(values)
    # and the same after the payload codec (Extended JSON `$binary` subtype "09")
    again = loads_payload(dumps_payload({"v": packed}))["v"]
    assert vector_coercer(len(values))(again) == out


def test_the_values_are_little_endian_float32s() -> None:
    raw = Binary(b"\x27\x00" + struct.pack("<2f", 1.5, -2.0), subtype=9)
    out = vector_coercer(2)(raw)
    assert out.to_list() == [1.5, -2.0]
    assert vector_text(out) == "[1.5,-2.0]"  # what a text COPY writes


async def test_a_packed_vector_is_a_vector_parameter_too(pg_url: str) -> None:
    """Row-at-a-time writes (`consumers.direct`) pass row values as parameters: without its
    dumper a PackedVector, a bytes subclass, would be sent as bytea and refused."""
    out = vector_coercer(3)(Binary.from_vector([0.5, -1.0, 3.0], BinaryVectorDtype.FLOAT32))
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        try:
            await conn.execute("create extension if not exists vector")
        except psycopg.Error as exc:
            pytest.skip(f"this PostgreSQL has no pgvector ({exc.sqlstate}): set DATABASE_URL "
                        "to one with it, or leave it unset for the embedded one")  # fmt: skip
        await configure_connection(conn)
        await conn.execute("create temp table v (e vector(3))")
        await conn.execute("insert into v values (%s)", [out])
        cur = await conn.execute("select e::text from v")
        assert await cur.fetchone() == ("[0.5,-1,3]",)


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
