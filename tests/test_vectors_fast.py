"""The vector hot path against what it replaced: same values, same bytes, same errors.

- `vector_coercer`'s fast check (types counted by identity) against the set-of-types
  check it replaced, on lists mixing every kind of element a payload can hold;
- `stage._VectorDumper` (one `struct` call) against pgvector's own binary dumper, byte
  for byte, and through a binary COPY into Postgres (a value beyond float4's range fails
  in Postgres as it did);
- `EntityMapping.translate_key`'s memo: the values of the key function, errors as before.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pgvector.psycopg import register_vector_async
from pgvector.psycopg.vector import VectorBinaryDumper

from dualsync.consumers.stage import StageTable, _vector_dumper, copy_rows
from dualsync.schema.mapping import MappingError
from dualsync.schema.mapping.build import compile_mapping
from dualsync.schema.mapping.coerce import CoercionError, to_float, vector_coercer
from dualsync.schema.mapping.compiled import _MEMO_MAX
from dualsync.schema.mapping.model import MappingFileModel

PURE = settings(deadline=None, max_examples=300)


def reference_coercer(dim: int) -> Any:
    """`vector_coercer` as it was before the countOf check (the differential's oracle)."""
    floats = {float}

    def coerce(v: Any) -> list[float]:
        if not isinstance(v, list | tuple):
            raise CoercionError(f"expected an array of {dim} numbers")
        if len(v) != dim:
            raise CoercionError(f"vector has {len(v)} dimensions, the column has {dim}")
        if set(map(type, v)) == floats and math.isfinite(sum(v)):
            return v if type(v) is list else list(v)
        out = [to_float(x) for x in v]
        if not all(math.isfinite(x) for x in out):
            raise CoercionError("vectors cannot hold NaN or infinity")
        return out

    return coerce


class Half(float):
    """A float subclass: not exactly a float, so it takes the exact path."""


elements = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "nan", "inf", "-Infinity", "x", "", "1e400", " 2 "]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10).map(Half),
    st.lists(st.floats(-1, 1), max_size=2),
)
vectors = st.one_of(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=12),
    st.lists(elements, min_size=1, max_size=12),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=12).map(tuple),
    st.lists(elements, min_size=1, max_size=12).map(tuple),
)


def outcome(coerce: Any, v: Any) -> tuple[str, Any]:
    try:
        out = coerce(v)
    except CoercionError as exc:
        return "error", str(exc)
    return "value", (type(out), [(type(x), repr(x)) for x in out], out is v)


@PURE
@given(vectors, st.integers(-1, 1))
@example([1e308, 1e308], 0)  # finite values whose sum is not: the exact path, accepted
@example([True, 0.5], 0)
@example([1, 0.5], 0)
@example(["1.5", 0.5], 0)
@example([Decimal("1.5"), 0.5], 0)
@example([float("nan"), 0.5], 0)
@example([2**1100, 0.5], 0)
def test_the_fast_check_agrees_with_the_set_of_types(v: Any, off: int) -> None:
    dim = max(len(v) + off, 1)
    assert outcome(vector_coercer(dim), v) == outcome(reference_coercer(dim), v)


@pytest.mark.parametrize("v", ["1,2", {"a": 1.0}, 3.0, None])
def test_not_an_array_is_refused_as_before(v: Any) -> None:
    assert outcome(vector_coercer(2), v) == outcome(reference_coercer(2), v)
    assert outcome(vector_coercer(2), v)[0] == "error"


def pg_dump(v: Any) -> bytes | tuple[str, str]:
    try:
        return bytes(VectorBinaryDumper(list).dump(v))  # type: ignore[arg-type]  # pgvector's stub says Vector | ndarray; it takes lists
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return type(exc).__name__, str(exc)


def fast_dump(v: Any) -> bytes | tuple[str, str]:
    try:
        out = _vector_dumper(99999)(list).dump(v)
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return type(exc).__name__, str(exc)
    assert out is not None
    return bytes(out)


dumpable = st.one_of(
    st.floats(width=32, allow_nan=False),
    st.floats(allow_nan=False),  # beyond float4's range too: pgvector writes infinity
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)


