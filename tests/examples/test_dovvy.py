"""The dovvy example on real Postgres with pgvector: its migrations (HNSW built after the
bulk load), the plan's schema, and generated legacy JSON records loaded through the mapping.

Everything that touches the database needs pgvector and asks for `require_vector`, so a
plain PostgreSQL behind DATABASE_URL skips those tests with the reason; the generator and
mapping tests run everywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from array import array
from collections import Counter
from typing import Any

import psycopg
import pytest
from bson.binary import Binary, BinaryVectorDtype
from psycopg import sql

from dualsync.consumers.apply import apply_batch
from dualsync.consumers.change import Change
from dualsync.consumers.direct import upsert_rowsets
from dualsync.ops.verify.canon import canon_function
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import EntityMapping, MappingError, MappingSet
from dualsync.schema.mapping.keys import uuid5_for
from examples.dovvy.generator import ENTITIES, generate
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

APP = EXAMPLES / "dovvy"
N = 1000
POST_LOAD = "content_embeddings_hnsw"  # the migration that waits for the bulk load
SEED = 20251222
#: the load runs in a far-from-UTC session: timestamptz keeps instants whatever the zone
LOAD_TZ = "Pacific/Chatham"

# The plan's tables (seed 001): column -> (type, nullable, default).
U, T, TZ, J, B = "uuid", "text", "timestamp with time zone", "jsonb", "boolean"
NOW, TRUE = "now()", "true"
PLAN: dict[str, dict[str, tuple[str, bool, str | None]]] = {
    "destinations": {
        "id": (U, False, "gen_random_uuid()"), "name": (T, False, None),
        "country": (T, False, None), "is_active": (B, False, TRUE), "created_at": (TZ, False, NOW),
    },
    "dive_sites": {
        "id": (U, False, None), "destination_id": (U, False, None), "name": (T, False, None),
        "description": (T, True, None), "min_certification_level": (T, True, None),
        "min_logged_dives": ("integer", True, None), "difficulty_band": (T, True, None),
        "access_type": (T, True, None), "is_active": (B, False, TRUE),
        "created_at": (TZ, False, NOW),
    },
    "leads": {
        "id": (U, False, None), "type": (T, False, None), "diver_profile": (J, True, None),
        "request_details": (J, False, None), "created_at": (TZ, False, NOW),
    },
    "sessions": {
        "id": (U, False, None), "diver_profile": (J, True, None),
        "conversation_history": (J, False, None), "created_at": (TZ, False, NOW),
        "expires_at": (TZ, False, "(now() + '24:00:00'::interval)"),
    },
    "content_embeddings": {
        "id": (U, False, None), "content_path": (T, False, None), "chunk_text": (T, False, None),
        "embedding": ("vector(1536)", False, None), "metadata": (J, True, None),
        "created_at": (TZ, False, NOW),
    },
}  # fmt: skip
#: foreign keys and checks; the FK has no ON DELETE action (sites keep their destination)
CONSTRAINTS = {
    ("dive_sites", "FOREIGN KEY (destination_id) REFERENCES destinations(id)"),
    ("leads", "CHECK ((type = ANY (ARRAY['training'::text, 'trip'::text])))"),
}
HNSW = (
    "CREATE INDEX content_embeddings_embedding_idx ON public.content_embeddings "
    "USING hnsw (embedding vector_cosine_ops) WITH (m='16', ef_construction='64')"
)
INDEXES = {
    "dive_sites_destination_id_idx": "CREATE INDEX dive_sites_destination_id_idx "
    "ON public.dive_sites USING btree (destination_id)",
    "sessions_expires_at_idx": "CREATE INDEX sessions_expires_at_idx "
    "ON public.sessions USING btree (expires_at)",
    "content_embeddings_embedding_idx": HNSW,
}
#: the legacy ids: file slugs, "<destination>/<site>", "<page>#<chunk>", UUIDv4, nanoid
KEYS = {
    "destinations": r"[a-z0-9-]+", "dive_sites": r"[a-z0-9-]+/[a-z0-9-]+",
    "content_embeddings": r"[a-z-]+/[a-z0-9-]+\.md#\d+",
    "sessions": r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "leads": r"[A-Za-z0-9_-]{21}",
}  # fmt: skip

#: (table, column, type, nullable, default) from the catalog, which (unlike
#: information_schema) spells the vector's dimensions: vector(1536)
_COLUMNS = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
from pg_attribute a join pg_class c on c.oid = a.attrelid
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
  and a.attnum > 0 and not a.attisdropped
"""
_NEAREST = "select {} from content_embeddings order by embedding {} %s::vector limit 5"


def secondary_indexes(url: str) -> dict[str, str]:
    return {ix.name: ix.definition for ix in indexes(url) if ix.backs != "p"}


