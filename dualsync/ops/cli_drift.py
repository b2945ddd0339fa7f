"""`dualsync drift`: the verifier's evidence for the cutover decision, per entity.

Reads the runs and confirmed findings `dualsync verify` stored and prints a table with a
verdict per entity, `--json` for machines, and `--html FILE` for a self-contained page
with charts. A bad `--since` is a `ConfigError` (one line, exit 1), raised before any
database is started. matplotlib is imported only when `--html` renders its charts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from dualsync.logging import get_logger
from dualsync.ops.cli_options import EntityOption
from dualsync.ops.services import open_services
from dualsync.ops.verify.report_data import DriftReport, EntityReport, Run, load_report, parse_since
from dualsync.ops.verify.report_html import write_html
from dualsync.ops.verify.report_table import no_runs_message, render_table, verdict
from dualsync.settings import get_settings

__all__ = ["drift", "report_document"]

log = get_logger(__name__)

SCHEMA = "dualsync.drift/1"
# Piped output has no terminal width: 80 columns would squeeze the run table's 12 columns.
_PIPE_WIDTH = 132


def _point(run: Run) -> dict[str, Any]:
    keys = ("status", "sampled", "drift", "drift_rate", "drift_upper_bound", "started_at")
    return {"run_id": run.id} | {k: getattr(run, k) for k in keys}


def _entity(e: EntityReport, now: dt.datetime) -> dict[str, Any]:
    v = verdict(e, now)
    return {
        "entity": e.entity,
        "verdict": {"state": v.state, "text": v.text},
        "latest": e.latest,
        "basis": e.basis,
        "trend": [_point(r) for r in e.trend],
        "top_fields": list(e.top_fields),
        "run_fields": list(e.run_fields),
        "examples": e.examples,
        "findings": list(e.findings),
        "findings_total": e.findings_total,
        "repair": e.repair,
    }


def report_document(report: DriftReport) -> dict[str, Any]:
    """The report as one JSON-ready document (orjson serialises the dataclasses)."""
    return {
        "schema": SCHEMA,
        "generated_at": report.generated_at,
        "since": report.since,
        "only": list(report.only),
        "message": None if report.entities else no_runs_message(report),
        "entities": [_entity(e, report.generated_at) for e in report.entities],
    }


def drift(
    entity: EntityOption = None,
    since: Annotated[
        str, typer.Option(help="Window start: an age (30m, 24h, 7d, 1h30m) or an ISO 8601 time.")
    ] = "7d",
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="Trend: at most this many runs per entity.")
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document, for machines.")
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(metavar="FILE", dir_okay=False, help="Also write a self-contained HTML page."),
    ] = None,
) -> None:
    """Report drift between the legacy store and PostgreSQL, from `dualsync verify` runs.

    Per entity: the latest run's counts, a verdict (clean with its 95% bound, or the
    confirmed drift), the trend, the fields that differ, example keys and the repair
    commands. Only confirmed findings count; values appear only as fingerprints.
    """
    now = dt.datetime.now(dt.UTC)
    start = parse_since(since, now)
    settings = get_settings()
    with open_services(settings, need_redis=False) as svc:
        report = load_report(
            svc.database_url, since=start, now=now, entities=entity or (), limit=limit
        )
    console = Console(soft_wrap=True, stderr=as_json)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    if as_json:
        doc = report_document(report)
        typer.echo(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z).decode())
    else:
        render_table(report, console)
    if html is not None:
        write_html(report, html)
        console.print(f"wrote {html}", markup=False, highlight=False)
    log.debug("drift_reported", entities=len(report.entities), html=str(html) if html else None)
