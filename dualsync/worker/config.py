"""Tuning of one worker process, with defaults that suit a production Redis and Postgres."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["WorkerConfig", "default_consumer_name"]


def default_consumer_name() -> str:
    """`<hostname>-<pid>`: unique per process, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker reads, batches, retries and dead-letters."""

    prefix: str = "dualsync"
    shards: int = 4
    group: str = "apply"
    consumer_name: str = field(default_factory=default_consumer_name)
    #: parallel consumer loops in this process (each a consumer of the group)
    concurrency: int = 1
    batch_size: int = 500
    #: after the first entry arrives, wait at most this long to fill the batch
    linger_ms: int = 5
    #: XREADGROUP BLOCK when idle
    block_ms: int = 1000
    #: entries idle longer than this are reclaimed from (presumed dead) consumers
    claim_idle_ms: int = 60_000
    reclaim_every_s: float = 5.0
    #: deliveries before a permanent failure is dead-lettered
    max_deliveries: int = 5
    #: deliveries before a data-dependent failure (missing FK parent, unique clash) is
    #: dead-lettered: the parent usually arrives within a few retries
    transient_max_deliveries: int = 25
    #: longest wait, for a batch that failed on a parent not yet committed, for the
    #: batches this process's other consumers have in hand (then it is tried whole again)
    settle_timeout_s: float = 2.0
    retry_base_s: float = 0.2
    retry_cap_s: float = 10.0
    shutdown_timeout_s: float = 20.0
    #: a Redis outage longer than this stops the worker (non-zero exit) instead of waiting
    redis_outage_s: float = 60.0
    max_payload_bytes: int = 1024 * 1024
    require_signature: bool = False
    mapping_paths: tuple[Path, ...] = ()

    @property
    def retry_cap(self) -> float:
        """Backoff never reaches the reclaim threshold, so peers do not steal our retries."""
        return min(self.retry_cap_s, self.claim_idle_ms / 2000)
