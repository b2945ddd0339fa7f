"""A sweep's verify_runs row: opened or resumed, checkpointed into, finished like a sample.

The checkpoint lives in the run's own `details` jsonb (`details.sweep.state`) while it is
`running`: one row per sweep however often it is resumed, written in one statement (no
temp file, fsync and rename), readable from any host that can reach Postgres, and gone
when `store.finish_run` replaces `details` with the findings summary. A resumed sweep is
the newest `running` sweep row of the entity whose plan matches; running sweep rows of
another plan can never be resumed and are marked `failed`.

One sweep per entity at a time: the sweep holds a session advisory lock on one pool
connection for as long as it runs. A SIGKILLed sweep's connection closes and its lock goes
with it, so a resume is never refused by a dead sweep, and a second sweep started while
the first is alive is refused instead of both writing one checkpoint.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any, Self

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from dualsync.errors import ConfigError
from dualsync.ops.verify.canon import CANON_VERSION
from dualsync.ops.verify.store import finish_run

__all__ = ["RunCheckpoint", "SweepLock", "finish_sweep_run", "open_sweep_run"]

_LOCK = "select pg_try_advisory_lock(hashtextextended('dualsync.sweep:' || %s, 0))"
_UNLOCK = "select pg_advisory_unlock(hashtextextended('dualsync.sweep:' || %s, 0))"


class RunCheckpoint:
    """The `Checkpoint` of one running sweep row."""

    def __init__(self, pool: AsyncConnectionPool[Any], run_id: int) -> None:
        self.pool = pool
        self.run_id = run_id
        #: checkpoints written by this process (for tests and progress logs)
        self.saves = 0

    async def load(self) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "select details->'sweep'->'state' from dualsync.verify_runs where id = %s",
                [self.run_id],
            )
            row = await cur.fetchone()
        state = None if row is None else row[0]
        return state if isinstance(state, dict) else None

    async def save(self, state: dict[str, Any]) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "update dualsync.verify_runs set details = jsonb_set(coalesce(details, "
                "'{}'::jsonb), '{sweep,state}', %s::jsonb) where id = %s and status = 'running'",
                [orjson.dumps(state).decode(), self.run_id],
            )
        if cur.rowcount != 1:
            raise ConfigError(f"verify run {self.run_id} is no longer running: sweep stopped")
        self.saves += 1


class SweepLock:
    """The advisory lock that makes a sweep of one entity the only one (it holds one pool
    connection while the sweep runs)."""

    def __init__(self, pool: AsyncConnectionPool[Any], entity: str) -> None:
        self.pool = pool
        self.entity = entity
        self._held: contextlib.AbstractAsyncContextManager[Any] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Self:
        held = self.pool.connection()
        conn = await held.__aenter__()
        try:
            cur = await conn.execute(_LOCK, [self.entity])
            row = await cur.fetchone()
        except BaseException:
            await held.__aexit__(None, None, None)
            raise
        if not (row and row[0]):
            await held.__aexit__(None, None, None)
            raise ConfigError(
                f"a full sweep of {self.entity!r} is already running against this database; "
                "wait for it, or stop it (it resumes where it was)"
            )
        self._held, self._conn = held, conn
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        held, conn = self._held, self._conn
        self._held = self._conn = None
        if held is None or conn is None:
            return
        try:
            with contextlib.suppress(psycopg.Error):
                await conn.execute(_UNLOCK, [self.entity])
        finally:
            await held.__aexit__(et, ev, tb)


async def open_sweep_run(
    pool: AsyncConnectionPool[Any], entity: str, plan: dict[str, Any], *, group: str,
    resume: bool = True,
) -> tuple[int, bool]:  # fmt: skip
    """The run row to sweep into, and whether it is a resumed one."""
    details = {"run_group": group, "sweep": {"plan": plan, "state": None}}
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "select id, details->'sweep'->'plan' from dualsync.verify_runs where entity = %s "
            "and mode = 'sweep' and status = 'running' order by id desc for update",
            [entity],
        )
        rows = await cur.fetchall()
        keep = next((int(i) for i, p in rows if resume and p == plan), None)
        stale = [int(i) for i, _ in rows if int(i) != keep]
        if stale:
            await conn.execute(
                "update dualsync.verify_runs set status = 'failed', finished_at = now(), "
                "details = coalesce(details, '{}'::jsonb) - 'sweep' || "
                '\'{"abandoned": "superseded by another sweep"}\'::jsonb where id = any(%s)',
                [stale],
            )
        if keep is not None:
            await conn.execute(
                "update dualsync.verify_runs set details = jsonb_set(details, '{run_group}', "
                "to_jsonb(%s::text)) where id = %s",
                [group, keep],
            )
            return keep, True
        cur = await conn.execute(
            "insert into dualsync.verify_runs (entity, mode, canon_version, details) "
            "values (%s, 'sweep', %s, %s) returning id",
            [entity, CANON_VERSION, orjson.dumps(details).decode()],
        )
        row = await cur.fetchone()
        assert row is not None  # noqa: S101 - insert ... returning gives a row
        return int(row[0]), False


async def finish_sweep_run(
    pool: AsyncConnectionPool[Any], run_id: int, result: Any, group: str
) -> None:
    """`store.finish_run` (counts, bound, findings; the checkpoint goes with the old
    details), plus the sweep's own figures under `details.sweep_stats`."""
    async with pool.connection() as conn, conn.transaction():
        await finish_run(conn, run_id, result, group)
        await conn.execute(
            "update dualsync.verify_runs set details = details || jsonb_build_object("
            "'sweep_stats', %s::jsonb) where id = %s",
            [orjson.dumps(result.stats()).decode(), run_id],
        )
