"""The in-flight look is taken before and after both sides are read (sample.check_keys).

Under live writes a document can be rewritten and its event published, applied and acked
while the verifier reads the two sides: it then holds the new document beside the old row,
and a look taken only before the reads finds nothing in flight. `test_verify_live.py` shows
it under load (it failed 3 times in 9 on a slow machine with the look before only); this
test pins the rule itself.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dualsync.consumers.pool import open_pool
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.inflight import InFlight
from dualsync.ops.verify.sample import IN_FLIGHT, MISMATCH, check_keys
from tests._verify_support import App, donna_app


@pytest.fixture
async def donna(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> App:
    return await donna_app(pg_url, redis_url, redis_prefix, tmp_path, 5, 3)


async def test_a_key_in_flight_only_after_the_reads_is_in_flight(
    donna: App, tmp_path: Path
) -> None:
    path = min((tmp_path / "tree" / "data" / "memory").glob("*.json"))
    doc = orjson.loads(path.read_bytes())
    doc["name"] = "rewritten, its event not applied yet"
    path.write_bytes(orjson.dumps(doc))
    em = donna.ms.entity("users")
    key = em.canonical_key(path.stem)
    seen: list[int] = []

    async def later() -> InFlight:
        seen.append(1)
        return InFlight({("users", key)})

    pool = await open_pool(donna.db, max_size=1)
    try:
        canon = Canonicalizer(em, b"k" * 32)
        store = donna.stores["users"]
        [before_only] = await check_keys(pool, em, store, canon, [key], InFlight())
        [both] = await check_keys(pool, em, store, canon, [key], InFlight(), later)
    finally:
        await pool.close()
    assert (before_only.kind, before_only.fields) == (MISMATCH, ["name"])
    assert both.kind == IN_FLIGHT
    assert seen == [1]


def test_in_flight_looks_combine() -> None:
    a = InFlight({("users", "1")})
    b = InFlight({("users", "2")})
    assert ("users", "1") in a | b
    assert ("users", "2") in a | b
    assert ("users", "3") not in a | b
    assert ("users", "3") in a | InFlight(everything=True)
