"""Child processes of a run, read from Linux's /proc (none elsewhere): for the benchmarks and
tests that kill a multi-process backfill and check that nothing of it is left running."""

from __future__ import annotations

from pathlib import Path

__all__ = ["alive", "children"]


def children(pid: int) -> list[int]:
    """The child processes of `pid`."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
