"""The verifier on every example app's real store: clean after a backfill (the canonical form
holds for uuid5/cuid/composite keys, enums, jsonb, vectors, inet, timestamps of every shape),
and a field changed behind dualsync's back is found by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dualsync.ops.databases import drop_database, fresh_database
from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import load_mapping
from examples._stores import write_mongo, write_tree
from tests._verify_support import ROOT, App, backfill, migrate

#: app -> (entity, text column) to edit
EDITS = {
    "astro": ("users", "email"),
    "dovvy": ("dive_sites", "name"),
    "donna": ("chat_sessions", "title"),
    "tzurot": ("personalities", "display_name"),
    "panamia": ("listings", "title"),
}


@pytest.mark.parametrize("app_name", sorted(EDITS))
async def test_clean_then_a_changed_field(
    app_name: str, pg_server_url: str, redis_url: str, redis_prefix: str, tmp_path: Path,
    mock_mongo_db: Any, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    if app_name == "dovvy":
        request.getfixturevalue("require_vector")
    db_name = f"t_every_{app_name}_{redis_prefix}".lower()
    db = fresh_database(pg_server_url, db_name)
    try:
        migrate(app_name, db)
        ms = load_mapping(ROOT / "examples" / app_name / "mapping.yaml")
        module = __import__(f"examples.{app_name}.generator", fromlist=["generate"])
        docs = list(module.generate(30, 13))
        if app_name in {"astro", "panamia"}:
            await write_mongo(ms, docs, mock_mongo_db)
            stores = open_stores(ms, mongo_db=mock_mongo_db)
        else:
            write_tree(ms, docs, tmp_path / "tree", getattr(module, "FILE_KEYS", None))
            stores = open_stores(ms, root=tmp_path / "tree")
        app = App(ms, stores, db, redis_url, redis_prefix)
        await backfill(app, tmp_path)
        for entity in ms.entities:
            _, r = await app.verify(entity)
            assert r.drift == 0, (
                app_name,
                entity,
                [(f.key, f.kind, f.fields) for f in r.confirmed()],
            )
            assert r.matched == r.sampled > 0
        entity, column = EDITS[app_name]
        table = ms.entity(entity).table
        app.sql(f"update {table} set {column} = {column} || ' (edited)' where ctid = "  # noqa: S608 - names from this test
                f"(select ctid from {table} where {column} is not null limit 1)")  # fmt: skip
        _, r = await app.verify(entity)
        assert [(f.kind, f.fields) for f in r.confirmed()] == [("mismatch", [column])]
    finally:
        drop_database(pg_server_url, db_name)
