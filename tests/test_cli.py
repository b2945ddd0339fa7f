"""CLI basics: help, one-line errors for bad arguments, doctor on the real services."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from dualsync.ops.cli import main
from dualsync.settings import get_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, pg_url: str, redis_url: str) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_bad_argument_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dualsync.ops.cli", "migrate", "--bogus"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["dualsync: error: No such option: --bogus (see 'dualsync migrate --help')"]


def test_unknown_command_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "doctor" in capsys.readouterr().out


def test_doctor_reports_services(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "PostgreSQL" in out
    assert "Redis" in out
    assert "dualsync can run here" in out


def test_doctor_fails_loudly_on_unusable_postgres(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:1/nope")
    get_settings.cache_clear()
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "cannot connect" in out
    assert "pw@" not in out  # the password is never printed


def test_a_configured_redis_that_does_not_answer_is_an_error_not_an_embedded_one(
    pg_url: str,
) -> None:
    """An on-call flipping an empty embedded Redis would see success and change nothing."""
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": pg_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = subprocess.run(
        [sys.executable, "-m", "dualsync.ops.cli", "status"],
        capture_output=True, text=True, check=False, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("dualsync: error: Redis at redis://127.0.0.1:1/0 does not answer")
    assert "embedded" not in proc.stdout
