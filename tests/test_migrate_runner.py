"""Migration runner details: statements outside a transaction, and whose history `down` touches."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dualsync.schema.migrate import MigrationError, MigrationSet, Migrator, core_set
from dualsync.schema.migrate.files import split_statements

HEADER = "-- Purpose: p\n-- Ticket: n/a\n-- Reversible: yes\n-- Rollback: see down\n"


def _set(root: Path, name: str, files: dict[str, str]) -> MigrationSet:
    folder = root / name / "migrations"
    folder.mkdir(parents=True)
    for fname, body in files.items():
        (folder / fname).write_text(HEADER + body)
    return MigrationSet.from_dir(folder)


def test_split_statements_ignores_comments() -> None:
    text = (
        "-- build online;\ncreate index concurrently a on t (x);\n"
        "create index\n  concurrently b on t (y); -- second\n"
    )
    assert split_statements(text) == [
        "-- build online;\ncreate index concurrently a on t (x);",
        "create index\n  concurrently b on t (y); -- second",
    ]


def test_two_concurrent_index_builds_in_one_file(pg_url: str, tmp_path: Path) -> None:
    app = _set(
        tmp_path,
        "ci",
        {
            "20250101000000_t.sql": "create table ci_t (x int);\n-- down\ndrop table ci_t;\n",
            "20250101000100_idx.sql": (
                "create index concurrently ci_a on ci_t (x);\n"
                "create index concurrently ci_b on ci_t (x desc);\n"
                "-- down\ndrop index concurrently ci_b;\ndrop index concurrently ci_a;\n"
            ),
        },
    )
    m = Migrator(pg_url, [core_set(), app])
    assert [a.name for a in m.up()][-2:] == ["t", "idx"]
    with psycopg.connect(pg_url) as conn:
        names = {
            r[0] for r in conn.execute("select indexname from pg_indexes where tablename = 'ci_t'")
        }
    assert names == {"ci_a", "ci_b"}
    m.down(2, set_name="ci")
    assert [s.state for s in m.status() if s.set_name == "ci"] == ["pending", "pending"]


def test_down_only_reverts_sets_it_was_given(pg_url: str, tmp_path: Path) -> None:
    other = _set(
        tmp_path,
        "other",
        {"20250301000000_o.sql": "create table o_t (x int);\n-- down\ndrop table o_t;\n"},
    )
    mine = _set(
        tmp_path,
        "mine",
        {"20250201000000_m.sql": "create table m_t (x int);\n-- down\ndrop table m_t;\n"},
    )
    Migrator(pg_url, [core_set(), other]).up()
    Migrator(pg_url, [core_set(), mine]).up()
    # `other` was applied last, but a runner that only knows `mine` must not try to undo it.
    [undone] = Migrator(pg_url, [core_set(), mine]).down(1)
    assert (undone.set_name, undone.name) == ("mine", "m")
    with pytest.raises(MigrationError, match="no migration set named 'other'"):
        Migrator(pg_url, [core_set()]).down(1, set_name="other")
