"""`python -m bench` (`make bench`): every benchmark on one PostgreSQL and one Redis, one table.

    python -m bench [--smoke] [--only NAME ...] [--results PATH] [--markdown]
    python -m bench --render PATH [--markdown]

Runs the modules of bench/_suite.py in order, each as a child process (the servers are
embedded unless DATABASE_URL / REDIS_URL are set; each module gets a fresh database on the
one server; Redis is flushed between modules), then prints one table (metric, value,
baseline, ratio, spread) and writes the results file: the machine, the versions, every
module's parameters, and its figures (medians over the rounds, min/max under `spread`;
warm-up runs excluded). A module that is missing, or whose service cannot start, is skipped
with the reason; one that fails makes the exit status 1 (the others still run).

`--smoke`: tiny sizes, one run each, results in a temporary file (never latest.json): what
`make test` runs (tests/test_bench_smoke.py) so that no benchmark can rot.
`--render PATH`: print the table of an existing results file (e.g. for the README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import redis

from bench._common import (
    RESULTS,
    RESULTS_ENV,
    aggregate,
    database_url,
    load_results,
    redis_url,
    write_results,
)
from bench._report import machine, render, table, versions
from bench._suite import BENCHES, EX_TEMPFAIL, Bench
from dualsync.ops.databases import fresh_database

HERE = Path(__file__).resolve().parent
#: the full suite's budget: a longer run is reported (the sizes in _suite.py need a cut)
BUDGET_S = 600


@dataclass(slots=True)
class Outcome:
    """What running one module gave."""

    status: str  # "ok", "skipped" or "failed"
    reason: str = ""
    sections: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


#: a structlog console line (modules that do not configure logging print them on stdout)
_LOG_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(debug|info) ")


def _echo(stream: IO[bytes] | None) -> None:
    """Pass a module's stdout through, without its debug and info log lines."""
    for line in stream or ():
        if not _LOG_LINE.match(line):
            sys.stdout.write(line.decode(errors="replace"))
            sys.stdout.flush()


def _once(b: Bench, args: list[str], env: dict[str, str], scratch: Path, timeout: float) -> Outcome:
    """One child run of module `b`: its sections, or why it was skipped or failed."""
    out = scratch / f"{b.name}.json"
    out.unlink(missing_ok=True)
    err = scratch / f"{b.name}.stderr"
    argv = [sys.executable, "-m", f"bench.{b.name}", *args]
    if b.out_section:
        argv += ["--out", str(out)]
    with err.open("wb") as stderr:
        # its own session: on a timeout the whole tree goes (spawned workers included)
        proc = subprocess.Popen(argv, env={**env, RESULTS_ENV: str(out)}, cwd=HERE.parent,
                                stdout=subprocess.PIPE, stderr=stderr,
                                start_new_session=True)  # fmt: skip
        pump = threading.Thread(target=_echo, args=(proc.stdout,), daemon=True)
        pump.start()
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return Outcome("failed", f"timed out after {timeout:.0f} s; stderr:\n{_tail(err)}")
        finally:
            pump.join(5)
    last = _tail(err, 1)
    if code == EX_TEMPFAIL or (code and "ServiceUnavailableError" in last):
        return Outcome("skipped", last or f"exit {code}: a service it needs is unavailable")
    if code:
        return Outcome("failed", f"exit {code}: {last}\nstderr:\n{_tail(err)}")
    data = load_results(out)
    sections = {b.out_section: data} if b.out_section else data
    if not sections:
        return Outcome("failed", "it exited 0 but recorded nothing")
    return Outcome("ok", sections=sections)


def _module(b: Bench, smoke: bool, server: str, rurl: str, scratch: Path) -> Outcome:
    """Warm-up runs (discarded) and measured runs of one module, aggregated per section."""
    if not (HERE / f"{b.name}.py").exists():
        return Outcome("skipped", f"bench/{b.name}.py does not exist (yet)")
    args = list(b.smoke if smoke else b.full)
    runs = 1 if smoke else b.warmup + b.rounds
    timeout = b.timeout[1] if smoke else b.timeout[0]
    kept: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i in range(runs):
        client = redis.Redis.from_url(rurl)
        client.flushdb()
        client.close()
        db = fresh_database(server, f"suite_{b.name}")
        env = {**os.environ, "DATABASE_URL": db, "REDIS_URL": rurl,
               "DUALSYNC_LOG_LEVEL": "WARNING"}  # fmt: skip
        got = _once(b, args, env, scratch, timeout)
        if got.status != "ok":
            got.seconds = time.perf_counter() - t0
            return got
        if smoke or i >= b.warmup:
            kept.append(got.sections)
    names = list(dict.fromkeys(s for k in kept for s in k))
    sections = {s: aggregate([k[s] for k in kept if s in k]) for s in names}
    return Outcome("ok", sections=sections, seconds=time.perf_counter() - t0)


