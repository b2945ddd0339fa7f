"""`dualsync drift --html`: the report as ONE self-contained page, to attach or archive.

The page must open anywhere, including an air-gapped operator laptop, and must never
leak a value: so no script, no stylesheet link, no font or CDN (inline CSS, charts as
inline SVG that matplotlib renders with text as paths), every database string through
`html.escape`, and fingerprints shown abbreviated (the findings never hold raw values).
matplotlib is imported inside `chart_svg` only: a report without `--html` never loads it.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, cast

from dualsync.errors import ConfigError
from dualsync.logging import get_logger
from dualsync.ops.verify.report_data import DriftReport, EntityReport, Finding, Run
from dualsync.ops.verify.report_table import fmt_age, fmt_pct, no_runs_message, verdict

__all__ = ["abbreviate", "chart_svg", "render_html", "write_html"]

log = get_logger(__name__)

FP_CHARS: Final = 12
_NUMERIC_COLUMNS: Final = 9  # of the latest-run table: run id to the bound
_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#1f2328}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{margin-top:2.5rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eaeef2;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.6rem .8rem;border-radius:6px;overflow-x:auto}
.badge{font-size:.8rem;padding:.1rem .5rem;border-radius:1rem;color:#fff;background:#6e7781}
.clean{background:#1a7f37}.drift,.failed{background:#cf222e}.running{background:#9a6700}
.muted{color:#656d76}figure{margin:0}svg{max-width:100%;height:auto}
"""
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SIZE = re.compile(r'(<svg\b[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')


def e(value: object) -> str:
    """Escaped text for HTML content or a quoted attribute."""
    return html.escape(str(value), quote=True)


def abbreviate(fingerprint: str | None) -> str:
    """A fingerprint cut to its first `FP_CHARS` hex digits: enough to compare two sides."""
    if not fingerprint:
        return "-"
    return fingerprint if len(fingerprint) <= FP_CHARS else f"{fingerprint[:FP_CHARS]}…"


def _inline(svg: str, prefix: str) -> str:
    """matplotlib's SVG file made an inline element with ids unique to this chart.

    Drops the XML prolog and DOCTYPE (a DTD URL) and the namespace declarations (HTML
    parsing gives inline SVG its namespace), scopes matplotlib's `*` style rule to SVG,
    and prefixes every id and reference so two charts on one page cannot resolve each
    other's markers or clip paths.
    """
    svg = _XMLNS.sub("", _PROLOG.sub("", svg, count=1)).replace("xlink:href=", "href=")
    svg = _SIZE.sub(r"\1", svg, count=1)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', svg)
    svg = svg.replace('href="#', f'href="#{prefix}').replace("url(#", f"url(#{prefix}")
    svg = svg.replace('<style type="text/css">*{', '<style type="text/css">svg *{', 1)
    return svg.replace("<svg", '<svg role="img" aria-label="drift rate chart"', 1)


def _pct(value: float | None) -> float:
    return math.nan if value is None else value * 100


def chart_svg(runs: Sequence[Run], prefix: str) -> str:
    """Drift rate and its upper bound (in % of samples) over the runs, as inline SVG.

    Runs without a rate yet (still running) are left out; with none left, no chart.
    """
    import matplotlib as mpl  # noqa: PLC0415 - lazy: only --html pays for matplotlib
    import numpy as np  # noqa: PLC0415 - lazy, as above (numpy comes with matplotlib)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - lazy, as above
    from matplotlib.figure import Figure  # noqa: PLC0415 - lazy, as above

    runs = [r for r in runs if r.drift_rate is not None]
    if not runs:
        return '<p class="muted">no run with a drift rate to chart yet</p>'
    # naive UTC: numpy deprecates parsing aware datetimes
    naive = [r.started_at.astimezone(dt.UTC).replace(tzinfo=None) for r in runs]
    xs = np.array(naive, dtype="datetime64[us]")
    # pad the time axis ourselves: matplotlib widens a single instant to years
    pad = max((xs[-1] - xs[0]) / 20, np.timedelta64(30, "m"))
    rate, bound = [_pct(r.drift_rate) for r in runs], [_pct(r.drift_upper_bound) for r in runs]
    top = max([v for v in rate + bound if not math.isnan(v)] + [0.1]) * 1.15
    with mpl.rc_context(
        # text as paths (no font needed to view it); ids salted per chart, so reproducible
        {"svg.fonttype": "path", "svg.hashsalt": prefix, "date.converter": "concise"}
    ):
        fig = Figure(figsize=(8, 2.6), layout="constrained")
        FigureCanvasAgg(fig)  # the Agg canvas: no GUI backend, no display needed
        ax = fig.add_subplot()
        ax.fill_between(xs, 0, bound, color="#cf222e", alpha=0.08, linewidth=0)
        ax.plot(xs, bound, "v--", color="#cf222e", linewidth=1.2, markersize=4, label="upper bound")
        ax.plot(xs, rate, "o-", color="#0969da", linewidth=1.6, markersize=4, label="drift rate")
        ax.set_ylim(0, top)
        # matplotlib converts datetime64 limits through its units; its stub says float
        ax.set_xlim(cast("float", xs[0] - pad), cast("float", xs[-1] + pad))
        ax.set_ylabel("% of samples")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", frameon=False, fontsize=8)
        buf = io.StringIO()
        meta = {"Creator": None, "Date": None, "Format": None, "Type": None}
        fig.savefig(buf, format="svg", metadata=meta)
    return _inline(buf.getvalue(), prefix)


