"""Row building after its speed-ups, against the code it replaced: the same rows, exactly.

The oracle is the mapping compiled with the replaced pieces: `uuid.uuid5` for uuid5 keys,
the timestamptz coercer with its branches in their old order, and the column-by-column
loop (`_exact_values`) for every row. Every example app's generated documents (and
documents broken field by field) must map to the same rows, or fail with the same error.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from dualsync.schema.mapping import MappingError, MappingSet, build, keys, load_mapping, rows
from dualsync.schema.mapping.coerce_base import CoercionError, utc
from dualsync.schema.mapping.coerce_time import _EPOCH, _in_zone, timestamptz_coercer, zone

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
APPS = ["donna", "dovvy", "astro", "panamia", "tzurot"]
PURE = settings(deadline=None, max_examples=300)


def old_timestamptz(epoch: str = "ms", naive_zone: str | None = None) -> Callable[[Any], Any]:
    """The timestamptz coercer as it was (datetime, date, number, then string)."""
    unit = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}[epoch]
    scale = {"s": 1_000_000, "ms": 1_000, "us": 1}[epoch]
    z = zone(naive_zone) if naive_zone is not None else None

    def wall(d: dt.datetime) -> dt.datetime:
        return utc(d) if z is None or d.tzinfo is not None else _in_zone(d, z)

    def coerce(v: Any) -> dt.datetime:
        if isinstance(v, dt.datetime):
            return wall(v)
        if isinstance(v, dt.date):
            return wall(dt.datetime.combine(v, dt.time()))
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                return _EPOCH + dt.timedelta(microseconds=v * scale)
            except (OverflowError, ValueError):
                raise CoercionError(
                    f"epoch {unit} out of range (this column reads numbers as epoch {unit}; "
                    "set its `epoch:` to s, ms or us to match the source)"
                ) from None
        if isinstance(v, str):
            try:
                parsed = dt.datetime.fromisoformat(v.strip())
            except ValueError:
                raise CoercionError("not an ISO 8601 timestamp") from None
            return wall(parsed)
        raise CoercionError(f"expected a timestamp, got {type(v).__name__}")

    return coerce


def old_uuid5_for(namespace: str, key: str) -> uuid.UUID:
    return uuid.uuid5(keys.DUALSYNC_NS, f"{namespace}\x1f{key}")


def _no_fast_path(*_: Any) -> None:
    return None


def load_old(app: str, monkeypatch: pytest.MonkeyPatch) -> MappingSet:
    """The app's mapping compiled with the replaced pieces (undone when the test ends)."""
    with monkeypatch.context() as m:
        m.setattr(build, "timestamptz_coercer", old_timestamptz)
        m.setattr(keys, "uuid5_for", old_uuid5_for)
        return load_mapping(EXAMPLES / app / "mapping.yaml")


def plain(value: Any) -> Any:
    """A row value as comparable data: jsonb by its serialised bytes, the rest by type and
    value (a UUID is compared with its `is_safe` too)."""
    if isinstance(value, Jsonb):
        dumped = value.dumps(value.obj) if value.dumps is not None else value.obj
        return ("jsonb", dumped if isinstance(dumped, bytes | str) else repr(dumped))
    if isinstance(value, uuid.UUID):
        return ("uuid", value.int, value.is_safe)
    if isinstance(value, tuple | list):
        return (type(value).__name__, [plain(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: plain(v) for k, v in value.items()})
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, repr(value))


def mapped(ms: MappingSet, entity: str, key: str, doc: Any) -> Any:
    try:
        rs = ms.entity(entity).to_rows(key, doc)
    except MappingError as exc:
        return ("error", str(exc), exc.field)
    return plain((rs.entity, rs.key, rs.values, rs.children))


def broken(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The document with one field at a time replaced by a value of another kind."""
    for name in list(doc)[:8]:
        for bad in (None, True, 12, "x", [1], {"a": 1}, "2024-02-30T00:00:00"):
            yield {**doc, name: bad}


@pytest.mark.parametrize("app", APPS)
def test_every_example_maps_as_before(app: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = importlib.import_module(f"examples.{app}.generator")
    new = load_mapping(EXAMPLES / app / "mapping.yaml")
    old = load_old(app, monkeypatch)
    docs = list(gen.generate(60, seed=3))
    assert docs
    for d in docs:
        want_docs = [d.doc, *(broken(d.doc) if isinstance(d.doc, dict) else [])]
        for doc in want_docs:
            got = mapped(new, d.entity, d.key, doc)
            with monkeypatch.context() as m:
                # key functions look `uuid5_for` up when called
                m.setattr(keys, "uuid5_for", old_uuid5_for)
                m.setattr(rows, "_fast_values", _no_fast_path)
                want = mapped(old, d.entity, d.key, doc)
            assert got == want, (app, d.entity, d.key)


@PURE
@given(st.text(max_size=30), st.text(max_size=60))
@example("donna/users", "\ud800")
@example("", "")
def test_uuid5_for_is_uuid5(namespace: str, key: str) -> None:
    def outcome(fn: Callable[[str, str], uuid.UUID]) -> Any:
        try:
            u = fn(namespace, key)
        except ValueError as exc:
            return type(exc).__name__, str(exc)
        return u, str(u), u.version, u.variant, u.is_safe, hash(u)

    assert outcome(keys.uuid5_for) == outcome(old_uuid5_for)


times = st.one_of(
    st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=5))])),
    st.dates(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: f" {d.isoformat(sep=' ')}+02:00 "),
    st.sampled_from(["2024-03-31T02:30:00", "2024-10-27T02:30:00", "2024-02-30", "", "x", "24"]),
    st.text(max_size=12),
)


@PURE
@given(times, st.sampled_from(["s", "ms", "us"]), st.sampled_from([None, "Europe/Berlin", "UTC"]))
@example(Decimal("1.5"), "ms", None)
def test_timestamptz_strings_first_decides_as_before(
    v: Any, epoch: Any, naive_zone: str | None
) -> None:
    def outcome(coerce: Callable[[Any], Any]) -> Any:
        try:
            out = coerce(v)
        except CoercionError as exc:
            return "error", str(exc)
        return out, out.tzinfo, out.fold

    assert outcome(timestamptz_coercer(epoch, naive_zone)) == outcome(
        old_timestamptz(epoch, naive_zone)
    )
