"""The drift report for a terminal: the latest run per entity, a verdict line, the evidence.

An operator reads this to decide cutover, so each entity ends in one plain sentence
(clean, with the statistical bound, or DRIFT with what differed) and, when there is
something to repair, the exact commands to run. The verdict and number formats live here
and are reused by `--json` and `--html`, so all three say the same thing in the same words.
Names and keys come from the database: they are printed as `Text`, never as rich markup.
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dualsync.logging import get_logger
from dualsync.ops.verify.report_data import DriftReport, EntityReport, FieldCount, Run

__all__ = ["Verdict", "fmt_age", "fmt_pct", "no_runs_message", "render_table", "verdict"]

log = get_logger(__name__)

_STATUS_STYLE = {"done": "green", "running": "yellow", "failed": "red"}
_VERDICT_STYLE = {"clean": "bold green", "drift": "bold red", "failed": "bold red"}
_SHORT_KIND = {"missing_in_target": "missing", "extra_in_target": "extra"}
_TOP_FIELDS = 5


@dataclass(frozen=True, slots=True)
class Verdict:
    """`state` is clean, drift or empty (of the newest completed run), or running/failed."""

    state: str
    text: str


def fmt_pct(rate: float | None) -> str:
    """A rate as a percentage: two decimals, or two significant digits below 0.01%."""
    if rate is None:
        return "-"
    pct = rate * 100
    return f"{pct:.2f}%" if pct == 0 or pct >= 0.01 else f"{pct:.2g}%"  # noqa: PLR2004 - 0.01% is where two decimals stop showing anything


def fmt_age(delta: dt.timedelta) -> str:
    """A duration as its largest whole unit: 45s, 12m, 3h, 2d."""
    secs = max(int(delta.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _confidence(run: Run) -> str:
    return f"{run.confidence * 100:g}%"


def _mismatch_part(run: Run, fields: tuple[FieldCount, ...]) -> str:
    if not fields:
        return f"{run.mismatched:,} mismatch"
    shown = fields[:3]
    if len(fields) == 1:
        names = shown[0].field
    else:
        names = ", ".join(f"{f.field} ({f.mismatches:,})" for f in shown)
        names += ", ..." if len(fields) > len(shown) else ""
    return f"{run.mismatched:,} mismatch on {names}"


def _completed(run: Run, fields: tuple[FieldCount, ...]) -> Verdict:
    if run.sampled == 0:
        return Verdict("empty", f"EMPTY: run {run.id} sampled 0 rows: nothing was verified")
    flight = f" ({run.in_flight:,} in flight, rechecked next run)" if run.in_flight else ""
    if run.drift == 0:
        bound = run.drift_upper_bound
        text = f"clean: 0 drift in {run.sampled:,} samples"
        text += f", drift ≤ {fmt_pct(bound)} at {_confidence(run)}" if bound is not None else ""
        return Verdict("clean", text + flight)
    parts = [_mismatch_part(run, fields)] if run.mismatched else []
    parts += [f"{run.missing:,} missing"] if run.missing else []
    parts += [f"{run.extra:,} extra"] if run.extra else []
    detail = f" ({', '.join(parts)})" if parts else ""
    text = f"DRIFT: {run.drift:,} confirmed{detail} in {run.sampled:,} samples"
    return Verdict("drift", text + flight)


def verdict(report: EntityReport, now: dt.datetime) -> Verdict:
    """The one-sentence answer for an entity, about its newest completed run."""
    latest, basis = report.latest, report.basis
    done = _completed(basis, report.run_fields) if basis is not None else None
    if basis is not None and latest.id == basis.id and done is not None:
        return done
    age = fmt_age(now - (latest.finished_at or latest.started_at))
    head = (
        f"RUNNING: run {latest.id} started {age} ago"
        if latest.status == "running"
        else f"{latest.status.upper()}: run {latest.id} {latest.status} {age} ago"
    )
    tail = (
        f"; last completed run {basis.id}: {done.text}"
        if basis is not None and done is not None
        else "; no completed run in the window"
    )
    return Verdict(latest.status, head + tail)


def no_runs_message(report: DriftReport) -> str:
    """What to do when the window holds no run: run the verifier (or widen --since)."""
    since = report.since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ")
    only = " ".join(f"--entity {shlex.quote(e)}" for e in report.only)
    which = f" for {', '.join(report.only)}" if report.only else ""
    msg = (
        f"no verifier runs{which} since {since}: run 'dualsync verify{' ' + only if only else ''}'"
    )
    if report.newest_run_at is not None:
        msg += f" (the newest run started {fmt_age(report.generated_at - report.newest_run_at)} "
        msg += "ago: widen --since to see it)"
    return msg


def _bound_header(report: DriftReport) -> str:
    levels = {_confidence(e.latest) for e in report.entities}
    return f"{levels.pop()} bound" if len(levels) == 1 else "bound"


def _latest_table(report: DriftReport) -> Table:
    since = report.since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ")
    table = Table(title=f"latest verifier run per entity (since {since})", title_justify="left")
    table.add_column("entity", no_wrap=True)
    for name in ("run", "sampled", "matched", "missing", "extra", "mismatched", "in-flight"):
        table.add_column(name, justify="right")
    table.add_column("drift", justify="right")
    table.add_column(_bound_header(report), justify="right")
    table.add_column("status")
    table.add_column("age", justify="right")
    for e in report.entities:
        r = e.latest
        counts = (r.sampled, r.matched, r.missing, r.extra, r.mismatched, r.in_flight)
        table.add_row(
            Text(e.entity),
            str(r.id),
            *(f"{n:,}" for n in counts),
            Text(fmt_pct(r.drift_rate), style="red" if r.drift else ""),
            fmt_pct(r.drift_upper_bound),
            Text(r.status, style=_STATUS_STYLE.get(r.status, "")),
            fmt_age(report.generated_at - (r.finished_at or r.started_at)),
        )
    return table


def _trend(e: EntityReport) -> Text:
    line = Text(f"  trend (last {len(e.trend)} runs, % drift, oldest to newest):", style="dim")
    for r in e.trend:
        rate = "-" if r.drift_rate is None else f"{r.drift_rate * 100:.2f}"
        line.append(f" {rate}", style="red" if r.drift else ("" if r.status == "done" else "dim"))
    return line


def _entity_block(console: Console, e: EntityReport, now: dt.datetime) -> None:
    v = verdict(e, now)
    console.print(
        Text.assemble((e.entity, "bold"), "  ", (v.text, _VERDICT_STYLE.get(v.state, "")))
    )
    console.print(_trend(e))
    if e.top_fields:
        top = ", ".join(
            f"{f.field} {f.mismatches:,} ({f.keys:,} key{'s' if f.keys != 1 else ''})"
            for f in e.top_fields[:_TOP_FIELDS]
        )
        console.print(Text(f"  top fields (confirmed mismatches in the window): {top}"))
    if e.examples:
        ex = "; ".join(
            f"{_SHORT_KIND.get(k, k)}: {', '.join(keys)}" for k, keys in e.examples.items()
        )
        console.print(Text(f"  example keys (run {e.basis.id if e.basis else '-'}): {ex}"))
    repair = e.repair
    if repair is None:
        console.print(Text("  nothing to repair", style="dim"))
        return
    console.print(Text.assemble("  repair:  ", (repair.dry_run, "bold"), ("   # dry run", "dim")))
    console.print(Text.assemble("           ", (repair.apply, "bold"), ("   # writes", "dim")))


def render_table(report: DriftReport, console: Console) -> None:
    """Print the report: the latest-run table, then one block per entity."""
    if not report.entities:
        console.print(Text(no_runs_message(report), style="yellow"))
        return
    console.print(_latest_table(report))
    for e in report.entities:
        console.print()
        _entity_block(console, e, report.generated_at)
    log.debug("drift_table_rendered", entities=len(report.entities))