def run_suite(smoke: bool, only: list[str] | None, target: Path) -> tuple[dict[str, Any], bool]:
    """Run the suite, writing `target` after every module (an interrupted run keeps what it
    measured); (results, every module ok or skipped)."""
    chosen = [b for b in BENCHES if not only or b.name in only]
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    data: dict[str, Any] = {"machine": machine(), "parameters": {}}
    run: dict[str, Any] = {"date": started.isoformat(timespec="seconds"),
                           "mode": "smoke" if smoke else "full", "durations_s": {},
                           "skipped": {}, "failed": {}}  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        database_url(Path(tmp)) as server,
        redis_url() as rurl,
    ):
        data["versions"] = versions(server, rurl)
        for b in chosen:
            print(f"== bench.{b.name} {' '.join(b.smoke if smoke else b.full)}", flush=True)
            got = _module(b, smoke, server, rurl, Path(tmp))
            run["durations_s"][b.name] = round(got.seconds, 1)
            data["parameters"][b.name] = {"args": list(b.smoke if smoke else b.full),
                                          "rounds": 1 if smoke else b.rounds,
                                          "warmup_runs": 0 if smoke else b.warmup}  # fmt: skip
            if got.status == "ok":
                data |= got.sections
            else:
                run[got.status][b.name] = got.reason
                print(f"-- bench.{b.name} {got.status}: {got.reason}", flush=True)
            write_results(target, data | {"run": run | {"complete": False}})
    run["seconds"] = round(time.perf_counter() - t0, 1)
    run["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    run["complete"] = True
    data["run"] = run
    return data, not run["failed"]


def _summary(data: dict[str, Any], markdown: bool) -> str:
    m, run = data.get("machine", {}), data.get("run", {})
    head = (f"{run.get('mode', '?')} run of {run.get('date', '?')}, {run.get('seconds', '?')} s "
            f"on {m.get('cpu', '?')} ({m.get('cores', '?')} cores, "
            f"{'/'.join(m.get('flags', [])) or 'no flags listed'}; load average "
            f"{m.get('loadavg_at_start', '?')} at start)")  # fmt: skip
    lines = [head, "", render(table(data), markdown=markdown)]
    for status in ("skipped", "failed"):
        for name, why in run.get(status, {}).items():
            lines.append(f"{status}: bench.{name}: {why.splitlines()[0] if why else ''}")
    return "\n".join(lines)


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run, a temp file")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules")
    ap.add_argument("--results", type=Path, help="results file (default: latest.json)")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--render", type=Path, metavar="PATH", help="print PATH's table, run nothing")
    a = ap.parse_args()
    names = {b.name for b in BENCHES}
    if a.only and (unknown := sorted(set(a.only) - names)):
        ap.error(f"no benchmark named {', '.join(unknown)} (there are: {', '.join(sorted(names))})")
    if a.render:
        if not a.render.exists():
            ap.error(f"{a.render} does not exist")
        print(_summary(orjson.loads(a.render.read_bytes()), a.markdown))
        return
    if a.smoke and a.results and a.results.resolve() == RESULTS.resolve():
        ap.error("a smoke run never writes bench/results/latest.json: pick another --results")
    target = a.results or (
        Path(tempfile.mkdtemp(prefix="bench-smoke-")) / "results.json" if a.smoke else RESULTS
    )
    data, ok = run_suite(a.smoke, a.only, target)
    write_results(target, data)
    print(f"\n{_summary(data, a.markdown)}\n\nresults: {target}")
    if not a.smoke and data["run"]["seconds"] > BUDGET_S:
        print(f"over the {BUDGET_S} s budget: cut the sizes in bench/_suite.py")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
