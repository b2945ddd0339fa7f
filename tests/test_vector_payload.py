"""The stream backfill sends embeddings as BSON binary vectors (producers/vector_payload.py).

Only fields read by `vector` columns alone are converted, only lists of finite float32-
range floats, never the record's own document; through a worker the rows are the ones the
JSON arrays give (the float32s pgvector stores).
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis.asyncio as aredis
from bson.binary import Binary

from dualsync.ops.cli_backfill import run_backfill
from dualsync.ops.cli_scan import make_scanners
from dualsync.ops.verify.repair import Repair, apply_repairs
from dualsync.producers import Publisher, stream_keys
from dualsync.producers.backfill import BackfillOptions
from dualsync.producers.vector_payload import BinaryVectors, vector_fields
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.mapping.coerce_vector import bson_vector
from dualsync.settings import Settings
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_until_idle
from examples._stores import write_tree
from examples.dovvy.generator import generate
from tests.examples._support import migrator

DOVVY = Path(__file__).resolve().parent.parent / "examples" / "dovvy"
ENTITY = "content_embeddings"


def mapping_of(tmp_path: Path, columns: str, extra: str = "") -> MappingSet:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\napp: t\nentities:\n  chunks:\n    table: chunks\n"
        f"    key: {{column: id}}\n{extra}    columns:\n{columns}"
    )
    return load_mapping(path)


def test_dovvys_embedding_is_the_one_vector_field() -> None:
    assert vector_fields(load_mapping(DOVVY / "mapping.yaml").entity(ENTITY)) == ("embedding",)


@pytest.mark.parametrize(
    ("columns", "extra"),
    [
        # the same field also feeds a jsonb column: that column needs the array
        ("      e: {from: emb, type: vector, dim: 2}\n      raw: {from: emb, type: jsonb}\n", ""),
        # a nested path of it feeds another column
        ("      e: {from: emb, type: vector, dim: 2}\n      first: {from: emb.0, type: float}\n",
         ""),
        # it is secret (HMAC'd in drift reports: the document's own value)
        ("      e: {from: emb, type: vector, dim: 2}\n", "    secret: [emb]\n"),
        # it is the version
        ("      e: {from: emb, type: vector, dim: 2}\n", "    version_field: emb\n"),
    ],
)  # fmt: skip
def test_a_field_read_by_anything_else_keeps_its_array(
    tmp_path: Path, columns: str, extra: str
) -> None:
    ms = mapping_of(tmp_path, columns, extra)
    assert vector_fields(ms.entity("chunks")) == ()
    doc = {"emb": [0.5, 0.25]}
    assert BinaryVectors(ms).payload("chunks", doc) is doc


def test_only_lists_of_finite_float32_floats_are_packed(tmp_path: Path) -> None:
    ms = mapping_of(tmp_path, "      e: {from: emb, type: vector, dim: 2}\n")
    vectors = BinaryVectors(ms)
    doc: dict[str, Any] = {"emb": [0.1, -2.5], "other": [1.0]}
    out = vectors.payload("chunks", doc)
    assert out is not doc
    assert doc["emb"] == [0.1, -2.5]
    assert isinstance(out["emb"], Binary)
    assert out["emb"].subtype == 9
    assert bson_vector(out["emb"]) == list(array("f", [0.1, -2.5]))  # the nearest float32s
    assert out["other"] == [1.0]
    for kept in ([1, 2], [0.5, "x"], [0.5, True], [], [1e39, 0.0], "text", None, {"a": 1}):
        same = {"emb": kept}
        assert vectors.payload("chunks", same) is same, kept  # the worker decides, as before
    assert vectors.payload("another", doc) is doc


async def payloads_of(redis_url: str, prefix: str) -> list[bytes]:
    client = aredis.Redis.from_url(redis_url)
    try:
        return [
            fields[b"payload"]
            for stream in stream_keys(prefix, 2)
            for _, fields in await client.xrange(stream)
        ]
    finally:
        await client.aclose()


async def test_the_change_scanner_sends_binary_vectors(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    ms = load_mapping(DOVVY / "mapping.yaml")
    docs = [d for d in generate(10, 4) if d.entity == ENTITY]
    write_tree(ms, docs, tmp_path)
    client = aredis.Redis.from_url(redis_url)
    pub = Publisher(client, source="scan", prefix=redis_prefix, shards=2)
    [scanner] = make_scanners(ms, client, pub, redis_prefix, entities=(ENTITY,),
                              legacy_root=tmp_path)  # fmt: skip
    assert (await scanner.scan()).upserts == len(docs)
    await client.aclose()
    payloads = await payloads_of(redis_url, redis_prefix)
    assert len(payloads) == len(docs)
    assert all(b'"$binary"' in p and b'"embedding":[' not in p for p in payloads)


async def test_a_stream_backfill_applies_the_same_floats(
    require_vector: None, pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    migrator(DOVVY, pg_url).up()
    ms = load_mapping(DOVVY / "mapping.yaml")
    docs = [d for d in generate(40, 3) if d.entity == ENTITY]
    write_tree(ms, docs, tmp_path / "dovvy")
    settings = Settings(prefix=redis_prefix, shards=2, source="test")
    opts = BackfillOptions(checkpoint=tmp_path / "cp.json", entities=(ENTITY,), chunk=16)
    cp, job = await run_backfill(settings, ms, opts, database_url=pg_url, redis_url=redis_url,
                                 legacy_root=tmp_path / "dovvy")  # fmt: skip
    assert cp.entities[ENTITY].sent == len(docs)
    assert job.bad == []
    payloads = await payloads_of(redis_url, redis_prefix)
    assert len(payloads) == len(docs)
    assert all(b'"$binary"' in p and b'"embedding":[' not in p for p in payloads)
    worker = StartOptions(
        WorkerConfig(prefix=redis_prefix, shards=2, consumer_name="w", block_ms=100),
        pg_url, redis_url, {}, mappings=ms,
    )  # fmt: skip
    stats = (await run_until_idle(worker, 0.3)).stats
    assert stats.applied == len(docs)
    assert stats.dead_lettered == 0
    with psycopg.connect(pg_url) as conn:
        got = conn.execute(
            "select content_path || chunk_text, embedding::text from content_embeddings"
        ).fetchall()
    rows: dict[str, str] = dict(got)
    assert len(rows) == len(docs)
    for d in docs:
        stored = rows[d.doc["contentPath"] + d.doc["text"]]
        assert array("f", json.loads(stored)) == array("f", d.doc["embedding"])


async def test_a_repair_sends_binary_vectors(
    require_vector: None, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    migrator(DOVVY, pg_url).up()
    ms = load_mapping(DOVVY / "mapping.yaml")
    [doc] = [d for d in generate(10, 5) if d.entity == ENTITY][:1]
    client = aredis.Redis.from_url(redis_url)
    try:
        async with (
            await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn,
            Publisher(client, source="repair", prefix=redis_prefix, shards=2) as pub,
        ):
            cur = await conn.execute(
                "insert into dualsync.verify_runs (entity, mode, status, sampled, drift) "
                "values (%s, 'sample', 'done', 1, 1) returning id",
                [ENTITY],
            )
            [(run_id,)] = await cur.fetchall()
            repair = Repair(run_id, ENTITY, doc.key, "missing_in_target", "upsert", None, doc.doc)
            assert await apply_repairs(conn, pub, [repair], BinaryVectors(ms)) == 1
    finally:
        await client.aclose()
    [payload] = await payloads_of(redis_url, redis_prefix)
    assert b'"$binary"' in payload
    assert b'"embedding":[' not in payload
