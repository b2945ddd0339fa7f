"""Repair confirmed drift: re-publish the authoritative legacy record, or a delete.

Each repair goes through the stream and the version gate like any event, so it cannot
overwrite something newer. Its version follows the entity's one domain:
- clock-versioned entities get a fresh clock version, later than anything applied;
- an entity with its own `version_field` keeps the document's version (a counter must not
  be pushed ahead of the app), and the gate's row for that key is lowered just below it
  first, so the repair applies even though the version was seen before (a row edited
  behind dualsync's back has the right version and the wrong content). A newer event that
  arrives meanwhile still wins.
Every applied repair is audited in `dualsync.repairs` (who, when, run, key, action, version).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

import psycopg

from dualsync.producers.builder import EventSpec
from dualsync.producers.publisher import Publisher
from dualsync.producers.vector_payload import BinaryVectors
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import EntityMapping

__all__ = ["Repair", "apply_repairs", "plan_repairs"]

REPAIRABLE = ("missing_in_target", "extra_in_target", "mismatch")


@dataclass(frozen=True, slots=True)
class Repair:
    """What repairing one key means."""

    run_id: int
    entity: str
    key: str
    kind: str
    action: str  # upsert | delete
    version: int | None  # None: the publisher's clock
    doc: dict[str, Any] | None


async def latest_runs(conn: psycopg.AsyncConnection[Any], entities: list[str]) -> dict[str, int]:
    """The newest finished run of each entity."""
    cur = await conn.execute(
        "select distinct on (entity) entity, id from dualsync.verify_runs "
        "where status = 'done' and entity = any(%s) order by entity, started_at desc",
        [entities],
    )
    return {e: int(i) for e, i in await cur.fetchall()}


async def plan_repairs(
    conn: psycopg.AsyncConnection[Any], em: EntityMapping, store: LegacyStore, run_id: int
) -> list[Repair]:
    """The repairs a run's confirmed findings of `em` call for, read from the legacy store now."""
    cur = await conn.execute(
        "select f.key, f.kind, rs.version from dualsync.verify_findings f left join "
        "dualsync.row_state rs on rs.entity = f.entity and rs.key = f.key "
        "where f.run_id = %s and f.entity = %s and f.confirmed and f.kind = any(%s) "
        "order by f.key",
        [run_id, em.name, list(REPAIRABLE)],
    )
    rows = await cur.fetchall()
    current = await store.get_many([k for k, _, _ in rows])
    app = em.version_field is not None
    out = []
    for key, kind, gate_version in rows:
        rec = current.get(key)
        if rec is not None:
            version = rec.version if app else None
            out.append(Repair(run_id, em.name, key, kind, "upsert", version, rec.doc))
        else:
            version = (int(gate_version) if gate_version is not None else 0) if app else None
            out.append(Repair(run_id, em.name, key, kind, "delete", version, None))
    return out


async def apply_repairs(
    conn: psycopg.AsyncConnection[Any],
    publisher: Publisher,
    repairs: list[Repair],
    vectors: BinaryVectors | None = None,
) -> int:
    """Publish every repair (lowering the gate for app-versioned ones) and audit it; with
    `vectors`, embeddings go as binary vectors, as the backfill sends them."""
    who = getpass.getuser()
    done = 0
    for r in repairs:
        if r.version is not None:
            await conn.execute(
                "update dualsync.row_state set version = %s where entity = %s and key = %s "
                "and version >= %s",
                [max(r.version - 1, 0), r.entity, r.key, r.version],
            )
        spec = EventSpec(r.entity, r.key, r.action, r.doc, r.version)
        [pub] = await publisher.publish_many([spec if vectors is None else vectors.spec(spec)])
        await conn.execute(
            "insert into dualsync.repairs (run_id, entity, key, action, version, event_id, "
            "repaired_by) values (%s, %s, %s, %s, %s, %s, %s)",
            [r.run_id, r.entity, r.key, r.action, pub.version, pub.event_id, who],
        )
        done += 1
    return done
