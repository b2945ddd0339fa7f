"""The demo's closing table: every entity counted on both sides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from dualsync.ops.demo.cutover import CutoverResult
from dualsync.worker.stats import Stats

__all__ = ["Row", "print_next_steps", "print_report"]


@dataclass(frozen=True, slots=True)
class Row:
    """One entity of one app."""

    app: str
    entity: str
    legacy: int
    postgres: int
    dead_letters: int

    @property
    def ok(self) -> bool:
        return self.legacy == self.postgres and not self.dead_letters


def print_report(
    console: Console, rows: list[Row], stats: dict[str, Stats], seconds: float
) -> bool:
    """Print the table and the workers' counters; True when every entity matches."""
    table = Table(title="legacy store vs PostgreSQL, per entity")
    for col in ("app", "entity", "legacy", "postgres", "dead letters", ""):
        table.add_column(
            col, justify="right" if col in {"legacy", "postgres", "dead letters"} else "left"
        )
    for r in rows:
        table.add_row(r.app, r.entity, f"{r.legacy:,}", f"{r.postgres:,}", str(r.dead_letters),
                      "[green]match[/]" if r.ok else "[red]DIFFERS[/]")  # fmt: skip
    console.print(table)
    for prefix, s in stats.items():
        console.print(f"worker {prefix}: read {s.read:,} events, applied {s.applied:,}, "
                      f"deleted {s.deleted:,}, stale {s.stale:,} (duplicates and older versions "
                      f"the gate refused), dead-lettered {s.dead_lettered}")  # fmt: skip
    ok = all(r.ok for r in rows)
    verdict = (
        "[green]both sides agree for every entity[/]" if ok else "[red]some entities differ[/]"
    )
    console.print(f"{verdict} ({seconds:.1f} s)")
    return ok


def print_next_steps(
    console: Console, cut: CutoverResult, app: Any, root: Path, seconds: float,
    *, embedded_pg: bool = True,
) -> None:  # fmt: skip
    """The closing summary: what the cutover showed, and commands to look for yourself."""
    if not cut.ok:
        console.print(f"[red]the cutover of {app.name} {cut.entity} stopped early[/]")
        return
    seen = cut.seen_ms or {}
    console.print(
        f"[green]{app.name} {cut.entity}: legacy -> shadow -> postgres -> legacy[/], each flip "
        f"seen by every client within {max(seen.values()):.0f} ms; a read's p99 was "
        f"{cut.p99_ms:.2f} ms in shadow beside {cut.legacy_p99_ms:.2f} ms in legacy "
        f"({seconds:.1f} s in all)"
    )
    db = psycopg.conninfo.conninfo_to_dict(app.db_url).get("dbname", "")
    where = f"DUALSYNC_EMBEDDED_DB={db}" if embedded_pg else f"DATABASE_URL=<your server>/{db}"
    mapping = f"examples/{app.name}/mapping.yaml"
    env = f"{where} DUALSYNC_PREFIX={app.prefix} DUALSYNC_MAPPING={mapping}"
    console.print("\n[bold]Try next[/] (the demo's data stays in .dualsync; docs/runbook.md "
                  "has the whole runbook):")  # fmt: skip
    console.print(f"  export {env}")
    for cmd, what in (
        ("dualsync status", "streams, consumers, counts, verify and mode per entity"),
        (f"dualsync readiness {cut.entity}", "every gate with its value and limit"),
        ("dualsync cutover log", "the audited flips, with the gates at each"),
        (f"dualsync verify --entity {cut.entity} --legacy-root {root}", "a sampled verify"),
        ("dualsync drift --html drift.html", "the drift report as a page"),
        (f"dualsync flip {cut.entity} --to shadow --reason 'trying it'", "a flip, audited"),
        (f"dualsync rollback {cut.entity}", "and back, always allowed"),
    ):
        console.print(f"  {cmd:<72} # {what}")
