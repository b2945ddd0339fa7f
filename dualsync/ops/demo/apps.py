"""The two applications of the demo, each with its own database, stream prefix and store.

donna keeps one JSON file per user and per chat on disk and cannot be changed: its changes
are captured by `scan --watch`. panamia keeps MongoDB collections (mongomock-motor here:
no MongoDB server is needed) and publishes its own events after each write.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dualsync.producers.stores import LegacyStores
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set

__all__ = ["EXAMPLES", "DemoApp"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@dataclass(slots=True)
class DemoApp:
    """One example application as the demo runs it."""

    name: str
    prefix: str
    db_url: str = ""
    ms: MappingSet = field(init=False)
    stores: LegacyStores | None = None
    mongo_db: Any = None

    def __post_init__(self) -> None:
        self.ms = load_mapping(EXAMPLES / self.name / "mapping.yaml")

    @property
    def folder(self) -> Path:
        return EXAMPLES / self.name

    def migrate(self, *, post_load: bool = False) -> int:
        """dualsync's own tables and the app's; returns how many files ran."""
        sets = [core_set(), MigrationSet.from_dir(self.folder / "migrations")]
        return len(Migrator(self.db_url, sets).up(post_load=post_load))

    def count(self, table: str) -> int:
        """Rows of a table of the app's database."""
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(table))
            ).fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        if self.stores is not None:
            with contextlib.suppress(Exception):
                await self.stores.aclose()
