"""Change an entity's read-path mode: checked, audited in Postgres, set in Redis, announced.

The audit row and the Redis change go together: the row is inserted in a transaction, the
mode is changed in Redis only if it is still the one the check saw (a compare-and-set
script that also publishes the change), and the transaction commits after that; if the
mode moved meanwhile, nothing is written and the caller is told to look again.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from dualsync.errors import RetryableError
from dualsync.redisconn import AnyRedis
from dualsync.schema.readpath import Mode, check_transition
from dualsync.schema.streams import readpath_channel, readpath_key

__all__ = ["ConcurrentFlipError", "Transition", "change_mode", "current_mode", "modes"]

# The channel is an argument, not a key: a script's keys must share one hash slot on a
# Redis Cluster, and a channel has no slot (PUBLISH reaches every node's subscribers).
_CAS = """
local now = redis.call('hget', KEYS[1], ARGV[1])
if not now then now = 'legacy' end
if now ~= ARGV[2] then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[3])
redis.call('publish', ARGV[5], ARGV[4])
return 1
"""


class ConcurrentFlipError(RetryableError):
    """Someone changed the mode between our check and our change: look, then try again."""

    reason = "concurrent_flip"


@dataclass(frozen=True, slots=True)
class Transition:
    """One accepted change."""

    entity: str
    from_mode: Mode
    to_mode: Mode
    actor: str
    reason: str | None
    forced: bool
    audit_id: int


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def current_mode(client: AnyRedis, prefix: str, entity: str) -> Mode:
    """The entity's mode now (`legacy` when none was ever set)."""
    raw = await client.hget(readpath_key(prefix), entity)  # type: ignore[misc]  # redis stubs: Awaitable|str
    return Mode(_s(raw)) if raw else Mode.LEGACY


async def modes(client: AnyRedis, prefix: str) -> dict[str, Mode]:
    """Every entity whose mode was ever set."""
    raw = await client.hgetall(readpath_key(prefix))  # type: ignore[misc]  # redis stubs: Awaitable|dict
    return {_s(k): Mode(_s(v)) for k, v in raw.items()}


async def change_mode(
    conn: psycopg.AsyncConnection[Any],
    client: AnyRedis,
    prefix: str,
    entity: str,
    target: Mode,
    *,
    actor: str | None = None,
    reason: str | None = None,
    forced: bool = False,
    readiness: dict[str, Any] | None = None,
) -> Transition:
    """Check, audit, set and announce one change (raises `IllegalTransitionError`)."""
    now = await current_mode(client, prefix, entity)
    check_transition(entity, now, target)
    who = actor or getpass.getuser()
    message = orjson.dumps({"entity": entity, "mode": target.value, "from": now.value}).decode()
    async with conn.transaction():
        cur = await conn.execute(
            "insert into dualsync.cutover_log (entity, from_mode, to_mode, actor, reason, forced, "
            "readiness) values (%s, %s, %s, %s, %s, %s, %s) returning id",
            [entity, now.value, target.value, who, reason, forced,
             orjson.dumps(readiness).decode() if readiness is not None else None],
        )  # fmt: skip
        row = await cur.fetchone()
        done = await client.eval(  # type: ignore[misc]  # redis stubs: Awaitable|Any
            _CAS, 1, readpath_key(prefix),
            entity, now.value, target.value, message, readpath_channel(prefix),
        )  # fmt: skip
        if not done:
            raise ConcurrentFlipError(
                f"{entity}'s mode changed while this flip ran: run the command again"
            )
    assert row is not None  # noqa: S101 - insert ... returning gives a row
    return Transition(entity, now, target, who, reason, forced, int(row[0]))
