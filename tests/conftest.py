"""Test configuration: real PostgreSQL and real Redis for the whole session (see fix_*.py)."""

from __future__ import annotations

pytest_plugins = ["tests.fix_pg", "tests.fix_redis", "tests.fix_logging", "tests.fix_shop"]
