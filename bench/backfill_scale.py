"""200,000 documents backfilled, killed halfway and resumed: complete, and nothing twice.

    python -m bench.backfill_scale [--docs N]

Half the documents are donna's (its JSON tree: users, chats, log lines), half panamia's
(Mongo collections on mongomock-motor). donna's backfill runs as `dualsync backfill --direct`
in a subprocess, is killed with SIGKILL once half is sent, and is resumed with `--resume`;
panamia's lives in this process's memory (mongomock cannot outlive a process), so it is
stopped halfway (as Ctrl-C does) and resumed. Then, per app: every record is in Postgres and
in row_state, and the rows present before the resume plus the rows the resumed run applied
equal the total: nothing was applied twice, nothing was lost. Results go to
bench/results/latest.json under `backfill_scale`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import _procs
from bench._common import database_url, record, redis_url
from bench._procs import alive
from dualsync.consumers.pool import open_pool
from dualsync.errors import ConfigError
from dualsync.logging import configure_logging
from dualsync.ops.backfill_direct import DirectSink
from dualsync.ops.databases import fresh_database
from dualsync.producers.backfill import (
    Backfill,
    BackfillOptions,
    Checkpoint,
    Prepared,
    SendResult,
)
from dualsync.producers.stores import open_stores
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping import load_enum_labels, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.settings import get_settings
from examples._stores import write_mongo, write_tree
from examples.donna.generator import ENTITIES as DONNA_ENTITIES
from examples.donna.generator import generate as donna
from examples.panamia.generator import ENTITIES as PANAMIA_ENTITIES
from examples.panamia.generator import generate as panamia

ROOT = Path(__file__).resolve().parent.parent


def _progress(cp_path: Path) -> Checkpoint | None:
    """The run's checkpoint with every process's progress, None before there is one."""
    try:
        return Checkpoint.load_run(cp_path) if cp_path.exists() else None
    except ConfigError:  # a new run replacing the parts of an earlier one
        return None


def _db(server: str, name: str, app: str) -> str:
    url = fresh_database(server, name)
    Migrator(url, [core_set(), MigrationSet.from_dir(ROOT / "examples" / app / "migrations")]).up()
    return url


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.encode()).fetchone()
    return int(row[0]) if row else 0


def _tables(url: str, app: str) -> dict[str, int]:
    ms = load_mapping(ROOT / "examples" / app / "mapping.yaml")
    # table names come from the mapping file, never from input
    return {
        n: _count(url, f"select count(*) from {ms.entity(n).table}")  # noqa: S608 - see above
        for n in ms.entities
    }


def donna_run(server: str, tmp: Path, per_entity: int) -> dict[str, Any]:
    """Generate, backfill in a subprocess, SIGKILL at half, resume; the counts."""
    ms = load_mapping(ROOT / "examples" / "donna" / "mapping.yaml")
    t0 = time.perf_counter()
    counts = write_tree(ms, donna(per_entity, 3), tmp / "donna")
    gen_s = time.perf_counter() - t0
    total = sum(counts.values())
    db = _db(server, "bench_scale_donna", "donna")
    cp_path = tmp / "donna.json"
    env = {**os.environ, "DATABASE_URL": db, "DUALSYNC_HOME": str(tmp / "home"),
           "DUALSYNC_LOG_FORMAT": "json", "DUALSYNC_LOG_LEVEL": "WARNING"}  # fmt: skip
    mapping = str(ROOT / "examples" / "donna" / "mapping.yaml")
    args = [sys.executable, "-m", "dualsync.ops.cli", "backfill", "--mapping", mapping,
            "--legacy-root", str(tmp / "donna"), "--direct", "--workers", "2",
            "--checkpoint", str(cp_path)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    children: list[int] = []
    while proc.poll() is None:
        cp = _progress(cp_path)
        if cp is not None and sum(e.sent for e in cp.entities.values()) >= total // 2:
            children = _procs.children(proc.pid)  # it forks one process per core
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.01)  # they die with it: count the rows only once they did
    first_s = time.perf_counter() - t0
    before = _count(db, "select count(*) from dualsync.row_state")
    t0 = time.perf_counter()
    done = subprocess.run([*args, "--resume"], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    resume_s = time.perf_counter() - t0
    applied = int(done.stdout.split("applied=")[1].split()[0])
    stale = int(done.stdout.split("stale=")[1].split()[0])
    rows = _tables(db, "donna")
    state = _count(db, "select count(*) from dualsync.row_state")
    return {
        "docs": total, "killed_with": "SIGKILL", "killed_after_s": round(first_s, 1),
        "rows_before_resume": before, "applied_on_resume": applied, "stale_on_resume": stale,
        "row_state": state, "rows": rows, "legacy": counts,
        "complete": all(rows[e] == counts[e] for e in DONNA_ENTITIES) and state == total,
        "applied_once": before + applied == total,
        "generate_s": round(gen_s, 1), "resume_s": round(resume_s, 1),
        "docs_per_s": round(total / (first_s + resume_s)),
    }  # fmt: skip


async def panamia_run(server: str, tmp: Path, per_entity: int) -> dict[str, Any]:
    """Generate into mongomock, backfill, stop at half, resume; the counts."""
    from mongomock_motor import AsyncMongoMockClient  # noqa: PLC0415 - bench-only

    ms = load_mapping(ROOT / "examples" / "panamia" / "mapping.yaml")
    mongo: Any = AsyncMongoMockClient(tz_aware=True)["panamia"]
    t0 = time.perf_counter()
    counts = await write_mongo(ms, panamia(per_entity, 3), mongo)
    gen_s = time.perf_counter() - t0
    total = sum(counts.values())
    db = _db(server, "bench_scale_panamia", "panamia")
    pool = await open_pool(db, max_size=4)

    async with pool.connection() as conn:
        ms.bind_enum_labels(await load_enum_labels(conn, ms))
    stores = open_stores(ms, mongo_db=mongo)
    sink = DirectSink(pool, ms)
    cp_path = tmp / "panamia.json"
    job = Backfill(ms, dict(stores.stores), sink, BackfillOptions(checkpoint=cp_path, workers=2))
    sent = 0

    class Halfway:
        """The direct sink, stopping the run once half is committed (staged like the sink
        itself, so the run reads and maps ahead as `--direct` does)."""

        async def wait_applied(self) -> None:
            await sink.wait_applied()

        def prepare(self, entity: str, recs: list[LegacyRecord], vs: list[int]) -> Prepared:
            return sink.prepare(entity, recs, vs)

        async def send(self, entity: str, recs: list[LegacyRecord], vs: list[int]) -> SendResult:
            return await self.commit(self.prepare(entity, recs, vs))

        async def commit(self, prepared: Prepared) -> SendResult:
            nonlocal sent
            out = await sink.commit(prepared)
            sent += out.sent
            if sent >= total // 2:
                job.stop()
            return out

    job.sink = Halfway()
    t0 = time.perf_counter()
    await job.run()
    first_s = time.perf_counter() - t0
    before = _count(db, "select count(*) from dualsync.row_state")
    applied_first = sink.applied
    t0 = time.perf_counter()
    resumed = Backfill(ms, dict(stores.stores), sink,
                       BackfillOptions(checkpoint=cp_path, workers=2, resume=True))  # fmt: skip
    cp = await resumed.run()
    resume_s = time.perf_counter() - t0
    await pool.close()
    rows = _tables(db, "panamia")
    state = _count(db, "select count(*) from dualsync.row_state")
    return {
        "docs": total, "killed_with": "stop (as Ctrl-C)", "rows_before_resume": before,
        "applied_on_resume": sink.applied - applied_first, "stale_on_resume": sink.stale,
        "row_state": state, "rows": rows, "legacy": counts, "checkpoint_done": cp.done,
        "complete": all(rows[e] == counts[e] for e in PANAMIA_ENTITIES) and state == total,
        "applied_once": sink.applied == total,
        "generate_s": round(gen_s, 1), "resume_s": round(resume_s, 1),
        "docs_per_s": round(total / (first_s + resume_s)),
    }  # fmt: skip


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200_000, help="documents in all (200000)")
    args = ap.parse_args()
    if args.docs < 100:
        ap.error("--docs must be at least 100")
    configure_logging(get_settings().log_format, "WARNING", force=True)
    with tempfile.TemporaryDirectory() as t, database_url(Path(t)) as server, redis_url():
        tmp = Path(t)
        results = {
            "donna": donna_run(server, tmp, -(-args.docs // 2 // len(DONNA_ENTITIES))),
            "panamia": asyncio.run(
                panamia_run(server, tmp, -(-args.docs // 2 // len(PANAMIA_ENTITIES)))
            ),
        }
    for app, r in results.items():
        print(f"{app:<8} {r['docs']:>7} docs  before resume {r['rows_before_resume']:>7}  "
              f"applied on resume {r['applied_on_resume']:>7}  stale {r['stale_on_resume']:>5}  "
              f"row_state {r['row_state']:>7}  complete={r['complete']}  "
              f"applied_once={r['applied_once']}  {r['docs_per_s']:,} docs/s")  # fmt: skip
    record("backfill_scale", results)


if __name__ == "__main__":
    main()
