"""The repository stands alone: a user who clones it has nothing beside it to follow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_nothing_points_outside_the_repo() -> None:
    proc = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", r"\.\./shared|shared/seeds|DESIGN\.md|STYLE\.md", "--",
         ":!tests/test_standalone.py"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode == 128:
        pytest.skip(f"not a git checkout, cannot list tracked files: {proc.stderr.strip()}")
    assert proc.stdout == "", f"files point at material outside the repo:\n{proc.stdout}"


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh", 1)[1].split("```", 1)[0]
    commands = [ln.split("#", 1)[0].strip() for ln in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
