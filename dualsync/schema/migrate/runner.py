"""The migration runner: checksummed history, an advisory lock, one transaction per file.

- history: `dualsync.schema_migrations`, one row per applied file, with its sha256;
- an edited applied file is refused (`ChecksumMismatch`) before anything runs;
- a session advisory lock serialises runners: a second one waits, then finds nothing
  left to do;
- each file runs in its own transaction together with its history row (files using
  `CREATE INDEX CONCURRENTLY` cannot, and run outside one);
- `down` refuses an irreversible file before reverting anything.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import psycopg

from dualsync.logging import get_logger
from dualsync.schema.migrate.files import (
    Migration,
    MigrationError,
    MigrationSet,
    split_statements,
)

__all__ = ["Applied", "ChecksumMismatchError", "MigrationStatus", "Migrator"]

log = get_logger(__name__)

LOCK_KEY: Final = zlib.crc32(b"dualsync.migrate")
_HISTORY: Final = """
create schema if not exists dualsync;
create table if not exists dualsync.schema_migrations (
  set_name text not null,
  version text not null,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default clock_timestamp(),
  duration_ms integer not null,
  primary key (set_name, version)
)"""

State = Literal["applied", "pending", "deferred", "changed", "missing"]


class ChecksumMismatchError(MigrationError):
    """An applied migration file was edited afterwards."""

    reason = "migration_changed"


@dataclass(frozen=True, slots=True)
class Applied:
    """One file run up or down."""

    set_name: str
    version: str
    name: str
    direction: Literal["up", "down"]
    duration_ms: int


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where one file stands."""

    set_name: str
    version: str
    name: str
    state: State
    applied_at: str | None = None

    @property
    def applied(self) -> bool:
        """True when the file is applied (and unchanged)."""
        return self.state == "applied"


class Migrator:
    """Applies and reverts migration sets on one database."""

    def __init__(
        self, conninfo: str, sets: Sequence[MigrationSet], *, lock_timeout: float | None = None
    ) -> None:
        self._conninfo = conninfo
        self._sets = list(sets)
        self._lock_timeout = lock_timeout

    def _files(self) -> list[Migration]:
        return [m for s in self._sets for m in s.load()]

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, autocommit=True)
        if self._lock_timeout is not None:
            conn.execute(f"set lock_timeout = {max(1, int(self._lock_timeout * 1000))}")
        if not conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]  # select always returns a row
            log.info("migrate_waiting_for_lock", hint="another migration runner is active")
            try:
                conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
            except psycopg.errors.LockNotAvailable:
                conn.close()
                raise MigrationError("another migration runner holds the lock; try again") from None
        if self._lock_timeout is not None:
            conn.execute("reset lock_timeout")  # the timeout is for the runner lock only
        conn.execute(_HISTORY)
        return conn

    @staticmethod
    def _history(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], tuple[str, str, Any]]:
        rows = conn.execute(
            "select set_name, version, name, checksum, applied_at from dualsync.schema_migrations"
        ).fetchall()
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}

    @staticmethod
    def _verify(files: list[Migration], history: dict[tuple[str, str], Any]) -> None:
        for m in files:
            applied = history.get((m.set_name, m.version))
            if applied is not None and applied[1] != m.checksum:
                raise ChecksumMismatchError(
                    f"{m.path} was changed after it was applied (checksum differs). Applied "
                    "migrations are immutable: restore the file and write a new migration."
                )

    def up(self, *, post_load: bool = False, to: str | None = None) -> list[Applied]:
        """Apply every pending file (post-load ones only with `post_load`), up to `to`."""
        files = self._files()
        done: list[Applied] = []
        with self._connect() as conn:
            history = self._history(conn)
            self._verify(files, history)
            for m in files:
                if (m.set_name, m.version) in history or (m.post_load and not post_load):
                    continue
                if to is not None and m.version > to:
                    continue
                done.append(self._run(conn, m, "up"))
        return done

    def down(self, steps: int = 1, *, set_name: str | None = None) -> list[Applied]:
        """Revert the `steps` most recently applied files (of `set_name` when given)."""
        files = {(m.set_name, m.version): m for m in self._files()}
        with self._connect() as conn:
            history = self._history(conn)
            self._verify(list(files.values()), history)
            known = {s.name for s in self._sets}
            if set_name is not None and set_name not in known:
                raise MigrationError(
                    f"no migration set named {set_name!r} here (known: {', '.join(sorted(known))})"
                )
            order = sorted(
                # Only sets this runner was given: another app's history is not ours to undo.
                (k for k in history if k[0] in known and (set_name is None or k[0] == set_name)),
                key=lambda k: (history[k][2], k[1]),
                reverse=True,
            )[:steps]
            targets = []
            for k in order:
                m = files.get(k)
                if m is None:
                    raise MigrationError(f"{k[0]}/{k[1]} is applied but its file is missing")
                if not m.reversible:
                    raise MigrationError(
                        f"{m.path} is irreversible (Reversible: no); rollback: {m.rollback}"
                    )
                targets.append(m)
            return [self._run(conn, m, "down") for m in targets]

    def _run(
        self, conn: psycopg.Connection[Any], m: Migration, direction: Literal["up", "down"]
    ) -> Applied:
        t0 = time.perf_counter()
        sql_text = m.up_sql if direction == "up" else m.down_sql
        log.debug("migration_start", migration=m.label, direction=direction)
        try:
            if m.transactional:
                with conn.transaction():
                    conn.execute(sql_text)
                    self._record(conn, m, direction, t0)
            else:
                # Outside a transaction (CREATE INDEX CONCURRENTLY): one statement at a time,
                # since a multi-statement string runs as one implicit transaction.
                for statement in split_statements(sql_text):
                    conn.execute(statement)
                self._record(conn, m, direction, t0)
        except psycopg.Error as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MigrationError(f"{m.path} failed ({direction}): {msg}") from exc
        ms = int((time.perf_counter() - t0) * 1000)
        # debug, not info: the CLI prints one table line per file (info printed each twice)
        log.debug("migration_done", migration=m.label, direction=direction, ms=ms)
        return Applied(m.set_name, m.version, m.name, direction, ms)

    @staticmethod
    def _record(conn: psycopg.Connection[Any], m: Migration, direction: str, t0: float) -> None:
        if direction == "up":
            conn.execute(
                "insert into dualsync.schema_migrations"
                " (set_name, version, name, checksum, duration_ms) values (%s, %s, %s, %s, %s)",
                (m.set_name, m.version, m.name, m.checksum, int((time.perf_counter() - t0) * 1000)),
            )
        else:
            conn.execute(
                "delete from dualsync.schema_migrations where set_name = %s and version = %s",
                (m.set_name, m.version),
            )

    def status(self) -> list[MigrationStatus]:
        """Every file's state, plus applied entries whose file is gone."""
        files = self._files()
        with self._connect() as conn:
            history = self._history(conn)
        out: list[MigrationStatus] = []
        for m in files:
            h = history.pop((m.set_name, m.version), None)
            if h is None:
                out.append(
                    MigrationStatus(
                        m.set_name, m.version, m.name, "deferred" if m.post_load else "pending"
                    )
                )
            else:
                state: State = "applied" if h[1] == m.checksum else "changed"
                out.append(MigrationStatus(m.set_name, m.version, m.name, state, h[2].isoformat()))
        known = {s.name for s in self._sets}
        for (s, v), h in sorted(history.items()):
            if s in known:
                out.append(MigrationStatus(s, v, h[0], "missing", h[2].isoformat()))
        return out
