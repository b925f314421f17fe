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
