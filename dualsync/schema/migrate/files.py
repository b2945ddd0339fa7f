"""Migration files: `YYYYMMDDHHMMSS_snake_name.sql` with a header and a `-- down` section.

-- Purpose: what it does
-- Ticket: ABC-123 (or n/a)
-- Reversible: yes|no
-- Rollback: how to undo it (or why it cannot be)
-- Phase: post-load            (optional: run only after bulk load, e.g. HNSW indexes)
<up SQL>
-- down
<down SQL>
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dualsync.errors import PermanentError

__all__ = [
    "Migration",
    "MigrationError",
    "MigrationSet",
    "core_set",
    "parse_file",
    "split_statements",
]

_NAME: Final = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z][a-z0-9_]*)\.sql$")
_HEADER: Final = re.compile(r"^--\s*(?P<key>[A-Za-z-]+):\s*(?P<value>.*?)\s*$")
_DOWN: Final = re.compile(r"^--\s*down\s*$", re.IGNORECASE)
REQUIRED: Final = ("purpose", "ticket", "reversible", "rollback")
KNOWN: Final = frozenset((*REQUIRED, "phase"))
_NO_TX: Final = re.compile(r"\bconcurrently\b", re.IGNORECASE)
_LINE_COMMENT: Final = re.compile(r"--[^\n]*")


class MigrationError(PermanentError):
    """A migration file or the migration history is not usable; the message says where."""

    reason = "migration"


@dataclass(frozen=True, slots=True)
class Migration:
    """One parsed migration file."""

    set_name: str
    version: str
    name: str
    path: Path
    checksum: str
    purpose: str
    ticket: str
    reversible: bool
    rollback: str
    post_load: bool
    up_sql: str
    down_sql: str

    @property
    def label(self) -> str:
        """`set/version_name` for messages."""
        return f"{self.set_name}/{self.version}_{self.name}"

    @property
    def transactional(self) -> bool:
        """False for SQL that cannot run inside a transaction (CREATE INDEX CONCURRENTLY)."""
        return not _NO_TX.search(_LINE_COMMENT.sub("", self.up_sql))


@dataclass(frozen=True, slots=True)
class MigrationSet:
    """A named directory of migration files."""

    name: str
    path: Path

    @classmethod
    def from_dir(cls, path: Path) -> MigrationSet:
        """Named after the parent of a `migrations` folder, else after the folder."""
        path = Path(path)
        return cls(path.parent.name if path.name == "migrations" else path.name, path)

    def load(self) -> list[Migration]:
        """Every migration file of the set, in version order."""
        if not self.path.is_dir():
            raise MigrationError(f"migration directory {self.path} does not exist")
        files = sorted(p for p in self.path.iterdir() if p.suffix == ".sql")
        migrations = [parse_file(self.name, p) for p in files]
        seen: dict[str, Path] = {}
        for m in migrations:
            if m.version in seen:
                raise MigrationError(
                    f"{m.path}: version {m.version} is also used by {seen[m.version]}"
                )
            seen[m.version] = m.path
        return migrations


def core_set() -> MigrationSet:
    """dualsync's own tables (row_state, verify runs and findings, cutover log)."""
    return MigrationSet("dualsync", Path(__file__).resolve().parent.parent / "migrations")


def parse_file(set_name: str, path: Path) -> Migration:  # noqa: C901 - one check per rule
    """Parse and validate one file; `MigrationError` names the file and line."""
    m = _NAME.match(path.name)
    if not m:
        raise MigrationError(
            f"{path}: file name must be YYYYMMDDHHMMSS_snake_name.sql (see `dualsync migrate new`)"
        )
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    lines = text.splitlines()
    header: dict[str, str] = {}
    body_start = 0
    for i, line in enumerate(lines):
        hm = _HEADER.match(line)
        if not hm or _DOWN.match(line):
            body_start = i
            break
        key = hm.group("key").lower()
        if key not in KNOWN:
            raise MigrationError(f"{path}:{i + 1}: unknown header {hm.group('key')!r}")
        header[key] = hm.group("value")
    else:
        body_start = len(lines)
    for key in REQUIRED:
        if not header.get(key):
            raise MigrationError(f"{path}:1: missing header line '-- {key.capitalize()}: ...'")
    reversible = header["reversible"].lower()
    if reversible not in ("yes", "no"):
        raise MigrationError(f"{path}: '-- Reversible:' must be yes or no")
    phase = header.get("phase", "").lower()
    if phase not in ("", "post-load"):
        raise MigrationError(f"{path}: '-- Phase:' must be post-load when present")
    down_at = next((i for i in range(body_start, len(lines)) if _DOWN.match(lines[i])), None)
    up = "\n".join(lines[body_start : down_at if down_at is not None else len(lines)]).strip()
    down = "\n".join(lines[down_at + 1 :]).strip() if down_at is not None else ""
    if not up:
        raise MigrationError(f"{path}:{body_start + 1}: no SQL before '-- down'")
    if reversible == "yes" and not down:
        raise MigrationError(f"{path}: Reversible: yes but no SQL after a '-- down' line")
    return Migration(
        set_name=set_name,
        version=m.group("version"),
        name=m.group("name"),
        path=path,
        checksum=hashlib.sha256(raw).hexdigest(),
        purpose=header["purpose"],
        ticket=header["ticket"],
        reversible=reversible == "yes",
        rollback=header["rollback"],
        post_load=phase == "post-load",
        up_sql=up,
        down_sql=down,
    )


def split_statements(sql_text: str) -> list[str]:
    """Statements of a non-transactional file: split where a line ends with `;`.

    Deliberately simple (no dollar-quote parsing): such files hold statements like
    `CREATE INDEX CONCURRENTLY`, one per line or spanning lines that end in `;`.
    """
    out: list[str] = []
    current: list[str] = []
    for line in sql_text.splitlines():
        current.append(line)
        if _LINE_COMMENT.sub("", line).rstrip().endswith(";"):
            out.append("\n".join(current).strip())
            current = []
    rest = "\n".join(current).strip()
    if _LINE_COMMENT.sub("", rest).strip():
        out.append(rest)
    return [s for s in out if _LINE_COMMENT.sub("", s).strip()]
