"""Thin tasks: take an id, call the domain, sort failures into retry / fail / ignore."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from federation.idp import (
    IdpError,
    IdpRetryableError,
    IdpUnavailable,
    get_identity_provider,
    guard,
    is_pause,
)
from federation.pagerduty import PagerDutyError
from portal.celery import OKTA_TASK_POLICY, backoff_seconds
from requests_app import break_glass, grants, oncall, paging, queue, reminders, services
from requests_app.models import AccessRequest, ApproverPage, Status

log = logging.getLogger(__name__)


def _pause(task: Task[..., None], request_id: int, exc: IdpError, paused: int) -> Any:
    """Retry after Okta's reset or the circuit's cool-down (with jitter), without counting an
    attempt: the retry carries how many of its retries were pauses."""
    countdown = backoff_seconds(0, getattr(exc, "retry_after", None))
    queue.work_due(request_id, countdown)
    return task.retry(countdown=countdown, args=(request_id,), kwargs={"paused": paused + 1})


@shared_task(name="requests_app.provision_grant", **OKTA_TASK_POLICY)
def provision_grant(self: Task[..., None], request_id: int, paused: int = 0) -> None:
    try:
        grants.provision_grant(request_id, get_identity_provider())
    except AccessRequest.DoesNotExist:
        log.warning("provision_grant: request %s does not exist; nothing to do", request_id)
    except IdpRetryableError as exc:
        if is_pause(exc):
            if isinstance(exc, IdpUnavailable) and not _said_paused(request_id):
                said = grants.okta_paused_for_people(request_id, exc)
                services.record_provisioning_error(
                    request_id, said, will_retry=True, okta_detail=str(exc)
                )
            raise _pause(self, request_id, exc, paused) from exc
        attempts = self.request.retries - paused
        gives_up = attempts >= settings.GRANT_TASK_MAX_RETRIES
        said = grants.okta_error_for_people(request_id, exc, will_retry=not gives_up)
        services.record_provisioning_error(
            request_id, said, will_retry=not gives_up, okta_detail=str(exc)
        )
        if gives_up:
            services.fail(request_id, error=f"Okta kept failing. {said}")
            return
        countdown = backoff_seconds(attempts, exc.retry_after)
        queue.work_due(request_id, countdown)
        raise self.retry(
            countdown=countdown, args=(request_id,), kwargs={"paused": paused}
        ) from exc
    except IdpError as exc:
        said = grants.okta_error_for_people(request_id, exc, will_retry=False)
        services.record_provisioning_error(request_id, said, will_retry=False, okta_detail=str(exc))
        services.fail(request_id, error=f"Okta refused. {said}")


def _said_paused(request_id: int) -> bool:
    """The grant already says it waits for Okta (once per outage, not at every probe)."""
    error = AccessRequest.objects.filter(pk=request_id).values_list("last_error", flat=True)
    return bool(error) and grants.PAUSED_MARK in (error[0] or "")


@shared_task(name="requests_app.deprovision_grant", **OKTA_TASK_POLICY)
def deprovision_grant(self: Task[..., None], request_id: int, paused: int = 0) -> None:
    try:
        grants.deprovision_grant(request_id, get_identity_provider())
    except AccessRequest.DoesNotExist:
        log.warning("deprovision_grant: request %s does not exist; nothing to do", request_id)
    except IdpError as exc:
        if is_pause(exc):
            raise _pause(self, request_id, exc, paused) from exc
        # Removal must happen: retried forever, never given up (backoff capped at
        # GRANT_TASK_BACKOFF_MAX_SECONDS); the reconciler is a backstop besides.
        attempts = self.request.retries - paused
        if attempts >= settings.GRANT_TASK_MAX_RETRIES:
            log.error(
                "Removing the member for request %s keeps failing (attempt %d), retrying: %s",
                request_id,
                attempts + 1,
                exc,
            )
        retry_after = exc.retry_after if isinstance(exc, IdpRetryableError) else None
        countdown = backoff_seconds(min(attempts, 10), retry_after)
        queue.work_due(request_id, countdown)
        raise self.retry(
            countdown=countdown, args=(request_id,), kwargs={"paused": paused}
        ) from exc


@shared_task(name="requests_app.sweep_grant_work")
def sweep_grant_work() -> int:
    """Every few seconds: re-send the Okta work of grants whose task was lost."""
    return len(grants.resend_overdue_work())


@shared_task(name="requests_app.expire_due_grants")
def expire_due_grants() -> int:
    now = timezone.now()
    due = AccessRequest.objects.filter(status=Status.ACTIVE, expires_at__lte=now)
    return sum(1 for pk in due.values_list("pk", flat=True) if services.expire(pk, now=now))


@shared_task(name="requests_app.lapse_unanswered_requests")
def lapse_unanswered_requests() -> int:
    cutoff = timezone.now() - dt.timedelta(minutes=settings.REQUEST_LAPSE_MINUTES)
    stale = AccessRequest.objects.filter(status=Status.PENDING, created_at__lt=cutoff)
    reason = f"No decision within {settings.REQUEST_LAPSE_MINUTES} minutes."
    return sum(1 for pk in stale.values_list("pk", flat=True) if services.lapse(pk, reason=reason))


@shared_task(name="requests_app.reconcile_emergency_groups", acks_late=True)
def reconcile_emergency_groups(full: bool = False) -> dict[str, int]:
    """Beat's reconciler tick (a full pass only when due), or now one that lists every
    emergency group (``full``: after an outage, from the runbook)."""
    idp = get_identity_provider()
    try:
        # Background work: it yields Okta's rate limit to grants and removals.
        with guard.background():
            if full:
                report = grants.reconcile_emergency_groups(idp, complete=True)
            else:
                report = grants.reconcile(idp)
    except IdpError as exc:
        log.warning("Reconciliation could not finish, next run will: %s", exc)
        return {}
    return {
        name: value if isinstance(value, int) else len(value)
        for name, value in vars(report).items()
    }


@shared_task(name="requests_app.escalate_pending_requests")
def escalate_pending_requests() -> int:
    return len(reminders.escalate_pending())


@shared_task(name="requests_app.warn_ending_grants")
def warn_ending_grants() -> int:
    return len(reminders.warn_ending())


@shared_task(name="requests_app.escalate_break_glass_reviews")
def escalate_break_glass_reviews() -> int:
    return len(break_glass.escalate_overdue())


# --- PagerDuty -------------------------------------------------------------------------


@shared_task(name="requests_app.check_oncall", acks_late=True, reject_on_worker_lost=True)
def check_oncall(request_id: int) -> str:
    """The on-call rule: one lookup; any failure falls back to human approval (audited)."""
    try:
        found = oncall.check(request_id)
    except AccessRequest.DoesNotExist:
        return ""
    return found.outcome if found else ""


@shared_task(name="requests_app.page_approvers")
def page_approvers() -> list[str]:
    """Beat: page the approvers once per failover while requests wait; resolve after."""
    return paging.check()


@shared_task(name="requests_app.send_page", bind=True, acks_late=True, reject_on_worker_lost=True)
def send_page(self: Task[..., str], page_id: int) -> str:
    try:
        return paging.send(page_id)
    except ApproverPage.DoesNotExist:
        return ""
    except PagerDutyError as exc:
        final = self.request.retries >= settings.GRANT_TASK_MAX_RETRIES
        paging.send_failed(page_id, str(exc), final=final)
        if final:
            log.error("PagerDuty kept refusing page %s: %s", page_id, exc)
            return ""
        raise self.retry(countdown=backoff_seconds(self.request.retries)) from exc
