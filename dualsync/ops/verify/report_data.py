"""What `dualsync drift` reports, read from the verifier's tables as typed, frozen values.

Operators decide cutover from this report, so every output (the table, `--json`,
`--html`) is rendered from the same `DriftReport`, read in one read-only repeatable-read
transaction: the counts, the findings and the verdict can never disagree with each other.
Only confirmed findings count (an unconfirmed difference may be a write in flight), and
only fingerprints of values are stored, so nothing here can leak a raw value.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

from dualsync.errors import ConfigError
from dualsync.logging import get_logger
from dualsync.ops.ages import AGE_EXAMPLES, parse_age

__all__ = ["BadSinceError", "DriftReport", "EntityReport", "FieldCount", "Finding", "Repair"]
__all__ += ["Run", "load_report", "parse_since"]

log = get_logger(__name__)

EXAMPLES_PER_KIND: Final = 5
FINDINGS_CAP: Final = 500

# Runs are filtered by the window (started_at) and `--entity` (ents null means every one).
# The newest `limit` runs of each entity in the window, oldest first.
_TREND = """select * from (
  select r.*, row_number() over (partition by r.entity order by r.started_at desc, r.id desc) rn
  from dualsync.verify_runs r where r.started_at >= %(since)s
    and (%(ents)s::text[] is null or r.entity = any(%(ents)s::text[]))) t
where rn <= %(limit)s order by entity, started_at, id"""
# The newest completed run of each entity in the window: what the verdict is about.
_BASIS = """select distinct on (r.entity) r.* from dualsync.verify_runs r
where r.status = 'done' and r.started_at >= %(since)s
  and (%(ents)s::text[] is null or r.entity = any(%(ents)s::text[]))
order by r.entity, r.started_at desc, r.id desc"""
# Confirmed mismatches per field: over the window (by entity), and per run (by run_id).
_WINDOW_FIELDS = """select r.entity, x.field, count(*)::int n, count(distinct f.key)::int keys
from dualsync.verify_findings f join dualsync.verify_runs r on r.id = f.run_id
cross join lateral jsonb_array_elements_text(
  case jsonb_typeof(f.fields) when 'array' then f.fields else '[]'::jsonb end) x(field)
where f.confirmed and f.kind = 'mismatch' and r.started_at >= %(since)s
  and (%(ents)s::text[] is null or r.entity = any(%(ents)s::text[]))
group by r.entity, x.field"""
_RUN_FIELDS = """select f.run_id, x.field, count(*)::int n, count(distinct f.key)::int keys
from dualsync.verify_findings f cross join lateral jsonb_array_elements_text(
  case jsonb_typeof(f.fields) when 'array' then f.fields else '[]'::jsonb end) x(field)
where f.confirmed and f.kind = 'mismatch' and f.run_id = any(%(ids)s)
group by f.run_id, x.field"""
_FINDINGS = """select * from (
  select d.*, count(*) over (partition by d.run_id) as total,
    row_number() over (partition by d.run_id order by d.kind, d.key) as rn,
    row_number() over (partition by d.run_id, d.kind order by d.key) as kn
  from (select distinct on (f.run_id, f.kind, f.key) f.run_id, f.key, f.kind, f.fields,
      f.generation, f.legacy_version, f.pg_version, f.legacy_fp, f.pg_fp, f.first_seen_at,
      f.confirmed_at
    from dualsync.verify_findings f where f.confirmed and f.run_id = any(%(ids)s)
    order by f.run_id, f.kind, f.key, f.generation desc, f.id desc) d) t
