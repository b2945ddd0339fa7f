"""The tzurot example on real Postgres: the plan's DDL (composite key, SERIAL id, cascading
aliases, its three indexes), and a Node bot's JSON records mapped and loaded through the
mapping, with the auth token stored but never shown."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import MappingError, MappingSet
from examples.tzurot.generator import ENTITIES, SEPARATOR, generate
from tests.examples._support import (
    COLUMN_DETAILS,
    EXAMPLES,
    Docs,
    app_mapping,
    columns,
    constraints,
    count,
    docs_by_entity,
    indexes,
    migrate_and_load,
    migration_count,
    migrator,
    query,
    rows_of,
    scratch_db,
)

APP = EXAMPLES / "tzurot"
N = 1000
#: the migrations that run after the bulk load (`-- Phase: post-load`)
POST_LOAD = ["create_indexes", "advance_conversations_id_seq"]
SEED = 20250612

# The plan's tables (seed 003): column -> (type, varchar length, nullable, default).
VC, T, TZ, J = "varchar", "text", "timestamptz", "jsonb"
NOW, EMPTY = "now()", "'{}'::jsonb"
PLAN: dict[str, dict[str, tuple[str, int | None, bool, str | None]]] = {
    "personalities": {
        "full_name": (VC, 255, False, None), "display_name": (VC, 100, False, None),
        "avatar_url": (T, None, True, None), "added_by": (VC, 50, False, None),
        "added_at": (TZ, None, False, None), "is_active": ("bool", None, True, "true"),
        "metadata": (J, None, True, EMPTY),
    },
    "personality_aliases": {
        "alias": (VC, 100, False, None), "personality_name": (VC, 255, False, None),
        "created_at": (TZ, None, True, NOW),
    },
    "auth_tokens": {
        "user_id": (VC, 50, False, None), "personality_name": (VC, 255, False, None),
        "token": (T, None, False, None), "created_at": (TZ, None, True, NOW),
        "expires_at": (TZ, None, True, None), "last_used": (TZ, None, True, None),
    },
    "nsfw_verifications": {
        "user_id": (VC, 50, False, None), "verified_at": (TZ, None, True, NOW),
        "verified_by": (VC, 50, True, None),
    },
    "conversations": {
        "id": ("int4", None, False, "nextval('conversations_id_seq'::regclass)"),
        "channel_id": (VC, 50, False, None), "personality_name": (VC, 255, False, None),
        "started_at": (TZ, None, True, NOW), "last_message_at": (TZ, None, True, None),
        "message_count": ("int4", None, True, "0"), "metadata": (J, None, True, EMPTY),
    },
    "channel_activations": {
        "channel_id": (VC, 50, False, None), "personality_name": (VC, 255, False, None),
        "activated_at": (TZ, None, True, NOW), "activated_by": (VC, 50, True, None),
    },
}  # fmt: skip
PKS = {
    ("personalities", ("full_name",)), ("personality_aliases", ("alias",)),
    ("auth_tokens", ("user_id", "personality_name")), ("nsfw_verifications", ("user_id",)),
    ("conversations", ("id",)), ("channel_activations", ("channel_id",)),
}  # fmt: skip
# (table, columns, referenced table, referenced columns, ON DELETE: c cascade, a no action)
FKS = {
    ("personality_aliases", ("personality_name",), "personalities", ("full_name",), "c"),
    ("channel_activations", ("personality_name",), "personalities", ("full_name",), "a"),
}
INDEXES = {
    ("idx_auth_tokens_user_id", "auth_tokens", ("user_id",)),
    ("idx_conversations_channel_personality", "conversations", ("channel_id", "personality_name")),
    ("idx_personalities_added_by", "personalities", ("added_by",)),
}
SNOWFLAKE = re.compile(r"[1-9][0-9]{16,18}")
#: the bot's PersonalityValidator.validatePersonalityName
PERSONALITY_NAME = re.compile(r"[a-zA-Z0-9\s\-_.]{2,100}")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def instant(value: str | int | None) -> dt.datetime | None:
    """A Node instant as Postgres should hold it: ISO string or epoch milliseconds."""
    if isinstance(value, int):
        return _EPOCH + dt.timedelta(milliseconds=value)
    return None if value is None else dt.datetime.fromisoformat(value)


def unmapped(doc: dict[str, Any], *mapped: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in mapped}


def secondary_indexes(url: str) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(ix.name, ix.table, ix.columns) for ix in indexes(url) if ix.backs != "p"}


@pytest.fixture(scope="module")
def mapping() -> MappingSet:
    return app_mapping(APP)


@pytest.fixture(scope="module")
def docs() -> Docs:
    return docs_by_entity(generate, N, SEED)


@pytest.fixture(scope="module")
async def loaded(pg_url: str, mapping: MappingSet, docs: Docs) -> str:
    """The module's database: migrated, loaded with the generated records, then indexed and
    the id sequence advanced (post-load migrations run after the bulk load)."""
    upserted = await migrate_and_load(APP, pg_url, mapping, docs, ENTITIES)
    assert upserted == dict.fromkeys(ENTITIES, N)
    return pg_url


def test_migrations_go_up_down_all_the_way_and_up_again(pg_server_url: str) -> None:
    steps = migration_count(APP)
    with scratch_db(pg_server_url, "tzurot") as url:
        m = migrator(APP, url)
        m.up()
        assert columns(url, COLUMN_DETAILS) == PLAN
        deferred = [s.name for s in m.status() if s.state == "deferred"]
        assert deferred == POST_LOAD  # indexes and the sequence wait for the bulk load ...
        m.up(post_load=True)  # ... and run after it
        assert len(secondary_indexes(url)) == len(INDEXES)
        m.down(steps=steps, set_name="tzurot")
        states = {s.state for s in m.status() if s.set_name == "tzurot"}
        assert states == {"pending", "deferred"}
        assert not set(columns(url, COLUMN_DETAILS)) & set(PLAN)
        m.up(post_load=True)
        assert columns(url, COLUMN_DETAILS) == PLAN
        status = m.status()
        assert status  # the runner reports every migration ...
        assert all(s.applied for s in status)  # ... and all of them are applied again


def test_schema_is_the_plan(loaded: str) -> None:
    assert columns(loaded, COLUMN_DETAILS) == PLAN
    found = constraints(loaded)
    assert {(c.table, c.columns) for c in found if c.kind == "p"} == PKS
    fks = {
        (c.table, c.columns, c.references, c.referenced, c.on_delete)
        for c in found
        if c.kind == "f"
    }
    assert fks == FKS
    assert {c.kind for c in found} == {"p", "f"}  # no other constraint
    assert secondary_indexes(loaded) == INDEXES


@pytest.mark.parametrize("n", [0, 1, 3])
def test_any_size_maps(mapping: MappingSet, n: int) -> None:
    docs = list(generate(n, seed=1))
    assert len(docs) == n * len(ENTITIES)
    for d in docs:
        rows_of(mapping.entity(d.entity), d.key, d.doc)


def test_generator_is_deterministic() -> None:
    first = list(generate(100, seed=7))
    assert first == list(generate(100, seed=7))
    assert first != list(generate(100, seed=8))
    assert Counter(d.entity for d in first) == dict.fromkeys(ENTITIES, 100)
    assert len({(d.entity, d.key) for d in first}) == len(first)  # JSON object keys


def test_records_have_the_shapes_a_node_bot_writes(docs: Docs) -> None:
    people = [d.doc for d in docs["personalities"]]
    assert all(PERSONALITY_NAME.fullmatch(p["fullName"]) for p in people)
    # Snowflakes are 17-19 digit strings, never JSON numbers (they exceed 2**53).
    flakes = [p["addedBy"] for p in people]
    flakes += [d.doc["activatedBy"] for d in docs["channel_activations"]]
    flakes += [d.key for e in ("nsfw_verifications", "channel_activations") for d in docs[e]]
    for d in docs["conversations"]:
        flakes += [d.doc["userId"], d.doc["channelId"], *d.doc["messageIds"]]
        assert d.key == str(d.doc["id"])
    assert all(isinstance(f, str) and SNOWFLAKE.fullmatch(f) for f in flakes)
    assert {len(f) for f in flakes} == {17, 18, 19}
    # Instants: toISOString() strings and Date.now() milliseconds, side by side.
    assert {type(p["addedAt"]) for p in people} == {str, int}
    assert all(isinstance(d.doc["createdAt"], int) for d in docs["auth_tokens"])
    # Null and missing, both.
    for entity, field in (("personalities", "avatarUrl"), ("auth_tokens", "lastUsed")):
        values = [d.doc.get(field, ...) for d in docs[entity]]
        assert None in values
        assert ... in values
    assert any("expiresAt" not in d.doc for d in docs["auth_tokens"])
    assert any("messageCount" not in d.doc for d in docs["conversations"])
    # Display names as the profile service returns them: accents, CJK, emoji, non-BMP.
    names = {p["displayName"] for p in people}
    assert any(re.search(r"[\u4e00-\u9fff]", n) for n in names)
    assert any(any(ord(ch) > 0xFFFF for ch in n) for n in names)
    aliases = [d.key for d in docs["personality_aliases"]]
    assert all(a == a.lower() and 0 < len(a) <= 50 for a in aliases)
    assert all(len(d.key.split(SEPARATOR)) == 2 for d in docs["auth_tokens"])


def test_every_record_lands(loaded: str) -> None:
    assert {t: count(loaded, t) for t in PLAN} == dict.fromkeys(ENTITIES, N)
    # Columns the files have no source for are not mapped: the plan's defaults fill them.
    unset = "select count(*) from personalities where is_active is not true"
    assert query(loaded, unset) == [(0,)]
    unset = "select count(*) from personality_aliases where created_at is null"
    assert query(loaded, unset) == [(0,)]


# table -> (columns read back, how many of them form the key, the row a record must become)
Expect = Callable[[str, dict[str, Any]], tuple[Any, ...]]
ROWS: dict[str, tuple[tuple[str, ...], int, Expect]] = {
    "personalities": (
        ("full_name", "display_name", "avatar_url", "added_by", "added_at", "metadata"), 1,
        lambda k, d: (k, d["displayName"], d.get("avatarUrl"), d["addedBy"], instant(d["addedAt"]),
                      unmapped(d, "displayName", "avatarUrl", "addedBy", "addedAt")),
    ),
    "personality_aliases": (("alias", "personality_name"), 1, lambda k, d: (k, d["value"])),
    "auth_tokens": (
        ("user_id", "personality_name", "token", "created_at", "expires_at", "last_used"), 2,
        lambda k, d: (*k.split(SEPARATOR), d["token"], instant(d["createdAt"]),
                      instant(d.get("expiresAt")), instant(d.get("lastUsed"))),
    ),
    "nsfw_verifications": (
        ("user_id", "verified_at", "verified_by"), 1,
        lambda k, d: (k, instant(d["verifiedAt"]), d.get("verifiedBy")),
    ),
    "conversations": (
        ("id", "channel_id", "personality_name", "started_at", "last_message_at",
         "message_count", "metadata"), 1,
        lambda k, d: (int(k), d["channelId"], d["personalityName"], instant(d.get("startedAt")),
                      instant(d["timestamp"]), d.get("messageCount"),
                      unmapped(d, "channelId", "personalityName", "startedAt", "timestamp",
                               "messageCount")),
    ),
    "channel_activations": (
        ("channel_id", "personality_name", "activated_at", "activated_by"), 1,
        lambda k, d: (k, d["personalityName"], instant(d["timestamp"]), d.get("activatedBy")),
    ),
}  # fmt: skip


@pytest.mark.parametrize("table", ENTITIES)
def test_values_survive_the_trip(loaded: str, docs: Docs, table: str) -> None:
    names, width, expect = ROWS[table]
    stmt = sql.SQL("select {} from {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(table)
    )
    stored = {row[:width]: row for row in query(loaded, stmt)}
    wanted = [expect(d.key, d.doc) for d in docs[table]]
    assert stored == {row[:width]: row for row in wanted}


def test_references_resolve(loaded: str, docs: Docs) -> None:
    names = {d.key for d in docs["personalities"]}
    assert {d.doc["value"] for d in docs["personality_aliases"]} <= names
    assert {d.doc["personalityName"] for d in docs["channel_activations"]} <= names
    for table in ("personality_aliases", "channel_activations"):
        joined = sql.SQL(
            "select count(*) from {} x join personalities p on p.full_name = x.personality_name"
        ).format(sql.Identifier(table))
        assert query(loaded, joined) == [(N,)]


def test_deleting_a_personality_takes_its_aliases_not_its_channels(loaded: str, docs: Docs) -> None:
    active = {d.doc["personalityName"] for d in docs["channel_activations"]}
    by_name = Counter(d.doc["value"] for d in docs["personality_aliases"])
    name, aliases = next((n, k) for n, k in by_name.most_common() if n not in active)
    assert aliases > 1
    with psycopg.connect(loaded) as conn:
        conn.execute("delete from personalities where full_name = %s", (name,))
        left = "select count(*) from personality_aliases where personality_name = %s"
        assert conn.execute(left, (name,)).fetchall() == [(0,)]
        [(others,)] = conn.execute("select count(*) from personality_aliases").fetchall()
        assert others == N - aliases
        conn.rollback()
        # A personality still active in a channel cannot go (no ON DELETE in the plan).
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("delete from personalities where full_name = %s", (min(active),))
        conn.rollback()
    assert count(loaded, "personality_aliases") == N


def test_conversation_ids_are_kept_and_the_sequence_is_past_them(loaded: str, docs: Docs) -> None:
    ids = [d.doc["id"] for d in docs["conversations"]]
    assert {r[0] for r in query(loaded, "select id from conversations")} == set(ids)
    with psycopg.connect(loaded) as conn:
        [row] = conn.execute(
            "insert into conversations (channel_id, personality_name) values (%s, %s) "
            "returning id, started_at is not null, message_count, metadata",
            ("1384090817311838218", "lilith"),
        ).fetchall()
        conn.rollback()
    assert row == (max(ids) + 1, True, 0, {})  # the plan's defaults for a Postgres-side row


def test_the_token_is_stored_but_never_shown(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    em = mapping.entity("auth_tokens")
    record = docs["auth_tokens"][0]
    user, name = record.key.split(SEPARATOR)
    assert em.translate_key(record.key) == (user, name)
    stmt = "select token from auth_tokens where user_id = %s and personality_name = %s"
    [(token,)] = query(loaded, stmt, user, name)
    assert token == record.doc["token"]
    assert "token" in em.secret_fields
    shown = repr(em.redact(loads_payload(dumps_payload(record.doc))))
    assert record.doc["token"] not in shown
    assert str(record.doc["createdAt"]) in shown  # the rest of the record stays readable


@pytest.mark.parametrize(
    "bad", [lambda t: t[:20] + "\x00" + t[20:], lambda t: [t], lambda t: {"token": t}]
)
def test_a_bad_token_fails_without_showing_it(
    mapping: MappingSet, docs: Docs, bad: Callable[[str], Any]
) -> None:
    em = mapping.entity("auth_tokens")
    record = docs["auth_tokens"][1]
    secret = record.doc["token"]
    with pytest.raises(MappingError) as caught:
        rows_of(em, record.key, {**record.doc, "token": bad(secret)})
    assert caught.value.field == "token"
    for shown in (str(caught.value), repr(caught.value.args)):
        assert "token" in shown
        assert secret[:20] not in shown
        assert secret[20:] not in shown


def test_a_composite_key_needs_exactly_two_parts(mapping: MappingSet) -> None:
    em = mapping.entity("auth_tokens")
    # Personality names cannot hold the separator, so a third part means a broken key.
    with pytest.raises(MappingError, match="composite key needs 2 non-empty parts"):
        em.translate_key(f"123456789012345678{SEPARATOR}lilith{SEPARATOR}extra")
    with pytest.raises(MappingError):
        em.translate_key("123456789012345678")
    with pytest.raises(MappingError):  # an empty part is not a personality name
        em.translate_key(f"123456789012345678{SEPARATOR}")
