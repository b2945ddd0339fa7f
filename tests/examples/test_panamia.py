"""The panamia example on real Postgres: migrations, the roadmap's schema with its
double-booking exclusion constraint, and generated legacy documents loaded through the
mapping with ObjectId -> cuid keys."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import psycopg
import pytest

from dualsync.consumers.direct import upsert_rowsets
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import MappingSet, RowSet
from dualsync.schema.mapping.keys import cuid_for
from examples.panamia.generator import ENTITIES, generate
from tests.examples._support import (
    EXAMPLES,
    Docs,
    app_mapping,
    columns,
    constraints,
    count,
    docs_by_entity,
    migrate_and_load,
    migration_count,
    migrator,
    pk,
    query,
    rows_of,
    scratch_db,
)

APP = EXAMPLES / "panamia"
N = 1000
#: the migration that runs after the bulk load (`-- Phase: post-load`)
POST_LOAD = "add_booking_status_index"
SEED = 20250109

# The roadmap's tables (seed 004): column -> (type, nullable).
T, TZ, NUM = "text", "timestamptz", "numeric"
PLAN: dict[str, dict[str, tuple[str, bool]]] = {
    "users": {
        "id": (T, False), "email": (T, False), "email_verified": (TZ, True),
        "screenname": (T, True), "role": (T, False), "name": (T, True), "image": (T, True),
        "created_at": (TZ, False), "updated_at": (TZ, False),
    },
    "accounts": {
        "id": (T, False), "user_id": (T, False), "type": (T, False), "provider": (T, False),
        "provider_account_id": (T, False), "refresh_token": (T, True),
        "access_token": (T, True), "expires_at": ("int4", True), "token_type": (T, True),
        "scope": (T, True), "id_token": (T, True), "session_state": (T, True),
    },
    "sessions": {
        "id": (T, False), "session_token": (T, False), "user_id": (T, False),
        "expires": (TZ, False),
    },
    "verification_tokens": {
        "id": (T, False), "identifier": (T, False), "token": (T, False), "expires": (TZ, False),
    },
    "listings": {
        "id": (T, False), "sitter_id": (T, False), "title": (T, False),
        "description": (T, True), "price_per_day": (NUM, False), "available": ("bool", False),
        "created_at": (TZ, False), "updated_at": (TZ, False),
    },
    "bookings": {
        "id": (T, False), "listing_id": (T, False), "owner_id": (T, False),
        "sitter_id": (T, False), "start_date": (TZ, False), "end_date": (TZ, False),
        "status": (T, False), "total_price": (NUM, False), "created_at": (TZ, False),
        "updated_at": (TZ, False),
    },
}  # fmt: skip
UNIQUE = {
    ("users", ("email",)), ("users", ("screenname",)),
    ("accounts", ("provider", "provider_account_id")), ("sessions", ("session_token",)),
    ("verification_tokens", ("token",)), ("verification_tokens", ("identifier", "token")),
}  # fmt: skip
FKS = {
    ("accounts", "user_id", "users"), ("sessions", "user_id", "users"),
    ("listings", "sitter_id", "users"), ("bookings", "listing_id", "listings"),
    ("bookings", "owner_id", "users"), ("bookings", "sitter_id", "users"),
}  # fmt: skip
EXCLUSION = (
    "EXCLUDE USING gist (listing_id WITH =, tstzrange(start_date, end_date, '[)'::text) WITH &&)"
    " WHERE ((status <> 'cancelled'::text))"
)
CUID = re.compile(r"c[0-9a-z]{24}")

_OVERLAPS = """
select count(*) from bookings a join bookings b
  on a.listing_id = b.listing_id and a.id < b.id
 and tstzrange(a.start_date, a.end_date, '[)') && tstzrange(b.start_date, b.end_date, '[)')
where {}
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
    with scratch_db(pg_server_url, "panamia") as url:
        m = migrator(APP, url)
        m.up()
        assert columns(url) == PLAN
        deferred = [s.name for s in m.status() if s.state == "deferred"]
        assert deferred == [POST_LOAD]  # indexes wait for the bulk load ...
        m.up(post_load=True)  # ... and are built after it
        m.down(steps=steps, set_name="panamia")
        states = {s.state for s in m.status() if s.set_name == "panamia"}
        assert states == {"pending", "deferred"}
        assert not set(columns(url)) & set(PLAN)
        assert query(url, "select extname from pg_extension where extname = 'btree_gist'") == []
        m.up(post_load=True)
        assert columns(url) == PLAN
        status = m.status()
        assert status  # the runner reports every migration ...
        assert all(s.applied for s in status)  # ... and all of them are applied again


def test_schema_is_the_roadmap(loaded: str) -> None:
    assert columns(loaded) == PLAN
    found = constraints(loaded)
    assert {(c.table, c.columns) for c in found if c.kind == "u"} == UNIQUE
    assert {(c.table, c.columns[0], c.references) for c in found if c.kind == "f"} == FKS
    exclusion = "select pg_get_constraintdef(oid) from pg_constraint where contype = 'x'"
    assert query(loaded, exclusion) == [(EXCLUSION,)]


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


