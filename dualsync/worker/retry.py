"""Exponential backoff with jitter, and the classification of database errors.

The retry/dead-letter decision is a type check (STYLE.md rule 4), never string matching:
- `Systemic`: the database is unreachable or busy (connection lost, serialization
  failure, deadlock, admin shutdown, missing table): retry the whole batch, bisecting
  would only dead-letter good events;
- `DataTransient`: one event's data clashes with state that will change (FK parent not
  yet applied, a unique value another key still holds): isolate and retry with backoff;
- `DataPermanent`: one event's data can never apply (check violation, value too long,
  invalid enum text): isolate, retry up to `max_deliveries`, then dead-letter.
"""

from __future__ import annotations

import random
from enum import StrEnum

import psycopg
from psycopg import errors as pge

__all__ = ["Failure", "backoff", "classify", "reason_of"]


class Failure(StrEnum):
    """What a database error means for the batch that raised it."""

    SYSTEMIC = "systemic"
    DATA_TRANSIENT = "data_transient"
    DATA_PERMANENT = "data_permanent"


_SYSTEMIC = (
    psycopg.OperationalError,
    pge.SerializationFailure,
    pge.DeadlockDetected,
    pge.LockNotAvailable,
    pge.UndefinedTable,
    pge.UndefinedColumn,
    pge.InsufficientPrivilege,
    pge.ReadOnlySqlTransaction,
    psycopg.InterfaceError,
)
_DATA_TRANSIENT = (pge.ForeignKeyViolation, pge.UniqueViolation, pge.ExclusionViolation)


def classify(exc: BaseException) -> Failure:
    """Classify an exception raised while applying a batch."""
    if isinstance(exc, _DATA_TRANSIENT):
        return Failure.DATA_TRANSIENT
    if isinstance(exc, _SYSTEMIC) or not isinstance(exc, psycopg.Error):
        return Failure.SYSTEMIC
    return Failure.DATA_PERMANENT


def reason_of(exc: BaseException) -> str:
    """A dead-letter reason code for a database error: its SQLSTATE condition name."""
    diag = getattr(exc, "diag", None)
    code = getattr(diag, "sqlstate", None) if diag is not None else None
    name = type(exc).__name__
    return f"db_{_snake(name)}" if code else "db_error"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before attempt `attempt` (1-based): capped exponential, half jitter."""
    delay = min(cap, base * (2 ** max(attempt - 1, 0)))
    return float(delay * (0.5 + random.random() / 2))
