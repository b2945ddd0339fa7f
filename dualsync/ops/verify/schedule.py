"""The verify the worker runs on a schedule (`dualsync worker --verify-every`).

The worker cannot import ops/ (dependencies point ops -> worker), so `dualsync worker`
hands it this job as a callable; the worker's cron decides when it is due and takes the
cross-worker lock.
"""

from __future__ import annotations

import random

from dualsync.ops.verify.run import VerifyOptions, run_verify
from dualsync.producers.stores import LegacyStores
from dualsync.schema.mapping import MappingSet
from dualsync.settings import Settings
from dualsync.worker.context import VerifyJob

__all__ = ["scheduled_verify"]


def scheduled_verify(
    settings: Settings, ms: MappingSet, stores: LegacyStores, database_url: str, redis_url: str,
    *, samples: int = 3000,
) -> VerifyJob:  # fmt: skip
    """A job that verifies every entity with a source and sums it up in one line."""

    async def job() -> str:
        key = settings.fingerprint_key
        opts = VerifyOptions(
            samples=samples, seed=random.SystemRandom().randrange(2**31),
            prefix=settings.prefix, shards=settings.shards,
            fingerprint_key=key.get_secret_value().encode() if key else None,
        )  # fmt: skip
        results = await run_verify(ms, stores, opts, database_url=database_url,
                                   redis_url=redis_url)  # fmt: skip
        return ", ".join(f"{r.entity}: {r.drift} drift of {r.sampled} (≤ {r.bound:.3%})"
                         for _, r in results)  # fmt: skip

    return job
