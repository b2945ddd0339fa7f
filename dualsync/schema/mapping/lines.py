"""Where each entry of a mapping file sits: YAML line numbers by path, for file:line errors.

Shared by the loader (which records them), the compiler and `mappings check` (which
point at them); kept apart so none of those imports another to find a line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dualsync.schema.mapping.errors import MappingFileError

__all__ = ["Lines", "Loc", "file_error", "line_of", "record_lines"]

#: a path into the file: `("entities", "users", "columns", "email")`, `(..., "children", 0)`
Loc = tuple[str | int, ...]
#: YAML line of every mapping key and sequence item of a mapping file, by path
Lines = dict[Loc, int]


def record_lines(node: yaml.Node, path: Loc = (), lines: Lines | None = None) -> Lines:
    """The line of every mapping key and sequence item under `node`, by path."""
    out: Lines = {} if lines is None else lines
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            sub = (*path, str(k.value))
            out[sub] = k.start_mark.line + 1
            record_lines(v, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            record_lines(v, (*path, i), out)
    return out


def line_of(lines: Lines, loc: Loc) -> int:
    """The YAML line of the deepest known prefix of `loc`."""
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return 1


def file_error(message: str, path: Path | str, lines: Lines, loc: Loc) -> MappingFileError:
    """A `MappingFileError` pointing at the line of `loc`."""
    return MappingFileError(message, path=str(path), line=line_of(lines, loc))
