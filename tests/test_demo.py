"""`dualsync demo` (what `make demo` runs), small, on the test servers: both sides agree."""

from __future__ import annotations

import uuid
from pathlib import Path

from rich.console import Console

from dualsync.ops.databases import drop_database
from dualsync.ops.demo.story import DemoOptions, run_demo


async def test_the_demo_tells_its_story_and_both_sides_agree(
    pg_server_url: str, redis_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    opts = DemoOptions(home=tmp_path, scale=120, database_prefix=f"t_demo_{tag}",
                       stream_prefix=f"tdemo{tag}")  # fmt: skip
    console = Console(record=True, width=160)
    try:
        assert await run_demo(pg_server_url, redis_url, opts, console)
    finally:
        for app in ("donna", "panamia"):
            drop_database(pg_server_url, f"t_demo_{tag}_{app}")
    text = console.export_text()
    for step in ("legacy stores", "migrate donna", "backfill donna", "backfill panamia",
                 "live writes", "scan --watch published", "drained", "0 drift",
                 "verify caught", "missing_in_target", "extra_in_target", "(email)",
                 "(price_per_day)", "repair --apply: 4", "verify again: clean"):  # fmt: skip
        assert step in text, step
    assert "both sides agree for every entity" in text
    assert "DIFFERS" not in text
