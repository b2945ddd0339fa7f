"""`python -m bench`: run every benchmark in one process and record bench/results/latest.json."""

from __future__ import annotations

import asyncio

from bench import apply, backfill, publish
from bench._common import record


def main() -> None:
    """Run the suite with default sizes."""
    record("publish", asyncio.run(publish.run(50_000, 500, 3)))
    record("apply", asyncio.run(apply.run(50_000, 1000, 3, 2)))
    record("backfill", asyncio.run(backfill.run(20_000, 1)))


if __name__ == "__main__":
    main()
