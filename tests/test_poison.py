"""Poison isolation: 20 bad events among 10,000 good ones; exact DLQ reasons; replay after a fix."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import psycopg

from dualsync.ops import dlq
from dualsync.producers import EventSpec, shard_for, stream_key
from dualsync.schema.codec import build_fields
from dualsync.schema.mapping import load_mapping
from tests.fix_shop import DATA, SIGN_KEY, Shop, customer

GOOD = 10_000


def _raw_fields(entity: str, key: str, payload: str, *, sign: bool = True) -> dict[str, str]:
    return build_fields(
        event_id=f"bad-{entity}-{key}",
        source="shop",
        entity=entity,
        key=key,
        op="upsert",
        version=1,
        occurred_at="2024-01-01T00:00:00Z",
        payload_json=payload,
        sign_key=SIGN_KEY if sign else None,
    )


async def _xadd(shop: Shop, fields: dict[str, str]) -> None:
    stream = stream_key(shop.prefix, shard_for(fields["entity"], fields["key"], shop.shards))
    await shop.redis.xadd(stream, fields)  # type: ignore[arg-type]  # redis stub: dict invariance


async def test_poison_is_isolated_and_replayable(shop: Shop) -> None:
    pub = shop.publisher(sign_key=SIGN_KEY)
    expected: dict[str, str] = {}
    for i in range(0, GOOD, 500):
        await pub.publish_many(
            [
                EventSpec("customers", f"c{j}", payload=customer(j), version=1)
                for j in range(i, i + 500)
            ]
        )
        if i % 2500 == 0:  # hide the bad ones among the good ones: 4 rounds x 5 kinds
            n = i // 2500
            await _xadd(shop, _raw_fields("invoices", f"inv{n}", orjson.dumps({"a": 1}).decode()))
            expected[f"inv{n}"] = "unknown_entity"
            await _xadd(shop, _raw_fields("customers", f"nul{n}", '{"email":"a\\u0000b@x"}'))
            expected[f"nul{n}"] = "nul_byte"
            await _xadd(
                shop,
                _raw_fields(
                    "customers", f"enum{n}", orjson.dumps(customer(n, tier="gold")).decode()
                ),
            )
            expected[f"enum{n}"] = "mapping"
            bad_sig = _raw_fields("customers", f"sig{n}", orjson.dumps(customer(n)).decode())
            bad_sig["payload"] = orjson.dumps(customer(n, email="evil@x")).decode()
            await _xadd(shop, bad_sig)
            expected[f"sig{n}"] = "bad_signature"
            big = orjson.dumps(customer(n, profile={"x": "y" * 9000})).decode()
            await _xadd(shop, _raw_fields("customers", f"big{n}", big))
            expected[f"big{n}"] = "oversized"
    await pub.aclose()
    assert len(expected) == 20
    opts: dict[str, Any] = {"signing_keys": {"shop": SIGN_KEY}, "max_payload_bytes": 4096}
    await shop.drain(**opts)

    assert await shop.rows("select count(*) from shop.customers") == [(GOOD,)]
    letters = await dlq.list_letters(shop.redis, shop.prefix)
    assert {d.key: d.reason for d in letters} == expected
    assert len(letters) == 20
    assert Counter(d.reason for d in letters) == Counter(expected.values())
    blob = orjson.dumps([d.as_dict() for d in letters]).decode()
    assert "tok-" not in blob, "secrets must be redacted in dead letters"
    for s in await shop.redis.keys(f"{shop.prefix}:events:*"):
        assert (await shop.redis.xpending(s, "apply"))["pending"] == 0

    # Fix the cause of the enum failures, reload the mapping, replay only those.
    async with await psycopg.AsyncConnection.connect(shop.db, autocommit=True) as conn:
        await conn.execute("alter type shop.customer_tier add value if not exists 'gold'")
    fixed = [d for d in letters if d.reason == "mapping"]
    await dlq.replay(shop.redis, shop.prefix, shop.shards, fixed, dry_run=False)
    await shop.drain(mappings=load_mapping(DATA / "shop.yaml"), **opts)
    rows = await shop.rows("select id from shop.customers where tier = 'gold' order by id")
    assert [r[0] for r in rows] == sorted(k for k, r in expected.items() if r == "mapping")
    assert len(await dlq.list_letters(shop.redis, shop.prefix)) == 16
    assert await shop.rows("select count(*) from shop.customers") == [(GOOD + 4,)]
