"""Shared by the verifier tests: an example app backfilled into a fresh database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dualsync.ops.cli_backfill import run_backfill
from dualsync.ops.verify.run import VerifyOptions, run_verify
from dualsync.ops.verify.sample import SampleResult
from dualsync.producers.backfill import BackfillOptions
from dualsync.producers.stores import LegacyStores, open_stores
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.settings import Settings
from examples._stores import write_tree
from examples.donna.generator import generate

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class App:
    """One example app, loaded."""

    ms: MappingSet
    stores: LegacyStores
    db: str
    redis_url: str
    prefix: str

    def sql(self, stmt: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db, autocommit=True) as conn:
            cur = conn.execute(stmt.encode(), params)
            return cur.fetchall() if cur.description else []

    async def verify(self, entity: str, **kw: Any) -> tuple[int, SampleResult]:
        opts = VerifyOptions(entities=(entity,), samples=kw.pop("samples", 10_000),
                             seed=kw.pop("seed", 1), grace_s=kw.pop("grace_s", 0.05),
                             generations=kw.pop("generations", 1), prefix=self.prefix,
                             shards=2, fingerprint_key=b"k" * 32, **kw)  # fmt: skip
        [(run_id, result)] = await run_verify(self.ms, self.stores, opts, database_url=self.db,
                                              redis_url=self.redis_url)  # fmt: skip
        return run_id, result


def migrate(app: str, url: str) -> None:
    Migrator(url, [core_set(), MigrationSet.from_dir(ROOT / "examples" / app / "migrations")]).up()


async def backfill(app: App, tmp: Path) -> None:
    opts = BackfillOptions(checkpoint=tmp / "cp.json", mode="direct", restart=True)
    cp, job = await run_backfill(Settings(prefix=app.prefix, shards=2), app.ms, opts,
                                 database_url=app.db, redis_url=app.redis_url,
                                 stores=app.stores)  # fmt: skip
    assert cp.done
    assert job.bad == []


def by_key(result: SampleResult) -> dict[str, tuple[str, list[str]]]:
    """Confirmed findings: key -> (class, fields)."""
    return {f.key: (f.kind, f.fields) for f in result.confirmed()}


async def donna_app(pg_url: str, redis_url: str, prefix: str, tmp: Path, n: int, seed: int) -> App:
    """donna's JSON tree of `n` records per entity, migrated and backfilled into `pg_url`."""

    migrate("donna", pg_url)
    ms = load_mapping(ROOT / "examples" / "donna" / "mapping.yaml")
    write_tree(ms, generate(n, seed), tmp / "tree")
    app = App(ms, open_stores(ms, root=tmp / "tree"), pg_url, redis_url, prefix)
    app.sql("truncate user_memory, messages, chat_sessions, users, system_logs, "
            "dualsync.row_state")  # fmt: skip
    await backfill(app, tmp)
    return app
