"""Verify runs and findings in `dualsync.verify_runs` / `dualsync.verify_findings`.

Findings hold classes, field names, versions and keyed fingerprints: never a value. Every
run records the digest of the entity's mapping it compared with (`mapping_digest`), so
readiness can tell whether the mapping changed since the last full sweep.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import psycopg

from dualsync.ops.verify.canon import CANON_VERSION
from dualsync.ops.verify.sample import EXTRA, MISMATCH, MISSING, SampleResult

__all__ = ["finish_run", "mapping_digest", "mark_failed", "record_mapping_digest", "start_run"]

EXAMPLES = 5


def mapping_digest(ms: Any, entity: str) -> str | None:
    """sha256 (hex) of the canonical JSON of `entity`'s mapping as validated (the model:
    aliases as the file spells them, defaults filled in, keys sorted), with the file's
    default schema it falls back to: stable across comments, formatting and key order,
    different for any change to what the mapping means. None when `ms` was not loaded
    from a file (no model to digest)."""
    model = getattr(ms, "model", None)
    if model is None or entity not in model.entities:
        return None
    shape = {
        "entity": entity,
        "schema": model.db_schema,
        "mapping": model.entities[entity].model_dump(mode="json", by_alias=True),
    }
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def record_mapping_digest(
    conn: psycopg.AsyncConnection[Any], run_id: int, digest: str | None
) -> None:
    """Set a run's mapping digest (a sweep's row is opened by sweep_store.py)."""
    await conn.execute(
        "update dualsync.verify_runs set mapping_digest = %s where id = %s", [digest, run_id]
    )


async def start_run(
    conn: psycopg.AsyncConnection[Any], entity: str, *, samples: int, seed: int, group: str,
    digest: str | None = None,
) -> int:  # fmt: skip
    """A `running` run row (with the digest of the mapping it compares with); its id."""
    cur = await conn.execute(
        "insert into dualsync.verify_runs (entity, mode, canon_version, samples_requested, seed, "
        "details, mapping_digest) values (%s, 'sample', %s, %s, %s, %s, %s) returning id",
        [entity, CANON_VERSION, samples, seed, orjson.dumps({"run_group": group}).decode(),
         digest],
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None  # noqa: S101 - insert ... returning gives a row
    return int(row[0])


async def finish_run(
    conn: psycopg.AsyncConnection[Any], run_id: int, r: SampleResult, group: str
) -> None:
    """Counts, bound and findings of a finished run, in one transaction."""
    examples = {
        kind: [f.key for f in r.confirmed(kind)][:EXAMPLES] for kind in (MISSING, EXTRA, MISMATCH)
    }
    details = {"run_group": group, "fields": dict(r.field_counts()), "examples": examples}
    async with conn.transaction():
        await conn.execute(
            "update dualsync.verify_runs set finished_at = now(), status = 'done', sampled = %s, "
            "matched = %s, missing = %s, extra = %s, mismatched = %s, in_flight = %s, drift = %s, "
            "drift_rate = %s, drift_upper_bound = %s, details = %s where id = %s",
            [r.sampled, r.matched, len(r.confirmed(MISSING)), len(r.confirmed(EXTRA)),
             len(r.confirmed(MISMATCH)), r.in_flight, r.drift, r.rate, r.bound,
             orjson.dumps(details).decode(), run_id],
        )  # fmt: skip
        if r.findings:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "insert into dualsync.verify_findings (run_id, entity, key, kind, fields, "
                    "legacy_version, pg_version, generation, confirmed, legacy_fp, pg_fp, "
                    "confirmed_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "case when %s then now() end)",
                    [
                        (
                            run_id,
                            r.entity,
                            f.key,
                            f.kind,
                            orjson.dumps(f.fields).decode() if f.fields else None,
                            f.legacy_version,
                            f.pg_version,
                            f.generation,
                            f.confirmed,
                            f.legacy_fp,
                            f.pg_fp,
                            f.confirmed,
                        )
                        for f in r.findings
                    ],
                )


async def mark_failed(conn: psycopg.AsyncConnection[Any], run_id: int) -> None:
    """A run that raised: `failed`, so reports never show it running forever."""
    await conn.execute(
        "update dualsync.verify_runs set status = 'failed', finished_at = now() where id = %s",
        [run_id],
    )
