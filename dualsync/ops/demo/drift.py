"""The demo's second act: verify both apps, plant drift behind dualsync's back, watch verify
catch each fault with its class and field, repair, and verify clean again."""

from __future__ import annotations

from typing import Any

import psycopg

from dualsync.ops.cli_repair import run_repair
from dualsync.ops.verify.run import VerifyOptions, run_verify
from dualsync.ops.verify.sample import SampleResult
from dualsync.settings import Settings

__all__ = ["PLANTED", "plant_drift", "repair_all", "verify_all"]

SHARDS = 4


async def verify_all(apps: list[Any], redis_url: str, key: bytes) -> dict[str, list[SampleResult]]:
    """A sampled verify of every entity of every app (every record, at demo sizes)."""
    out: dict[str, list[SampleResult]] = {}
    for app in apps:
        opts = VerifyOptions(samples=10_000, seed=1, grace_s=0.5, generations=2,
                             prefix=app.prefix, shards=SHARDS, fingerprint_key=key)  # fmt: skip
        results = await run_verify(app.ms, app.stores, opts, database_url=app.db_url,
                                   redis_url=redis_url)  # fmt: skip
        out[app.name] = [r for _, r in results]
    return out


#: how many faults `plant_drift` plants
PLANTED = 4


def plant_drift(donna: Any, panamia: Any, root: Any) -> list[str]:
    """Faults no event explains; what they are, for the story. (A user without chats is
    deleted, so no ON DELETE SET NULL touches other rows.)"""
    with psycopg.connect(donna.db_url, autocommit=True) as conn:
        [edited] = conn.execute(
            "select clerk_id from users order by clerk_id limit 1"
        ).fetchone() or [""]
        [lonely] = conn.execute(
            "select clerk_id from users u where not exists (select 1 from chat_sessions c "
            "where c.user_id = u.id) and clerk_id <> %s order by clerk_id limit 1", [edited]
        ).fetchone() or [""]  # fmt: skip
        [chat] = conn.execute(
            "select chat_id from chat_sessions order by chat_id limit 1"
        ).fetchone() or [""]
        conn.execute("update users set email = 'edited@behind.example' where clerk_id = %s",
                     [edited])  # fmt: skip
        conn.execute("delete from users where clerk_id = %s", [lonely])
    (root / "data" / "chat_sessions" / f"{chat}.json").unlink()
    with psycopg.connect(panamia.db_url, autocommit=True) as conn:
        conn.execute("update listings set price_per_day = round(price_per_day) + 0.5 where id = "
                     "(select id from listings order by id limit 1)")  # fmt: skip
    return [
        f"donna users {edited}: email edited in Postgres",
        f"donna users {lonely}: row deleted in Postgres",
        f"donna chat_sessions {chat}: file deleted in the legacy store, no event",
        "panamia listings: one price rounded in Postgres",
    ]


async def repair_all(apps: list[Any], redis_url: str) -> int:
    """`dualsync repair --apply` for every app; how many repairs were published."""
    total = 0
    for app in apps:
        settings = Settings(prefix=app.prefix, shards=SHARDS, source="demo-ops")
        assert app.stores is not None  # noqa: S101 - opened by the demo
        _, done = await run_repair(settings, app.ms, app.stores, app.db_url, redis_url,
                                   apply=True)  # fmt: skip
        total += done
    return total