def test_every_document_lands(loaded: str, docs: Docs) -> None:
    assert {t: count(loaded, t) for t in PLAN} == dict.fromkeys(ENTITIES, N)
    # Cancelled bookings free their slot, and some later booking took one: the partial
    # exclusion constraint is exercised by the data, not only by the test below.
    [(with_cancelled,)] = query(loaded, _OVERLAPS.format("'cancelled' in (a.status, b.status)"))
    assert with_cancelled > 0
    live = "a.status <> 'cancelled' and b.status <> 'cancelled'"
    assert query(loaded, _OVERLAPS.format(live)) == [(0,)]


def test_keys_are_deterministic_cuids_and_references_line_up(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    users, listings, bookings = (mapping.entity(e) for e in ("users", "listings", "bookings"))
    booking = docs["bookings"][0]
    key = pk(bookings, booking.key)
    assert CUID.fullmatch(str(key))
    # The roadmap's ObjectId -> cuid transform: deterministic per "panamia/<entity>", so
    # MongoDB documents still holding an ObjectId can compute the Postgres id themselves.
    assert key == cuid_for("panamia/bookings", booking.key)
    assert pk(users, booking.key) != key  # namespaced per entity
    [row] = query(
        loaded,
        "select b.listing_id, b.owner_id, b.sitter_id, l.sitter_id, b.start_date, b.end_date, "
        "b.total_price, l.price_per_day from bookings b join listings l on l.id = b.listing_id "
        "join users o on o.id = b.owner_id join users s on s.id = b.sitter_id where b.id = %s",
        key,
    )
    doc = booking.doc
    listing = next(d for d in docs["listings"] if d.doc["_id"] == doc["listingId"])
    assert row == (
        pk(listings, str(doc["listingId"])),
        pk(users, str(doc["ownerId"])),
        pk(users, str(doc["sitterId"])),
        pk(users, str(doc["sitterId"])),
        doc["startDate"],
        doc["endDate"],
        doc["totalPrice"].to_decimal(),  # Decimal128 -> numeric, exact
        listing.doc["pricePerDay"].to_decimal(),
    )
    days = (doc["endDate"] - doc["startDate"]).days
    assert row[6] == row[7] * days


def test_credentials_are_mapped_and_marked_secret(
    loaded: str, mapping: MappingSet, docs: Docs
) -> None:
    accounts = mapping.entity("accounts")
    google = next(d for d in docs["accounts"] if d.doc["provider"] == "google")
    [(token, refresh, id_token, expires_at)] = query(
        loaded,
        "select access_token, refresh_token, id_token, expires_at from accounts where id = %s",
        pk(accounts, google.key),
    )
    assert (token, refresh, id_token, expires_at) == (
        google.doc["access_token"],
        google.doc["refresh_token"],
        google.doc["id_token"],
        google.doc["expires_at"],
    )
    github = next(d for d in docs["accounts"] if d.doc["provider"] == "github")
    [(refresh,)] = query(
        loaded,
        "select refresh_token from accounts where id = %s",
        pk(accounts, github.key),
    )
    assert refresh is None  # missing in the document -> NULL

    # Credentials never reach logs, dead letters or drift reports.
    assert {"access_token", "refresh_token", "id_token"} <= accounts.secret_fields
    assert "sessionToken" in mapping.entity("sessions").secret_fields
    assert "token" in mapping.entity("verification_tokens").secret_fields
    shown = repr(accounts.redact(loads_payload(dumps_payload(google.doc))))
    for field in ("access_token", "refresh_token", "id_token"):
        assert google.doc[field] not in shown
    assert google.doc["providerAccountId"] in shown  # an id, not a credential


async def test_double_booking_is_rejected(loaded: str, mapping: MappingSet, docs: Docs) -> None:
    em = mapping.entity("bookings")
    base = next(d for d in docs["bookings"] if d.doc["status"] == "confirmed").doc
    [(last_end,)] = query(
        loaded,
        "select max(end_date) from bookings where listing_id = %s and status <> 'cancelled'",
        pk(mapping.entity("listings"), str(base["listingId"])),
    )

    def booking(key: str, start: dt.datetime, days: int, status: str) -> RowSet:
        end = start + dt.timedelta(days=days)
        return rows_of(em, key, {**base, "startDate": start, "endDate": end, "status": status})

    day = dt.timedelta(days=1)
    new = {k: pk(em, k) for k in ("a" * 24, "b" * 24, "c" * 24, "d" * 24)}

    async def put(key: str, start: dt.datetime, days: int, status: str) -> int:
        return await upsert_rowsets(conn, em, [booking(key, start, days, status)])

    async with await psycopg.AsyncConnection.connect(loaded, autocommit=True) as conn:
        try:
            # Starts the instant the last live stay ends: half-open ranges do not overlap.
            assert await put("a" * 24, last_end, 3, "pending") == 1
            with pytest.raises(psycopg.errors.ExclusionViolation):
                await put("b" * 24, last_end + day, 3, "pending")
            # A cancelled booking holds no slot ...
            assert await put("c" * 24, last_end + day, 3, "cancelled") == 1
            # ... and re-activating it would double-book: rejected too.
            with pytest.raises(psycopg.errors.ExclusionViolation):
                await put("c" * 24, last_end + day, 3, "confirmed")
            # After the new stay, the listing is free again.
            assert await put("d" * 24, last_end + 3 * day, 2, "confirmed") == 1
            assert count(loaded, "bookings") == N + 3
        finally:
            await conn.execute("delete from bookings where id = any(%s)", (list(new.values()),))
    assert count(loaded, "bookings") == N
