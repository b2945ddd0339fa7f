"""Load a mapping file: YAML with line numbers kept, so every error points at its line."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from dualsync.schema.mapping.build import compile_mapping
from dualsync.schema.mapping.compiled import MappingSet
from dualsync.schema.mapping.errors import MappingFileError
from dualsync.schema.mapping.lines import line_of, record_lines
from dualsync.schema.mapping.model import MappingFileModel

__all__ = ["load_mapping"]


def load_mapping(path: Path) -> MappingSet:
    """Parse, validate and compile a mapping file; `MappingFileError` says file:line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingFileError(
            f"cannot read mapping: {exc.strerror}", path=str(path), line=0
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MappingFileError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            path=str(path),
            line=(mark.line + 1) if mark else 1,
        ) from None
    if node is None:
        raise MappingFileError("the file is empty", path=str(path), line=1)
    lines = record_lines(node)
    data = yaml.safe_load(text)
    try:
        model = MappingFileModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = tuple(err["loc"])  # by alias already: `from`, `schema`, as the file spells them
        where = ".".join(str(p) for p in loc) or "mapping"
        raise MappingFileError(
            f"{where}: {err['msg']}", path=str(path), line=line_of(lines, loc)
        ) from None
    ms = compile_mapping(model, path, lines)
    ms.lines, ms.model = lines, model
    return ms
