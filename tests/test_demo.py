"""`dualsync demo` (what `make demo` runs) end to end through its entry point, small, on the
test servers: the whole story is told and both sides agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualsync.ops.cli import main
from dualsync.ops.databases import drop_database
from dualsync.settings import get_settings

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
    pg_server_url: str, redis_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for name, value in (("DATABASE_URL", pg_server_url), ("REDIS_URL", redis_url),
                        ("DUALSYNC_HOME", str(tmp_path)), ("COLUMNS", "200")):  # fmt: skip
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        code = main(["demo", "--scale", "120"])
    finally:
        get_settings.cache_clear()
        for app in ("donna", "panamia"):
            drop_database(pg_server_url, f"dualsync_demo_{app}")
    text = capsys.readouterr().out
    assert code == 0, text
    for step in STEPS:
        assert step in text, step
    assert "DIFFERS" not in text
