"""decode_batch maps only the event of each key that can win its batch.

The events below the highest version of a key in one batch can never apply, so they are
acked with the winner unmapped (and a reference event among them reads no legacy
document). A winner that fails to map is dead-lettered and the next one down applies, as
a decoder that mapped everything would have chosen.
"""

from __future__ import annotations

from typing import Any

import orjson

from dualsync.consumers.change import collapse
from dualsync.schema.codec import build_fields
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.worker.decode import Decoded, decode_batch
from dualsync.worker.entry import Entry
from tests.fix_shop import DATA, customer

MS: MappingSet = load_mapping(DATA / "shop.yaml")
BAD = customer(0, createdAt="yesterday")  # not a timestamp: a mapping error


def _entry(
    n: int,
    key: str,
    version: int,
    doc: dict[str, Any] | None,
    op: str = "upsert",
    *,
    ref: bool = False,
) -> Entry:
    fields = build_fields(
        event_id=f"e{n}",
        source="shop",
        entity="customers",
        key=key,
        op=op,
        version=version,
        occurred_at="2024-01-01T00:00:00Z",
        payload_json=None if doc is None else orjson.dumps(doc).decode(),
        ref=ref,
    )
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    return Entry("s", f"1-{n}", raw)


def _ref(n: int, key: str, version: int) -> Entry:
    return _entry(n, key, version, None, ref=True)


async def _decode(entries: list[Entry], legacy: Any = None) -> Decoded:
    return await decode_batch(
        entries,
        MS,
        legacy=legacy,
        max_payload_bytes=1 << 20,
        signing_keys={},
        require_signature=False,
    )


def _ids(entries: list[Entry]) -> list[str]:
    return [e.id for e in entries]


async def test_the_highest_version_is_mapped_and_the_rest_ride_along() -> None:
    es = [_entry(i, "c1", v, customer(v)) for i, v in enumerate([1, 3, 2])]
    d = await _decode(es)
    assert [(c.key, c.version, c.event_id) for c in d.changes] == [("c1", 3, "e1")]
    assert d.changes[0].rows is not None
    assert _ids(d.owners[("customers", "c1")]) == ["1-1", "1-0", "1-2"]  # winner, then read order
    assert not d.letters


async def test_a_superseded_event_is_not_mapped_so_its_mapping_error_is_not_raised() -> None:
    d = await _decode([_entry(0, "c1", 1, BAD), _entry(1, "c1", 2, customer(2))])
    assert [c.version for c in d.changes] == [2]
    assert not d.letters
    assert _ids(d.owners[("customers", "c1")]) == ["1-1", "1-0"]


async def test_a_winner_that_fails_to_map_is_dead_lettered_and_the_next_one_applies() -> None:
    d = await _decode([_entry(0, "c1", 1, customer(1)), _entry(1, "c1", 2, BAD)])
    assert [(c.version, c.event_id) for c in d.changes] == [(1, "e0")]
    assert [(x.entry.id, x.reason) for x in d.letters] == [("1-1", "mapping")]
    assert _ids(d.owners[("customers", "c1")]) == ["1-0"]


async def test_every_candidate_failing_leaves_no_change() -> None:
    d = await _decode([_entry(0, "c1", 1, BAD), _entry(1, "c1", 2, BAD)])
    assert not d.changes
    assert ("customers", "c1") not in d.owners
    assert sorted(x.entry.id for x in d.letters) == ["1-0", "1-1"]


async def test_an_invalid_envelope_is_dead_lettered_even_when_superseded() -> None:
    bad = _entry(0, "c1", 1, customer(1))
    bad.fields[b"payload"] = b'{"email": "a\\u0000b"}'
    d = await _decode([bad, _entry(1, "c1", 2, customer(2))])
    assert [x.reason for x in d.letters] == ["nul_byte"]
    assert [c.version for c in d.changes] == [2]


async def test_equal_versions_keep_the_first_seen() -> None:
    d = await _decode([_entry(0, "c1", 5, customer(1)), _entry(1, "c1", 5, customer(2))])
    assert [c.event_id for c in d.changes] == ["e0"]


async def test_a_delete_above_an_upsert_wins_without_mapping() -> None:
    d = await _decode([_entry(0, "c1", 1, BAD), _entry(1, "c1", 2, None, op="delete")])
    assert [(c.version, c.deleted, c.rows) for c in d.changes] == [(2, True, None)]
    assert not d.letters


class _Counting:
    """A legacy reader that counts its reads (the worker's own protocol, not a database)."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    async def read(self, entity: str, key: str) -> LegacyRecord | None:
        self.reads.append(f"{entity}/{key}")
        return LegacyRecord(key=key, doc=customer(9), version=None)


async def test_superseded_reference_events_read_the_legacy_store_once_per_key() -> None:
    legacy = _Counting()
    es = [_ref(i, "c1", v) for i, v in enumerate([1, 2, 3])] + [_ref(3, "c2", 1)]
    d = await _decode(es, legacy)
    assert sorted(legacy.reads) == ["customers/c1", "customers/c2"]
    assert [(c.key, c.version) for c in collapse(d.changes)] == [("c1", 3), ("c2", 1)]
    assert sum(len(v) for v in d.owners.values()) == 4


async def test_a_failed_top_lets_the_highest_lower_version_of_its_spelling_win() -> None:
    es = [
        _entry(0, "c1", 1, customer(1)),
        _entry(1, "c1", 2, customer(2)),
        _entry(2, "c1", 3, BAD),
    ]
    d = await _decode(es)
    assert [(c.version, c.event_id) for c in d.changes] == [(2, "e1")]
    assert [x.entry.id for x in d.letters] == ["1-2"]
    assert sorted(_ids(d.owners[("customers", "c1")])) == ["1-0", "1-1"]
