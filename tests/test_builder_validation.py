"""The Python builder refuses, up front, everything the worker would dead-letter.

Found by the Node/PHP contract work: the other publishers refused these and Python did not.
"""

from __future__ import annotations

from typing import Any

import pytest

from dualsync.producers import EventBuilder, EventSpec
from dualsync.schema.errors import EnvelopeError


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (EventSpec("users\n", "k", payload={}), "entity"),  # `$` alone let a newline through
        (EventSpec("users", "k", "merge", {}), "op"),
        (EventSpec("users", "k", payload={}, trace_id="t" * 129), "trace_id"),
        (EventSpec("users", "k", payload={}, trace_id="a\x00b"), "trace_id"),
        (EventSpec("users", "k", payload={}, version=-1), "version"),
        (EventSpec("users", "k", payload={}, version=2**63), "version"),
        (EventSpec("users", "k", payload=[1, 2]), "payload"),  # type: ignore[arg-type]  # the point
    ],
)
def test_refused_before_anything_is_sent(spec: EventSpec, field: str) -> None:
    with pytest.raises(EnvelopeError) as err:
        EventBuilder("app").build(spec)
    assert err.value.field == field


@pytest.mark.parametrize("source", ["", "has space", "x" * 129, "ünïcode"])
def test_a_source_no_worker_accepts_is_refused_when_the_builder_is_made(source: str) -> None:
    with pytest.raises(EnvelopeError) as err:
        EventBuilder(source)
    assert err.value.field == "source"


def test_valid_edges_still_build() -> None:
    b = EventBuilder("donna-php.v2:eu")
    spec: Any = EventSpec("users", "k", payload={}, version=2**63 - 1, trace_id="t" * 128)
    assert b.build(spec).version == 2**63 - 1
