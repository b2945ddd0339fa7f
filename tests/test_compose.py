"""docker-compose.yml cannot run here (no Docker engine), so parse and check its shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dualsync.worker.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_dependencies() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "mongo", "worker", "migrate"} <= set(services)
    assert "pgvector" in services["postgres"]["image"]
    assert "--appendonly" in services["redis"]["command"]
    worker = services["worker"]
    for dep in ("postgres", "redis", "mongo"):
        assert worker["depends_on"][dep]["condition"] == "service_healthy"
        assert "healthcheck" in services[dep]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_worker_environment_points_at_compose_services() -> None:
    env = _compose()["services"]["worker"]["environment"]
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["MONGO_URL"].startswith("mongodb://mongo:27017")


def test_dockerfile_installs_the_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text
    assert "dualsync" in text


def test_migrations_and_mapping_belong_to_one_app_that_exists() -> None:
    services = _compose()["services"]
    env = services["worker"]["environment"]
    mapping = ROOT / env["DUALSYNC_MAPPING"]
    assert mapping.is_file()
    command = services["migrate"]["command"]
    migrations = ROOT / command[command.index("--dir") + 1]
    assert migrations.is_dir()
    assert migrations.parent == mapping.parent  # the worker applies what migrate created
    assert "COPY examples" in (ROOT / "Dockerfile").read_text()


# The worker metrics every dashboard panel and scrape depends on (names as exposed).
DASHBOARD_METRICS = (
    "dualsync_events_applied_total",
    "dualsync_events_stale_total",
    "dualsync_apply_batch_seconds_bucket",
    "dualsync_end_to_end_lag_seconds_bucket",
    "dualsync_dead_letters_total",
    "dualsync_stream_pending",
    "dualsync_drift_rate_upper",
    "dualsync_read_path_mode",
)


def _mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount (named volumes are skipped)."""
    out = []
    for v in service.get("volumes", []):
        src, dst = v.split(":")[:2]
        if src.startswith(("./", "/")):
            out.append(((ROOT / src).resolve(), dst))
    return out


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _option_eq(command: list[str], name: str) -> str:
    """The value of a `--name=value` argument."""
    [value] = [c.split("=", 1)[1] for c in command if c.startswith(name + "=")]
    return value


def test_every_mounted_file_exists() -> None:
    services = _compose()["services"]
    mounts = [m for s in services.values() for m in _mounts(s)]
    assert len(mounts) >= 4  # Prometheus: config, rules; Grafana: provisioning, dashboard
    for src, _ in mounts:
        assert src.exists(), f"{src} is mounted but missing"


def test_prometheus_scrapes_the_port_the_worker_serves_on() -> None:
    services = _compose()["services"]
    command = services["worker"]["command"]
    port = int(_option(command, "--metrics-port"))
    assert port > 0
    assert _option(command, "--metrics-host") == "0.0.0.0"  # noqa: S104 - inside its container
    assert str(port) in services["worker"]["expose"]
    assert f"{port}/healthz" in " ".join(services["worker"]["healthcheck"]["test"])
    mounted = {dst: src for src, dst in _mounts(services["prometheus"])}
    config = yaml.safe_load(mounted["/etc/prometheus/prometheus.yml"].read_text())
    assert _option_eq(services["prometheus"]["command"], "--config.file") == (
        "/etc/prometheus/prometheus.yml"
    )
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "dualsync-worker"]
    targets = [f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
    targets += [t for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert targets == [f"worker:{port}"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    for rules in config["rule_files"]:
        assert rules in mounted, f"rule file {rules} is not mounted"
        assert yaml.safe_load(mounted[rules].read_text())["groups"]


def test_grafana_provisions_prometheus_and_the_dashboard() -> None:
    services = _compose()["services"]
    mounted = {dst: src for src, dst in _mounts(services["grafana"])}
    prov = mounted["/etc/grafana/provisioning"]
    [ds] = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"
    [provider] = yaml.safe_load((prov / "dashboards" / "dualsync.yml").read_text())["providers"]
    folder = provider["options"]["path"]
    dashboards = [src for dst, src in mounted.items() if dst.startswith(folder + "/")]
    assert [p.name for p in dashboards] == ["grafana-dashboard.json"]
    dash = json.loads(dashboards[0].read_text())
    uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p["targets"]}
    assert uids == {ds["uid"]}


def test_dashboard_has_a_panel_for_every_metric() -> None:
    dash = json.loads((ROOT / "ops" / "grafana-dashboard.json").read_text())
    assert dash["uid"]
    assert dash["title"]
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for name in DASHBOARD_METRICS:
        assert any(name in e for e in exprs), f"no panel queries {name}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for words in ("apply rate", "stale", "p99", "lag", "dead letters", "pending", "drift", "mode"):
        assert words in titles


def test_dashboard_metrics_are_the_ones_the_worker_serves() -> None:
    for name in DASHBOARD_METRICS:
        assert name.removesuffix("_bucket").removesuffix("_total") in METRIC_NAMES
