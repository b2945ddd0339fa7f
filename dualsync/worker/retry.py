"""Exponential backoff with jitter, and the classification of errors raised applying a batch.

The retry/dead-letter decision is a type check, never string matching:
- `Systemic`: the database is unreachable or busy (connection lost, pool timeout,
  serialization failure, deadlock, lock timeout, admin shutdown, missing table): retry
  the whole batch, bisecting would only dead-letter good events. Only these known
  outage and contention errors are systemic; an outage retry is not a delivery that
  counts towards any limit;
- `DataTransient`: one event's data clashes with state that will change (FK parent not
  yet applied, a unique value another key still holds): isolate and retry with backoff
  up to `transient_max_deliveries`;
- `DataPermanent`: one event's data can never apply (check violation, value too long,
  invalid enum text, an index row too big): isolate, retry up to `max_deliveries`, then
  dead-letter;
- `Invalid`: a `PermanentError` (ours: the input does not fit the mapping): isolate and
  dead-letter at once, with its reason code;
- `Internal`: anything else, which no rule foresaw (a bug, a library surprise): isolate,
  retry up to `max_deliveries`, then dead-letter as `internal_error`. An unknown error is
  never systemic, so it cannot hold a batch of good events hostage forever.
"""

from __future__ import annotations

import random
from enum import StrEnum

import psycopg
from psycopg import errors as pge

from dualsync.errors import DualsyncError, PermanentError, RetryableError, ServiceUnavailableError

__all__ = ["Failure", "backoff", "classify", "reason_of"]


class Failure(StrEnum):
    """What an error raised applying a batch means for that batch."""

    SYSTEMIC = "systemic"
    DATA_TRANSIENT = "data_transient"
    DATA_PERMANENT = "data_permanent"
    INVALID = "invalid"
    INTERNAL = "internal"


_SYSTEMIC = (
    # The OperationalError family: connection failures, psycopg_pool's PoolTimeout and
    # PoolClosed, serialization failures, deadlocks, lock and statement timeouts, admin
    # shutdown, too many connections, disk full.
    psycopg.OperationalError,
    pge.UndefinedTable,
    pge.UndefinedColumn,
    pge.InsufficientPrivilege,
    pge.ReadOnlySqlTransaction,
    psycopg.InterfaceError,
    ServiceUnavailableError,
)
_DATA_TRANSIENT = (pge.ForeignKeyViolation, pge.UniqueViolation, pge.ExclusionViolation)
# In the OperationalError family, but raised by one row's data ("index row size exceeds
# the maximum", "string is too long for tsvector"): retrying the batch cannot help.
_DATA_PERMANENT = (pge.ProgramLimitExceeded, pge.TriggeredDataChangeViolation)
#: the exponent of the backoff stops growing here (the delay is capped long before)
_MAX_EXPONENT = 32


#: the first rule whose types match decides (order matters: a FK violation is a psycopg
#: error, an index row too big is an OperationalError)
_RULES: tuple[tuple[tuple[type[BaseException], ...], Failure], ...] = (
    (_DATA_TRANSIENT, Failure.DATA_TRANSIENT),
    (_DATA_PERMANENT, Failure.DATA_PERMANENT),
    (_SYSTEMIC, Failure.SYSTEMIC),
    ((psycopg.Error,), Failure.DATA_PERMANENT),
    ((PermanentError,), Failure.INVALID),
    ((RetryableError,), Failure.DATA_TRANSIENT),
)


def classify(exc: BaseException) -> Failure:
    """Classify an exception raised while applying a batch."""
    for types, kind in _RULES:
        if isinstance(exc, types):
            return kind
    return Failure.INTERNAL


def reason_of(exc: BaseException) -> str:
    """A dead-letter reason code: a database error's SQLSTATE condition name, our own
    error's `reason`, or `internal_error` for anything unforeseen."""
    if isinstance(exc, psycopg.Error):
        diag = getattr(exc, "diag", None)
        code = getattr(diag, "sqlstate", None) if diag is not None else None
        return f"db_{_snake(type(exc).__name__)}" if code else "db_error"
    if isinstance(exc, DualsyncError):
        return exc.reason
    return "internal_error"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before attempt `attempt` (1-based): capped exponential, half jitter."""
    delay = min(cap, base * (2 ** min(max(attempt - 1, 0), _MAX_EXPONENT)))
    return float(delay * (0.5 + random.random() / 2))
