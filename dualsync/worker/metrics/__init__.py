"""Prometheus metrics and the health endpoint of a worker process."""

from dualsync.worker.metrics.health import HealthCheck, HealthReport
from dualsync.worker.metrics.registry import METRIC_NAMES, WorkerMetrics
from dualsync.worker.metrics.sampler import Sample, Sampler
from dualsync.worker.metrics.server import MetricsServer

__all__ = [
    "METRIC_NAMES",
    "HealthCheck",
    "HealthReport",
    "MetricsServer",
    "Sample",
    "Sampler",
    "WorkerMetrics",
]
