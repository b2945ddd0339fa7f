"""Verifier speed: 10,000 sampled keys of one entity, beside reading the same keys alone.

    python -m bench.verify [--rows N] [--rounds N]

donna's users (one JSON file each, with their memories as child rows) are generated,
backfilled with `--direct` into the run's Postgres, then, in the same run:
- read: both sides of the sampled keys fetched (legacy files read and parsed, target rows
  and child rows selected), nothing canonicalised or compared: the baseline;
- verify: the sampled verify itself (sampling both sides, fetching, mapping the legacy
  document, canonical forms, field-by-field comparison), no rechecks needed on clean data.
Records `verify.sample_10k_s` and the read baseline in bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench._common import best_of, database_url, record, redis_url
from dualsync.consumers.pool import open_pool
from dualsync.logging import configure_logging
from dualsync.ops.cli_backfill import run_backfill
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.fetch import fetch_sides, sample_target_keys
from dualsync.ops.verify.inflight import InFlight
from dualsync.ops.verify.sample import verify_sample
from dualsync.producers.backfill import BackfillOptions
from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import load_enum_labels, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.settings import Settings, get_settings
from examples._stores import write_tree
from examples.donna.generator import generate

ROOT = Path(__file__).resolve().parent.parent


async def _none() -> InFlight:
    return InFlight()


async def run(rows: int, rounds: int) -> dict[str, Any]:
    """Set up donna's users, then time the verifier against the read baseline."""
    with tempfile.TemporaryDirectory() as t, database_url(Path(t)) as db, redis_url() as rurl:
        tmp = Path(t)
        ms = load_mapping(ROOT / "examples" / "donna" / "mapping.yaml")
        docs = [d for d in generate(rows, 4) if d.entity == "users"]
        write_tree(ms, docs, tmp / "tree")
        Migrator(db, [core_set(), MigrationSet.from_dir(ROOT / "examples/donna/migrations")]).up()
        stores = open_stores(ms, root=tmp / "tree")
        opts = BackfillOptions(checkpoint=tmp / "cp.json", mode="direct", entities=("users",))
        await run_backfill(Settings(prefix="bverify"), ms, opts, database_url=db,
                           redis_url=rurl, stores=stores)  # fmt: skip
        pool = await open_pool(db)
        async with pool.connection() as conn:
            ms.bind_enum_labels(await load_enum_labels(conn, ms))
        em = ms.entity("users")
        store = stores["users"]
        canon = Canonicalizer(em, b"k" * 32)
        samples = min(10_000, len(docs))

        async def read_only() -> float:
            t0 = time.perf_counter()
            keys = list(dict.fromkeys(await store.sample_keys(samples // 2, 1)))
            async with pool.connection() as conn:
                keys += await sample_target_keys(conn, "users", samples - len(keys), 1)
                for i in range(0, len(keys), 1000):
                    await fetch_sides(conn, em, store, keys[i : i + 1000])
            return time.perf_counter() - t0

        async def verify() -> float:
            t0 = time.perf_counter()
            r = await verify_sample(pool, em, store, canon, samples=samples, seed=1,
                                    in_flight=_none, grace_s=0, generations=0)  # fmt: skip
            if r.drift:
                msg = f"the benchmark data drifted: {r.drift}"
                raise RuntimeError(msg)
            return time.perf_counter() - t0

        read_s = await best_of(rounds, read_only)
        verify_s = await best_of(rounds, verify)
        await pool.close()
        with psycopg.connect(db) as conn:
            [(n,)] = conn.execute("select count(*) from users").fetchall()
    out = {
        "rows": int(n), "samples": samples, "sample_10k_s": round(verify_s * 10_000 / samples, 3),
        "read_10k_s": round(read_s * 10_000 / samples, 3),
        "ratio_to_read": round(read_s / verify_s, 3),
    }  # fmt: skip
    ratio = out["ratio_to_read"]
    print(f"verify {samples:,} samples of donna users: {verify_s:.2f} s "
          f"(reading both sides alone: {read_s:.2f} s, ratio {ratio:.2f})")  # fmt: skip
    return out


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000, help="users generated (10000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, median reported (3)")
    args = ap.parse_args()
    if args.rows < 10 or args.rounds < 1:
        ap.error("--rows must be at least 10 and --rounds at least 1")
    configure_logging(get_settings().log_format, "WARNING", force=True)
    record("verify", asyncio.run(run(args.rows, args.rounds)))


if __name__ == "__main__":
    main()
