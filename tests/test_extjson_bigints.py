"""Integers beyond 64 bits stay exact, however the payload around them looks.

`loads_payload` parses with msgspec (`jsonexact`), which keeps them; until 2026-12 it
parsed with orjson (which turns them into floats) unless a scan of the text found a run of
digits that could be one, and these cases (next to floats whose digits form long runs too,
as embeddings do, and strings of digits) are the ones that scan had to get right. The
stdlib parser, exact for integers, is the reference.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dualsync.schema.extjson import loads_payload

_ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=-(2**63) - 2, max_value=-(2**63) + 2),
    st.integers(min_value=10**18, max_value=10**30).map(lambda n: n * (-1) ** (n % 2)),
)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-0.01, max_value=0.01),  # long fraction runs: 0.0012345678901234567
)
_scalars = st.one_of(_ints, _floats, st.text("0123456789.-e", max_size=30), st.booleans())
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text("ab", max_size=3), inner, max_size=5)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text("xyz", min_size=1, max_size=3), _docs, max_size=6), st.booleans())
def test_every_integer_stays_exact(doc: dict[str, Any], spaced: bool) -> None:
    text = json.dumps(doc, separators=(", ", ": ") if spaced else (",", ":"))
    assert _same(loads_payload(text.encode()), json.loads(text))
