"""`dualsync migrate up|down|status|new` through the CLI, and the runner's advisory lock.

Every test writes its own migration set (a folder named after the test) into the module's
database, so tests do not depend on each other's history; `down` always names its set.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dualsync.ops.cli import main
from dualsync.schema.migrate import Applied, MigrationSet, Migrator, core_set, parse_file
from dualsync.schema.migrate.runner import LOCK_KEY
from dualsync.settings import get_settings


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Iterator[str]:
    """The CLI pointed at the module's database; yields its URL."""
    monkeypatch.setenv("DATABASE_URL", pg_url)
    get_settings.cache_clear()
    yield pg_url
    get_settings.cache_clear()


def migration(up: str, down: str = "", *, reversible: bool = True, post_load: bool = False) -> str:
    header = [
        "-- Purpose: a test migration",
        "-- Ticket: n/a",
        f"-- Reversible: {'yes' if reversible else 'no'}",
        "-- Rollback: " + ("the down section" if reversible else "restore from backup"),
    ]
    if post_load:
        header.append("-- Phase: post-load")
    body = [up] + (["-- down", down] if down else [])
    return "\n".join([*header, *body]) + "\n"


def make_set(base: Path, name: str, files: dict[str, str]) -> Path:
    """`base/<name>/migrations` with the given files: a set called `name`."""
    folder = base / name / "migrations"
    folder.mkdir(parents=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    """The CLI's own error lines (structured log lines share stderr)."""
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("dualsync:")]


