"""`Stats.count_apply` per entity: exact where `apply_batch`'s totals allow, totals always."""

from __future__ import annotations

from dualsync.consumers.apply import ApplyResult
from dualsync.consumers.change import Change
from dualsync.worker.entry import Entry
from dualsync.worker.stats import Stats, split


def _c(entity: str, key: str, *, deleted: bool = False) -> Change:
    return Change(entity, key, 1, deleted, f"{entity}-{key}", None)


def _e(entity: str) -> Entry:
    return Entry("s", "1-0", {b"entity": entity.encode()})


def test_one_entity_is_exact_including_collapsed_duplicates() -> None:
    changes = [_c("a", "1"), _c("a", "2"), _c("a", "3", deleted=True)]
    entries = [_e("a")] * 5  # two duplicates collapsed away
    out = split(ApplyResult(applied=1, deleted=1, stale=1), changes, entries)
    assert out == {"a": (1, 1, 1 + 2)}


def test_no_gate_losers_is_exact_across_entities() -> None:
    changes = [_c("a", "1"), _c("b", "1"), _c("b", "2", deleted=True), _c("c", "1")]
    entries = [_e("a"), _e("a"), _e("b"), _e("b"), _e("c")]
    out = split(ApplyResult(applied=3, deleted=1, stale=0), changes, entries)
    assert out == {"a": (1, 0, 1), "b": (1, 1, 0), "c": (1, 0, 0)}


def test_mixed_batch_with_losers_keeps_the_totals() -> None:
    changes = [_c("a", str(i)) for i in range(3)] + [_c("b", str(i)) for i in range(4)]
    entries = [_e(c.entity) for c in changes]
    out = split(ApplyResult(applied=4, deleted=0, stale=3), changes, entries)
    assert sum(a for a, _, _ in out.values()) == 4
    assert sum(s for _, _, s in out.values()) == 3
    assert all(a <= n for (a, _, _), n in zip(out.values(), (3, 4), strict=True))


def test_count_apply_totals_equal_the_per_entity_sums() -> None:
    st = Stats()
    changes = [_c("a", "1"), _c("b", "1", deleted=True), _c("b", "2")]
    entries = [_e("a"), _e("b"), _e("b"), _e("b")]
    st.count_apply(ApplyResult(applied=1, deleted=1, stale=1), changes, entries)
    per = st.by_entity
    assert st.applied == sum(v for k, v in per.items() if k.startswith("applied:")) == 1
    assert st.deleted == sum(v for k, v in per.items() if k.startswith("deleted:")) == 1
    assert st.stale == sum(v for k, v in per.items() if k.startswith("stale:")) == 2
