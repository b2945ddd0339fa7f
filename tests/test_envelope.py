"""The envelope contract: decode validation, and publish -> XREADGROUP -> decode round trips."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualsync.producers import SyncPublisher
from dualsync.schema import (
    ChangeEvent,
    EnvelopeError,
    Op,
    SignatureError,
    build_fields,
    decode_fields,
)
from dualsync.schema.codec import encode_event

GOOD = build_fields(
    event_id="0190c1de-0000-7000-8000-000000000001",
    source="astro-api",
    entity="users",
    key="5f1d7a8e9b1e8a3c2d4e5f60",
    op="upsert",
    version=7,
    occurred_at="2024-05-06T07:08:09.123456Z",
    payload_json='{"email":"a@b.c"}',
    trace_id="trace-1",
)


def _bad(**changes: str | None) -> dict[str, str]:
    out = dict(GOOD)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def test_good_event_decodes_with_types() -> None:
    ev = decode_fields({k.encode(): v.encode() for k, v in GOOD.items()})
    assert ev.op is Op.UPSERT
    assert ev.version == 7
    assert ev.occurred_at == dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    assert ev.payload == {"email": "a@b.c"}
    assert ev.trace_id == "trace-1"
    assert encode_event(ev) == GOOD


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        (_bad(key=None), "key", "invalid_envelope"),
        (_bad(entity=None), "entity", "invalid_envelope"),
        (_bad(op="merge"), "op", "invalid_envelope"),
        (_bad(version="1.5"), "version", "invalid_envelope"),
        (_bad(version="-3"), "version", "invalid_envelope"),
        (_bad(version="99999999999999999999"), "version", "invalid_envelope"),
        (_bad(payload="{not json"), "payload", "invalid_json"),
        (_bad(payload="[1,2]"), "payload", "invalid_envelope"),
        (_bad(payload=None), "envelope", "invalid_envelope"),
        (_bad(key="a\x00b"), "key", "nul_byte"),
        (_bad(payload='{"a":"x\\u0000y"}'), "payload", "nul_byte"),
        (_bad(occurred_at="yesterday"), "occurred_at", "invalid_envelope"),
        (_bad(occurred_at="2024-01-01T00:00:00"), "envelope", "invalid_envelope"),
        (_bad(entity="Users; drop table x"), "entity", "invalid_envelope"),
        (_bad(schema_version="2"), "schema_version", "invalid_envelope"),
        (_bad(op="delete"), "envelope", "invalid_envelope"),
        (_bad(colour="blue"), "colour", "invalid_envelope"),
    ],
)
def test_invalid_input_names_the_field(fields: dict[str, str], field: str, reason: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_fields(fields)
    assert info.value.field == field
    assert info.value.reason == reason
    assert str(info.value).startswith(f"{field}:")


def test_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    ev = decode_fields(_bad(payload='{"path":"C:\\\\u0000"}'))
    assert ev.payload == {"path": "C:\\u0000"}


def test_oversized_payload_is_rejected_without_echoing_it() -> None:
    secret = "hunter2" * 300
    with pytest.raises(EnvelopeError) as info:
        decode_fields(_bad(payload=f'{{"password":"{secret}"}}'), max_payload_bytes=1024)
    assert info.value.reason == "oversized"
    assert "hunter2" not in str(info.value)


def test_signatures() -> None:
    key = b"k" * 32
    signed = build_fields(**_args(), sign_key=key)
    assert decode_fields(signed, signing_keys={"astro-api": key}).sig == signed["sig"]
    tampered = dict(signed, payload='{"email":"evil@x"}')
    with pytest.raises(SignatureError):
        decode_fields(tampered, signing_keys={"astro-api": key})
    with pytest.raises(SignatureError):
        decode_fields(GOOD, require_signature=True, signing_keys={"astro-api": key})
    with pytest.raises(SignatureError):
        decode_fields(GOOD, require_signature=True)


def _args() -> dict[str, Any]:
    return {
        "event_id": GOOD["event_id"],
        "source": GOOD["source"],
        "entity": GOOD["entity"],
        "key": GOOD["key"],
        "op": GOOD["op"],
        "version": 7,
        "occurred_at": GOOD["occurred_at"],
        "payload_json": GOOD["payload"],
    }


# --- through a real Redis -----------------------------------------------------------


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _publish_and_read(client: redis.Redis, prefix: str, **kw: Any) -> ChangeEvent:
    pub = SyncPublisher(client, source="astro-api", prefix=prefix, shards=1)
    published = pub.publish(**kw)
    stream = published.stream
    client.xgroup_create(stream, "apply", id="0", mkstream=True)
    resp = client.xreadgroup("apply", "c1", {stream: ">"}, count=10)
    [(_, [(_, fields)])] = resp  # type: ignore[misc]  # exactly one entry
    client.delete(stream)
    return decode_fields(fields)


def test_every_field_and_type_survives_redis(sync_redis: redis.Redis, redis_prefix: str) -> None:
    doc = {
        "_id": ObjectId("5f1d7a8e9b1e8a3c2d4e5f60"),
        "at": dt.datetime(1969, 7, 20, 20, 17, 40, 5, tzinfo=dt.UTC),
        "far": dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
        "price": Decimal("1234567890123456789012345678.901234"),
        "count": 2**62,
        "ratio": 0.1,
        "nan": float("nan"),
        "raw": b"\x00\xff",
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "nested": {"list": [1, "two", None, {"three": [3.0]}]},
        "text": "naïve café 🍵 中文",
    }
    ev = _publish_and_read(
        sync_redis, redis_prefix, entity="users", key="k1", payload=doc, version=42, trace_id="t-9"
    )
    assert (ev.entity, ev.key, ev.op, ev.version, ev.source, ev.trace_id) == (
        "users", "k1", Op.UPSERT, 42, "astro-api", "t-9",
    )  # fmt: skip
    assert ev.payload is not None
    nan = ev.payload.pop("nan")
    assert nan != nan
    doc.pop("nan")
    assert ev.payload == doc
    assert ev.occurred_at.tzinfo is not None


def test_delete_round_trip(sync_redis: redis.Redis, redis_prefix: str) -> None:
    ev = _publish_and_read(sync_redis, redis_prefix, entity="users", key="k1", op="delete")
    assert ev.op is Op.DELETE
    assert ev.payload is None


keys = st.text(max_size=12).filter(lambda k: not k.startswith("$") and "\x00" not in k)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=30,
)


@given(
    doc=st.dictionaries(keys, values, max_size=6),
    key=st.text(min_size=1, max_size=40).filter(lambda k: "\x00" not in k),
)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_payloads_round_trip_through_redis(
    sync_redis: redis.Redis, redis_prefix: str, doc: dict[str, Any], key: str
) -> None:
    ev = _publish_and_read(sync_redis, redis_prefix, entity="docs", key=key, payload=doc)
    assert ev.key == key
    assert ev.payload == doc
    assert repr(ev.payload) == repr(doc)
