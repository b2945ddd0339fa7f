"""How many processes a `--direct` backfill runs with (`--processes`, `auto`, `--resume`)."""

from __future__ import annotations

import os

from dualsync.errors import ConfigError
from dualsync.producers.backfill.checkpoint import Checkpoint
from dualsync.producers.backfill.run import BackfillOptions

__all__ = ["MAX_AUTO_PROCESSES", "auto_processes", "planned_processes"]

#: `auto` uses one process per CPU core available to this process, up to this many
MAX_AUTO_PROCESSES = 4


def auto_processes() -> int:
    """`--processes auto`: the CPU cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity call
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_PROCESSES))


def planned_processes(options: BackfillOptions) -> int:
    """How many processes a run uses: 1 through the stream; on `--resume` the count the
    checkpoint was started with (a different explicit count is refused); else the option,
    `auto` (None) meaning `auto_processes()`."""
    wanted = options.processes
    if wanted is not None and wanted < 1:
        raise ConfigError(f"--processes must be at least 1, not {wanted}")
    if options.mode != "direct":
        if wanted not in (None, 1):
            raise ConfigError("--processes needs --direct: the stream backfill runs in one process")
        return 1
    if options.resume:
        cp = Checkpoint.load_run(options.checkpoint)
        if cp is not None:
            if wanted is not None and wanted != cp.processes:
                raise ConfigError(
                    f"the backfill at {options.checkpoint} was started with {cp.processes} "
                    f"process(es) and resumes with as many: pass --processes {cp.processes} "
                    "(or auto), or start over with --restart"
                )
            return cp.processes
    return wanted if wanted is not None else auto_processes()
