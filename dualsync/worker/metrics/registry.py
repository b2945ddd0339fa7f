"""The worker's Prometheus metrics, in a registry of its own (never the global one).

Counters are not incremented on the hot path at all: a collector reads them from `Stats` at
scrape time (a copy of a few dicts), so the endpoint and the process's own counters cannot
disagree, and a batch pays nothing per event for Prometheus. Only the two histograms are
observed as batches finish (`StatsObserver`); the lag one takes (value, events) pairs, so
a batch costs one bucket search per distinct `occurred_at`, not one per event. Gauges come
from the latest `Sample`.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from dualsync.schema.readpath import Mode
from dualsync.worker.metrics.sampler import LAG_CAP, Sample
from dualsync.worker.stats import APPLIED, DEAD_LETTERED, DELETED, STALE, Stats

__all__ = ["BATCH_BUCKETS", "LAG_BUCKETS", "METRIC_NAMES", "BatchHistogram", "WorkerMetrics"]

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

#: (name, help, per-entity counter in `Stats.by_entity`)
_ENTITY_COUNTERS = (
    ("dualsync_events_applied", "Upserts written to PostgreSQL.", APPLIED),
    ("dualsync_events_deleted", "Deletes (tombstones) applied.", DELETED),
    ("dualsync_events_stale", "Events that lost the version gate or a duplicate.", STALE),
    ("dualsync_events_dead_lettered", "Events dead-lettered, by entity.", DEAD_LETTERED),
)
#: (name, help, `Stats` field)
_TOTALS = (
    ("dualsync_events_read", "Stream entries read (new, reclaimed, retried).", "read"),
    ("dualsync_batches", "Batches processed.", "batches"),
    ("dualsync_retries", "Entries scheduled again after a failure.", "retried"),
    ("dualsync_bisections", "Batches split to isolate a failing event.", "bisections"),
    ("dualsync_batches_settled", "Batches tried whole again once sibling consumers committed.",
     "settled"),
    ("dualsync_redis_errors", "Redis calls that failed (and were retried or skipped).",
     "redis_errors"),
)  # fmt: skip
#: every metric name the endpoint serves (counters without the `_total` suffix)
METRIC_NAMES = (
    *(n for n, _, _ in _ENTITY_COUNTERS),
    "dualsync_dead_letters",
    *(n for n, _, _ in _TOTALS),
    "dualsync_apply_batch_seconds",
    "dualsync_end_to_end_lag_seconds",
    "dualsync_stream_pending",
    "dualsync_stream_lag",
    "dualsync_drift_rate_upper",
    "dualsync_read_path_mode",
)


class _StatsCollector(Collector):
    """Counters from `Stats` and gauges from the sampler, built at scrape time."""

    def __init__(self, stats: Stats, sample: Callable[[], Sample | None]) -> None:
        self._stats = stats
        self._sample = sample

    def describe(self) -> Iterator[Metric]:
        return self._families(Stats(), None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self._stats, self._sample())

    def _families(self, stats: Stats, sample: Sample | None) -> Iterator[Metric]:
        # dict() copies a builtin dict in one step under the GIL: safe against the event
        # loop adding a key meanwhile.
        by_entity = dict(stats.by_entity)
        for name, text, counter in _ENTITY_COUNTERS:
            fam = CounterMetricFamily(name, text, labels=["entity"])
            for field, n in sorted(by_entity.items()):
                kind, _, entity = field.partition(":")
                if kind == counter:
                    fam.add_metric([entity], n)
            yield fam
        reasons = CounterMetricFamily(
            "dualsync_dead_letters", "Events dead-lettered, by reason.", labels=["reason"]
        )
        for reason, n in sorted(dict(stats.by_reason).items()):
            reasons.add_metric([reason], n)
        yield reasons
        for name, text, attr in _TOTALS:
            yield CounterMetricFamily(name, text, value=getattr(stats, attr))
        yield from _gauges(sample)


def _gauges(sample: Sample | None) -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        "dualsync_stream_pending",
        "Entries delivered to the group and not yet acknowledged, per shard stream.",
        labels=["shard"],
    )
    lag = GaugeMetricFamily(
        "dualsync_stream_lag",
        "Entries the group has not acknowledged (pending plus not yet delivered), per shard "
        f"stream; counted up to {LAG_CAP} per stream on Redis < 7.",
        labels=["shard"],
    )
    drift = GaugeMetricFamily(
        "dualsync_drift_rate_upper",
        "95% upper bound of the drift rate from the entity's latest verify run.",
        labels=["entity"],
    )
    mode = GaugeMetricFamily(
        "dualsync_read_path_mode",
        "1 for the entity's current read-path mode, 0 for the others.",
        labels=["entity", "mode"],
    )
    if sample is not None:
        for shard, n in sorted(sample.pending.items()):
            pending.add_metric([str(shard)], n)
        for shard, n in sorted(sample.lag.items()):
            lag.add_metric([str(shard)], n)
        for entity, bound in sorted(sample.drift_upper.items()):
            drift.add_metric([entity], bound)
        for entity, now in sorted(sample.modes.items()):
            for m in Mode:
                mode.add_metric([entity, m.value], 1.0 if m is now else 0.0)
    yield pending
    yield lag
    yield drift
    yield mode


class BatchHistogram(Collector):
    """A histogram fed (value, count) pairs: one bucket search per distinct value of a batch
    instead of one `Histogram.observe` (a lock and a scan) per event."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._doc = documentation
        self._bounds = tuple(buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()  # observed on the loop, read by the HTTP thread

    def observe_many(self, pairs: Sequence[tuple[float, int]]) -> None:
        with self._lock:
            for value, n in pairs:
                v = max(value, 0.0)  # a publisher clock ahead of ours is not negative lag
                self._counts[bisect.bisect_left(self._bounds, v)] += n
                self._sum += v * n

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._doc)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip((*self._bounds, float("inf")), counts, strict=True):
            running += n
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        yield HistogramMetricFamily(self._name, self._doc, buckets=cumulative, sum_value=total)


class WorkerMetrics:
    """The registry of one worker process; also the `StatsObserver` of its histograms."""

    def __init__(self, stats: Stats, sample: Callable[[], Sample | None]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StatsCollector(stats, sample))
        self._batch = Histogram(
            "dualsync_apply_batch_seconds",
            "Seconds per batch, from read to acknowledgement.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._lag = BatchHistogram(
            "dualsync_end_to_end_lag_seconds",
            "Seconds from an event's occurred_at to its apply.",
            LAG_BUCKETS,
        )
        self.registry.register(self._lag)

    def batch_seconds(self, seconds: float) -> None:
        self._batch.observe(seconds)

    def lags(self, seconds: Sequence[tuple[float, int]]) -> None:
        self._lag.observe_many(seconds)
