"""Secrets at nested paths never leave a dead letter: not in `dlq show`, `dlq list --json`,
the worker's logs or error text.

The mapping marks secrets by path (`profile.phone`, through arrays `profile.contacts.pin`,
into a child table's rows `items.qty`); the values are planted in poison events of every
kind the worker dead-letters: a mapping failure, a value Postgres rejects, and a payload
that is not valid JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from dualsync.ops import dlq
from dualsync.ops.cli import main
from dualsync.producers import shard_for, stream_key
from dualsync.redact import REDACTED
from dualsync.schema.codec import build_fields
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.settings import get_settings
from tests.fix_shop import DATA, Shop, customer, order, spec

PHONE = "S3CR3T-PHONE-5550199"
PIN = "S3CR3T-PIN-88120"
RAW_PHONE = "S3CR3T-RAW-JSON-PHONE-77"
QTY = "S3CR3T-QTY-ABCDE"
SECRETS = (PHONE, PIN, RAW_PHONE, QTY)


@pytest.fixture
def mapping(tmp_path: Path) -> MappingSet:
    """The shop mapping, with secrets marked by nested path."""
    text = (DATA / "shop.yaml").read_text()
    text = text.replace(
        "    key: {column: id, strategy: text}\n    columns:\n      email:",
        "    key: {column: id, strategy: text}\n"
        "    secret: [profile.phone, profile.contacts.pin]\n"
        "    columns:\n      email:",
        1,
    )
    text = text.replace(
        "  orders:\n    table: orders\n", "  orders:\n    table: orders\n    secret: [items.qty]\n"
    )
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    ms = load_mapping(path)
    assert "profile.phone" in ms.entity("customers").secret_fields
    assert "items.qty" in ms.entity("orders").secret_fields
    return ms


@pytest.fixture
def cli_env(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", shop.db)
    monkeypatch.setenv("REDIS_URL", shop.redis_url)
    monkeypatch.setenv("DUALSYNC_PREFIX", shop.prefix)
    monkeypatch.setenv("DUALSYNC_SHARDS", str(shop.shards))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _profile() -> dict[str, Any]:
    return {
        "name": "Visible Name",
        "phone": PHONE,
        "contacts": [{"name": "Mum", "pin": PIN}, {"name": "Dad"}],
    }


async def _xadd(shop: Shop, fields: dict[str, str]) -> None:
    stream = stream_key(shop.prefix, shard_for(fields["entity"], fields["key"], shop.shards))
    await shop.redis.xadd(stream, fields)  # type: ignore[arg-type]  # redis stub: dict invariance


async def _poison(shop: Shop) -> None:
    pub = shop.publisher()
    await pub.publish_many(
        [
            spec("customers", "enum", customer(1, tier="gold", profile=_profile()), 1),
            spec("customers", "check", customer(2, email="no-at-sign", profile=_profile()), 1),
            spec("customers", "ok", customer(3, profile=_profile()), 1),
            spec("orders", "qty", order(1, "ok", items=[{"sku": "a", "qty": QTY}]), 1),
        ]
    )
    await pub.aclose()
    broken = '{"email": "x@y", "profile": {"name": "n", "phone": "' + RAW_PHONE + '"}, "tier": '
    await _xadd(
        shop,
        build_fields(
            event_id="e-badjson",
            source="shop",
            entity="customers",
            key="badjson",
            op="upsert",
            version=1,
            occurred_at="2024-01-01T00:00:00Z",
            payload_json=broken,
        ),
    )


async def test_nested_secrets_appear_nowhere(
    shop: Shop, mapping: MappingSet, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    await _poison(shop)
    with structlog.testing.capture_logs() as logs:
        wctx = await shop.drain(mappings=mapping, max_deliveries=2)
    assert wctx.crashed is None
    assert any(e["event"] == "dead_letter" for e in logs), "logs were captured"

    letters = await dlq.list_letters(shop.redis, shop.prefix)
    assert {d.key: d.reason for d in letters} == {
        "enum": "mapping",
        "check": "db_check_violation",
        "qty": "mapping",
        "badjson": "invalid_json",
    }
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["dlq", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    shown = []
    for d in letters:
        assert await asyncio.to_thread(main, ["dlq", "show", d.id]) == 0
        shown.append(capsys.readouterr().out)
    assert await asyncio.to_thread(main, ["dlq", "list"]) == 0
    table = capsys.readouterr().out

    places = {
        "dlq list --json": listed,
        "dlq show": "\n".join(shown),
        "dlq list": table,
        "logs": repr(logs),
        "error text": "\n".join(d.error for d in letters),
    }
    for where, text in places.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {where}"
            assert secret[:12] not in text, f"the start of {secret} leaked into {where}"

    # What is not secret stays readable; unparsable text is not shown at all.
    by_key = {d.key: d for d in letters}
    payload = orjson.loads(by_key["enum"].fields["payload"])
    assert payload["profile"]["phone"] == REDACTED
    assert payload["profile"]["contacts"] == [{"name": "Mum", "pin": REDACTED}, {"name": "Dad"}]
    assert payload["profile"]["name"] == "Visible Name"
    assert payload["apiToken"] == REDACTED
    assert payload["tier"] == "gold"
    order_payload = orjson.loads(by_key["qty"].fields["payload"])
    assert order_payload["items"] == [{"sku": "a", "qty": REDACTED}]
    assert "qty" in by_key["qty"].error  # the error still names the field
    bad = by_key["badjson"].fields["payload"]
    assert "not valid JSON" in bad
    assert "bytes" in bad
    assert "profile" not in bad
    assert await shop.rows("select id from shop.customers") == [("ok",)]


def test_redact_follows_paths_through_objects_and_arrays(mapping: MappingSet) -> None:
    customers = mapping.entity("customers")
    doc = customer(1, profile=_profile())
    doc["links"] = ["redis://:hunter2@cache:6379/0"]
    shown = customers.redact(doc)
    assert shown["profile"] == {
        "name": "Visible Name",
        "phone": REDACTED,
        "contacts": [{"name": "Mum", "pin": REDACTED}, {"name": "Dad"}],
    }
    assert shown["apiToken"] == REDACTED  # a credential by its name
    assert shown["links"] == ["redis://:***@cache:6379/0"]
    assert doc["profile"]["phone"] == PHONE, "the document itself is left alone"
    assert sorted(customers.secret_values(doc)) == sorted([PHONE, PIN, doc["apiToken"]])
    # Secret columns of a child table are secret under their array, even when nested.
    orders = mapping.entity("orders")
    assert orders.secret_paths() == ("items.qty",)
    assert orders.redact(order(1, "c1", items=[{"sku": "a", "qty": QTY}, {"sku": "b"}]))[
        "items"
    ] == [{"sku": "a", "qty": REDACTED}, {"sku": "b"}]


def test_child_columns_marked_secret_are_redacted_under_their_array(tmp_path: Path) -> None:
    text = (
        (DATA / "shop.yaml")
        .read_text()
        .replace(
            "          sku: {from: sku, type: text, nullable: false}",
            "          sku: {from: meta.code, type: text, nullable: false, secret: true}",
        )
    )
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    orders = load_mapping(path).entity("orders")
    assert "items.meta.code" in orders.secret_paths()
    doc = order(1, "c1", items=[{"meta": {"code": "S3CR3T-CODE-1"}, "qty": 1}])
    assert orders.redact(doc)["items"] == [{"meta": {"code": REDACTED}, "qty": 1}]
