"""docker-compose.yml and Dockerfile: Docker does not run here, so check their shape."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APP_SERVICES = ("migrate", "web", "worker", "beat")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_its_command():
    services = compose()["services"]

    assert set(services) == {*APP_SERVICES, "postgres", "redis"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "portal", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "portal", "beat"]
    # Loopback only: a proxy on the host terminates TLS (issue 10, finding 9).
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_app_services_run_in_production_from_the_env_file():
    services = compose()["services"]

    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == "."
        assert service["env_file"] == ".env"
        env = service["environment"]
        assert env["PORTAL_ENV"] == "production"
        # The runtime role; only migrate knows the owner's credentials.
        assert env["DATABASE_URL"].startswith("postgres://portal_app:${PORTAL_APP_PASSWORD")
        assert ("DATABASE_OWNER_URL" in env) == (name == "migrate")
        assert env["REDIS_URL"] == env["CELERY_BROKER_URL"] == "redis://redis:6379/0"


def test_healthchecks_gate_the_start_order():
    services = compose()["services"]

    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }


def test_dockerfile_runs_as_a_non_root_user():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]

    assert [line for line in lines if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    assert "USER portal" in lines
    assert any("pip install -r requirements.txt" in line for line in lines)
    assert not any("requirements-dev" in line for line in lines if not line.startswith("#"))
    assert any("collectstatic --noinput" in line for line in lines)
    assert any(line.startswith('CMD ["gunicorn", "portal.wsgi:application"') for line in lines)


def test_postgres_creates_the_owner_and_runtime_roles():
    postgres = compose()["services"]["postgres"]
    mounts = postgres["volumes"]
    assert (
        "./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-portal-roles.sh:ro"
        in mounts
    )
    assert "./deploy/postgres/roles.sql:/portal-sql/roles.sql:ro" in mounts
    assert (ROOT / "deploy" / "postgres" / "init-roles.sh").stat().st_mode & 0o111
    owner_url = compose()["services"]["migrate"]["environment"]["DATABASE_OWNER_URL"]
    assert owner_url.startswith("postgres://portal_owner:${PORTAL_OWNER_PASSWORD")
