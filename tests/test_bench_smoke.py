"""Every benchmark runs inside `make test` (tiny sizes), so none can rot; the runner's sums.

`python -m bench --smoke` runs each module of bench/_suite.py once as a child process; a
module that fails makes it exit 1. It must never touch bench/results/latest.json.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench._common import RESULTS, RESULTS_ENV, aggregate, spread_of
from bench._report import render, table
from bench._suite import BENCHES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(280)
def test_every_benchmark_runs_in_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    env = {k: v for k, v in os.environ.items() if k != RESULTS_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=260, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    data = orjson.loads(out.read_bytes())
    run = data["run"]
    assert run["mode"] == "smoke"
    assert run["failed"] == {}
    for b in BENCHES:
        if not (ROOT / "bench" / f"{b.name}.py").exists():
            assert "does not exist" in run["skipped"][b.name]
        elif b.name in run["skipped"]:  # only a service that could not start may skip one
            assert run["skipped"][b.name].strip(), f"bench.{b.name} skipped without a reason"
        else:
            assert (b.out_section or b.name) in data, f"bench.{b.name} recorded nothing"
    assert data["e2e"]["p99_ms_at_300"] > 0
    assert data["e2e"]["xadd_xread_p99_ms_at_300"] > 0
    assert data["e2e"]["unseen_at_300"] == 0
    assert 0 < data["memory"]["peak_rss_mb"] < 2000
    assert len(data["memory"]["samples"]) == 10
    assert data["machine"]["cores"] >= 1
    assert data["versions"]["postgres"]
    assert "e2e.p99_ms_at_300" in done.stdout  # the one table was printed
    assert (RESULTS.read_bytes() if RESULTS.exists() else None) == before


def test_aggregate_takes_medians_and_keeps_the_spread_of_numbers_only() -> None:
    runs = [
        {"eps": 10, "nested": {"ms": 1.5}, "ok": True, "args": [1]},
        {"eps": 30, "nested": {"ms": 0.5}, "ok": False, "args": [2]},
        {"eps": 20, "nested": {"ms": 1.0}, "ok": True, "args": [3]},
    ]
    got = aggregate(runs)
    assert got["eps"] == 20
    assert isinstance(got["eps"], int)
    assert got["nested"]["ms"] == 1.0
    assert got["ok"] is True
    assert got["args"] == [3]  # not a number: the last run's
    assert got["spread"]["eps"] == {"median": 20, "min": 10, "max": 30, "rounds": 3}
    assert got["spread"]["nested.ms"] == {"median": 1.0, "min": 0.5, "max": 1.5, "rounds": 3}
    assert "ok" not in got["spread"]
    single = {"x": 1, "spread": {"x": spread_of([0.5, 1, 2])}}
    assert aggregate([single]) == single  # a module's own rounds pass through


def test_table_expands_stars_and_shows_baseline_ratio_and_spread() -> None:
    data = {
        "apply": {
            "batch_500": {"events_per_s": 900, "ceiling_events_per_s": 3000,
                          "ratio_to_ceiling": 0.3},
            "batch_5000": {"events_per_s": 1200, "ceiling_events_per_s": 4000,
                           "ratio_to_ceiling": 0.3},
            "spread": {"batch_500.events_per_s": {"min": 800, "max": 950, "rounds": 2}},
        },
        "e2e": {"p99_ms_at_5k": 40.0, "xadd_xread_p99_ms_at_5k": 4.0},
    }  # fmt: skip
    found = table(data)
    rows = {r[0]: r for r in found}
    assert rows["apply.batch_500.events_per_s"][1:] == ("900", "3,000", "0.3 of the COPY ceiling",
                                                        "800-950 (2)")  # fmt: skip
    assert rows["apply.batch_5000.events_per_s"][4] == "1 run"
    e2e = [r[2:4] for r in found if r[0] == "e2e.p99_ms_at_5k"]
    assert e2e == [("4", "10 x XADD->XREADGROUP"), ("50", "0.8 of the 50 ms target")]
    md = render(table(data), markdown=True)
    assert md.splitlines()[0].startswith("| metric | value | baseline | ratio |")
    assert "| `apply.batch_500.events_per_s` | 900 |" in md


def test_apply_cluster_mode_hands_over_to_the_cluster_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.apply", "--cluster", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "bench.apply_cluster" in done.stdout
    assert "--processes" in done.stdout
