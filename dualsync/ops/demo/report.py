"""The demo's closing table: every entity counted on both sides."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from dualsync.worker.stats import Stats

__all__ = ["Row", "print_report"]


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
