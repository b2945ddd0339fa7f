"""Resolve the PostgreSQL and Redis a command uses: the configured URLs or embedded defaults.

`open_services(settings)` is the one place that decides; every CLI command and the worker
go through it, so "embedded unless configured" behaves the same everywhere. A Redis Cluster
is named by its URL (`redis+cluster://`, see `dualsync.redisconn`); `DUALSYNC_REDIS_CLUSTER=1`
rewrites a plain `REDIS_URL` to that scheme here, so everything downstream sees one URL.

A configured Redis that does not answer is never replaced by an embedded one: a worker
consuming, or an on-call flipping, an empty embedded Redis while the real one is away
would report success and do nothing. One-shot commands stop with a one-line error; the
worker (`wait_for_redis`) waits for it as it rides out any outage (`--redis-outage-s`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from dualsync.errors import ServiceUnavailableError
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
    settings: Settings,
    *,
    need_pg: bool = True,
    need_redis: bool = True,
    wait_for_redis: bool = False,
) -> Iterator[Services]:
    """Yield the services to use, starting embedded ones as needed and stopping them after.

    Raises `ServiceUnavailableError` when a configured Redis does not answer, unless
    `wait_for_redis` (the caller waits for it itself)."""
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
        if need_redis and r_url and not wait_for_redis and not reachable(r_url):
            raise ServiceUnavailableError(
                f"Redis at {redact_url(r_url)} does not answer: start it or fix REDIS_URL "
                "(unset it to use an embedded redis-server)"
            )
        if need_redis and not r_url:
            rs = EmbeddedRedis(appendonly=True, data_dir=settings.home / "redis")
            r_url, r_emb = rs.start(), True
            stack.callback(rs.close)
        yield Services(db_url, r_url, pg_emb, r_emb)
