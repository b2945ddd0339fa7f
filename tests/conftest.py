"""Test configuration: real PostgreSQL and real Redis for the whole session (see fix_*.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fix_pg",
    "tests.fix_redis",
    "tests.fix_cluster",
    "tests.fix_logging",
    "tests.fix_shop",
    "tests.fix_mongo",
]

_OWN_BASETEMP = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Give every run its own basetemp unless `--basetemp` was passed.

    pytest's default `/tmp/pytest-of-<user>/pytest-N` keeps only the newest three runs and
    deletes older ones at start, so a second suite started on the same machine could delete
    the directory under a running suite's embedded PostgreSQL (initdb fails, or the server
    vanishes mid-run). A fresh `mkdtemp` per run cannot collide with anyone's.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        base = Path(tempfile.mkdtemp(prefix="dualsync-pytest-"))
        config.option.basetemp = str(base)
        config.stash[_OWN_BASETEMP] = base


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the run's own basetemp (the embedded server has stopped by now)."""
    base = config.stash.get(_OWN_BASETEMP, None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
