"""Checks behind `dualsync doctor`: what dualsync would use, and whether it is usable."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import psycopg
import redis

from dualsync.redact import redact_url

__all__ = ["Check", "Level", "check_postgres", "check_redis"]

MIN_REDIS = (6, 2)  # XAUTOCLAIM arrived in Redis 6.2
MIN_PG = 14


class Level(StrEnum):
    """Outcome of one check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    name: str
    level: Level
    detail: str


def check_postgres(url: str, *, embedded: bool) -> list[Check]:
    """Version, reachability and pgvector of the PostgreSQL at `url`."""
    where = "embedded" if embedded else redact_url(url)
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            version_num = int(str(conn.execute("show server_version_num").fetchone()[0]))  # type: ignore[index]  # one row always
            version = str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]  # show always returns a row
            vec = conn.execute(
                "select default_version from pg_available_extensions where name = 'vector'"
            ).fetchone()
    except psycopg.Error as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Check("postgres", Level.FAIL, f"{where}: cannot connect: {msg}")]
    checks = [
        Check(
            "postgres",
            Level.OK if version_num >= MIN_PG * 10000 else Level.FAIL,
            f"PostgreSQL {version} ({where})"
            + ("" if version_num >= MIN_PG * 10000 else f"; dualsync needs >= {MIN_PG}"),
        )
    ]
    if vec:
        checks.append(Check("pgvector", Level.OK, f"available (version {vec[0]})"))
    else:
        checks.append(
            Check(
                "pgvector", Level.WARN, "not installed: mappings with vector columns cannot apply"
            )
        )
    return checks


def check_redis(url: str, *, embedded: bool) -> list[Check]:
    """Version (XAUTOCLAIM needs 6.2) and persistence of the Redis at `url`."""
    where = "embedded" if embedded else redact_url(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        server = cast("dict[str, Any]", client.info("server"))
        persistence = cast("dict[str, Any]", client.info("persistence"))
    except (redis.RedisError, OSError) as exc:
        return [Check("redis", Level.FAIL, f"{where}: cannot connect: {exc}")]
    finally:
        client.close()
    version = str(server.get("redis_version", "0"))
    major, minor = (int(p) for p in [*version.split("."), "0", "0"][:2])
    ok = (major, minor) >= MIN_REDIS
    checks = [
        Check(
            "redis",
            Level.OK if ok else Level.FAIL,
            f"Redis {version} ({where})"
            + ("" if ok else "; dualsync needs >= 6.2 for XAUTOCLAIM (pending recovery)"),
        )
    ]
    if int(persistence.get("aof_enabled", 0)):
        checks.append(Check("redis-persistence", Level.OK, "AOF enabled"))
    else:
        checks.append(
            Check(
                "redis-persistence",
                Level.WARN,
                "AOF disabled: a Redis restart loses unapplied events; "
                "enable appendonly yes in production",
            )
        )
    return checks
