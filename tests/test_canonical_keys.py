"""One target row, one gate row: the version gate is keyed on the canonical legacy key.

`uuid` and `int` keys have many spellings of one target key (upper/lower case, braces,
leading zeros); row_state must not see them as different keys, or a delete in one
spelling and a late, older upsert in another resurrect the row.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dualsync.ops import dlq
from dualsync.schema.mapping import MappingError, MappingSet, load_mapping
from tests.examples._support import EXAMPLES
from tests.fix_shop import Shop, spec

UUID = "3f2b8c4e-9a1d-4e7b-8c2a-5d6e7f809a1b"

CANON_YAML = """
version: 1
app: canon
schema: canon
entities:
  things:
    table: things
    key: {column: id, strategy: uuid}
    columns:
      name: {from: name, type: text, nullable: false}
  counters:
    table: counters
    key: {column: id, strategy: int}
    columns:
      name: {from: name, type: text, nullable: false}
"""


@pytest.fixture(scope="module")
def canon_db(shop_db: str) -> str:
    with psycopg.connect(shop_db, autocommit=True) as conn:
        conn.execute(
            "create schema canon; "
            "create table canon.things (id uuid primary key, name text not null); "
            "create table canon.counters (id bigint primary key, name text not null)"
        )
    return shop_db


@pytest.fixture
def canon(tmp_path: Path, canon_db: str) -> MappingSet:
    with psycopg.connect(canon_db, autocommit=True) as conn:
        conn.execute("truncate canon.things, canon.counters")
    path = tmp_path / "canon.yaml"
    path.write_text(CANON_YAML)
    return load_mapping(path)


async def _names(shop: Shop, table: str) -> list[str]:
    assert table in ("canon.things", "canon.counters")
    return [r[0] for r in await shop.rows(f"select name from {table}")]  # noqa: S608 - checked


async def _publish(shop: Shop, *specs: object) -> None:
    pub = shop.publisher()
    await pub.publish_many(list(specs))  # type: ignore[arg-type]  # EventSpec values
    await pub.aclose()


@pytest.mark.parametrize(
    ("entity", "lower", "other"),
    [
        ("things", UUID, UUID.upper()),
        ("things", UUID, "{" + UUID.replace("-", "").upper() + "}"),
        ("counters", "7", "007"),
    ],
)
async def test_a_delete_in_another_spelling_keeps_its_tombstone(
    shop: Shop, canon: MappingSet, entity: str, lower: str, other: str
) -> None:
    table = f"canon.{entity}"
    await _publish(shop, spec(entity, lower, {"name": "v5"}, 5))
    await shop.drain(mappings=canon)
    assert await _names(shop, table) == ["v5"]

    await _publish(shop, spec(entity, other, None, 20))  # the delete, spelled differently
    await shop.drain(mappings=canon)
    assert await _names(shop, table) == []

    await _publish(shop, spec(entity, lower, {"name": "v10"}, 10))  # late and older
    await shop.drain(mappings=canon)
    assert await _names(shop, table) == [], "resurrected"
    gate = await shop.rows("select entity, version, deleted from dualsync.row_state")
    assert gate == [(entity, 20, True)]


async def test_one_gate_row_per_target_row(shop: Shop, canon: MappingSet) -> None:
    # Two spellings in one batch and across batches: still one row_state row each.
    await _publish(
        shop,
        spec("things", UUID.upper(), {"name": "a"}, 1),
        spec("things", UUID, {"name": "b"}, 2),
        spec("counters", "42", {"name": "a"}, 1),
        spec("counters", "0042", {"name": "b"}, 2),
    )
    await shop.drain(mappings=canon)
    await _publish(shop, spec("things", UUID.upper(), {"name": "c"}, 3))
    await shop.drain(mappings=canon)
    gate = await shop.rows("select entity, key, version from dualsync.row_state order by 1")
    assert gate == [("counters", "42", 2), ("things", UUID, 3)]
    assert await shop.rows("select id::text, name from canon.things") == [(UUID, "c")]
    assert await shop.rows("select id, name from canon.counters") == [(42, "b")]
    assert await dlq.list_letters(shop.redis, shop.prefix) == []


async def test_a_key_that_is_not_of_its_strategy_is_dead_lettered(
    shop: Shop, canon: MappingSet
) -> None:
    await _publish(
        shop,
        spec("things", "not-a-uuid", {"name": "x"}, 1),
        spec("counters", "12a", None, 1),
        spec("counters", "12", {"name": "ok"}, 1),
    )
    await shop.drain(mappings=canon)
    letters = await dlq.list_letters(shop.redis, shop.prefix)
    assert sorted((d.entity, d.key, d.reason) for d in letters) == [
        ("counters", "12a", "mapping"),
        ("things", "not-a-uuid", "mapping"),
    ]
    assert await shop.rows("select id from canon.counters") == [(12,)]


def test_canonical_key_of_every_strategy(canon: MappingSet) -> None:
    things, counters = canon.entity("things"), canon.entity("counters")
    for spelling in (
        UUID,
        UUID.upper(),
        "{" + UUID + "}",
        "urn:uuid:" + UUID,
        UUID.replace("-", ""),
    ):
        assert things.canonical_key(spelling) == UUID
    assert counters.canonical_key("007") == "7"
    assert counters.canonical_key(" 42 ") == "42"
    assert counters.canonical_key("-0") == "0"
    for bad_key, em in (("nope", things), ("4.2", counters), ("", counters)):
        with pytest.raises(MappingError):
            em.canonical_key(bad_key)

    tzurot = load_mapping(EXAMPLES / "tzurot/mapping.yaml")
    tokens = tzurot.entity("auth_tokens")
    assert tokens.canonical_key("123:Lilith Bot") == "123:Lilith Bot"  # composite: as is
    for bad_key in ("123", "123:", ":x", "1:2:3"):
        with pytest.raises(MappingError, match="composite key"):
            tokens.canonical_key(bad_key)
    assert tzurot.entity("personalities").canonical_key("Lilith ") == "Lilith "  # text: as is
    assert tzurot.entity("conversations").canonical_key("0012") == "12"  # int
    # Hashing strategies: every spelling is its own target row, so the key stays as is.
    dovvy = load_mapping(EXAMPLES / "dovvy/mapping.yaml")
    assert dovvy.entity("leads").canonical_key("ABC-def") == "ABC-def"  # uuid5
    panamia = load_mapping(EXAMPLES / "panamia/mapping.yaml")
    assert panamia.entity("users").canonical_key("65AbC") == "65AbC"  # cuid
