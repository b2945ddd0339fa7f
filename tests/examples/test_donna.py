"""The donna example on real Postgres: its migrations, its plan-faithful schema (plan 002),
and its generated PHP JSON files mapped and loaded through the mapping."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg import errors as pge
from psycopg import sql

from dualsync.consumers.apply import ApplyResult, apply_batch
from dualsync.consumers.change import Change
from dualsync.consumers.direct import upsert_rowsets
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import MappingSet
from dualsync.schema.mapping.keys import uuid5_for
from examples.donna.generator import ENTITIES, LegacyDoc, generate
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
    pk,
    query,
    rows_of,
    scratch_db,
)

APP = EXAMPLES / "donna"
N = 1000
#: the migrations that run after the bulk load (`-- Phase: post-load`)
POST_LOAD = ["create_indexes", "add_messages_content_fts"]
SEED = 20250610

# The plan's tables: column -> (type, varchar length, nullable, default).
U, V, TZ, J = "uuid", "varchar", "timestamptz", "jsonb"
UUID_PK = (U, None, False, "gen_random_uuid()")
NOW, OBJ = (TZ, None, True, "now()"), (J, None, True, "'{}'::jsonb")
ACTIVE = (V, 50, True, "'active'::character varying")
PLAN: dict[str, dict[str, tuple[str, int | None, bool, str | None]]] = {
    "users": {
        "id": UUID_PK, "clerk_id": (V, 255, True, None), "email": (V, 255, True, None),
        "name": (V, 255, True, None), "profile": OBJ, "preferences": OBJ, "created_at": NOW,
        "updated_at": NOW, "last_active_at": (TZ, None, True, None), "status": ACTIVE,
    },
    "chat_sessions": {
        "id": UUID_PK, "chat_id": (V, 255, False, None), "user_id": (U, None, True, None),
        "title": (V, 255, True, None), "profile": (V, 50, True, "'general'::character varying"),
        "metadata": OBJ, "created_at": NOW, "updated_at": NOW,
        "last_message_at": (TZ, None, True, None), "message_count": ("int4", None, True, "0"),
        "status": ACTIVE,
    },
    "messages": {
        "id": UUID_PK, "chat_session_id": (U, None, False, None), "role": (V, 50, False, None),
        "content": ("text", None, False, None), "metadata": OBJ, "created_at": NOW,
        "sequence_number": ("int4", None, False, None), "token_count": ("int4", None, True, None),
        "abuse_flagged": ("bool", None, True, "false"),
    },
    "user_memory": {
        "id": UUID_PK, "user_id": (U, None, False, None), "memory_type": (V, 100, False, None),
        "key": (V, 255, False, None), "value": (J, None, False, None), "created_at": NOW,
        "updated_at": NOW, "expires_at": (TZ, None, True, None),
    },
    "system_logs": {
        "id": UUID_PK, "level": (V, 20, False, None), "message": ("text", None, False, None),
        "context": OBJ, "trace_id": (V, 255, True, None), "ip_address": ("inet", None, True, None),
        "user_agent": ("text", None, True, None), "request_uri": ("text", None, True, None),
        "created_at": NOW,
    },
}  # fmt: skip
UNIQUE = {
    ("users", ("clerk_id",)), ("chat_sessions", ("chat_id",)),
    ("user_memory", ("user_id", "memory_type", "key")),
}  # fmt: skip
FKS = {
    ("chat_sessions", "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL"),
    ("messages", "FOREIGN KEY (chat_session_id) REFERENCES chat_sessions(id) ON DELETE CASCADE"),
    ("user_memory", "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"),
}
#: every index the plan lists: name -> "table (columns)", btree unless it says otherwise
INDEXES = {
    "idx_users_clerk_id": "users (clerk_id)", "idx_users_email": "users (email)",
    "idx_users_status": "users (status)", "idx_chat_sessions_chat_id": "chat_sessions (chat_id)",
    "idx_chat_sessions_user_id": "chat_sessions (user_id)",
    "idx_chat_sessions_profile": "chat_sessions (profile)",
    "idx_chat_sessions_status": "chat_sessions (status)",
    "idx_chat_sessions_last_message": "chat_sessions (last_message_at)",
    "idx_messages_chat_session": "messages (chat_session_id)",
    "idx_messages_role": "messages (role)",
    "idx_messages_sequence": "messages (chat_session_id, sequence_number)",
    "idx_messages_created_at": "messages (created_at)",
    "idx_messages_abuse_flagged": "messages (abuse_flagged)",
    "idx_user_memory_user_id": "user_memory (user_id)",
    "idx_user_memory_type": "user_memory (memory_type)",
    "idx_user_memory_expires": "user_memory (expires_at)",
    "idx_system_logs_level": "system_logs (level)",
    "idx_system_logs_trace_id": "system_logs (trace_id)",
    "idx_system_logs_created_at": "system_logs (created_at)",
    # the composite ones, and the full-text one
    "idx_messages_chat_recent": "messages (chat_session_id, created_at DESC)",
    "idx_chat_sessions_user_recent": "chat_sessions (user_id, last_message_at DESC)",
    "idx_user_memory_lookup": "user_memory (user_id, memory_type, key)",
    "idx_messages_content_fts": "messages USING gin (to_tsvector('english'::regconfig, content))",
}  # fmt: skip


def php_time(stamp: str | None) -> dt.datetime | None:
    """A PHP date string as the app means it: zone-less ones are UTC (the app's zone)."""
    if stamp is None:
        return None
    at = dt.datetime.fromisoformat(stamp)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def user_row(user: LegacyDoc) -> tuple[Any, ...]:
    """The users row a user file should become (after its id)."""
    d = user.doc
    return (
        user.key, d.get("email"), d.get("name"), d.get("profile"), d.get("preferences"),
        php_time(d["created_at"]), php_time(d["updated_at"]), php_time(d.get("last_active_at")),
        d.get("status"),
    )  # fmt: skip


def log_row(line: LegacyDoc) -> tuple[Any, ...]:
    """The system_logs row a log line should become (after its id)."""
    d, ip = line.doc, line.doc.get("ip")
    return (
        d["level"], d["message"], d.get("context"), d.get("trace_id"),
        None if ip is None else ipaddress.ip_address(ip), d.get("user_agent"),
        d.get("request_uri"), php_time(d["timestamp"]),
    )  # fmt: skip


def secondary_indexes(url: str) -> dict[str, str]:
    """Indexes that back no constraint, written as `INDEXES` writes them."""
    defs = {
        ix.name: ix.definition.removeprefix(f"CREATE INDEX {ix.name} ON public.")
        for ix in indexes(url)
        if not ix.backs
    }
    return {n: d.replace(" USING btree", "") for n, d in defs.items()}


@pytest.fixture(scope="module")
def mapping() -> MappingSet:
    return app_mapping(APP)


@pytest.fixture(scope="module")
def docs() -> Docs:
    return docs_by_entity(generate, N, SEED)


@pytest.fixture(scope="module")
async def loaded(pg_url: str, mapping: MappingSet, docs: Docs) -> str:
    """The module's database: migrated, loaded with the generated files, then indexed
    (post-load migrations run after the bulk load, as in a real backfill)."""
    upserted = await migrate_and_load(APP, pg_url, mapping, docs, ENTITIES)
    assert upserted == dict.fromkeys(ENTITIES, N)
    return pg_url


def test_migrations_go_up_down_all_the_way_and_up_again(pg_server_url: str) -> None:
    steps = migration_count(APP)
    with scratch_db(pg_server_url, "donna") as url:
        m = migrator(APP, url)
        m.up()
        assert columns(url, COLUMN_DETAILS) == PLAN
        assert [s.name for s in m.status() if s.state == "deferred"] == POST_LOAD
        assert secondary_indexes(url) == {}  # secondary indexes wait for the bulk load ...
        m.up(post_load=True)
        assert secondary_indexes(url) == INDEXES  # ... and are built after it
        m.down(steps=steps, set_name="donna")
        assert {s.state for s in m.status() if s.set_name == "donna"} == {"pending", "deferred"}
        assert not set(columns(url, COLUMN_DETAILS)) & set(PLAN)
        m.up(post_load=True)
        assert columns(url, COLUMN_DETAILS) == PLAN
        assert secondary_indexes(url) == INDEXES
        assert all(s.applied for s in m.status())


def test_schema_is_the_plan(loaded: str) -> None:
    assert columns(loaded, COLUMN_DETAILS) == PLAN
    found = constraints(loaded)
    assert {(c.table, c.columns) for c in found if c.kind == "u"} == UNIQUE
    assert {(c.table, c.definition) for c in found if c.kind == "f"} == FKS
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
    assert len({d.key for d in first}) == len(first)


def test_files_look_like_the_php_apps(docs: Docs) -> None:
    keys = {"users": r"user_2[0-9A-Za-z]{26}", "chat_sessions": r"chat_[0-9a-f]{13}",
            "system_logs": r"donna-\d{4}-\d{2}-\d{2}\.log:[1-9]\d*"}  # fmt: skip
    for entity, pattern in keys.items():
        assert all(re.fullmatch(pattern, d.key) for d in docs[entity]), entity
    users, sessions, logs = ([d.doc for d in docs[e]] for e in ENTITIES)
    assert all(json.loads(json.dumps(doc)) == doc for doc in users + sessions + logs)
    for rows, field in ((users, "email"), (sessions, "user_id"), (sessions, "title")):
        assert any(field not in r for r in rows), f"{field} is never missing"
        assert any(field in r and r[field] is None for r in rows), f"{field} is never null"
    assert any(r.get("preferences") == [] for r in users)  # json_encode() of an empty array
    assert any(r.get("context") == [] for r in logs)
    # PHP's date shapes: 'Y-m-d H:i:s', DATE_ATOM (with non-UTC offsets), time() in jsonb
    assert {" " in r["created_at"] for r in users} == {True, False}
    assert any(not m["timestamp"].endswith("+00:00") for s in sessions for m in s["messages"])
    assert any(isinstance(s.get("metadata"), dict) and "started" in s["metadata"] for s in sessions)
    text = "".join(m["content"] for s in sessions for m in s["messages"])
    scripts = {"Hebrew": r"[\u0590-\u05ff]", "Arabic": r"[\u0600-\u06ff]",
               "CJK": r"[\u4e00-\u9fff]",
               "emoji": r"[\U0001f300-\U0001faff]", "accents": "[éüñç]"}  # fmt: skip
    for script, pattern in scripts.items():
        assert re.search(pattern, text), script


def test_every_file_lands_with_its_children(loaded: str, docs: Docs) -> None:
    messages = sum(len(d.doc["messages"]) for d in docs["chat_sessions"])
    memories = sum(len(d.doc.get("memories") or ()) for d in docs["users"])
    assert messages > N
    assert memories > N
    expected = {**dict.fromkeys(ENTITIES, N), "messages": messages, "user_memory": memories}
    assert {t: count(loaded, t) for t in PLAN} == expected
    # message_count, where the file has one, agrees with the exploded messages
    drift = """select count(*) from chat_sessions s where message_count <>
               (select count(*) from messages m where m.chat_session_id = s.id)"""
    assert query(loaded, drift) == [(0,)]


def test_sequence_number_is_the_array_position(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    gaps = """select count(*) from (select chat_session_id from messages group by 1
              having min(sequence_number) <> 0 or max(sequence_number) <> count(*) - 1
                  or count(distinct sequence_number) <> count(*)) x"""
    assert query(loaded, gaps) == [(0,)]
    session = max(docs["chat_sessions"], key=lambda d: len(d.doc["messages"]))
    rows = query(
        loaded,
        "select id, sequence_number, role, content, created_at, token_count, abuse_flagged, "
        "metadata from messages where chat_session_id = %s order by sequence_number",
        pk(mapping.entity("chat_sessions"), session.key),
    )
    # the child id is the uuid5 of (chat id, position): stable across re-runs
    ns = "donna/chat_sessions.messages"
    assert rows == [
        (
            uuid5_for(ns, f"{session.key}\x1f{i}"), i, m["role"], m["content"],
            php_time(m["timestamp"]), m.get("token_count"),
            None if m.get("abuse_flagged") is None else bool(m["abuse_flagged"]),
            m.get("metadata"),
        )
        for i, m in enumerate(session.doc["messages"])
    ]  # fmt: skip


async def test_memory_is_replaced_wholesale_and_stays_unique(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    em = mapping.entity("users")
    user = next(d for d in docs["users"] if len(d.doc.get("memories") or ()) >= 3)
    uid, mems = pk(em, user.key), user.doc["memories"]
    stored = "select memory_type, key, value, id from user_memory where user_id = %s order by 1, 2"
    before = query(loaded, stored, uid)

    async def put(memories: list[dict[str, Any]]) -> int:
        doc = {**user.doc, "memories": memories}
        return await upsert_rowsets(conn, em, [rows_of(em, user.key, doc)])

    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        # Reordered entries move to other positions, hence other ids; replacing the user's
        # rows wholesale means no (user, type, key) collides with a row about to go.
        await put(mems[::-1])
        after = query(loaded, stored, uid)
        assert [r[:3] for r in after] == [r[:3] for r in before]
        moved = {(m["type"], m["key"]): len(mems) - 1 - i for i, m in enumerate(mems)}
        ns = "donna/users.user_memory"
        ids = {uuid5_for(ns, f"{user.key}\x1f{moved[r[:2]]}") for r in after}
        assert {r[3] for r in after} == ids
        # A duplicate (user, type, key) under another id is rejected, through the mapping ...
        with pytest.raises(pge.UniqueViolation):
            await put([*mems, {**mems[0], "value": "autre chose"}])
        # ... and written directly
        with pytest.raises(pge.UniqueViolation):
            await conn.execute(
                "insert into user_memory (user_id, memory_type, key, value) "
                "values (%s, %s, %s, '1')",
                (uid, mems[0]["type"], mems[0]["key"]),
            )
        assert [r[:3] for r in query(loaded, stored, uid)] == [r[:3] for r in before]
        await put(mems)
    assert query(loaded, stored, uid) == before


def test_values_survive(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    users, logs = mapping.entity("users"), mapping.entity("system_logs")
    stored = query(
        loaded,
        "select id, clerk_id, email, name, profile, preferences, created_at, updated_at, "
        "last_active_at, status from users",
    )
    # every user: both date shapes, [] and {} jsonb, nulls, unicode names
    assert {r[0]: r[1:] for r in stored} == {pk(users, u.key): user_row(u) for u in docs["users"]}
    stored = query(
        loaded,
        "select id, level, message, context, trace_id, ip_address, user_agent, request_uri, "
        "created_at from system_logs",
    )
    # every log line: text into inet (IPv4 and IPv6), [] context, milliseconds kept
    assert {r[0]: r[1:] for r in stored} == {
        pk(logs, x.key): log_row(x) for x in docs["system_logs"]
    }
    # null and missing both become NULL, never the plan's default
    for column in ("email", "preferences", "status"):
        empty = sum(1 for d in docs["users"] if d.doc.get(column) is None)
        is_null = sql.SQL("select count(*) from users where {} is null")
        assert query(loaded, is_null.format(sql.Identifier(column))) == [(empty,)]
    # unix seconds written by time() stay integers inside jsonb
    found = "select value from user_memory where key = 'last_reminder_at' order by value"
    memories = [m for d in docs["users"] for m in d.doc.get("memories") or ()]
    stamps = sorted(m["value"] for m in memories if m["key"] == "last_reminder_at")
    assert query(loaded, found) == [(v,) for v in stamps]


def test_secrets_are_marked_and_redacted(mapping: MappingSet, docs: Docs) -> None:
    users, logs = mapping.entity("users"), mapping.entity("system_logs")
    user = next(
        d.doc for d in docs["users"]
        if "api_token" in d.doc and "integrations" in (d.doc.get("preferences") or {})
    )  # fmt: skip
    shown = repr(users.redact(loads_payload(dumps_payload(user))))
    assert user["api_token"] not in shown
    assert user["preferences"]["integrations"]["google_calendar"]["refresh_token"] not in shown
    assert user["clerk_id"] in shown  # an id, not a credential
    line = next(
        d.doc for d in docs["system_logs"] if "session_token" in (d.doc.get("context") or {})
    )
    shown = repr(logs.redact(loads_payload(dumps_payload(line))))
    assert line["context"]["session_token"] not in shown
    assert line["context"]["headers"]["authorization"] not in shown
    assert line["context"]["reason"] in shown


async def test_fewer_messages_replace_the_old_ones(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    """On the row-at-a-time path, and on the batch path (COPY staging, version gate)."""
    em = mapping.entity("chat_sessions")
    session = max(docs["chat_sessions"], key=lambda d: len(d.doc["messages"]))
    shorter = {**session.doc, "messages": session.doc["messages"][:2], "title": "Réécrit ✨"}
    sid, v, n = pk(em, session.key), session.version, len(session.doc["messages"])
    stored = """select s.title, m.sequence_number, m.content from chat_sessions s
                join messages m on m.chat_session_id = s.id where s.id = %s order by 2"""
    expected = [("Réécrit ✨", i, m["content"]) for i, m in enumerate(shorter["messages"])]

    async def apply(version: int, doc: dict[str, Any]) -> ApplyResult:
        rows = rows_of(em, session.key, doc)
        change = Change(em.name, session.key, version, False, f"e{version}", rows)
        return await apply_batch(conn, mapping, [change])

    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        await upsert_rowsets(conn, em, [rows_of(em, session.key, shorter)])
        assert query(loaded, stored, sid) == expected
        await upsert_rowsets(conn, em, [rows_of(em, session.key, session.doc)])
        assert len(query(loaded, stored, sid)) == n
        # the batch path also writes text staging columns into varchar ones
        assert await apply(v, shorter) == ApplyResult(applied=1, deleted=0, stale=0)
        assert query(loaded, stored, sid) == expected
        assert await apply(v - 1, session.doc) == ApplyResult(applied=0, deleted=0, stale=1)
        assert query(loaded, stored, sid) == expected  # an older after-image never wins
        assert await apply(v + 1, session.doc) == ApplyResult(applied=1, deleted=0, stale=0)
    assert len(query(loaded, stored, sid)) == n
    assert count(loaded, "chat_sessions") == N


async def test_system_logs_apply_through_the_batch_path(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    em = mapping.entity("system_logs")
    line = next(d for d in docs["system_logs"] if d.doc.get("ip"))
    change = Change(em.name, line.key, 2, False, "e-log", rows_of(em, line.key, line.doc))
    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        assert await apply_batch(conn, mapping, [change]) == ApplyResult(1, 0, 0)
