"""The psycopg pool every apply path uses: autocommit connections with pgvector registered."""

from __future__ import annotations

from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from dualsync.consumers.stage import register_packed_vectors

__all__ = ["configure_connection", "open_pool"]


async def configure_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """Register pgvector's types when the database has them (and the mapping's packed
    BSON vectors as vector parameters)."""
    cur = await conn.execute("select 1 from pg_type where typname = 'vector'")
    if await cur.fetchone():
        await register_vector_async(conn)
        info = conn.adapters.types.get("vector")
        if info is not None:
            register_packed_vectors(conn, info.oid)


async def open_pool(
    url: str, *, max_size: int = 4, name: str = "dualsync", open_timeout_s: float = 30.0
) -> AsyncConnectionPool[Any]:
    """An opened pool (close it with `await pool.close()`)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        open=False,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=configure_connection,
        name=name,
    )
    await pool.open(wait=True, timeout=open_timeout_s)
    return pool
