"""The astro example on real Postgres: its migrations, its plan-faithful schema, and its
generated legacy documents mapped and loaded through the mapping."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import psycopg
import pytest

from dualsync.consumers.direct import upsert_rowsets
from dualsync.schema.mapping import MappingSet
from dualsync.schema.mapping.keys import uuid5_for
from examples.astro.generator import ENTITIES, generate
from tests.examples._support import (
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
    pk,
    query,
    rows_of,
    scratch_db,
)

APP = EXAMPLES / "astro"
N = 1000
#: the migration that runs after the bulk load (`-- Phase: post-load`)
POST_LOAD = "create_indexes"
SEED = 20250922

# The plan's tables (seed 000): column -> (type, nullable); enum columns name their type.
T, TZ, U, J = "text", "timestamptz", "uuid", "jsonb"
PLAN: dict[str, dict[str, tuple[str, bool]]] = {
    "users": {
        "user_id": (U, False), "email": (T, True), "created_at": (TZ, False),
        "timezone": (T, False), "persona_name": (T, True), "persona_style": (T, True),
        "diary_cadence": ("diary_cadence", False), "settings": (J, False),
    },
    "charts": {
        "chart_id": (U, False), "user_id": (U, False), "birth_date": ("date", False),
        "birth_time": ("time", True), "birth_time_precision": ("birth_time_precision", False),
        "birth_location": (T, True), "sun_sign": (T, False), "moon_sign": (T, True),
        "rising_sign": (T, True), "raw_chart_payload": (J, True), "created_at": (TZ, False),
    },
    "relationships": {
        "relationship_id": (U, False), "user_id": (U, False), "label": (T, False),
        "type": ("relationship_type", False), "person_name": (T, False), "chart_id": (U, True),
        "sun_sign": (T, True), "created_at": (TZ, False),
    },
    "chat_threads": {
        "thread_id": (U, False), "user_id": (U, False), "title": (T, True),
        "created_at": (TZ, False), "updated_at": (TZ, False), "memory_enabled": ("bool", False),
        "summary": (T, True),
    },
    "chat_messages": {
        "message_id": (U, False), "thread_id": (U, False), "user_id": (U, False),
        "role": ("chat_role", False), "content": (T, False), "created_at": (TZ, False),
    },
    "diary_entries": {
        "entry_id": (U, False), "user_id": (U, False), "title": (T, True), "body": (T, False),
        "mood": (T, True), "prompt_id": (U, True), "astro_tags": (J, True),
        "created_at": (TZ, False),
    },
    "feed_items": {
        "feed_id": (U, False), "type": ("feed_item_type", False), "title": (T, False),
        "body": (T, False), "tags": (J, False), "created_at": (TZ, False),
        "expires_at": (TZ, False), "source": ("feed_source", False),
    },
    "feed_saves": {
        "save_id": (U, False), "user_id": (U, False), "feed_id": (U, False),
        "created_at": (TZ, False),
    },
    "tarot_pulls": {
        "pull_id": (U, False), "user_id": (U, False), "card_id": (T, False),
        "interpretation": (T, False), "created_at": (TZ, False),
    },
    "prompts": {
        "prompt_id": (U, False), "type": ("prompt_type", False), "text": (T, False),
        "created_at": (TZ, False),
    },
    "memories": {
        "memory_id": (U, False), "user_id": (U, False), "summary": (T, False),
        "created_at": (TZ, False),
    },
}  # fmt: skip
ENUMS = {
    "diary_cadence": ["daily", "weekly", "off"],
    "birth_time_precision": ["exact", "approximate", "unknown"],
    "relationship_type": ["boyfriend", "best_friend", "situationship", "custom"],
    "chat_role": ["user", "assistant"],
    "feed_item_type": ["personal", "tea", "prompt", "celebrity"],
    "feed_source": ["human", "ai"],
    "prompt_type": ["daily", "weekly"],
}
FKS = {
    ("charts", "user_id", "users"), ("relationships", "user_id", "users"),
    ("relationships", "chart_id", "charts"), ("chat_threads", "user_id", "users"),
    ("chat_messages", "thread_id", "chat_threads"), ("chat_messages", "user_id", "users"),
    ("diary_entries", "user_id", "users"), ("diary_entries", "prompt_id", "prompts"),
    ("feed_saves", "user_id", "users"), ("feed_saves", "feed_id", "feed_items"),
    ("tarot_pulls", "user_id", "users"), ("memories", "user_id", "users"),
}  # fmt: skip
#: the plan's "Indexing (minimum)"
INDEXES = {
    ("chat_messages", ("thread_id", "created_at")), ("diary_entries", ("user_id", "created_at")),
    ("feed_items", ("created_at", "type")), ("relationships", ("user_id",)),
    ("feed_saves", ("user_id", "created_at")),
}  # fmt: skip

_ENUMS = """
select t.typname, array_agg(e.enumlabel order by e.enumsortorder)
from pg_type t join pg_enum e on e.enumtypid = t.oid
where t.typnamespace = 'public'::regnamespace group by t.typname
"""


@pytest.fixture(scope="module")
def mapping() -> MappingSet:
    return app_mapping(APP)


@pytest.fixture(scope="module")
def docs() -> Docs:
    return docs_by_entity(generate, N, SEED)


@pytest.fixture(scope="module")
async def loaded(pg_url: str, mapping: MappingSet, docs: Docs) -> str:
    """The module's database: migrated, loaded with the generated documents, then indexed
    (post-load migrations run after the bulk load, as in a real backfill)."""
    upserted = await migrate_and_load(APP, pg_url, mapping, docs, ENTITIES)
    assert upserted == dict.fromkeys(ENTITIES, N)
    return pg_url


def test_migrations_go_up_down_all_the_way_and_up_again(pg_server_url: str) -> None:
    steps = migration_count(APP)
    with scratch_db(pg_server_url, "astro") as url:
        m = migrator(APP, url)
        m.up()
        assert columns(url) == PLAN
        deferred = [s.name for s in m.status() if s.state == "deferred"]
        assert deferred == [POST_LOAD]  # indexes wait for the bulk load ...
        m.up(post_load=True)  # ... and are built after it
        m.down(steps=steps, set_name="astro")
        states = {s.state for s in m.status() if s.set_name == "astro"}
        assert states == {"pending", "deferred"}
        assert not set(columns(url)) & set(PLAN)
        assert query(url, _ENUMS) == []
        m.up(post_load=True)
        assert columns(url) == PLAN
        status = m.status()
        assert status  # the runner reports every migration ...
        assert all(s.applied for s in status)  # ... and all of them are applied again


def test_schema_is_the_plan(loaded: str) -> None:
    assert columns(loaded) == PLAN
    assert dict(query(loaded, _ENUMS)) == ENUMS
    fks = {(c.table, c.columns[0], c.references) for c in constraints(loaded) if c.kind == "f"}
    assert fks == FKS
    assert {(ix.table, ix.columns) for ix in indexes(loaded)} >= INDEXES


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
    assert len({d.key for d in first}) == len(first)


def test_every_document_lands_with_its_children(loaded: str, docs: Docs) -> None:
    messages = sum(len(d.doc["messages"]) for d in docs["chat_threads"])
    saves = sum(len(d.doc.get("savedFeed") or ()) for d in docs["users"])
    assert messages > N
    assert saves > N
    assert {t: count(loaded, t) for t in PLAN} == {
        **dict.fromkeys(ENTITIES, N),
        "chat_messages": messages,
        "feed_saves": saves,
    }


async def test_upserting_again_replaces_children(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    em = mapping.entity("chat_threads")
    thread = max(docs["chat_threads"], key=lambda d: len(d.doc["messages"]))
    shorter = {**thread.doc, "messages": thread.doc["messages"][:1], "title": "renamed ✨"}
    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        await upsert_rowsets(conn, em, [rows_of(em, thread.key, shorter)])
        tid = pk(em, thread.key)
        rows = await (
            await conn.execute(
                "select t.title, count(m.*) from chat_threads t "
                "left join chat_messages m using (thread_id) where t.thread_id = %s "
                "group by t.title",
                (tid,),
            )
        ).fetchall()
        assert rows == [("renamed ✨", 1)]
        await upsert_rowsets(conn, em, [rows_of(em, thread.key, thread.doc)])
    assert count(loaded, "chat_threads") == N


def test_values_survive_the_trip(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    users = mapping.entity("users")
    user = next(
        d for d in docs["users"] if d.doc.get("email") and "onboardedAt" not in d.doc["settings"]
    )
    key = pk(users, user.key)
    # uuid5 of the ObjectId in the "astro/users" namespace: any re-run, or any other
    # service holding the ObjectId, computes the same id without a lookup table.
    assert key == uuid5_for("astro/users", user.key)
    [row] = query(
        loaded,
        "select user_id, email, created_at, settings, diary_cadence::text "
        "from users where user_id = %s",
        key,
    )
    assert row == (
        key,
        user.doc["email"],
        user.doc["createdAt"],
        user.doc["settings"],
        user.doc["diaryCadence"],
    )
    # Dates nested in a jsonb object are stored as ISO 8601 UTC strings.
    dated = next(d for d in docs["users"] if "onboardedAt" in d.doc["settings"])
    at = dated.doc["settings"]["onboardedAt"]
    [(stored,)] = query(
        loaded,
        "select settings->>'onboardedAt' from users where user_id = %s",
        pk(users, dated.key),
    )
    assert dt.datetime.fromisoformat(stored) == at
    # null and missing both become NULL, never a default
    no_email = sum(1 for d in docs["users"] if d.doc.get("email") is None)
    assert query(loaded, "select count(*) from users where email is null") == [(no_email,)]
    off = sum(1 for d in docs["users"] if d.doc["diaryCadence"] == "off")
    assert query(loaded, "select count(*) from users where diary_cadence = 'off'") == [(off,)]


def test_references_resolve(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    chart = next(d for d in docs["charts"] if d.doc["birth"].get("time"))
    [(user_id, born, at, sun)] = query(
        loaded,
        "select user_id, birth_date, birth_time, sun_sign from charts where chart_id = %s",
        pk(mapping.entity("charts"), chart.key),
    )
    assert str(user_id) == str(pk(mapping.entity("users"), str(chart.doc["userId"])))
    assert born == chart.doc["birth"]["date"].date()
    assert at == dt.time.fromisoformat(chart.doc["birth"]["time"])
    assert sun == chart.doc["signs"]["sun"]

    thread = max(docs["chat_threads"], key=lambda d: len(d.doc["messages"]))
    rows = query(
        loaded,
        "select m.content, m.role::text, m.created_at from chat_messages m "
        "join chat_threads t using (thread_id) join users u on u.user_id = m.user_id "
        "where t.thread_id = %s order by m.created_at",
        pk(mapping.entity("chat_threads"), thread.key),
    )
    assert rows == [(m["content"], m["role"], m["createdAt"]) for m in thread.doc["messages"]]

    # Every optional reference that was set resolves to its parent; unset ones are NULL.
    linked = sum(1 for d in docs["relationships"] if d.doc.get("chartId"))
    joined = "select count(*) from relationships r join charts c using (chart_id)"
    assert query(loaded, joined) == [(linked,)]
    prompted = sum(1 for d in docs["diary_entries"] if d.doc.get("promptId"))
    joined = "select count(*) from diary_entries e join prompts p using (prompt_id)"
    assert query(loaded, joined) == [(prompted,)]
