"""Load a mapping file: YAML with line numbers kept, so every error points at its line."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from dualsync.schema.mapping.build import compile_mapping
from dualsync.schema.mapping.compiled import MappingSet
from dualsync.schema.mapping.errors import MappingFileError
from dualsync.schema.mapping.model import MappingFileModel

__all__ = ["load_mapping"]

Lines = dict[tuple[str | int, ...], int]


def _lines(node: yaml.Node, path: tuple[str | int, ...], lines: Lines) -> None:
    """Record the line of every mapping key and sequence item, by path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            sub = (*path, str(k.value))
            lines[sub] = k.start_mark.line + 1
            _lines(v, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, (*path, i), lines)


def line_of(lines: Lines, loc: tuple[str | int, ...]) -> int:
    """The YAML line of the deepest known prefix of `loc`."""
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return 1


_ALIASES = {"db_schema": "schema", "source": "from"}


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
    lines: Lines = {}
    _lines(node, (), lines)
    data = yaml.safe_load(text)
    try:
        model = MappingFileModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = tuple(_ALIASES.get(str(p), p) for p in err["loc"])
        where = ".".join(str(p) for p in loc) or "mapping"
        raise MappingFileError(
            f"{where}: {err['msg']}", path=str(path), line=line_of(lines, loc)
        ) from None
    ms = compile_mapping(model, path, lines)
    ms.lines, ms.model = lines, model
    return ms
