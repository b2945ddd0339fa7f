"""What `python -m bench` runs: every benchmark module, its sizes, and the table's rows.

Each module runs as `python -m bench.<name> ARGS` in a child process (its CLI is its
interface), against the runner's servers (DATABASE_URL: a fresh database per module on one
PostgreSQL; REDIS_URL: one Redis), writing through `record` into a scratch file the runner
merges. Sizes are chosen so the full suite fits in 10 minutes on a 2-core machine; the
module defaults (`python -m bench.<name>`) stay the issue's full sizes.

`rounds`: runs of the module in the full suite (figures are medians over them, min/max under
`spread`); `warmup`: runs before those, discarded. A module that measures rounds itself
(e2e: windows) runs once and brings its own `spread`. A module may exit with EX_TEMPFAIL
(75) when a service it needs cannot start: it is skipped, with its last line as the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BENCHES", "EX_TEMPFAIL", "ROWS", "Bench", "Row"]

EX_TEMPFAIL: Final = 75


@dataclass(frozen=True, slots=True)
class Bench:
    """One benchmark module and how the suite runs it."""

    name: str
    full: tuple[str, ...]
    smoke: tuple[str, ...]
    rounds: int = 1
    warmup: int = 0
    #: the module prints its results as JSON to `--out FILE` instead of `record`ing them
    out_section: str | None = None
    #: seconds before the run is stopped (full, smoke)
    timeout: tuple[float, float] = (300.0, 60.0)


BENCHES: Final = (
    Bench("publish", ("--events", "50000", "--rounds", "1"),
          ("--events", "2000", "--rounds", "1"), rounds=3, warmup=1),
    Bench("apply", ("--events", "30000", "--batch-size", "500", "5000", "--rounds", "1"),
          ("--events", "1000", "--batch-size", "500", "--rounds", "1"), rounds=2),
    Bench("backfill", ("--docs", "8000", "--rounds", "1"),
          ("--docs", "200", "--rounds", "1"), rounds=2),
    Bench("backfill_scale", ("--docs", "30000"), ("--docs", "300")),
    Bench("verify", ("--rows", "10000", "--rounds", "1"),
          ("--rows", "200", "--rounds", "1"), rounds=2, warmup=1),
    Bench("verify_sweep_rss", ("--rows", "100000"),
          ("--rows", "20000", "--store", "synthetic", "--no-kill"), out_section="verify_sweep"),
    Bench("e2e", (), ("--rates", "300", "--warmup", "0.3", "--window", "0.5", "--windows", "2")),
    Bench("memory", ("--events", "1000000", "--keys", "30000", "--backlog", "30000"),
          ("--events", "3000", "--keys", "300", "--backlog", "1000")),
    Bench("vectors", ("--events", "5000", "--rounds", "1"), ("--events", "200", "--rounds", "1"),
          rounds=2, warmup=1),
    Bench("apply_cluster", ("--events", "20000", "--processes", "1,2", "--rounds", "1"),
          ("--events", "500", "--processes", "1", "--rounds", "1")),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    """A row of the table: a figure (a dotted path, `*` matching any key), the baseline it
    is compared with (a path, or a fixed target), and the ratio (a path, or computed)."""

    metric: str
    baseline: str | float | None = None
    ratio: str | None = None
    #: what the ratio means, shown beside it
    note: str = ""


ROWS: Final = (
    Row("publish.events_per_s", "publish.raw_events_per_s", "publish.ratio_to_raw",
        "of raw XADD"),
    Row("apply.*.events_per_s", "apply.*.ceiling_events_per_s", "apply.*.ratio_to_ceiling",
        "of the COPY ceiling"),
    Row("apply.*.processes_events_per_s", "apply.*.ceiling_events_per_s",
        "apply.*.processes_ratio_to_ceiling", "of the COPY ceiling"),
    Row("backfill.*.stream_docs_per_s", "backfill.*.read_docs_per_s",
        "backfill.*.stream_ratio_to_read", "of reading alone"),
    Row("backfill.*.direct_docs_per_s", "backfill.*.read_docs_per_s",
        "backfill.*.direct_ratio_to_read", "of reading alone"),
    Row("backfill.json_dir.map_docs_per_s", "backfill.json_dir.read_docs_per_s",
        "backfill.json_dir.map_ratio_to_read", "of reading alone (mapping alone)"),
    Row("backfill.json_dir.apply_docs_per_s", "backfill.json_dir.read_docs_per_s",
        "backfill.json_dir.apply_ratio_to_read", "of reading alone (apply_batch alone)"),
    Row("backfill.json_dir.direct_docs_per_s_1proc", "backfill.json_dir.read_docs_per_s",
        "backfill.json_dir.direct_ratio_to_read_1proc", "of reading alone (1 process)"),
    Row("backfill_scale.*.docs_per_s"),
    Row("verify.sample_10k_s", "verify.read_10k_s", "verify.ratio_to_read", "of reading alone"),
    Row("verify_sweep.*.sweep.rows_per_s", "verify_sweep.*.baseline.both_rows_per_s",
        None, "of reading both sides"),
    Row("verify_sweep.*.sweep.peak_rss_mb"),
    Row("e2e.p50_ms_at_*", "e2e.xadd_xread_p50_ms_at_*", None, "x XADD->XREADGROUP"),
    Row("e2e.p99_ms_at_*", "e2e.xadd_xread_p99_ms_at_*", None, "x XADD->XREADGROUP"),
    Row("e2e.applied_per_s_at_*", "e2e.published_per_s_at_*", None, "of the published rate"),
    Row("e2e.p99_ms_at_5k", 50.0, None, "of the 50 ms target"),
    Row("memory.peak_rss_mb", 200.0, None, "of the 200 MB target"),
    Row("memory.growth_mb_2nd_to_10th"),
    Row("memory.events_per_s"),
    Row("vectors.events_per_s", "vectors.copy_per_s", "vectors.ratio_to_copy", "of binary COPY"),
    Row("vectors.gated_per_s", "vectors.copy_per_s", "vectors.gated_ratio_to_copy",
        "of binary COPY (no worker: staged, gated upsert of mapped rows)"),
    Row("vectors.apply_alone_per_s", "vectors.copy_per_s", "vectors.apply_alone_ratio_to_copy",
        "of binary COPY (no worker: apply_batch of mapped rows, new keys COPYed)"),
    Row("vectors.events_per_s", "vectors.gated_per_s", "vectors.ratio_to_gated",
        "of the staged, gated upsert"),
    Row("vectors.binary_events_per_s", "vectors.gated_per_s", "vectors.binary_ratio_to_gated",
        "of the staged, gated upsert (binary)"),
    Row("vectors.binary_events_per_s", "vectors.copy_per_s", "vectors.binary_ratio_to_copy",
        "of binary COPY (BSON binary vectors)"),
    Row("vectors.processes_events_per_s", "vectors.copy_per_s", "vectors.processes_ratio_to_copy",
        "of binary COPY (2 worker processes)"),
    Row("vectors.binary_processes_events_per_s", "vectors.copy_per_s",
        "vectors.binary_processes_ratio_to_copy", "of binary COPY (binary, 2 processes)"),
    Row("apply_cluster.events_per_s.cluster.*", "apply_cluster.events_per_s.single.*",
        "apply_cluster.cluster_ratio_to_single.*", "of a single Redis"),
)  # fmt: skip