def _rows(cells: Iterable[Sequence[object]], numeric: frozenset[int] = frozenset()) -> str:
    out = []
    for row in cells:
        tds = "".join(
            f'<td class="n">{e(c)}</td>' if i in numeric else f"<td>{e(c)}</td>"
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{tds}</tr>")
    return "\n".join(out)


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _counts(r: Run, now: dt.datetime) -> str:
    head = ["run", "sampled", "matched", "missing", "extra", "mismatched", "in-flight", "drift"]
    head += [f"{r.confidence * 100:g}% bound", "status", "age"]
    cells = [r.id, f"{r.sampled:,}", f"{r.matched:,}", f"{r.missing:,}", f"{r.extra:,}"]
    cells += [f"{r.mismatched:,}", f"{r.in_flight:,}", fmt_pct(r.drift_rate)]
    cells += [
        fmt_pct(r.drift_upper_bound),
        r.status,
        fmt_age(now - (r.finished_at or r.started_at)),
    ]
    numeric = frozenset(range(_NUMERIC_COLUMNS))
    ths = "".join(
        f'<th class="n">{e(h)}</th>' if i in numeric else f"<th>{e(h)}</th>"
        for i, h in enumerate(head)
    )
    return f"<table><tr>{ths}</tr>{_rows([cells], numeric)}</table>"


def _findings(rep: EntityReport) -> str:
    if rep.basis is None:
        return '<p class="muted">no completed run in the window: no findings to show</p>'
    if not rep.findings:
        return '<p class="muted">no confirmed findings in the completed run</p>'
    head = ("key", "kind", "fields", "gen", "legacy ver", "pg ver", "legacy fp", "pg fp",
            "first seen", "confirmed")  # fmt: skip

    def cells(f: Finding) -> Sequence[object]:
        vers = tuple("-" if v is None else v for v in (f.legacy_version, f.pg_version))
        return (f.key, f.kind, ", ".join(f.fields) or "-", f.generation, *vers,
                abbreviate(f.legacy_fp), abbreviate(f.pg_fp),
                _when(f.first_seen_at), _when(f.confirmed_at))  # fmt: skip

    shown = f"{len(rep.findings):,} of {rep.findings_total:,}"
    run_id = rep.basis.id if rep.basis else "-"
    return (
        f"<p>confirmed findings of run {e(run_id)} (showing {e(shown)}; "
        f'fingerprints abbreviated to {FP_CHARS} hex digits)</p>\n<table class="mono"><tr>'
        + "".join(f"<th>{e(h)}</th>" for h in head)
        + f"</tr>\n{_rows(cells(f) for f in rep.findings)}</table>"
    )


def _entity(rep: EntityReport, index: int, now: dt.datetime) -> str:
    v = verdict(rep, now)
    badge = f'<span class="badge {e(v.state)}">{e(v.state)}</span>'
    charted = sum(r.drift_rate is not None for r in rep.trend)
    caption = f"drift rate and its upper bound, % of samples, last {charted} run(s), UTC"
    chart = chart_svg(rep.trend, f"c{index}-")
    parts = [
        f'<section id="entity-{index}"><h2>{e(rep.entity)} {badge}</h2>',
        f'<p class="verdict"><strong>{e(v.text)}</strong></p>',
        _counts(rep.latest, now),
        f'<figure>{chart}<figcaption class="muted">{e(caption)}</figcaption></figure>',
    ]
    if rep.top_fields:
        items = "".join(
            f"<li><code>{e(f.field)}</code>: {f.mismatches:,} confirmed mismatch(es), "
            f"{f.keys:,} key(s)</li>"
            for f in rep.top_fields
        )
        parts.append(f"<h3>top drifting fields in the window</h3><ul>{items}</ul>")
    if rep.examples:
        items = "".join(
            f"<li>{e(kind)}: <code>{e(', '.join(keys))}</code></li>"
            for kind, keys in rep.examples.items()
        )
        parts.append(f"<h3>example keys</h3><ul>{items}</ul>")
    repair = rep.repair
    if repair is not None:
        cmds = f"{e(repair.dry_run)}   # dry run: shows what would change\n{e(repair.apply)}"
        parts.append(f"<h3>repair</h3><pre>{cmds}</pre>")
    parts += [_findings(rep), "</section>"]
    return "\n".join(parts)


def render_html(report: DriftReport) -> str:
    """The whole page as a string."""
    now = report.generated_at
    head = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dualsync drift report</title><style>{_CSS}</style></head><body>\n"
        f'<h1>dualsync drift report</h1><p class="muted">generated {e(_when(now))}; runs '
        f"since {e(_when(report.since))}. Only confirmed findings count; values appear only "
        "as fingerprints.</p>"
    )
    if not report.entities:
        return f"{head}\n<p><strong>{e(no_runs_message(report))}</strong></p></body></html>\n"
    summary = "".join(
        f'<li><a href="#entity-{i}">{e(rep.entity)}</a>: {e(verdict(rep, now).text)}</li>'
        for i, rep in enumerate(report.entities, 1)
    )
    body = "\n".join(_entity(rep, i, now) for i, rep in enumerate(report.entities, 1))
    return f"{head}\n<ul>{summary}</ul>\n{body}\n</body></html>\n"


def write_html(report: DriftReport, path: Path) -> None:
    """Write the page to `path` (atomically: a reader never sees half a page)."""
    page = render_html(report)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"--html {path}: cannot write it ({exc.strerror or exc})") from None
    log.debug("drift_html_written", path=str(path), bytes=len(page))