def row(url: str, em: EntityMapping, legacy_key: str, cols: str) -> tuple[Any, ...]:
    """`cols` of the row a legacy record became."""
    stmt = sql.SQL("select {} from {} where id = %s").format(
        sql.SQL(cols), sql.Identifier(em.table)
    )
    [found] = query(url, stmt, pk(em, legacy_key))
    return found


def at(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


@pytest.fixture(scope="module")
def mapping() -> MappingSet:
    return app_mapping(APP)


@pytest.fixture(scope="module")
def docs() -> Docs:
    return docs_by_entity(generate, N, SEED)


@pytest.fixture(scope="module")
def loaded_once() -> dict[str, str]:
    return {}


@pytest.fixture
async def loaded(
    require_vector: None,
    pg_url: str,
    mapping: MappingSet,
    docs: Docs,
    loaded_once: dict[str, str],
) -> str:
    """The module's database, migrated, loaded once, then indexed (post-load migrations run
    after the bulk load). Function-scoped so `require_vector` skips before any load."""
    if "url" not in loaded_once:
        upserted = await migrate_and_load(APP, pg_url, mapping, docs, ENTITIES, LOAD_TZ)
        assert upserted == dict.fromkeys(ENTITIES, N)
        loaded_once["url"] = pg_url
    return loaded_once["url"]


def test_migrations_go_up_down_all_the_way_and_up_again(
    require_vector: None, pg_server_url: str
) -> None:
    steps = migration_count(APP)
    with scratch_db(pg_server_url, "dovvy") as url:
        m = migrator(APP, url)
        m.up()
        assert columns(url, _COLUMNS) == PLAN
        assert [s.name for s in m.status() if s.state == "deferred"] == [POST_LOAD]
        assert HNSW not in secondary_indexes(url).values()  # waits for the bulk load ...
        m.up(post_load=True)
        assert secondary_indexes(url) == INDEXES  # ... and is built after it
        m.down(steps=steps, set_name="dovvy")
        assert {s.state for s in m.status() if s.set_name == "dovvy"} == {"pending", "deferred"}
        assert not set(columns(url, _COLUMNS)) & set(PLAN)
        assert query(url, "select 1 from pg_extension where extname = 'vector'") == []
        m.up(post_load=True)
        assert columns(url, _COLUMNS) == PLAN
        assert all(s.applied for s in m.status())


def test_schema_is_the_plan(loaded: str) -> None:
    assert columns(loaded, _COLUMNS) == PLAN
    found = constraints(loaded)
    assert {(c.table, c.definition) for c in found if c.kind in {"f", "c"}} == CONSTRAINTS
    assert secondary_indexes(loaded) == INDEXES
    assert query(loaded, "select 1 from pg_extension where extname = 'vector'") == [(1,)]


@pytest.mark.parametrize("n", [0, 1, 3])
def test_any_size_maps(mapping: MappingSet, n: int) -> None:
    docs = list(generate(n, seed=1))
    assert len(docs) == n * len(ENTITIES)
    for d in docs:
        rows_of(mapping.entity(d.entity), d.key, d.doc)


def test_generator_is_deterministic_with_the_legacy_ids(mapping: MappingSet) -> None:
    first = list(generate(200, seed=7))
    assert first == list(generate(200, seed=7))
    assert first != list(generate(200, seed=8))
    assert Counter(d.entity for d in first) == dict.fromkeys(ENTITIES, 200)
    assert len({d.key for d in first}) == len(first)
    assert all(d.key == d.doc["id"] and re.fullmatch(KEYS[d.entity], d.key) for d in first)
    # The version is the one the worker derives from the mapping's version_field.
    versions = {(d.version, mapping.entity(d.entity).version_from(d.doc)) for d in first}
    assert all(theirs in {None, ours} for ours, theirs in versions)
    assert any(theirs is None for _, theirs in versions)  # leads: no version field


def test_records_are_json_with_nulls_missing_fields_and_unicode(
    docs: Docs,
) -> None:
    for entity, field in [
        ("dive_sites", "description"), ("dive_sites", "minLoggedDives"),
        ("sessions", "diverProfile"), ("leads", "diverProfile"),
        ("content_embeddings", "metadata"), ("destinations", "region"),
    ]:  # fmt: skip
        seen = Counter(
            "missing" if field not in d.doc else "null" if d.doc[field] is None else "set"
            for d in docs[entity]
        )
        assert seen.keys() == {"missing", "null", "set"}, (entity, field)
    records = [d.doc for e in ENTITIES if e != "content_embeddings" for d in docs[e]]
    shown = json.dumps(records, ensure_ascii=False)
    for script in (r"[\u3040-\u30ff\u4e00-\u9fff]", r"[\uac00-\ud7af]", r"[éíóúãçÞð]", r"[🐬🦈🧊]"):
        assert re.search(script, shown), script
    # Plain JSON: the payload round trip is the identity (strings stay strings).
    sample = [docs[e][0].doc for e in ENTITIES]
    assert loads_payload(dumps_payload(sample)) == sample
    assert all(d.doc["createdAt"].endswith("Z") for e in ENTITIES for d in docs[e])
    for d in docs["content_embeddings"][:50]:
        vec = d.doc["embedding"]
        assert len(vec) == 1536
        assert math.isclose(math.hypot(*vec), 1.0, abs_tol=1e-5)
        assert array("f", vec).tolist() == vec  # float32 values, as embedding APIs return


def test_mapping_refuses_what_it_cannot_store_faithfully(mapping: MappingSet, docs: Docs) -> None:
    chunk = docs["content_embeddings"][0]
    short = {**chunk.doc, "embedding": chunk.doc["embedding"][:-1]}
    with pytest.raises(MappingError, match="1535 dimensions, the column has 1536"):
        rows_of(mapping.entity("content_embeddings"), chunk.key, short)
    session = docs["sessions"][0]
    no_expiry = {k: v for k, v in session.doc.items() if k != "expiresAt"}
    with pytest.raises(MappingError, match="expiresAt"):  # never the column default
        rows_of(mapping.entity("sessions"), session.key, no_expiry)
    lead = next(
        d for d in docs["leads"] if d.doc["type"] == "trip" and d.doc["requestDetails"].get("phone")
    )
    shown = repr(mapping.entity("leads").redact(lead.doc))
    for field in ("name", "email", "phone"):
        assert lead.doc["requestDetails"][field] not in shown
    assert lead.doc["requestDetails"]["destination"] in shown


def test_values_survive_the_trip(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    sessions, sites, leads = (mapping.entity(e) for e in ("sessions", "dive_sites", "leads"))
    talk = max(docs["sessions"], key=lambda d: len(d.doc["conversationHistory"])).doc
    assert any("sources" in m for m in talk["conversationHistory"])
    # jsonb keeps the messages' order, unicode and nested `sources` arrays; instants are exact.
    cols = "conversation_history, diver_profile, created_at, expires_at"
    assert row(loaded, sessions, talk["id"], cols) == (
        talk["conversationHistory"], talk.get("diverProfile"),
        at(talk["createdAt"]), at(talk["expiresAt"]),
    )  # fmt: skip
    # A session's row id is the uuid5 of its cookie id: the app computes it the same way.
    assert pk(sessions, talk["id"]) == uuid5_for("dovvy/sessions", talk["id"])
    no_profile = sum(1 for d in docs["sessions"] if d.doc.get("diverProfile") is None)
    nulls = "select count(*) from sessions where diver_profile is null"
    assert query(loaded, nulls) == [(no_profile,)]  # null and missing: NULL, never '{}'

    site = next(
        d.doc for d in docs["dive_sites"]
        if re.search(r"[\u3040-\u9fff]", d.doc["name"]) and d.doc.get("description")
    )  # fmt: skip
    assert row(loaded, sites, site["id"], "name, description, min_logged_dives, created_at") == (
        site["name"], site["description"], site.get("minLoggedDives"), at(site["createdAt"]),
    )  # fmt: skip
    lead = next(d.doc for d in docs["leads"] if "diverProfile" not in d.doc)
    assert row(loaded, leads, lead["id"], "type, diver_profile, request_details") == (
        lead["type"], None, lead["requestDetails"],
    )  # fmt: skip


def test_vectors_survive_the_trip(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    em = mapping.entity("content_embeddings")
    for chunk in docs["content_embeddings"][::97]:
        text, dims, path, chunk_text, metadata = row(
            loaded, em, chunk.key,
            "embedding::text, vector_dims(embedding), content_path, chunk_text, metadata",
        )  # fmt: skip
        # pgvector stores float4: the generated float32 values come back bit for bit.
        assert array("f", json.loads(text)) == array("f", chunk.doc["embedding"])
        assert (dims, path, chunk_text) == (1536, chunk.doc["contentPath"], chunk.doc["text"])
        assert metadata == chunk.doc.get("metadata")


def test_every_record_lands_and_references_resolve(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    assert {t: count(loaded, t) for t in PLAN} == dict.fromkeys(PLAN, N)
    joined = "select count(*) from dive_sites s join destinations d on d.id = s.destination_id"
    assert query(loaded, joined) == [(N,)]
    slug, sites = Counter(d.doc["destinationId"] for d in docs["dive_sites"]).most_common(1)[0]
    name = next(d.doc["name"] for d in docs["destinations"] if d.key == slug)
    per_destination = (
        "select d.name, count(*) from destinations d join dive_sites s on s.destination_id = d.id "
        "where d.id = %s group by d.name"
    )
    assert query(loaded, per_destination, pk(mapping.entity("destinations"), slug)) == [
        (name, sites)
    ]


def test_nearest_neighbours_use_the_hnsw_index(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    chunk = docs["content_embeddings"][0]
    probe = json.dumps(chunk.doc["embedding"])
    topic = chunk.doc["contentPath"].split("/")[0]
    with psycopg.connect(loaded) as conn:
        conn.execute("set enable_seqscan = off")
        cosine = sql.SQL(_NEAREST).format(sql.SQL("id, content_path"), sql.SQL("<=>"))
        plan = "\n".join(r[0] for r in conn.execute(sql.SQL("explain ") + cosine, (probe,)))
        assert "Index Scan using content_embeddings_embedding_idx" in plan
        # The index is built for cosine distance only: L2 ordering cannot use it.
        l2 = sql.SQL(_NEAREST).format(sql.SQL("id"), sql.SQL("<->"))
        plan_l2 = "\n".join(r[0] for r in conn.execute(sql.SQL("explain ") + l2, (probe,)))
        assert "content_embeddings_embedding_idx" not in plan_l2
        hits = conn.execute(cosine, (probe,)).fetchall()
    assert hits[0][0] == pk(mapping.entity("content_embeddings"), chunk.key)
    # Embeddings cluster by topic: the neighbours are about the same thing.
    assert [path.split("/")[0] for _, path in hits] == [topic] * 5


async def test_lead_type_is_enforced_by_postgres(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    assert {t for (t,) in query(loaded, "select distinct type from leads")} == {"training", "trip"}
    em = mapping.entity("leads")
    bad = rows_of(em, "n3wLeadOfAnUnknownKind", {**docs["leads"][0].doc, "type": "course"})
    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await upsert_rowsets(conn, em, [bad])


async def test_reingested_chunk_applies_through_the_worker_path(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    """The batch path stages vectors through COPY as text; the version gate keeps the newest."""
    em = mapping.entity("content_embeddings")
    key = "faq/booking.md#9999"  # a chunk of its own: the loaded rows stay as generated
    first = {**docs["content_embeddings"][0].doc, "id": key, "contentPath": "faq/booking.md"}
    again = {
        **first,
        "embedding": [-x for x in first["embedding"]],
        "createdAt": "2025-12-21T08:00:00.000Z",
    }

    def change(doc: dict[str, Any], event: str) -> Change:
        version = em.version_from(doc)  # createdAt of the ingestion run, in µs
        assert version is not None
        return Change(em.name, key, version, False, event, rows_of(em, key, doc))

    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        try:
            assert (await apply_batch(conn, mapping, [change(first, "e1")])).applied == 1
            assert (await apply_batch(conn, mapping, [change(again, "e2")])).applied == 1
            assert (await apply_batch(conn, mapping, [change(first, "e1")])).stale == 1
            text, created = row(loaded, em, key, "embedding::text, created_at")
            assert array("f", json.loads(text)) == array("f", again["embedding"])
            assert created == at(again["createdAt"])
        finally:
            await conn.execute("delete from content_embeddings where id = %s", (pk(em, key),))
            await conn.execute(
                "delete from dualsync.row_state where entity = %s and key = %s", (em.name, key)
            )


async def test_a_bson_binary_vector_applies_as_the_same_float32s(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    """A MongoDB app may keep embeddings as BSON binary vectors (`$binary` subtype 9):
    through the payload codec and the batch path they land as the floats they hold, and
    the verifier's canonical form finds legacy and Postgres equal."""
    em = mapping.entity("content_embeddings")
    key = "faq/booking.md#9998"
    doc = {**docs["content_embeddings"][1].doc, "id": key, "contentPath": "faq/booking.md"}
    packed = Binary.from_vector(doc["embedding"], BinaryVectorDtype.FLOAT32)
    sent = loads_payload(dumps_payload({**doc, "embedding": packed}))
    assert isinstance(sent["embedding"], Binary)
    version = em.version_from(doc)
    assert version is not None
    rows = rows_of(em, key, sent)
    change = Change(em.name, key, version, False, "b1", rows)
    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        try:
            assert (await apply_batch(conn, mapping, [change])).applied == 1
            (text,) = row(loaded, em, key, "embedding::text")
            assert array("f", json.loads(text)) == array("f", doc["embedding"])
            canon = canon_function("vector(1536)")
            assert canon(sent["embedding"]) == canon(text)
            # the mapped value (pgvector's binary form, as staged) canonicalises the same
            mapped = rows.values[em.column_names.index("embedding")]
            assert canon(mapped) == canon(text)
        finally:
            await conn.execute("delete from content_embeddings where id = %s", (pk(em, key),))
            await conn.execute(
                "delete from dualsync.row_state where entity = %s and key = %s", (em.name, key)
            )
