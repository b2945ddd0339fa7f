"""`dualsync drift` on a real PostgreSQL: the table, `--json`, `--html`, and its errors.

The module's database holds verifier runs for three entities over several hours:
`orders` clean throughout, `customers` drifting in its last two runs (mismatches on
`email` and a missing key, plus an unconfirmed difference on `phone` that must not
count), and `invoices` whose newest run is still running. The command is called through
`CliRunner` on a local Typer app (registering it in `dualsync.ops.cli` is not this
module's job).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import typer
from psycopg import sql
from rich.console import Console
from typer.testing import CliRunner

from dualsync.errors import ConfigError
from dualsync.logging import configure_logging
from dualsync.ops.cli_drift import drift
from dualsync.ops.verify.report_data import BadSinceError, load_report, parse_since
from dualsync.ops.verify.report_html import FP_CHARS, abbreviate
from dualsync.ops.verify.report_table import fmt_pct, render_table
from dualsync.schema.migrate import Migrator, core_set
from dualsync.settings import get_settings

NOW = dt.datetime.now(dt.UTC)
SECRET = "hunter2-correct-horse"  # a value the app stores; the verifier keeps only HMACs of it
HOSTILE_KEY = '<script>alert("x")</script>&'


def fp(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ago(**kw: float) -> dt.datetime:
    return NOW - dt.timedelta(**kw)


def insert_run(conn: psycopg.Connection[Any], entity: str, at: dt.datetime, **kw: Any) -> int:
    sampled = kw.get("sampled", 3000)
    drift_n = kw.get("missing", 0) + kw.get("extra", 0) + kw.get("mismatched", 0)
    row = {
        "entity": entity, "mode": "sample", "started_at": at,
        "finished_at": None if kw.get("status") == "running" else at + dt.timedelta(seconds=40),
        "status": kw.get("status", "done"), "sampled": sampled,
        "matched": sampled - drift_n - kw.get("in_flight", 0), "missing": kw.get("missing", 0),
        "extra": kw.get("extra", 0), "mismatched": kw.get("mismatched", 0),
        "in_flight": kw.get("in_flight", 0), "drift": drift_n,
        "drift_rate": drift_n / sampled if sampled else None,
        "drift_upper_bound": kw.get("bound", 1 - 0.05 ** (1 / sampled) if sampled else None),
        "samples_requested": 3000, "seed": 7,
        "details": orjson.dumps(
            {"run_group": str(uuid.uuid4()), "fields": kw.get("fields", {})}
        ).decode(),
    }  # fmt: skip
    cols = sql.SQL(", ").join(map(sql.Identifier, row))
    vals = sql.SQL(", ").join(sql.Placeholder(k) for k in row)
    query = sql.SQL("insert into dualsync.verify_runs ({}) values ({}) returning id")
    got = conn.execute(query.format(cols, vals), row).fetchone()
    assert got is not None
    return int(got[0])


def insert_finding(
    conn: psycopg.Connection[Any], run_id: int, entity: str, key: str, kind: str, **kw: Any
) -> None:
    fields = kw.get("fields")
    conn.execute(
        "insert into dualsync.verify_findings (run_id, entity, key, kind, fields, legacy_version,"
        " pg_version, generation, confirmed, legacy_fp, pg_fp, confirmed_at) values"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, case when %s then now() end)",
        [run_id, entity, key, kind, orjson.dumps(fields).decode() if fields else None, 5, 4,
         kw.get("generation", 3), kw.get("confirmed", True), kw.get("legacy_fp"),
         kw.get("pg_fp"), kw.get("confirmed", True)],
    )  # fmt: skip


@pytest.fixture(scope="module")
def seeded(pg_url: str) -> dict[str, int]:
    """The runs and findings described in the module docstring; the interesting run ids."""
    Migrator(pg_url, [core_set()]).up()
    ids: dict[str, int] = {}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for h in (5, 4, 3):
            ids["orders"] = insert_run(conn, "orders", ago(hours=h))
        old = insert_run(conn, "customers", ago(days=10), mismatched=1, fields={"name": 1})
        insert_finding(conn, old, "customers", "c-1", "mismatch", fields=["name"])
        for h in (5, 4, 3):
            insert_run(conn, "customers", ago(hours=h))
        prev = insert_run(conn, "customers", ago(hours=2), mismatched=1, fields={"email": 1})
        insert_finding(conn, prev, "customers", "c-17", "mismatch", fields=["email"])
        last = insert_run(conn, "customers", ago(hours=1), mismatched=2, missing=1, in_flight=1,
                          bound=0.0027, fields={"email": 2})  # fmt: skip
        ids["customers"] = last
        for key in ("c-17", "c-42"):
            insert_finding(conn, last, "customers", key, "mismatch", fields=["email"],
                           legacy_fp=fp(f"{SECRET}{key}"), pg_fp=fp(f"pg{key}"))  # fmt: skip
        insert_finding(conn, last, "customers", "c-99", "missing_in_target",
                       legacy_fp=fp("c-99"))  # fmt: skip
        insert_finding(conn, last, "customers", "c-55", "mismatch", fields=["phone"],
                       confirmed=False, generation=0)  # fmt: skip
        insert_finding(conn, last, "customers", "c-60", "in_flight", confirmed=False)
        done = insert_run(conn, "invoices", ago(hours=3), sampled=500, extra=1, bound=0.0095)
        insert_finding(conn, done, "invoices", HOSTILE_KEY, "extra_in_target", pg_fp=fp("i"))
        ids["invoices_done"] = done
        # as the verifier leaves a run it is still sampling: no counts, no bound yet
        ids["invoices"] = insert_run(
            conn, "invoices", ago(minutes=10), status="running", sampled=0, bound=None
        )
    return ids


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    get_settings.cache_clear()
    yield pg_url
    get_settings.cache_clear()


def invoke(*args: str) -> Any:
    """`dualsync drift ARGS` through a local app (Typer runs a lone command without its name).

    Logging is configured as `dualsync.ops.cli.main` does: log lines go to stderr.
    """
    configure_logging(get_settings().log_format, get_settings().log_level)
    app = typer.Typer()
    app.command()(drift)
    return CliRunner().invoke(app, list(args))


def test_table_has_verdicts_fields_examples_and_repair(seeded: dict[str, int], env: str) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "orders  clean: 0 drift in 3,000 samples, drift ≤ 0.10% at 95%" in out
    assert (
        "customers  DRIFT: 3 confirmed (2 mismatch on email, 1 missing) in 3,000 samples "
        "(1 in flight, rechecked next run)"
    ) in out
    # the age is read against the clock when the report runs, and the module's rows were
    # seeded once, 10 minutes back, at its start: 10m, or more on a busy machine
    running = rf"invoices  RUNNING: run {seeded['invoices']} started 1\dm ago; last completed run"
    assert re.search(running, out), out
    assert "DRIFT: 1 confirmed (1 extra) in 500 samples" in out
    assert "top fields (confirmed mismatches in the window): email 3 (2 keys)" in out
    assert "phone" not in out  # unconfirmed: not drift
    assert "name 1" not in out  # older than the default 7d window
    assert "example keys (run" in out
    assert "mismatch: c-17, c-42; missing: c-99" in out
    repair = f"dualsync repair --entity customers --run {seeded['customers']}"
    assert f"repair:  {repair}   # dry run" in out
    assert f"{repair} --apply" in out
    assert "trend (last 5 runs, % drift, oldest to newest): 0.00 0.00 0.00 0.03 0.10" in out
    assert out.count("nothing to repair") == 1  # orders
    header = next(ln for ln in out.splitlines() if "sampled" in ln)
    for col in ("matched", "missing", "extra", "mismatched", "in-flight", "95% bound", "age"):
        assert col in header


def test_render_table_to_a_recording_console(seeded: dict[str, int], pg_url: str) -> None:
    report = load_report(pg_url, since=NOW - dt.timedelta(days=30), now=NOW, entities=["customers"])
    console = Console(record=True, width=160)
    render_table(report, console)
    text = console.export_text()
    assert (
        "top fields (confirmed mismatches in the window): email 3 (2 keys), name 1 (1 key)" in text
    )
    assert "orders" not in text
    assert "trend (last 6 runs, % drift, oldest to newest): 0.03 0.00 0.00 0.00 0.03 0.10" in text


def test_json_has_the_counts(seeded: dict[str, int], env: str) -> None:
    result = invoke("--json", "--limit", "2")
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["schema"] == "dualsync.drift/1"
    assert doc["message"] is None
    by = {e["entity"]: e for e in doc["entities"]}
    assert list(by) == ["customers", "invoices", "orders"]
    c = by["customers"]
    counts = ("sampled", "matched", "missing", "extra", "mismatched", "in_flight", "drift")
    assert {k: c["latest"][k] for k in counts} == {
        "sampled": 3000, "matched": 2996, "missing": 1, "extra": 0, "mismatched": 2,
        "in_flight": 1, "drift": 3,
    }  # fmt: skip
    assert c["verdict"]["state"] == "drift"
    assert c["top_fields"] == [{"field": "email", "mismatches": 3, "keys": 2}]
    assert c["examples"] == {"mismatch": ["c-17", "c-42"], "missing_in_target": ["c-99"]}
    assert [f["key"] for f in c["findings"]] == ["c-17", "c-42", "c-99"]
    assert c["repair"] == {
        "run_id": seeded["customers"],
        "dry_run": f"dualsync repair --entity customers --run {seeded['customers']}",
        "apply": f"dualsync repair --entity customers --run {seeded['customers']} --apply",
    }
    assert len(c["trend"]) == 2
    assert c["trend"][-1]["run_id"] == seeded["customers"]
    assert by["orders"]["repair"] is None
    assert by["orders"]["verdict"]["state"] == "clean"
    assert by["invoices"]["verdict"]["state"] == "running"
    assert by["invoices"]["latest"]["status"] == "running"
    assert by["invoices"]["basis"]["id"] == seeded["invoices_done"]
    assert by["invoices"]["repair"]["run_id"] == seeded["invoices_done"]
    assert doc["generated_at"].endswith("Z")


def test_html_is_self_contained_escaped_and_fingerprints_abbreviated(
    seeded: dict[str, int], env: str, tmp_path: Path
) -> None:
    page_path = tmp_path / "report.html"
    result = invoke("--html", str(page_path))
    assert result.exit_code == 0, result.output
    assert f"wrote {page_path}" in result.stdout
    page = page_path.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 3
    for name in ("customers", "orders", "invoices"):
        assert f"<h2>{name} " in page
    lowered = page.lower()
    for external in ("http://", "https://", "<script", "<link", "src=", "@import", "url(http"):
        assert external not in lowered
    assert html.escape(HOSTILE_KEY) in page
    assert SECRET not in page
    full = fp(f"{SECRET}c-17")
    assert full not in page
    assert f"{full[:FP_CHARS]}…" in page
    assert "c-55" not in page  # unconfirmed findings are not listed
    assert "dualsync repair --entity customers" in page
    ids = [p.split('"')[0] for p in page.split(' id="')[1:]]
    assert len(ids) == len(set(ids))  # two charts' marker and clip ids never collide


def html_escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def test_without_html_matplotlib_is_never_imported(seeded: dict[str, int], pg_url: str) -> None:
    code = (
        "import sys, typer\n"
        "from dualsync.logging import configure_logging\n"
        "configure_logging('json', 'INFO')\n"
        "from typer.testing import CliRunner\n"
        "from dualsync.ops.cli_drift import drift\n"
        "app = typer.Typer(); app.command()(drift)\n"
        "r = CliRunner().invoke(app, ['--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('matplotlib' in sys.modules, 'numpy' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False,
        env={**os.environ, "DATABASE_URL": pg_url}, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_bad_since_is_one_line_exit_1_before_any_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")
    get_settings.cache_clear()
    try:
        result = invoke("--since", "bogus")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert isinstance(result.exception, BadSinceError)
    assert isinstance(result.exception, ConfigError)  # main() prints it as one line, exit 1
    message = str(result.exception)
    assert "\n" not in message
    assert message.startswith("--since 'bogus': use an age like 30m, 12h, 7d or 1h30m, or an ISO")


def test_no_runs_says_to_run_verify(seeded: dict[str, int], env: str) -> None:
    result = invoke("--since", "1m")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "no verifier runs since" in out
    assert "run 'dualsync verify'" in out
    assert re.search(r"the newest run started 1\dm ago: widen --since to see it", out), out
    result = invoke("--entity", "nope", "--json")
    doc = orjson.loads(result.stdout)
    assert doc["entities"] == []
    assert doc["message"].startswith("no verifier runs for nope since ")
    assert "run 'dualsync verify --entity nope'" in doc["message"]


def test_missing_tables_is_a_config_error(pg_server_url: str) -> None:
    dbname = f"t_drift_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    info = psycopg.conninfo.conninfo_to_dict(pg_server_url) | {"dbname": dbname}
    try:
        with pytest.raises(ConfigError, match="run 'dualsync migrate up'"):
            load_report(psycopg.conninfo.make_conninfo("", **info), since=NOW, now=NOW)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(dbname)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("24h", NOW - dt.timedelta(hours=24)),
        (" 7d ", NOW - dt.timedelta(days=7)),
        ("2w", NOW - dt.timedelta(weeks=2)),
        ("1h30m", NOW - dt.timedelta(minutes=90)),
        ("90S", NOW - dt.timedelta(seconds=90)),
        ("2026-01-01", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        ("2026-01-01T12:00Z", dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)),
        ("2026-01-01T14:00:00+02:00", dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)),
    ],
)
def test_parse_since(text: str, expected: dt.datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["bogus", "", "0h", "-5m", "3x", "7 days", "2999-01-01",
                                  "99999999999d", "2026-13-01"])  # fmt: skip
def test_parse_since_rejects(text: str) -> None:
    with pytest.raises(BadSinceError) as info:
        parse_since(text, NOW)
    assert "\n" not in str(info.value)


def test_formats() -> None:
    assert fmt_pct(0.000998) == "0.10%"
    assert fmt_pct(0.0) == "0.00%"
    assert fmt_pct(0.0000123) == "0.0012%"
    assert fmt_pct(None) == "-"
    assert abbreviate("ab" * 32) == "ab" * 6 + "…"
    assert abbreviate(None) == "-"
