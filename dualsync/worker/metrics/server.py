"""The HTTP endpoint of a worker: `/metrics` (Prometheus text) and `/healthz` (JSON).

It serves from a thread of its own (prometheus-client's threading WSGI server), not from
the event loop: a scrape or a health probe is answered while the loop is busy applying a
long batch. Everything it reads is thread-safe: the registry, `Stats` copies, the
sampler's immutable `Sample`, task states.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from dualsync.logging import get_logger
from dualsync.worker.metrics.health import HealthReport

__all__ = ["MetricsServer"]

log = get_logger(__name__)

StartResponse = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: scrapes every few seconds would drown the worker's log."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class MetricsServer:
    """Serve `/metrics` and `/healthz` on `host:port` until `close()`."""

    def __init__(
        self, registry: CollectorRegistry, health: Callable[[], HealthReport], *, host: str,
        port: int,
    ) -> None:  # fmt: skip
        self._metrics = make_wsgi_app(registry)
        self._health = health
        self._httpd = make_server(
            host, port, self._app, ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = int(self._httpd.server_port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="dualsync-metrics", daemon=True
        )

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in {"/healthz", "/health"}:
            report = self._health()
            body = orjson.dumps(report.as_dict())
            status = "200 OK" if report.ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))])  # fmt: skip
            return [body]
        result: Iterable[bytes] = self._metrics(environ, start_response)
        return result

    def open(self) -> None:
        """Start serving."""
        self._thread.start()
        log.info("metrics_serving", port=self.port, paths="/metrics /healthz")

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()
