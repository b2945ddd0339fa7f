"""`dualsync backfill --direct --processes N`: forked processes, each with its own key ranges
and checkpoint part; complete, values equal to the legacy files, a child killed mid-run fails
the run in one line and the resume applies the rest exactly once.

donna's real JSON tree (generator), the real test Postgres; the CLI runs as a subprocess.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from bench import _procs
from bench._procs import alive
from dualsync.errors import ConfigError
from dualsync.ops.cli_backfill import run_backfill
from dualsync.producers.backfill import BackfillOptions, Checkpoint
from dualsync.producers.backfill.checkpoint import part_path
from dualsync.producers.backfill.processes import (
    MAX_AUTO_PROCESSES,
    ProcessBackfill,
    auto_processes,
    planned_processes,
)
from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import MappingSet
from dualsync.settings import Settings
from examples._stores import write_tree
from examples.donna.generator import generate
from tests import test_backfill
from tests.examples._support import count, query
from tests.test_backfill import DONNA, backfill_cli, resume_applies_the_rest

ROOT = Path(__file__).resolve().parent.parent
# the donna database (migrated once per module, emptied per test) and mapping fixtures
donna_db = test_backfill.donna_db
db = test_backfill.db
ms = test_backfill.ms


def tree(tmp_path: Path, ms: MappingSet, n: int) -> tuple[Path, dict[str, int]]:
    out = tmp_path / "donna"
    return out, write_tree(ms, generate(n, 7), out)


def assert_users_match_their_files(db: str, out: Path) -> None:
    """Every user row holds what its legacy file says (name, email), none missing."""
    rows = {k: (n, e) for k, n, e in query(db, "select clerk_id, name, email from users")}
    files = sorted((out / "data" / "memory").glob("*.json"))
    assert len(rows) == len(files)
    for f in files:
        doc = orjson.loads(f.read_bytes())
        assert rows[f.stem] == (doc.get("name"), doc.get("email")), f.stem


def assert_complete(db: str, ms: MappingSet, counts: dict[str, int]) -> None:
    for entity, n in counts.items():
        assert count(db, ms.entity(entity).table) == n, entity
    [(state,)] = query(db, "select count(*) from dualsync.row_state")
    assert state == sum(counts.values())


async def test_two_processes_fill_every_table_with_the_files_values(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    out, counts = tree(tmp_path, ms, 300)
    cp_path = tmp_path / "cp.json"
    opts = BackfillOptions(checkpoint=cp_path, mode="direct", processes=2, workers=2, chunk=16)
    cp, job = await run_backfill(Settings(prefix="tbp"), ms, opts, database_url=db,
                                 redis_url="redis://unused", legacy_root=out)  # fmt: skip
    assert isinstance(job, ProcessBackfill)
    assert cp.done
    assert cp.processes == 2
    assert job.bad == []
    assert job.applied == sum(counts.values())
    assert job.stale == 0
    for entity, n in counts.items():
        assert cp.entities[entity].sent == n
        assert cp.entities[entity].total == n
    assert_complete(db, ms, counts)
    assert_users_match_their_files(db, out)
    [(versions,)] = query(db, "select count(distinct version) from dualsync.row_state")
    assert versions == 1  # one run, one snapshot version over every process
    # each process recorded its own ranges: both parts hold users, with 2 ranges each
    for i in (0, 1):
        part = Checkpoint.load(part_path(cp_path, i))
        assert part is not None
        assert part.part == i
        assert len(part.entities["users"].segments) == 2
        assert part.entities["users"].done
    main = Checkpoint.load(cp_path)
    assert main is not None
    assert main.entities["users"].parts == [0, 1]
    # resuming a finished run sends nothing again
    again = BackfillOptions(checkpoint=cp_path, mode="direct", processes=2, resume=True)
    cp, job = await run_backfill(Settings(prefix="tbp"), ms, again, database_url=db,
                                 redis_url="redis://unused", legacy_root=out)  # fmt: skip
    assert isinstance(job, ProcessBackfill)
    assert cp.done
    assert (job.applied, job.stale) == (0, 0)


def settle(db: str, pids: list[int]) -> None:
    """Wait until the killed processes are gone and their server backends too, so that a
    COMMIT sent just before a kill is counted now rather than after the count."""
    deadline = time.monotonic() + 20
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(p) for p in pids), "a backfill process outlived the kill"
    others = (
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and pid <> pg_backend_pid()"
    )
    while query(db, others) != [(0,)] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert query(db, others) == [(0,)], "backends of the killed run are still there"


def _sent(cp_path: Path) -> int:
    try:
        cp = Checkpoint.load_run(cp_path) if cp_path.exists() else None
    except ConfigError:  # the main file names a part not written yet: planning
        return 0
    return 0 if cp is None else sum(e.sent for e in cp.entities.values())


@dataclasses.dataclass
class _Run:
    """A 2-process direct backfill of 3,000 donna users, a third of the way through."""

    out: Path
    counts: dict[str, int]
    total: int
    cp_path: Path
    env: dict[str, str]
    args: tuple[str, ...]
    proc: subprocess.Popen[str]
    children: list[int]


def _a_third_in(db: str, ms: MappingSet, tmp_path: Path) -> _Run:
    out, counts = tree(tmp_path, ms, 3000)
    total = sum(counts.values())
    cp_path = tmp_path / "cp.json"
    env = {**os.environ, "DATABASE_URL": db, "DUALSYNC_HOME": str(tmp_path / "home"),
           "DUALSYNC_LOG_FORMAT": "json", "DUALSYNC_LOG_LEVEL": "WARNING"}  # fmt: skip
    args = ("--mapping", str(DONNA / "mapping.yaml"), "--legacy-root", str(out), "--direct",
            "--processes", "2", "--chunk", "50", "--checkpoint", str(cp_path))  # fmt: skip
    proc = backfill_cli(*args, env=env)
    deadline = time.monotonic() + 60
    while _sent(cp_path) < total // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    return _Run(out, counts, total, cp_path, env, args, proc, _procs.children(proc.pid))


@pytest.mark.slow
def test_a_child_killed_mid_run_fails_it_in_one_line_and_resume_applies_the_rest_once(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    run = _a_third_in(db, ms, tmp_path)
    out, counts, total, cp_path = run.out, run.counts, run.total, run.cp_path
    env, args, proc, children = run.env, run.args, run.proc, run.children
    assert len(children) == 2, "the run ended before a child could be killed"
    victim = children[1]
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("dualsync: error:")]
    assert f"(pid {victim}) was killed by SIGKILL" in line
    assert "--resume" in line
    settle(db, children)  # no process is left behind
    [(before,)] = query(db, "select count(*) from dualsync.row_state")
    assert 0 < before < total
    assert _sent(cp_path) <= before  # the checkpoint never runs ahead of what is committed
    # resuming with another process count is refused; with the same (or auto) it completes
    other = backfill_cli(*args[:-4], "--processes", "3", "--checkpoint", str(cp_path), "--resume",
                 env=env)  # fmt: skip
    _, err = other.communicate(timeout=60)
    assert other.returncode == 1
    assert "started with 2 process(es)" in err
    stdout = resume_applies_the_rest(args, env, before, total)
    assert "processes=2" in stdout
    assert_complete(db, ms, counts)
    assert_users_match_their_files(db, out)
    cp = Checkpoint.load_run(cp_path)
    assert cp is not None
    assert cp.done


@pytest.mark.slow
def test_sigkill_of_the_parent_takes_its_children_and_resume_completes(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    run = _a_third_in(db, ms, tmp_path)
    counts, total, env, args, proc = run.counts, run.total, run.env, run.args, run.proc
    children = run.children
    assert len(children) == 2
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # returns once the children, which share its stderr, exit
    settle(db, children)  # they died with it
    [(before,)] = query(db, "select count(*) from dualsync.row_state")
    assert 0 < before < total
    resume_applies_the_rest(args, env, before, total)
    assert_complete(db, ms, counts)


def test_process_counts_are_planned_and_checked(tmp_path: Path) -> None:
    cp_path = tmp_path / "cp.json"
    assert 1 <= auto_processes() <= MAX_AUTO_PROCESSES
    direct = BackfillOptions(checkpoint=cp_path, mode="direct", processes=None)
    assert planned_processes(direct) == auto_processes()
    stream = BackfillOptions(checkpoint=cp_path, processes=None)
    assert planned_processes(stream) == 1
    with pytest.raises(ConfigError, match="--processes needs --direct"):
        planned_processes(BackfillOptions(checkpoint=cp_path, processes=2))
    # a checkpoint written before `processes` existed reads as a one-process run
    users = {"total": 3, "segments": [{"progress": "b", "sent": 2}]}
    old = {"app": "donna", "mode": "direct", "version": 5, "started_at": "2026-01-01T00:00:00",
           "entities": {"users": users}}  # fmt: skip
    cp_path.write_bytes(orjson.dumps(old))
    cp = Checkpoint.load_run(cp_path)
    assert cp is not None
    assert (cp.processes, cp.entities["users"].sent) == (1, 2)
    resume = BackfillOptions(checkpoint=cp_path, mode="direct", processes=None, resume=True)
    assert planned_processes(resume) == 1
    with pytest.raises(ConfigError, match="started with 1 process"):
        planned_processes(BackfillOptions(checkpoint=cp_path, mode="direct", processes=2,
                                          resume=True))  # fmt: skip
    # a file this version cannot read is refused in one line that says what to do
    cp_path.write_bytes(b'{"app": "donna", "version": "soon"}')
    with pytest.raises(ConfigError, match="--restart") as err:
        Checkpoint.load(cp_path)
    assert "\n" not in str(err.value)


async def test_a_missing_part_is_refused_and_restart_starts_over(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    out, counts = tree(tmp_path, ms, 60)
    cp_path = tmp_path / "cp.json"
    opts = BackfillOptions(checkpoint=cp_path, mode="direct", processes=2,
                           entities=("users",), chunk=8)  # fmt: skip
    cp, _ = await run_backfill(Settings(prefix="tbp"), ms, opts, database_url=db,
                               redis_url="redis://unused", legacy_root=out)  # fmt: skip
    assert cp.done
    part_path(cp_path, 1).unlink()
    with pytest.raises(ConfigError, match=r"part1\.json is missing"):
        Checkpoint.load_run(cp_path)
    resume = BackfillOptions(checkpoint=cp_path, mode="direct", processes=2,
                             entities=("users",), resume=True)  # fmt: skip
    with pytest.raises(ConfigError, match="--restart"):
        await run_backfill(Settings(prefix="tbp"), ms, resume, database_url=db,
                           redis_url="redis://unused", legacy_root=out)  # fmt: skip
    restart = BackfillOptions(checkpoint=cp_path, mode="direct", processes=2,
                              entities=("users",), restart=True)  # fmt: skip
    cp, job = await run_backfill(Settings(prefix="tbp"), ms, restart, database_url=db,
                                 redis_url="redis://unused", legacy_root=out)  # fmt: skip
    assert cp.done
    assert isinstance(job, ProcessBackfill)
    assert cp.entities["users"].sent == counts["users"]
    assert (job.applied, job.bad) == (counts["users"], [])  # a new run: a newer version
    assert count(db, "users") == counts["users"]
    # store objects cannot cross a fork: refused rather than silently run in one process
    stores = open_stores(ms, root=out)
    with pytest.raises(ConfigError, match="legacy_root"):
        await run_backfill(Settings(prefix="tbp"), ms, restart, database_url=db,
                           redis_url="redis://unused", stores=stores)  # fmt: skip


@pytest.mark.slow
def test_sigterm_stops_every_process_at_a_recorded_chunk(
    db: str, ms: MappingSet, tmp_path: Path
) -> None:
    """SIGTERM (or Ctrl-C) reaches the parent, which asks each child to finish and record the
    chunk in hand: the checkpoint then says exactly what is committed, and the resume sends
    nothing twice (no stale rows at all)."""
    run = _a_third_in(db, ms, tmp_path)
    counts, total, cp_path = run.counts, run.total, run.cp_path
    env, args, proc = run.env, run.args, run.proc
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "continue with --resume" in stderr
    settle(db, [])
    [(before,)] = query(db, "select count(*) from dualsync.row_state")
    assert 0 < before < total
    assert _sent(cp_path) == before  # every committed chunk recorded, none more
    stdout = resume_applies_the_rest(args, env, before, total)
    assert "stale=0" in stdout, stdout
    assert_complete(db, ms, counts)
