"""Integers beyond 64 bits stay exact on every path that parses JSON, not only the stream's.

orjson (the serialiser) parses such integers into floats, silently dropping digits. The
legacy JSON stores (a directory, one file, JSON lines) used it, so a 20-digit number in a
PHP app's file reached Postgres rounded by the backfill (and the verifier compared the
rounded value), while the same document through the stream arrived exact; the dead-letter
redactor used it too, so a secret held as such a number was not recognised in error texts.
Everything now parses with `jsonexact.loads_exact`.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dualsync.ops.cli_backfill import run_backfill
from dualsync.producers.backfill import BackfillOptions
from dualsync.producers.stores import JsonDirStore, JsonFileStore, JsonLinesStore
from dualsync.schema.extjson import loads_payload
from dualsync.schema.jsonexact import JSONTextError, loads_exact
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.settings import Settings
from dualsync.worker.deadletter import Redactor
from dualsync.worker.entry import Entry
from tests.examples._support import query
from tests.test_backfill import DONNA, db, donna_db  # noqa: F401 - fixtures

BIG = 123456789012345678901234567  # 27 digits: orjson would read 1.2345678901234568e+26
NEG = -(2**64) - 1
TEXT = b'{"n": 123456789012345678901234567, "m": -18446744073709551617, "f": 0.5}'


def test_loads_exact_keeps_them_and_refuses_what_orjson_refuses() -> None:
    assert orjson.loads(TEXT)["n"] != BIG  # the defect this guards against
    assert loads_exact(TEXT) == {"n": BIG, "m": NEG, "f": 0.5}
    for bad in (b"[1,]", b"NaN", b'{"a": Infinity}', b"\xef\xbb\xbf{}", b'"\\ud800"', b"1e400"):
        with pytest.raises(JSONTextError):
            loads_exact(bad)
    with pytest.raises(JSONTextError, match="nested too deeply"):
        loads_exact(b"[" * 100_000)  # a RecursionError would escape every handler


def test_payload_errors_name_a_position_never_the_content() -> None:
    with pytest.raises(ValueError, match=r"not valid JSON \(.*byte 19") as err:
        loads_payload(b'{"token": "s3cret" x}')
    assert "s3cret" not in str(err.value)
    with pytest.raises(ValueError, match="nested too deeply"):
        loads_payload(b'{"a":' * 50_000)


def test_every_json_store_reads_them_exactly(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "u1.json").write_bytes(TEXT)
    rec = JsonDirStore("users", tmp_path / "dir")._get("u1")
    assert rec is not None
    assert rec.doc["n"] == BIG
    assert rec.doc["m"] == NEG
    (tmp_path / "all.json").write_bytes(b'{"u1": ' + TEXT + b"}")
    rec = JsonFileStore("users", tmp_path / "all.json")._get("u1")
    assert rec is not None
    assert rec.doc["n"] == BIG
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(TEXT + b"\n")
    rec = JsonLinesStore("logs", tmp_path, "logs/*.log")._get("a.log:1")
    assert rec is not None
    assert rec.doc["n"] == BIG


async def test_direct_backfill_writes_them_exactly(
    db: str,  # noqa: F811 - the fixture
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    ms: MappingSet = load_mapping(DONNA / "mapping.yaml")
    users = tmp_path / "donna" / "data" / "memory"
    users.mkdir(parents=True)
    doc = {"email": "a@example.test", "name": "A", "created_at": "2025-01-02 03:04:05",
           "updated_at": "2025-01-02T03:04:05Z", "preferences": {"phone": 0}}  # fmt: skip
    text = orjson.dumps(doc).replace(b'"phone":0', b'"phone":' + str(BIG).encode())
    (users / "user_1.json").write_bytes(text)
    opts = BackfillOptions(checkpoint=tmp_path / "cp.json", mode="direct", entities=("users",))
    cp, job = await run_backfill(Settings(prefix=redis_prefix, shards=2, source="test"), ms, opts,
                                 database_url=db, redis_url=redis_url,
                                 legacy_root=tmp_path / "donna")  # fmt: skip
    assert job.bad == []
    assert cp.entities["users"].sent == 1
    [(phone,)] = query(db, "select preferences->>'phone' from users")
    assert phone == str(BIG)


def test_the_redactor_finds_a_secret_held_as_a_big_integer() -> None:
    ms = load_mapping(DONNA / "mapping.yaml")
    red = Redactor(ms)
    raw = b'{"api_token": 98765432109876543210987, "name": "A"}'
    entry = Entry("s", "1-0", {b"payload": raw})
    text = red.scrub("rejected 98765432109876543210987 for A", "users", [entry])
    assert "98765432109876543210987" not in text
    shown = red.payload("users", b'{"name": "A", "n": 123456789012345678901234567}')
    assert str(BIG) in shown  # shown exactly (orjson.dumps refuses such an int)
