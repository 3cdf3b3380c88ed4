"""Failover side effects in Okta: switch the federation app, empty the groups."""

from __future__ import annotations

from typing import Any

from celery import shared_task, signals
from django.conf import settings

# monitor_tasks: the monitors' beat tasks (health, System Log); importing registers them.
from federation.failover import services
from federation.idp import (
    IdpError,
    IdpRetryableError,
    get_identity_provider,
    load_identity_provider,
)
from federation.models import Failover, FailoverStatus
from portal.celery import backoff_seconds

OKTA_TASK = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


def _retry(task, failover_id: int, exc: IdpError):
    services.record_error(failover_id, str(exc))
    retry_after = exc.retry_after if isinstance(exc, IdpRetryableError) else None
    # Switching the app must eventually happen: keep trying, slower and slower.
    return task.retry(countdown=backoff_seconds(min(task.request.retries, 10), retry_after))


@shared_task(name="federation.activate_federation_app", **OKTA_TASK)
def activate_federation_app(self, failover_id: int) -> None:
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None or failover.status != FailoverStatus.ACTIVE or failover.app_activated_at:
        return
    try:
        get_identity_provider().activate_app(settings.OKTA_AWS_APP_ID)
    except IdpError as exc:
        raise _retry(self, failover_id, exc) from exc
    services.confirm_app_activated(failover_id)


@shared_task(name="federation.close_federation", **OKTA_TASK)
def close_federation(self, failover_id: int) -> None:
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None or failover.status != FailoverStatus.CLOSING:
        return
    try:
        removed, sessions_ended = services.empty_federation(failover, get_identity_provider())
    except IdpError as exc:
        raise _retry(self, failover_id, exc) from exc
    services.confirm_closed(failover_id, removed_members=removed, sessions_ended=sessions_ended)


@shared_task(name="federation.return_to_normal_tick")
def return_to_normal_tick() -> dict[str, list[int]]:
    """Beat: run scheduled deactivations that are due; remind those still signed in."""
    from federation.failover import runbook

    return {
        "deactivations": runbook.run_due_deactivations(),
        "reminded": runbook.send_due_reminders(),
    }


@shared_task(name="federation.remind_overdue_drill")
def remind_overdue_drill() -> bool:
    from federation.failover import drills

    return drills.remind_if_overdue()


@shared_task(
    name="federation.verify_readiness",
    acks_late=True,
    reject_on_worker_lost=True,
    # Checks only read; a lost run is simply stale, the next one starts afresh.
    max_retries=0,
)
def verify_readiness(run_id: int | None = None) -> str | None:
    """Check AWS and Okta against the plan: a run queued from the portal, or the daily one."""
    from federation.models import ReadinessRun
    from federation.readiness import checks as readiness

    if run_id is None:
        run = readiness.run_now(ReadinessRun.Trigger.SCHEDULE)
    else:
        run = readiness.execute_run(run_id)
    return run.status if run is not None else None


@signals.worker_init.connect
def load_identity_provider_before_fork(**kwargs: Any) -> None:
    """Import the Okta adapter in the worker's parent process, before the pool forks.

    Imported lazily, each pool process paid the okta SDK's import (seconds; tens of
    seconds with four processes on a busy two-core machine) on its first Okta task:
    right when a surge of grants or a return to normal begins (bench/return_to_normal).
    """
    load_identity_provider()
