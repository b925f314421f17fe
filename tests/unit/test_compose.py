"""docker-compose.yml cannot run here (no Docker engine); its structure is checked instead."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = ["postgres", "temporal", "temporal-ui", "redis", "offline-model", "api", "worker"]


def test_every_part_is_there_with_a_health_check():
    for name in LONG_RUNNING + ["migrate", "temporal-search-attributes"]:
        assert name in SERVICES, name
    for name in LONG_RUNNING:
        assert "test" in SERVICES[name]["healthcheck"], name


def test_app_services_wait_for_their_dependencies():
    for name in ("api", "worker"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["temporal"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"  # Postgres persistence


def test_several_workers_share_the_api_configuration():
    assert SERVICES["worker"]["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"  # two unless configured
    api_env, worker_env = SERVICES["api"]["environment"], SERVICES["worker"]["environment"]
    assert api_env == worker_env
    for key in ("DATABASE_URL", "REDIS_URL", "TEMPORAL_ADDRESS", "JWT_SECRET"):
        assert key in api_env


def test_published_ports_are_loopback_only():
    for service in SERVICES.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_search_attributes_registered_match_the_code():
    from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

    command = " ".join(SERVICES["temporal-search-attributes"]["command"])
    for name in SEARCH_ATTRIBUTE_TYPES:
        assert name in command


def test_commands_point_at_real_files():
    assert "worker.py" in SERVICES["worker"]["command"] and (ROOT / "worker.py").exists()
    assert "api.main:app" in SERVICES["api"]["command"] and (ROOT / "api" / "main.py").exists()
    assert (ROOT / "local" / "model" / "server.py").exists() and (ROOT / "alembic.ini").exists()
    assert "pip install" in (ROOT / "Dockerfile").read_text()


def test_workers_can_build_the_sandbox_and_share_the_workspace():
    worker = SERVICES["worker"]
    assert {"seccomp=unconfined", "apparmor=unconfined"} <= set(worker["security_opt"])
    for name in ("api", "worker"):
        assert "workspace-data:/app/.data/workspace" in SERVICES[name]["volumes"], name
    assert "workspace-data" in COMPOSE["volumes"]


def test_prometheus_and_grafana_are_optional_and_scrape_the_api_and_every_worker():
    from settings import Settings

    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["observability"], name
        assert "test" in SERVICES[name]["healthcheck"], name
    assert not [name for name in LONG_RUNNING if "profiles" in SERVICES[name]]  # the product runs without them
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["copilot-api"]["static_configs"][0]["targets"] == ["api:8000"]
    workers = jobs["copilot-worker"]["dns_sd_configs"][0]
    env = SERVICES["worker"]["environment"]
    assert workers["names"] == ["worker"] and str(workers["port"]) == env["WORKER_METRICS_PORT"]
    assert env["WORKER_METRICS_HOST"] == "0.0.0.0"  # reachable on the compose network
    assert Settings.model_fields["worker_metrics_port"].default == workers["port"]
    mounts = " ".join(SERVICES["prometheus"]["volumes"] + SERVICES["grafana"]["volumes"])
    for path in ("deploy/prometheus/prometheus.yml", "deploy/grafana/provisioning", "deploy/grafana/dashboards"):
        assert f"./{path}:" in mounts and (ROOT / path).exists(), path


def test_the_dashboard_charts_metrics_that_exist():
    import json
    import re

    from prometheus_client import REGISTRY

    from observability.metrics import WORKFLOW_METRICS

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "copilot.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    ours = {sample for metric in REGISTRY.collect() for sample in
            (metric.name, metric.name + "_total", metric.name + "_bucket", metric.name + "_count")}
    ours |= {name + suffix for name in WORKFLOW_METRICS for suffix in ("", "_bucket", "_count")}
    charted = {name for expr in exprs for name in re.findall(r"\b(copilot_[a-z_]+)\b", expr)}
    assert charted and charted <= ours, charted - ours
    for family in ("copilot_turns_started_total", "copilot_time_to_first_token_seconds_bucket",
                   "copilot_tool_calls_total", "copilot_model_rounds_total", "copilot_sandbox_calls_total"):
        assert family in charted, family
    assert any(name.startswith("temporal_") for expr in exprs for name in re.findall(r"\b(temporal_[a-z_]+)\b", expr))
    provider = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "copilot.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
