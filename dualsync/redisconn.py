"""The one factory for Redis clients: a single server or a Redis Cluster, chosen by URL.

`redis://` / `rediss://` / `unix://` give `redis.asyncio.Redis`; `redis+cluster://` and
`rediss+cluster://` give `redis.asyncio.RedisCluster`, with one or more comma-separated
startup nodes (`redis+cluster://user:pass@10.0.0.1:7000,10.0.0.2:7000`). The scheme is
the switch because the URL is what travels everywhere (`REDIS_URL`, the worker's
`StartOptions`, child processes); `DUALSYNC_REDIS_CLUSTER=1` rewrites a plain
`redis://` URL to the cluster scheme (`cluster_url`, applied by `ops.services`).

Everything dualsync keeps in Redis is cluster-safe (see `schema.streams`): each stream
is hash-tagged by shard, multi-stream reads go per stream (`worker.reader`), and the
dead-letter write takes its cluster path (`worker.deadletter`).
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode
from redis.cluster import ClusterNode as SyncClusterNode
from redis.exceptions import RedisClusterException

from dualsync.errors import ConfigError

__all__ = [
    "CLUSTER_SCHEMES",
    "AnyRedis",
    "cluster_url",
    "connect",
    "is_cluster",
    "is_cluster_url",
    "reachable",
]

#: a client of either kind: everything dualsync does with Redis works on both
AnyRedis: TypeAlias = aredis.Redis | aredis.RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """True for a `redis+cluster://` or `rediss+cluster://` URL."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def is_cluster(client: AnyRedis) -> bool:
    """True when `client` talks to a Redis Cluster."""
    return isinstance(client, aredis.RedisCluster)


def cluster_url(url: str) -> str:
    """`url` with the cluster scheme (`redis://h:p` -> `redis+cluster://h:p`)."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        return url
    scheme = {v: k for k, v in CLUSTER_SCHEMES.items()}.get(parts.scheme)
    if scheme is None:
        raise ConfigError(
            f"a Redis Cluster URL needs redis:// or rediss://, not {parts.scheme}://; "
            "fix REDIS_URL or unset DUALSYNC_REDIS_CLUSTER"
        )
    return urlunsplit((scheme, *parts[1:]))


def _cluster_parts(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Startup nodes and connection options of a cluster URL."""
    parts = urlsplit(url)
    creds, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for hp in hosts.split(","):
        host, _, port = hp.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                f"Redis Cluster URL node {hp!r} is not host:port; "
                "write redis+cluster://host:port[,host:port...]"
            )
        nodes.append((host.strip("[]"), int(port)))
    if parts.path.strip("/") not in {"", "0"}:
        raise ConfigError("Redis Cluster has only database 0: drop the /N from the URL")
    kw: dict[str, Any] = {"ssl": CLUSTER_SCHEMES[parts.scheme] == "rediss"}
    if creds:
        user, sep, password = creds.partition(":")
        if sep:
            kw["username"] = unquote(user) or None
            kw["password"] = unquote(password)
        else:
            kw["password"] = unquote(user)
    return nodes, kw


def connect(url: str, *, cluster: bool | None = None, **kw: Any) -> AnyRedis:
    """An async client for `url`; `cluster` None decides by scheme, True/False forces it.

    Extra keyword arguments go to the client (`max_connections`, timeouts); for a cluster,
    `max_connections` applies per node.
    """
    if cluster is None:
        cluster = is_cluster_url(url)
    client: AnyRedis
    if not cluster:
        client = aredis.Redis.from_url(url, **kw)
        return client
    nodes, opts = _cluster_parts(cluster_url(url))
    startup = [ClusterNode(h, p) for h, p in nodes]
    client = aredis.RedisCluster(startup_nodes=startup, **opts, **kw)
    return client


def reachable(url: str, timeout: float = 0.5) -> bool:
    """True when the Redis (or cluster) at `url` answers PING within `timeout` seconds."""
    client: redis.Redis | redis.RedisCluster
    try:
        if is_cluster_url(url):
            nodes, opts = _cluster_parts(url)
            client = redis.RedisCluster(
                startup_nodes=[SyncClusterNode(h, p) for h, p in nodes],  # type: ignore[no-untyped-call]  # redis-py: the sync ClusterNode is unannotated
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                **opts,
            )
        else:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout
            )
    except (redis.RedisError, RedisClusterException, OSError):
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, RedisClusterException, OSError):
        return False
    finally:
        client.close()
