"""docs/runbook.md stays true: every command in it exists with every option it uses, and every
alert in ops/alerts.yml is explained there (and only those)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

# typer >= 0.20 vendors click (as dualsync.ops.cli notes); its Command type lives here
from typer._click.core import Command

from dualsync.ops.cli import app, main
from dualsync.worker.metrics.registry import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "docs" / "runbook.md"
ALERTS = ROOT / "ops" / "alerts.yml"


def _command_lines() -> list[str]:
    """Every `dualsync ...` command: lines of fenced blocks, and inline code spans."""
    text = RUNBOOK.read_text()
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for raw in block.splitlines():
            line = raw.split("  #", 1)[0].strip()
            if line.startswith("dualsync "):
                found.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    found += re.findall(r"`(dualsync [^`]+)`", prose)
    return found


def _resolve(tokens: list[str]) -> tuple[list[str], Command]:
    """The sub-command path a command line names, and its click command."""
    cmd: Command = typer.main.get_command(app)
    path: list[str] = []
    for tok in tokens:
        subs = getattr(cmd, "commands", None)  # a group's sub-commands
        if not isinstance(subs, dict) or tok.startswith("-"):
            break
        sub = subs.get(tok)
        if sub is None:
            break
        cmd, path = sub, [*path, tok]
    return path, cmd


LINES = _command_lines()


def test_the_runbook_has_commands_for_every_step() -> None:
    names = {" ".join(_resolve(shlex.split(line)[1:])[0]) for line in LINES}
    steps = ("doctor", "worker", "backfill", "status", "verify", "drift", "repair", "dlq list",
             "dlq replay", "readiness", "flip", "rollback", "cutover log")  # fmt: skip
    for step in steps:
        assert step in names, f"the runbook has no `dualsync {step}`"


@pytest.mark.parametrize("line", LINES)
def test_every_runbook_command_exists_with_its_options(
    line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = shlex.split(line)[1:]
    path, cmd = _resolve(tokens)
    assert path, f"{line!r}: no such dualsync command"
    assert main([*path, "--help"]) == 0
    assert "Usage: dualsync " + " ".join(path) in capsys.readouterr().out
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    for tok in tokens[len(path) :]:
        if tok.startswith("--"):
            assert tok.split("=", 1)[0] in known, f"{line!r}: `{tok}` is not an option"


def test_every_alert_is_explained_and_every_explained_alert_exists() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    alerts = {r["alert"] for r in rules}
    text = RUNBOOK.read_text()
    section = text.split("## 7. What every alert means", 1)[1]
    explained = set(re.findall(r"^\| `(Dualsync\w+)` \|", section, flags=re.MULTILINE))
    assert alerts == explained
    for r in rules:
        assert "docs/runbook.md" in r["annotations"]["runbook"]


def test_every_alert_reads_metrics_the_worker_serves() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    served = set(METRIC_NAMES)
    for r in rules:
        for name in re.findall(r"\b(dualsync_\w+)", r["expr"]):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in served, f"{r['alert']} reads {name}, which no worker serves"
