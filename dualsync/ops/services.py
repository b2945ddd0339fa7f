"""Resolve the PostgreSQL and Redis a command uses: the configured URLs or embedded defaults.

`open_services(settings)` is the one place that decides; every CLI command and the worker
go through it, so "embedded unless configured" behaves the same everywhere. A Redis Cluster
is named by its URL (`redis+cluster://`, see `dualsync.redisconn`); `DUALSYNC_REDIS_CLUSTER=1`
rewrites a plain `REDIS_URL` to that scheme here, so everything downstream sees one URL.
An unreachable cluster falls back to the embedded single Redis like any unreachable URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from dualsync.logging import get_logger
from dualsync.ops.databases import database_url
from dualsync.ops.embedded import EmbeddedPostgres, EmbeddedRedis
from dualsync.redact import redact_url
from dualsync.redisconn import cluster_url, reachable
from dualsync.settings import Settings

__all__ = ["Services", "open_services"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """URLs in use and whether each one is embedded."""

    database_url: str
    redis_url: str
    pg_embedded: bool
    redis_embedded: bool


@contextlib.contextmanager
def open_services(
    settings: Settings, *, need_pg: bool = True, need_redis: bool = True
) -> Iterator[Services]:
    """Yield the services to use, starting embedded ones as needed and stopping them after."""
    with contextlib.ExitStack() as stack:
        db_url, pg_emb = settings.database_url or "", False
        if need_pg and not db_url:
            pg = EmbeddedPostgres(settings.pg_data_dir)
            db_url, pg_emb = pg.start(), True
            stack.callback(pg.stop)
            if settings.embedded_db:
                db_url = database_url(db_url, settings.embedded_db)
        r_url, r_emb = settings.redis_url or "", False
        if r_url and settings.redis_cluster:
            r_url = cluster_url(r_url)
        if need_redis and (not r_url or not reachable(r_url)):
            if r_url:
                log.warning(
                    "redis_unreachable_using_embedded",
                    redis_url=redact_url(r_url),
                    hint="fix REDIS_URL for production; an embedded Redis is not shared",
                )
            rs = EmbeddedRedis(appendonly=True, data_dir=settings.home / "redis")
            r_url, r_emb = rs.start(), True
            stack.callback(rs.close)
        yield Services(db_url, r_url, pg_emb, r_emb)
