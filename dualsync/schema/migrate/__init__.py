"""SQL migrations: files with headers and a down section, applied with a checksummed history."""

from dualsync.schema.migrate.files import (
    Migration,
    MigrationError,
    MigrationSet,
    core_set,
    parse_file,
)
from dualsync.schema.migrate.runner import Applied, ChecksumMismatchError, MigrationStatus, Migrator

ChecksumMismatch = ChecksumMismatchError

__all__ = [
    "Applied",
    "ChecksumMismatch",
    "ChecksumMismatchError",
    "Migration",
    "MigrationError",
    "MigrationSet",
    "MigrationStatus",
    "Migrator",
    "core_set",
    "parse_file",
]
