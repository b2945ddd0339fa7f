"""`SyncPublisher`: the same contract as `Publisher` for synchronous legacy code.

A thin wrapper, not a second implementation: it runs a `Publisher` on a private event
loop in a daemon thread, over a `redis.asyncio` client built from the sync client's
connection settings (host/port/db/TLS/unix socket/timeouts/credentials), and hands every
call to that loop. Spooling, the drain and its error handling, version domains, the
persistent clock and the bounded close are therefore exactly `Publisher`'s. Calls are
thread-safe (the loop serialises them) and carry the caller's contextvars (structlog
context) into the loop.

The sync client is used for its settings only. A client whose connections cannot be
mirrored (Sentinel, a custom connect hook) is refused with a `ConfigError`; a custom
`retry` policy is not copied (the spool is the publisher's retry). After `fork()` the
child gets a fresh loop, client and `Publisher` on first use; the parent's are left alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import threading
import weakref
from collections.abc import Coroutine, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import redis
import redis.asyncio as aredis

from dualsync.errors import ConfigError
from dualsync.logging import get_logger
from dualsync.producers.builder import EventSpec, Published
from dualsync.producers.publisher import Publisher
from dualsync.schema.envelope import Op
from dualsync.settings import Settings

__all__ = ["SyncPublisher", "async_client_like"]

log = get_logger(__name__)

T = TypeVar("T")

_ASYNC_CONNECTION: Final[dict[type[Any], type[Any]]] = {
    redis.Connection: aredis.Connection,
    redis.SSLConnection: aredis.SSLConnection,
    redis.UnixDomainSocketConnection: aredis.UnixDomainSocketConnection,
}
#: sync-only settings that are dropped: parsers and dispatchers differ, and the spool retries
_DROPPED: Final = frozenset({"parser_class", "retry", "event_dispatcher", "command_packer"})


def _accepted(cls: type[Any]) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names


def async_client_like(client: redis.Redis) -> aredis.Redis:
    """A `redis.asyncio` client with the connection settings of a sync `client`."""
    pool = client.connection_pool
    cls = _ASYNC_CONNECTION.get(pool.connection_class)
    if cls is None:
        raise ConfigError(
            f"SyncPublisher cannot mirror a {pool.connection_class.__name__} client (Sentinel, "
            "cluster or custom connections): use Publisher with a redis.asyncio client"
        )
    accepted, kw = _accepted(cls), {}
    for name, value in pool.connection_kwargs.items():
        if name in _DROPPED:
            continue
        if name in accepted:
            kw[name] = value
        elif value not in (None, False):
            raise ConfigError(
                f"SyncPublisher cannot carry the Redis setting {name!r} over to its async "
                "client: drop it, or use Publisher with a redis.asyncio client"
            )
    if kw.get("redis_connect_func") is not None:
        raise ConfigError("SyncPublisher cannot mirror a client with a custom connect hook")
    kw.pop("redis_connect_func", None)
    return aredis.Redis.from_pool(aredis.ConnectionPool(connection_class=cls, **kw))


class _Loop:
    """A private event loop running on a daemon thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="dualsync-sync-publisher", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        # call_soon_threadsafe copies the caller's context, so the task runs in it.
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


async def _open(client: aredis.Redis, kw: dict[str, Any]) -> Publisher:
    pub = Publisher(client, **kw)  # built inside the loop: adopted orphans start draining
    await pub.start()
    return pub


async def _close(pub: Publisher, client: aredis.Redis) -> None:
    try:
        await pub.aclose()
    finally:
        await client.aclose()


def _shutdown(runner: _Loop, pub: Publisher, client: aredis.Redis, timeout: float) -> None:
    if runner.pid != os.getpid():
        return  # a forked child: these belong to the parent
    if threading.current_thread() is runner.thread:  # collected by the GC on the loop itself
        task = runner.loop.create_task(_close(pub, client))
        task.add_done_callback(lambda _: runner.loop.stop())
        return
    try:
        runner.run(_close(pub, client), timeout + 2)
    except Exception as exc:  # noqa: BLE001 - closing must not raise; the spool keeps events
        log.warning("sync_publisher_close_incomplete", error_type=type(exc).__name__)
    finally:
        runner.stop()


class SyncPublisher:
    """Blocking publisher; thread-safe. Use as a context manager or call `close()`."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        source: str,
        prefix: str = "dualsync",
        shards: int = 4,
        max_payload_bytes: int = 1024 * 1024,
        sign_key: bytes | None = None,
        spool_dir: Path | None = None,
        retry_interval: float = 1.0,
        app_versions: Iterable[str] = (),
        close_timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._close_timeout = close_timeout
        self._kw: dict[str, Any] = {
            "source": source,
            "prefix": prefix,
            "shards": shards,
            "max_payload_bytes": max_payload_bytes,
            "sign_key": sign_key,
            "spool_dir": spool_dir,
            "retry_interval": retry_interval,
            # a tuple, so a re-open after fork sees them too (a str is refused by Publisher)
            "app_versions": app_versions if isinstance(app_versions, str) else tuple(app_versions),
            "close_timeout": close_timeout,
        }
        self._lock = threading.Lock()
        self._forked_away: list[object] = []  # the parent's objects, kept from the GC in a child
        self._open()

    def _open(self) -> None:
        aclient = async_client_like(self._client)
        self._runner = _Loop()
        try:
            self._pub = self._runner.run(_open(aclient, self._kw))
        except BaseException:
            self._runner.stop()
            raise
        # Runs on close(), on garbage collection or at exit: never leaves the loop running.
        self._finalizer = weakref.finalize(
            self, _shutdown, self._runner, self._pub, aclient, self._close_timeout
        )

    def _publisher(self) -> tuple[_Loop, Publisher]:
        if self._runner.pid != os.getpid():
            with self._lock:
                if self._runner.pid != os.getpid():  # first use in a forked child
                    self._finalizer.detach()
                    self._forked_away.append((self._runner, self._pub))
                    self._open()
        if not self._finalizer.alive:
            raise RuntimeError("this SyncPublisher is closed; create a new one")
        return self._runner, self._pub

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis, **kw: Any) -> Self:
        """A publisher configured from `Settings`."""
        key = settings.signing_keys.get(settings.source)
        return cls(
            client,
            source=settings.source,
            prefix=settings.prefix,
            shards=settings.shards,
            max_payload_bytes=settings.max_payload_bytes,
            sign_key=key.get_secret_value().encode() if key else None,
            spool_dir=settings.spool_dir,
            **kw,
        )

    def publish(
        self,
        entity: str,
        key: str,
        op: Op | str = Op.UPSERT,
        payload: dict[str, Any] | None = None,
        version: int | None = None,
        trace_id: str | None = None,
    ) -> Published:
        """Publish one change event; never raises because Redis is down."""
        return self.publish_many([EventSpec(entity, key, op, payload, version, trace_id)])[0]

    def publish_many(self, specs: Iterable[EventSpec]) -> list[Published]:
        """Publish many events in one pipelined round trip."""
        runner, pub = self._publisher()
        return runner.run(pub.publish_many(list(specs)))

    def flush(self) -> int:
        """Drain the spool now; raises an `UNREACHABLE` error if Redis is still down."""
        runner, pub = self._publisher()
        return runner.run(pub.flush())

    @property
    def spooling(self) -> bool:
        """True while events wait in the local spool."""
        return self._pub.spooling

    def close(self) -> None:
        """Stop draining, try a last drain for at most `close_timeout` s, release the spool.

        Returns within about `close_timeout` seconds even if Redis never answers; whatever
        is undrained stays in the spool for the next publisher. Idempotent.
        """
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
