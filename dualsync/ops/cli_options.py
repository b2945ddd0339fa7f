"""Options several commands share, declared once: the mapping, entities, the legacy root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dualsync.errors import ConfigError
from dualsync.settings import Settings

__all__ = ["EntityOption", "LegacyRootOption", "MappingOption", "MongoOption", "mapping_path"]

MappingOption = Annotated[
    Path | None,
    typer.Option(help="Entity mapping YAML (default: DUALSYNC_MAPPING).", dir_okay=False),
]
EntityOption = Annotated[
    list[str] | None, typer.Option(help="Only this entity (repeatable; default: all).")
]
LegacyRootOption = Annotated[
    Path | None,
    typer.Option(help="Folder relative source paths start from (default: the mapping's)."),
]
MongoOption = Annotated[
    str | None, typer.Option(help="MongoDB URL for Mongo sources (default: MONGO_URL).")
]


def mapping_path(given: Path | None, settings: Settings) -> Path:
    """The mapping a command uses, or a `ConfigError` that says how to give one."""
    path = given or settings.mapping
    if path is None:
        raise ConfigError("no mapping: pass --mapping PATH or set DUALSYNC_MAPPING")
    if not path.is_file():
        raise ConfigError(f"mapping {path} does not exist")
    return path
