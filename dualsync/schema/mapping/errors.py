"""Mapping errors: each says which entity, key and field, and the value unless it is secret."""

from __future__ import annotations

from dualsync.errors import PermanentError

__all__ = ["MappingError", "MappingFileError", "UnknownEntityError"]


class MappingError(PermanentError):
    """A document does not fit its mapping (or a mapping is invalid): fix one, then replay."""

    reason = "mapping"

    def __init__(self, message: str, *, entity: str = "", key: str = "", field: str = "") -> None:
        super().__init__(message)
        self.entity = entity
        self.key = key
        self.field = field


class MappingFileError(MappingError):
    """A mapping file is invalid; the message starts with `path:line:`."""

    def __init__(self, message: str, *, path: str = "", line: int = 0) -> None:
        super().__init__(f"{path}:{line}: {message}" if path else message)
        self.path = path
        self.line = line


class UnknownEntityError(MappingError):
    """An event names an entity the worker's mapping does not have."""

    reason = "unknown_entity"
