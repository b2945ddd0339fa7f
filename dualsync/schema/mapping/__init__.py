"""Entity mappings: how a legacy document becomes rows (YAML files validated by pydantic)."""

from dualsync.schema.mapping.catalog import load_enum_labels
from dualsync.schema.mapping.compiled import EntityMapping, MappingSet
from dualsync.schema.mapping.errors import MappingError, MappingFileError, UnknownEntityError
from dualsync.schema.mapping.loader import load_mapping
from dualsync.schema.mapping.rows import ChildMapping, ColumnSpec, RowSet

UnknownEntity = UnknownEntityError

__all__ = [
    "ChildMapping",
    "ColumnSpec",
    "EntityMapping",
    "MappingError",
    "MappingFileError",
    "MappingSet",
    "RowSet",
    "UnknownEntity",
    "UnknownEntityError",
    "load_enum_labels",
    "load_mapping",
]
