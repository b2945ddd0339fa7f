"""The shadow compares' CPU accounting leaves garbage collections out.

A collection walks the whole app's heap; charged to the compare whose step it happened to
run in, a long one would stop every compare for five times its length (the token bucket
refills at `share` of the loop's time) although the compares did not cost it.
"""

from __future__ import annotations

import gc
import time

from dualsync.producers.shadow_budget import CpuBudget, timed


async def test_a_collection_inside_a_step_is_not_the_compares_time() -> None:
    heap = [[i] for i in range(1_000_000)]  # tracked objects: a full collection takes a while
    budget = CpuBudget(budget_ms=5.0)
    held = budget.admit("users")
    assert held is not None

    async def compare() -> float:
        t = time.perf_counter()
        gc.collect()
        sum(range(20_000))  # some work of its own
        return time.perf_counter() - t

    run = timed(compare())
    took = await run
    del heap
    assert took > 0.02, "the collection was too quick to show anything on this machine"
    assert run.total_s < took / 4
    assert run.total_s > 0  # the compare's own work still counts
    budget.done("users", held, run.total_s)
    assert budget.admit("users") is not None  # the next compare is not held back
