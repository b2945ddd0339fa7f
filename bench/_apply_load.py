"""The apply benchmark's workload and its two baselines (bench/apply.py runs them).

- `workload`: customers (jsonb, an enum) and orders (a foreign key, three child items),
  ~500-byte payloads: 80% upserts, 10% deletes, 10% duplicate or stale deliveries;
- `unique_workload`: one upsert per key, so every event is a final row (a control that
  separates the per-event cost from the cost of writing intermediate versions);
- `final_rows`: the *final* rows of the whole run COPYed to staging and upserted with one
  `INSERT ... ON CONFLICT` per table, decoding and mapping included, no gate and no Redis
  (out of a streaming worker's reach by construction: it cannot collapse across batches
  it has not seen; the fair ceilings are in bench/_ceiling.py);
- `naive`: one `INSERT ... ON CONFLICT` (or DELETE) per event, 500 per transaction.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import psycopg

from bench._common import now
from dualsync.consumers.statements import delete_sql, insert_sql, upsert_sql
from dualsync.producers import EventSpec
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import MappingSet

__all__ = ["DATA", "TRUNCATE", "final_rows", "naive", "unique_workload", "workload"]

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TRUNCATE = "truncate shop.order_items, shop.orders, shop.customers, dualsync.row_state"


def _customer(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "email": f"c{i}@shop.test",
        "tier": rng.choice(["free", "pro"]),
        "profile": {
            "name": f"Customer {i}",
            "bio": "x" * rng.randint(250, 330),
            "tags": ["a", "b"],
        },
        "apiToken": f"tok-{i:08d}",
        "createdAt": "2024-01-02T03:04:05Z",
    }


def _order(rng: random.Random, i: int, customer: str) -> dict[str, Any]:
    return {
        "customerId": customer,
        "total": f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
        "note": f"order {i}",
        # A new version of an order changes its first item two times in three, as carts do;
        # the other items stay (what child-row diffing saves must be earned, not free).
        "items": [
            {"sku": f"sku-{i}-{j}-{'y' * 40}", "qty": rng.randint(1, 3) if j == 0 else j + 1}
            for j in range(3)
        ],
    }


def workload(events: int, seed: int = 3) -> list[EventSpec]:
    """Customers first (parents), then a mix: 80% upsert, 10% delete, 10% stale/duplicate."""
    rng = random.Random(seed)
    n_cust = max(events // 10, 10)
    out: list[EventSpec] = []
    version: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], EventSpec] = {}

    def emit(entity: str, key: str, doc: dict[str, Any] | None) -> None:
        k = (entity, key)
        version[k] = version.get(k, 0) + 1
        spec = EventSpec(entity, key, "upsert" if doc else "delete", doc, version[k])
        last[k] = spec
        out.append(spec)

    for i in range(n_cust):
        emit("customers", f"c{i}", _customer(rng, i))
    order_keys = [f"o{i}" for i in range(events // 4)]
    while len(out) < events:
        r = rng.random()
        if r < 0.10 and last:
            k = rng.choice(list(last))
            out.append(last[k])  # duplicate delivery / stale version
        elif r < 0.20:
            emit("orders", rng.choice(order_keys), None)
        elif r < 0.50:
            i = rng.randrange(n_cust)
            emit("customers", f"c{i}", _customer(rng, i))
        else:
            i = rng.randrange(len(order_keys))
            emit("orders", order_keys[i], _order(rng, i, f"c{rng.randrange(n_cust)}"))
    return out


def _final(specs: list[EventSpec]) -> dict[tuple[str, str], EventSpec]:
    best: dict[tuple[str, str], EventSpec] = {}
    for s in specs:
        k = (s.entity, s.key)
        if k not in best or (s.version or 0) > (best[k].version or 0):
            best[k] = s
    return best


def _rows(ms: MappingSet, spec: EventSpec) -> Any:
    # Same decode cost the worker pays, so the baselines are not flattered by skipping it.
    payload = loads_payload(dumps_payload(spec.payload))
    return ms.entity(spec.entity).to_rows(spec.key, payload)


def unique_workload(events: int, seed: int = 5) -> list[EventSpec]:
    """One upsert per key (a third customers, then orders): no churn at all."""
    rng = random.Random(seed)
    n_cust = max(events // 3, 1)
    out = [EventSpec("customers", f"c{i}", "upsert", _customer(rng, i), 1) for i in range(n_cust)]
    out += [
        EventSpec("orders", f"o{i}", "upsert", _order(rng, i, f"c{rng.randrange(n_cust)}"), 1)
        for i in range(events - n_cust)
    ]
    return out


async def final_rows(db: str, ms: MappingSet, specs: list[EventSpec]) -> float:
    """COPY the final rows to staging, one upsert per table."""
    final = [s for s in _final(specs).values() if s.payload is not None]
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(TRUNCATE)
        t0 = now()
        rowsets = {"customers": [], "orders": []}  # type: dict[str, list[Any]]
        for s in final:
            rowsets[s.entity].append(_rows(ms, s))
        async with conn.transaction(), conn.cursor() as cur:
            for entity in ("customers", "orders"):
                em = ms.entity(entity)
                await _copy_upsert(
                    cur,
                    em.schema,
                    em.table,
                    em.column_names,
                    em.key_columns,
                    [r.values for r in rowsets[entity]],
                )
                for cm in em.children:
                    rows = [c for r in rowsets[entity] for c in r.children.get(cm.table, ())]
                    await _copy_upsert(
                        cur, cm.schema, cm.table, cm.column_names, cm.key_columns, rows
                    )
        return now() - t0


async def _copy_upsert(
    cur: psycopg.AsyncCursor[Any],
    schema: str,
    table: str,
    cols: tuple[str, ...],
    keys: tuple[str, ...],
    rows: list[Any],
) -> None:
    ident = psycopg.sql.Identifier
    await cur.execute(
        psycopg.sql.SQL("create temp table if not exists {} (like {}) on commit drop").format(
            ident(f"ceil_{table}"), ident(schema, table)
        )
    )
    async with cur.copy(
        psycopg.sql.SQL("copy {} ({}) from stdin").format(
            ident(f"ceil_{table}"), psycopg.sql.SQL(", ").join(map(ident, cols))
        )
    ) as cp:
        for r in rows:
            await cp.write_row(r)
    sets = psycopg.sql.SQL(", ").join(
        psycopg.sql.SQL("{0} = excluded.{0}").format(ident(c)) for c in cols if c not in keys
    )
    await cur.execute(
        psycopg.sql.SQL(
            "insert into {t} ({c}) select {c} from {s} on conflict ({k}) do update set {u}"
        ).format(
            t=ident(schema, table),
            c=psycopg.sql.SQL(", ").join(map(ident, cols)),
            s=ident(f"ceil_{table}"),
            k=psycopg.sql.SQL(", ").join(map(ident, keys)),
            u=sets,
        )
    )


async def naive(db: str, ms: MappingSet, specs: list[EventSpec]) -> float:
    """One statement per event (children: delete + insert per event), 500 per transaction."""
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(TRUNCATE)
        t0 = now()
        for i in range(0, len(specs), 500):
            async with conn.transaction(), conn.cursor() as cur:
                for s in specs[i : i + 500]:
                    em = ms.entity(s.entity)
                    key = em.translate_key(s.key)
                    for cm in em.children:
                        await cur.execute(delete_sql(cm.schema, cm.table, cm.parent_columns), key)
                    if s.payload is None:
                        await cur.execute(delete_sql(em.schema, em.table, em.key_columns), key)
                        continue
                    rs = _rows(ms, s)
                    await cur.execute(upsert_sql(em), rs.values)
                    for cm in em.children:
                        for row in rs.children.get(cm.table, ()):
                            await cur.execute(insert_sql(cm), row)
        return now() - t0
