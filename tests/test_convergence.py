"""Convergence: any subset, any order, any number of times -> the latest version of every key.

The generator (`random_history`) and the oracle (`assert_converged`) are shared with
`test_convergence_cluster.py` (Redis Cluster, several worker processes).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualsync.producers import EventSpec, Publisher
from dualsync.worker.run import run_until_idle
from tests.fix_shop import Shop, customer

#: key -> (latest version, latest email or None when the latest event is a delete)
Final = dict[str, tuple[int, str | None]]


@dataclass(frozen=True, slots=True)
class History:
    """A random history of customer events and what the target must end up holding."""

    #: every event 1-3 times, shuffled: what the publishers send
    deliveries: list[EventSpec]
    final: Final


def random_history(rng: random.Random, keys: int) -> History:
    """1-5 versions per key (a quarter of them deletes), delivered 1-3 times, shuffled."""
    history: list[EventSpec] = []
    final: Final = {}
    for k in range(keys):
        key = f"k{k}"
        version = 0
        for _ in range(rng.randint(1, 5)):
            version += rng.randint(1, 1000)
            if rng.random() < 0.25:
                history.append(EventSpec("customers", key, "delete", None, version))
                final[key] = (version, None)
            else:
                email = f"{key}v{version}@x"
                history.append(
                    EventSpec("customers", key, "upsert", customer(k, email=email), version)
                )
                final[key] = (version, email)
    deliveries = [e for e in history for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    return History(deliveries, final)


async def reset_shop(db: str) -> None:
    """Empty the shop tables and the version gate's state."""
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(
            "truncate shop.order_items, shop.orders, shop.customers, dualsync.row_state"
        )


async def publish_all(pub: Publisher, deliveries: list[EventSpec]) -> None:
    """Publish in chunks of 200, then close the publisher."""
    for i in range(0, len(deliveries), 200):
        await pub.publish_many(deliveries[i : i + 200])
    await pub.aclose()


async def assert_converged(shop: Shop, final: Final) -> None:
    """The oracle: exactly the latest live rows, and the latest version of every key."""
    rows = dict(await shop.rows("select id, email from shop.customers"))
    expected = {k: email for k, (_, email) in final.items() if email is not None}
    assert rows == expected
    state = dict(await shop.rows("select key, version from dualsync.row_state"))
    assert state == {k: v for k, (v, _) in final.items()}


@given(
    seed=st.integers(min_value=0, max_value=2**32), keys=st.integers(min_value=50, max_value=300)
)
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_random_histories_converge_across_two_workers(
    shop: Shop, seed: int, keys: int
) -> None:
    rng = random.Random(seed)
    await reset_shop(shop.db)
    prefix = f"{shop.prefix}x{seed}"
    h = random_history(rng, keys)
    await publish_all(shop.publisher(prefix=prefix), h.deliveries)

    o1 = shop.options(prefix=prefix, consumer_name="wa", batch_size=rng.choice([7, 50, 300]))
    o2 = shop.options(prefix=prefix, consumer_name="wb", batch_size=rng.choice([7, 50, 300]))
    await asyncio.gather(run_until_idle(o1, 0.3), run_until_idle(o2, 0.3))

    await assert_converged(shop, h.final)
    keys_left = await shop.redis.keys(f"{prefix}:*")
    await shop.redis.delete(*keys_left)
