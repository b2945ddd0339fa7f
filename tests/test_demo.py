"""`dualsync demo` (what `make demo` runs) end to end through its entry point, in its own
process (the demo sets process-wide logging, as a command does), small, on the test servers:
the whole story is told, both sides agree, and it exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dualsync.ops.databases import drop_database

STEPS = (
    "legacy stores", "migrate donna", "backfill donna", "backfill panamia", "live writes",
    "scan --watch published", "drained", "both sides agree for every entity", "0 drift",
    "verify caught", "missing_in_target", "extra_in_target", "(email)", "(price_per_day)",
    "repair --apply: 4", "verify again: clean",
    "three clean verify runs in a row and a full sweep",
    "at demo size): verify pass", "flip users --to shadow",
    "shadow reads: ", "reads answered from the legacy store", "0 mismatched",
    ("--min-shadow-reads 500): verify pass, lag pass, oldest_pending pass, dead_letters pass, "
     "shadow pass, mapping pass"),
    "flip users --to postgres", "rollback users", "cutover log: 3 audited changes",
    "legacy -> shadow -> postgres -> legacy", "Try next",
    "DATABASE_URL=<your server>/dualsync_demo_donna", "in legacy mode",
)  # fmt: skip


def test_the_demo_tells_its_whole_story_through_its_entry_point(
    pg_server_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": pg_server_url, "REDIS_URL": redis_url,
           "DUALSYNC_HOME": str(tmp_path), "COLUMNS": "200"}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dualsync.ops.cli", "demo", "--scale", "120"],
            env=env, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    finally:
        for app in ("donna", "panamia"):
            drop_database(pg_server_url, f"dualsync_demo_{app}")
    text = done.stdout
    assert done.returncode == 0, text + done.stderr
    for step in STEPS:
        assert step in text, step
    assert "DIFFERS" not in text
    assert "Traceback" not in done.stderr
