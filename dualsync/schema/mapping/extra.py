"""What an entity's `extra` jsonb column receives: the parts of a document nothing reads.

Every column's `from:` and every child table's `from:` reads a path of the document. A
one-segment path reads a top-level field whole; a child table reads its array whole (its
rows hold every element), so neither is copied into `extra`. A dotted path
(`meta.author.name`) reads only part of its top-level field, so `extra` keeps the rest
of that field, pruned: `{"meta": {"author": {"id": 7}, "lang": "pt"}}`. A field is
dropped once nothing is left of it (every part of it is read, or it is an empty
object); where a mapped path finds no object to descend into (`meta` is a string), the
value there is read by nothing and is kept whole. So nothing is lost and nothing is
stored twice, and a secret nested field mapped to a secret column is not copied into
plain jsonb beside it.

The pruning is decided once (`Unmapped(sources)`); per document it costs a dict
comprehension, plus a walk of only the fields a dotted path reaches into.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = ["Unmapped"]

#: field name -> None (read whole) or the tree of its sub-fields that are read
Tree = dict[str, "Tree | None"]
_GONE: Final = object()


def _tree(sources: Iterable[str]) -> Tree:
    root: Tree = {}
    for given in sources:
        # `$value`: a scalar record, carried as {"value": ...}; $key, $index: not fields
        source = "value" if given == "$value" else given
        if source.startswith("$"):
            continue
        *parents, last = source.split(".")
        node = root
        for p in parents:
            sub = node.setdefault(p, {})
            if sub is None:  # a shorter path already reads all of it
                break
            node = sub
        else:
            node[last] = None  # read whole, even where a longer path asked for a part
    return root


def _rest(value: Any, tree: Tree) -> Any:
    """`value` without the parts `tree` reads, or `_GONE` when nothing is left."""
    if not isinstance(value, dict):
        return value  # the mapped paths end here without finding their field: unread
    out = {}
    for k, v in value.items():
        if k not in tree:
            out[k] = v
            continue
        sub = tree[k]
        if sub is not None:
            left = _rest(v, sub)
            if left is not _GONE:
                out[k] = left
    return out or _GONE


class Unmapped:
    """`unmapped(document)`: the top-level fields (pruned) that no source reads."""

    __slots__ = ("_nested", "_whole")

    def __init__(self, sources: Iterable[str]) -> None:
        tree = _tree(sources)
        self._whole = frozenset(k for k, v in tree.items() if v is None)
        self._nested = {k: v for k, v in tree.items() if v is not None}

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        if not self._nested:
            return {k: v for k, v in doc.items() if k not in self._whole}
        out = {}
        for k, v in doc.items():
            if k in self._whole:
                continue
            sub = self._nested.get(k)
            left = v if sub is None else _rest(v, sub)
            if left is not _GONE:
                out[k] = left
        return out
