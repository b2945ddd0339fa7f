"""The modules of `dualsync.schema.mapping` import each other without a circle.

Function-level imports count too: a lazy import that "avoids an import cycle" is still
one (build.py once imported `line_of` from loader.py, which imports build.py).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import dualsync.schema.mapping as package
from dualsync.schema.mapping import MappingFileError, load_mapping

PACKAGE = "dualsync.schema.mapping"
ROOT = Path(package.__file__).parent


def _imports(path: Path) -> set[str]:
    """The sibling modules a module imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n.removeprefix(PACKAGE + ".") for n in names if n.startswith(PACKAGE + ".")}
    return {n for n in out if (ROOT / f"{n}.py").exists()}


def test_no_import_circle() -> None:
    graph = {p.stem: _imports(p) for p in ROOT.glob("*.py") if p.stem != "__init__"}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None
    assert "build" in order
    assert order.index("build") < order.index("loader")  # the loader compiles; not the reverse


def test_public_api() -> None:
    assert set(package.__all__) >= {
        "ChildMapping", "ColumnSpec", "EntityMapping", "MappingError", "MappingFileError",
        "MappingSet", "RowSet", "UnknownEntity", "UnknownEntityError", "load_enum_labels",
        "load_mapping",
    }  # fmt: skip


def test_an_entity_source_error_points_at_its_line(tmp_path: Path) -> None:
    """Error locations are already by alias: `source:` of an entity is not a column's `from:`."""
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\napp: a\nentities:\n  e:\n    table: t\n    key: {column: id}\n"
        "    source:\n      json_dir:\n        bogus: 1\n"
    )
    with pytest.raises(MappingFileError) as err:
        load_mapping(path)
    assert str(err.value).startswith(f"{path}:8: entities.e.source.json_dir.dir: ")
