"""One holder at a time across every worker process: a Redis lock with a lease.

`SET key token NX PX ttl` takes it; while the holder works, a task renews the lease every
third of it; release deletes the key only if the token is still ours (a script, so a
holder whose lease ran out cannot delete its successor's). A holder that crashed stops
renewing, and its lease runs out after `ttl_ms`: the lock is never held forever.
The scripts touch only `KEYS[1]`, so they are cluster-safe (one key, one slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from dualsync.logging import get_logger
from dualsync.redisconn import AnyRedis

__all__ = ["singleton"]

log = get_logger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


@contextlib.asynccontextmanager
async def singleton(client: AnyRedis, key: str, ttl_ms: int) -> AsyncIterator[bool]:
    """Yield True when this caller holds `key` for the duration, False when another does."""
    token = uuid.uuid4().hex
    if not await client.set(key, token, nx=True, px=ttl_ms):
        yield False
        return

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl_ms / 3000)
            if not await client.eval(_RENEW, 1, key, token, str(ttl_ms)):  # type: ignore[misc]  # redis stubs: Awaitable|Any
                log.warning("singleton_lease_lost", key=key)
                return

    keeper = asyncio.create_task(renew(), name=f"lease:{key}")
    try:
        yield True
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await client.eval(_RELEASE, 1, key, token)  # type: ignore[misc]  # redis stubs: Awaitable|Any