where rn <= %(cap)s or kn <= %(per_kind)s order by run_id, kind, key"""
_NEWEST = """select max(r.started_at) as at from dualsync.verify_runs r
where %(ents)s::text[] is null or r.entity = any(%(ents)s::text[])"""


class BadSinceError(ConfigError):
    """`--since` is neither an age (30m, 24h, 7d) nor an ISO 8601 time in the past."""


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """The start of the window: `now` minus an age (`30m`, `24h`, `7d`, `1h30m`) or a time.

    An ISO 8601 time without an offset is UTC. Raises `BadSinceError` (one line).
    """
    value = text.strip()
    hint = f"use an age like {AGE_EXAMPLES}, or an ISO 8601 time like 2026-03-01T12:00Z"
    try:
        age = parse_age(value)
        if age is not None:
            if not age:
                raise BadSinceError(f"--since {text!r}: the age must be more than zero")
            return now - age
        start = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise BadSinceError(f"--since {text!r}: {hint}") from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    if start > now:
        raise BadSinceError(f"--since {text!r} is in the future")
    return start


@dataclass(frozen=True, slots=True)
class Run:
    """One `verify_runs` row: one entity's sample (or sweep) of both sides."""

    id: int
    entity: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    sampled: int
    matched: int
    missing: int
    extra: int
    mismatched: int
    in_flight: int
    drift: int
    drift_rate: float | None
    drift_upper_bound: float | None
    confidence: float
    canon_version: int
    samples_requested: int | None
    seed: int | None
    run_group: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        details = row["details"] if isinstance(row["details"], dict) else {}
        rate = row["drift_rate"]
        if rate is None and row["sampled"]:
            rate = row["drift"] / row["sampled"]
        group = details.get("run_group")
        names = [n for n in cls.__slots__ if n not in {"drift_rate", "run_group"}]
        return cls(
            **{n: row[n] for n in names},
            drift_rate=rate,
            run_group=None if group is None else str(group),
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """A confirmed difference on one key; values appear only as HMAC fingerprints."""

    run_id: int
    key: str
    kind: str
    fields: tuple[str, ...]
    generation: int
    legacy_version: int | None
    pg_version: int | None
    legacy_fp: str | None
    pg_fp: str | None
    first_seen_at: dt.datetime
    confirmed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class FieldCount:
    """How often a field differed: confirmed mismatches (summed over runs) and distinct keys."""

    field: str
    mismatches: int
    keys: int


@dataclass(frozen=True, slots=True)
class Repair:
    """The commands that repair one run's confirmed drift: a dry run first, then `--apply`."""

    run_id: int
    dry_run: str
    apply: str

    @classmethod
    def for_run(cls, run: Run) -> Repair:
        cmd = f"dualsync repair --entity {shlex.quote(run.entity)} --run {run.id}"
        return cls(run.id, cmd, f"{cmd} --apply")


@dataclass(frozen=True, slots=True)
class EntityReport:
    """One entity: its newest run, the newest completed one, the trend and the evidence.

    `basis` is the newest *done* run in the window (the verdict, examples, findings and
    repair come from it); `latest` may be newer and still running, or failed.
    """

    entity: str
    latest: Run
    basis: Run | None
    trend: tuple[Run, ...]
    top_fields: tuple[FieldCount, ...]
    run_fields: tuple[FieldCount, ...]
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    findings_total: int = 0

    @property
    def repair(self) -> Repair | None:
        """The repair commands, when the completed run found confirmed drift."""
        if self.basis is None or self.basis.drift == 0:
            return None
        return Repair.for_run(self.basis)


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Every entity's report for the window [since, generated_at]."""

    generated_at: dt.datetime
    since: dt.datetime
    entities: tuple[EntityReport, ...]
    only: tuple[str, ...]
    newest_run_at: dt.datetime | None


def _field_counts(rows: Sequence[dict[str, Any]]) -> tuple[FieldCount, ...]:
    counts = [FieldCount(r["field"], r["n"], r["keys"]) for r in rows]
    return tuple(sorted(counts, key=lambda c: (-c.mismatches, c.field)))


def _finding(row: dict[str, Any]) -> Finding:
    raw = row["fields"]
    fields = tuple(str(f) for f in raw) if isinstance(raw, list) else ()
    return Finding(**{n: row[n] for n in Finding.__slots__ if n != "fields"}, fields=fields)


def _read(
    conn: psycopg.Connection[dict[str, Any]], params: dict[str, Any], now: dt.datetime
) -> DriftReport:
    trend: dict[str, list[Run]] = {}
    for row in conn.execute(_TREND, params):
        trend.setdefault(row["entity"], []).append(Run.from_row(row))
    basis = {r["entity"]: Run.from_row(r) for r in conn.execute(_BASIS, params)}
    ids = [r.id for r in basis.values()]
    window: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(_WINDOW_FIELDS, params):
        window.setdefault(row["entity"], []).append(row)
    per_run: dict[int, list[dict[str, Any]]] = {}
    found: dict[int, list[Finding]] = {}
    examples: dict[int, dict[str, list[str]]] = {}
    totals: dict[int, int] = {}
    if ids:
        for row in conn.execute(_RUN_FIELDS, {"ids": ids}):
            per_run.setdefault(row["run_id"], []).append(row)
        cap = {"ids": ids, "cap": FINDINGS_CAP, "per_kind": EXAMPLES_PER_KIND}
        for row in conn.execute(_FINDINGS, cap):
            run_id = row["run_id"]
            totals[run_id] = row["total"]
            if row["rn"] <= FINDINGS_CAP:
                found.setdefault(run_id, []).append(_finding(row))
            if row["kn"] <= EXAMPLES_PER_KIND:
                examples.setdefault(run_id, {}).setdefault(row["kind"], []).append(row["key"])
    newest = conn.execute(_NEWEST, params).fetchone()
    reports = []
    for entity, runs in sorted(trend.items()):
        b = basis.get(entity)
        bid = b.id if b else -1
        reports.append(
            EntityReport(
                entity=entity,
                latest=runs[-1],
                basis=b,
                trend=tuple(runs),
                top_fields=_field_counts(window.get(entity, [])),
                run_fields=_field_counts(per_run.get(bid, [])),
                examples={k: tuple(v) for k, v in sorted(examples.get(bid, {}).items())},
                findings=tuple(found.get(bid, [])),
                findings_total=totals.get(bid, 0),
            )
        )
    return DriftReport(
        generated_at=now,
        since=params["since"],
        entities=tuple(reports),
        only=tuple(params["ents"] or ()),
        newest_run_at=newest["at"] if newest else None,
    )


def load_report(
    database_url: str,
    *,
    since: dt.datetime,
    now: dt.datetime,
    entities: Sequence[str] = (),
    limit: int = 20,
) -> DriftReport:
    """Read the report for runs started at or after `since` (`limit` trend runs per entity)."""
    params = {"since": since, "ents": list(entities) or None, "limit": limit}
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                report = _read(conn, params, now)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(
                f"the verifier's tables are missing or old ({first}): run 'dualsync migrate up'"
            ) from None
    log.debug("drift_report_loaded", entities=len(report.entities), since=since.isoformat())
    return report
