"""structlog configured once: JSON lines when not on a terminal, pretty output on one.

Context is bound per unit of work with `bound_contextvars(entity=..., key=...,
event_id=..., batch_id=...)`; `redact` is applied to every event so secrets never
reach a log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars, merge_contextvars

from dualsync.redact import redact_mapping
from dualsync.settings import LogFormat

__all__ = ["bound_contextvars", "configure_logging", "get_logger"]

_configured = False


def _redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return redact_mapping(event_dict)


class _StderrLogger:
    """Writes each line to whatever `sys.stderr` is *now*.

    `PrintLoggerFactory(file=sys.stderr)` captures the stream object at configure time;
    when that object is later closed (pytest's capture, a daemonised process) every log
    call raises `ValueError: I/O operation on closed file`. Looking the stream up per
    call costs one attribute read.
    """

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def _stderr_logger_factory(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(fmt: LogFormat = "auto", level: str = "INFO", *, force: bool = False) -> None:
    """Configure structlog for this process. Idempotent unless `force`."""
    global _configured  # noqa: PLW0603 - logging is process-global state by nature
    if _configured and not force:
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to `component=name`."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