@PURE
@given(st.lists(dumpable, max_size=40))
@example([3.4028235677973366e38, -1e39, 1e-50])
@example([2**2000])
@example(["1.5"])
@example([None])
def test_the_struct_dumper_writes_pgvectors_bytes(v: list[Any]) -> None:
    assert fast_dump(v) == pg_dump(v)


def test_more_dimensions_than_pgvector_takes_fail_as_before() -> None:
    v = [0.5] * 70_000
    assert fast_dump(v) == pg_dump(v)
    assert isinstance(fast_dump(v), tuple)


@pytest.fixture
async def vconn(
    require_vector: None, pg_url: str
) -> Any:  # an AsyncConnection with pgvector registered
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute("create extension if not exists vector")
        await register_vector_async(conn)
        yield conn


STAGE = StageTable("ds_vec_test", ("n", "v"), ("bigint", "vector(3)"))


async def test_binary_copy_of_vectors_lands_as_float4(vconn: Any) -> None:
    assert STAGE.binary == ("text", "int8", "vector")
    rows = [("a", 1, [0.1, -2.5, 1e-30]), ("b", 2, [3.4e38, 0.0, -0.0])]
    async with vconn.transaction(), vconn.cursor() as cur:
        await cur.execute(STAGE.ddl())
        await copy_rows(cur, STAGE, rows)
        await cur.execute("select _ds_key, n, v::text from ds_vec_test order by n")
        got = await cur.fetchall()
        await cur.execute("drop table ds_vec_test")
    async with vconn.cursor() as cur:
        await cur.execute("select %s::vector(3)::text, %s::vector(3)::text", (
            "[0.1,-2.5,1e-30]", "[3.4e+38,0,-0]",
        ))  # fmt: skip
        expected = await cur.fetchone()
    assert [g[2] for g in got] == list(expected)
    assert [(g[0], g[1]) for g in got] == [("a", 1), ("b", 2)]


async def test_a_value_beyond_float4_fails_in_postgres_as_before(vconn: Any) -> None:
    async with vconn.cursor() as cur:
        await cur.execute(STAGE.ddl().as_string(vconn).replace("on commit delete rows", ""))
    try:
        with pytest.raises(psycopg.errors.DataException, match="infinite value not allowed"):
            async with vconn.transaction(), vconn.cursor() as cur:
                await copy_rows(cur, STAGE, [("a", 1, [1e39, 0.0, 0.0])])
    finally:
        await vconn.execute("drop table if exists ds_vec_test")


MAPPING = {
    "version": 1,
    "app": "t",
    "entities": {
        name: {
            "table": name,
            "source": {"json_dir": {"dir": name}},
            "key": {"column": "id", "strategy": strategy},
            "columns": {"a": {"from": "a", "type": "text"}},
        }
        for name, strategy in [("u5", "uuid5"), ("cu", "cuid"), ("iu", "uuid"), ("ii", "int")]
    },
}


@PURE
@given(st.sampled_from(["u5", "cu", "iu", "ii"]), st.text(max_size=40))
@example("iu", str(uuid.UUID(int=7)))
@example("iu", str(uuid.UUID(int=7)).upper())
@example("ii", " 0042 ")
def test_the_key_memo_returns_what_the_key_function_does(entity: str, key: str) -> None:
    ms = compile_mapping(MappingFileModel.model_validate(MAPPING), Path("m.yaml"), {})
    em = ms.entity(entity)
    for _ in range(2):  # the second time from the memo
        try:
            want: Any = ("value", (em._key_fn(key),))
        except ValueError as exc:
            want = ("error", f"{em.name} {key[:80]!r}: the key {exc}")
        try:
            got: Any = ("value", em.translate_key(key))
        except MappingError as exc:
            got = ("error", str(exc))
        assert got == want


def test_the_key_memo_stays_bounded() -> None:
    ms = compile_mapping(MappingFileModel.model_validate(MAPPING), Path("m.yaml"), {})
    em = ms.entity("u5")
    for i in range(_MEMO_MAX * 2 + 5):
        assert em.translate_key(f"k{i}") == (em._key_fn(f"k{i}"),)
    assert len(em._memo) <= _MEMO_MAX