def exists(url: str, relation: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()
    return bool(row and row[0])


def history(url: str, set_name: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select version from dualsync.schema_migrations where set_name = %s order by 1",
            (set_name,),
        ).fetchall()
    return [r[0] for r in rows]


def test_up_status_down(cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = make_set(
        tmp_path,
        "rt",
        {
            "20250101000000_create_items.sql": migration(
                "create table rt_items (id int primary key);", "drop table rt_items;"
            ),
            "20250101000100_index_items.sql": migration(
                "create index rt_items_idx on rt_items (id);",
                "drop index rt_items_idx;",
                post_load=True,
            ),
        },
    )
    code, out, _ = run(["migrate", "status", "--dir", str(d)], capsys)
    assert code == 0
    assert re.search(r"^rt\s+20250101000000\s+create_items\s+pending\s+-$", out, re.MULTILINE)
    assert re.search(r"^rt\s+20250101000100\s+index_items\s+deferred\s+-$", out, re.MULTILINE)
    assert out.splitlines()[0].split() == ["set", "version", "name", "state", "applied_at"]

    code, out, _ = run(["migrate", "up", "--dir", str(d)], capsys)
    assert code == 0
    assert re.search(r"^up\s+rt/20250101000000_create_items\s+\d+ ms$", out, re.MULTILINE)
    assert "index_items" not in out.split("applied")[0]  # post-load waits for --post-load
    assert "1 post-load migration(s) deferred" in out
    assert exists(cli, "rt_items")
    assert not exists(cli, "rt_items_idx")
    assert history(cli, "rt") == ["20250101000000"]

    code, out, _ = run(["migrate", "up", "--post-load", "--dir", str(d)], capsys)
    assert code == 0
    assert re.search(r"^up\s+rt/20250101000100_index_items\s+\d+ ms$", out, re.MULTILINE)
    assert exists(cli, "rt_items_idx")

    code, out, _ = run(["migrate", "status", "--dir", str(d)], capsys)
    assert code == 0
    assert re.search(
        r"^rt\s+20250101000100\s+index_items\s+applied\s+\d{4}-\d\d-\d\d ", out, re.MULTILINE
    )

    code, out, _ = run(["migrate", "down", "--set", "rt", "--dir", str(d)], capsys)
    assert code == 0
    assert re.search(r"^down\s+rt/20250101000100_index_items\s+\d+ ms$", out, re.MULTILINE)
    assert not exists(cli, "rt_items_idx")
    assert exists(cli, "rt_items")
    assert history(cli, "rt") == ["20250101000000"]
    assert history(cli, "dualsync")  # the core set is untouched

    code, out, _ = run(["migrate", "down", "1", "--set", "rt", "--dir", str(d)], capsys)
    assert code == 0
    assert not exists(cli, "rt_items")
    assert history(cli, "rt") == []


def test_up_to_version(cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {
        f"2025010100000{i}_t{i}.sql": migration(f"create table to_t{i} ();", f"drop table to_t{i};")
        for i in range(3)
    }
    d = make_set(tmp_path, "upto", files)
    code, _, _ = run(["migrate", "up", "--dir", str(d), "--to", "20250101000001"], capsys)
    assert code == 0
    assert history(cli, "upto") == ["20250101000000", "20250101000001"]
    assert not exists(cli, "to_t2")


def test_edited_applied_file_is_refused(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_set(
        tmp_path,
        "edited",
        {"20250101000000_a.sql": migration("create table ed_a ();", "drop table ed_a;")},
    )
    assert run(["migrate", "up", "--dir", str(d)], capsys)[0] == 0
    (d / "20250101000000_a.sql").write_text(
        migration("create table ed_a (x int);", "drop table ed_a;")
    )
    (d / "20250101000100_b.sql").write_text(migration("create table ed_b ();", "drop table ed_b;"))

    code, out, err = run(["migrate", "up", "--dir", str(d)], capsys)
    assert code == 1
    [line] = error_lines(err)
    assert str(d / "20250101000000_a.sql") in line
    assert "changed after it was applied" in line
    assert "up " not in out
    assert not exists(cli, "ed_b")  # nothing ran
    assert history(cli, "edited") == ["20250101000000"]

    code, out, err = run(["migrate", "status", "--dir", str(d)], capsys)
    assert code == 1
    assert re.search(r"^edited\s+20250101000000\s+a\s+changed\s", out, re.MULTILINE)
    assert re.search(r"^edited\s+20250101000100\s+b\s+pending\s", out, re.MULTILINE)
    [line] = error_lines(err)
    assert str(d / "20250101000000_a.sql") in line


def test_down_refuses_irreversible(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_set(
        tmp_path,
        "irrev",
        {
            "20250101000000_table.sql": migration("create table ir_t (x int);", "drop table ir_t;"),
            "20250101000100_backfill.sql": migration(
                "insert into ir_t values (1);", reversible=False
            ),
        },
    )
    assert run(["migrate", "up", "--dir", str(d)], capsys)[0] == 0
    code, out, err = run(["migrate", "down", "2", "--set", "irrev", "--dir", str(d)], capsys)
    assert code == 1
    [line] = error_lines(err)
    assert str(d / "20250101000100_backfill.sql") in line
    assert "irreversible" in line
    assert "restore from backup" in line  # the file's Rollback note
    assert "down " not in out
    assert history(cli, "irrev") == ["20250101000000", "20250101000100"]  # nothing reverted
    assert exists(cli, "ir_t")


def waiting_for_lock(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether a session of this database waits for the migration advisory lock."""
    row = conn.execute(
        "select count(*) from pg_locks l join pg_database d on d.oid = l.database "
        "where d.datname = current_database() and l.locktype = 'advisory' "
        "and not l.granted and l.objid = %s::bigint::oid",
        (LOCK_KEY,),
    ).fetchone()
    return bool(row and row[0])


def test_second_runner_waits_for_the_lock(pg_url: str, tmp_path: Path) -> None:
    d = make_set(
        tmp_path,
        "locked",
        {"20250101000000_a.sql": migration("create table lk_a ();", "drop table lk_a;")},
    )
    runner = Migrator(pg_url, [core_set(), MigrationSet.from_dir(d)])
    result: list[list[Applied]] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            result.append(runner.up())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not waiting_for_lock(holder) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting_for_lock(holder), "the second runner never asked for the lock"
        assert thread.is_alive()
        assert history(pg_url, "locked") == []
        assert not exists(pg_url, "lk_a")
        holder.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert [(a.set_name, a.name) for a in result[0]][-1] == ("locked", "a")
    assert exists(pg_url, "lk_a")


def test_lock_timeout_gives_up_with_one_line(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(cli, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        code, _, err = run(["migrate", "status", "--lock-timeout", "0.2"], capsys)
    assert code == 1
    [line] = error_lines(err)
    assert "another migration runner holds the lock" in line


def test_new_writes_a_parseable_file(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_set(tmp_path, "fresh", {})
    before = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    code, out, _ = run(["migrate", "new", "add_widgets", "--dir", str(d)], capsys)
    after = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    assert code == 0
    path = Path(out.strip())
    assert path.parent == d
    assert re.fullmatch(r"\d{14}_add_widgets\.sql", path.name)
    assert before <= path.name[:14] <= after
    m = parse_file("fresh", path)
    assert (m.name, m.reversible, m.post_load) == ("add_widgets", True, False)
    assert m.purpose
    assert m.rollback
    assert m.down_sql

    code, out, _ = run(["migrate", "new", "add_widgets", "--dir", str(d)], capsys)
    assert code == 0
    second = Path(out.strip())
    assert second.name[:14] > path.name[:14]  # versions stay unique and ordered

    # The placeholder refuses to be applied: an unwritten migration never gets recorded.
    code, _, err = run(["migrate", "up", "--dir", str(d)], capsys)
    assert code == 1
    [line] = error_lines(err)
    assert str(path) in line
    assert "replace its placeholder" in line
    assert history(cli, "fresh") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["migrate", "down", "0"],
        ["migrate", "down", "two"],
        ["migrate", "down", "--set", "nope"],
        ["migrate", "up", "--to", "soon"],
        ["migrate", "up", "--lock-timeout", "0"],
        ["migrate", "new", "Add-Widgets", "--dir", "{tmp}"],
        ["migrate", "new", "add__widgets", "--dir", "{tmp}"],
        ["migrate", "new", "add_widgets"],
        ["migrate", "status", "--dir", "{tmp}/missing"],
        ["migrate", "status", "--dir", "{tmp}/a/migrations", "--dir", "{tmp}/b/a/migrations"],
        ["migrate", "status", "--dir", str(core_set().path)],
    ],
    ids=lambda argv: " ".join(argv[1:3]),
)
def test_bad_arguments_are_one_line_exit_2(
    cli: str, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a" / "migrations").mkdir(parents=True)
    (tmp_path / "b" / "a" / "migrations").mkdir(parents=True)
    code, out, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("dualsync: error: ")
    assert "--help" in lines[0]
    assert list(tmp_path.glob("**/*.sql")) == []


def test_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/nope")
    get_settings.cache_clear()
    try:
        code, _, err = run(["migrate", "status"], capsys)
    finally:
        get_settings.cache_clear()
    assert code == 1
    [line] = error_lines(err)
    assert line.startswith("dualsync: error: PostgreSQL: ")
    assert "pw" not in line


def test_help_explains(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--help"]) == 0
    out = capsys.readouterr().out
    for command in ("up", "down", "status", "new"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.MULTILINE), command
    assert main(["migrate", "up", "--help"]) == 0
    assert "--post-load" in capsys.readouterr().out


def test_each_file_is_reported_once(pg_url: str, tmp_path: Path) -> None:
    """`migrate up` prints one line per file: its table, not also a log line per file."""
    import os  # noqa: PLC0415 - only this test runs a subprocess

    folder = make_set(
        tmp_path,
        "printed_once",
        {
            "20250101000000_one.sql": migration(
                "create table printed_once_t (id int);", "drop table printed_once_t;"
            )
        },
    )
    env = {**os.environ, "DATABASE_URL": pg_url, "DUALSYNC_LOG_FORMAT": "console"}
    proc = subprocess.run(
        [sys.executable, "-m", "dualsync.ops.cli", "migrate", "up", "--dir", str(folder)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    both = proc.stdout + proc.stderr
    assert both.count("printed_once/20250101000000_one") == 1, both
