"""The background work the failover and readiness services start: one function per task,
sent by name after the transaction commits. Tests patch these functions, nothing else."""

from __future__ import annotations

from portal.celery import send_on_commit

ACTIVATE_FEDERATION_APP = "federation.activate_federation_app"
CLOSE_FEDERATION = "federation.close_federation"
VERIFY_READINESS = "federation.verify_readiness"


def activate_federation_app(failover_id: int) -> None:
    send_on_commit(ACTIVATE_FEDERATION_APP, [failover_id])


def close_federation(failover_id: int) -> None:
    """Deactivate the app, empty every emergency group, end sessions, then close."""
    send_on_commit(CLOSE_FEDERATION, [failover_id])


def verify_readiness(run_id: int) -> None:
    send_on_commit(VERIFY_READINESS, [run_id])


POLL_HEALTH = "federation.poll_health"
POLL_SYSTEM_LOG = "federation.poll_system_log"


def poll_health() -> None:
    """Sample Identity Center's health now (beat does it every HEALTH_POLL_SECONDS)."""
    send_on_commit(POLL_HEALTH, [])


def poll_system_log() -> None:
    """Read the Okta System Log now (beat does it every SYSTEM_LOG_POLL_SECONDS)."""
    send_on_commit(POLL_SYSTEM_LOG, [])
