"""The federation's tasks: switch the app and empty the groups in Okta (the failover), and
the beat tasks of the monitors (Identity Center health, the Okta System Log and
CloudTrail, AWS session denies), the return to normal, drills and readiness.

Thin: each loads by id and calls one service. The beat tasks never raise into beat --
the next run is the retry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from federation import queue
from federation.aws import session_denies
from federation.failover import drills, services, systemlog, work
from federation.idp import IdpError, IdpRetryableError, get_identity_provider, is_pause
from federation.models import Failover, FailoverStatus, ReadinessRun
from federation.monitor import health
from federation.readiness import checks as readiness
from portal.celery import OKTA_TASK_POLICY, backoff_seconds

# --- The failover in Okta ------------------------------------------------------------------


def _retry(task: Task[..., None], failover_id: int, exc: IdpError, paused: int) -> Any:
    """Switching the app must eventually happen: keep trying, slower and slower; while Okta's
    circuit is open or the rate limit is spent, paused (not counted, the error kept)."""
    if is_pause(exc):
        countdown = backoff_seconds(0, getattr(exc, "retry_after", None))
        paused += 1
    else:
        answer = " ".join(str(part) for part in (exc.status, exc.code) if part) or "no answer"
        services.record_error(
            failover_id,
            f"Okta could not switch the AWS federation app (Okta answered {answer}); "
            "the worker keeps trying.",
            okta_detail=str(exc),
        )
        retry_after = exc.retry_after if isinstance(exc, IdpRetryableError) else None
        countdown = backoff_seconds(min(task.request.retries - paused, 10), retry_after)
    due = queue.failover_work_due(failover_id, countdown)
    return task.retry(
        countdown=countdown, args=(failover_id,), kwargs={"paused": paused, "due": due.isoformat()}
    )


def _superseded(failover: Failover, due: str | None) -> bool:
    """A retry whose stamp is no longer the failover's: the sweep re-sent the work meanwhile
    (this retry waited too long behind a busy worker); the newer copy carries on alone."""
    if due is None:
        return False
    return failover.work_due_at != dt.datetime.fromisoformat(due)


@shared_task(name="federation.activate_federation_app", **OKTA_TASK_POLICY)
def activate_federation_app(
    self: Task[..., None], failover_id: int, paused: int = 0, due: str | None = None
) -> None:
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None or failover.status != FailoverStatus.ACTIVE or failover.app_activated_at:
        return
    if _superseded(failover, due):
        return
    try:
        get_identity_provider().activate_app(settings.OKTA_AWS_APP_ID)
    except IdpError as exc:
        raise _retry(self, failover_id, exc, paused) from exc
    services.confirm_app_activated(failover_id)


# Closing waits this long at most for the grants' own removals, then removes what is left.
CLOSE_WAIT_FOR_REMOVALS = dt.timedelta(minutes=10)
CLOSE_POLL_SECONDS = 3.0


def _may_wait(task: Task[..., None], failover: Failover) -> bool:
    if task.request.is_eager:
        return False  # run in-process (tests, `celery call --eager`): a countdown means nothing
    started = failover.close_requested_at or timezone.now()
    return timezone.now() - started < CLOSE_WAIT_FOR_REMOVALS


@shared_task(name="federation.close_federation", **OKTA_TASK_POLICY)
def close_federation(
    self: Task[..., None], failover_id: int, paused: int = 0, due: str | None = None
) -> None:
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None or failover.status != FailoverStatus.CLOSING:
        return
    if _superseded(failover, due):
        return
    idp = get_identity_provider()
    try:
        if _may_wait(self, failover) and services.removals_pending(failover):
            # The grants' own removals are running (paced to Okta's rate limit): switch the
            # app off now, then empty and verify the groups once they are done, instead of
            # removing every member twice.
            if paused == 0:
                idp.deactivate_app(settings.OKTA_AWS_APP_ID)
            stamp = queue.failover_work_due(failover_id, CLOSE_POLL_SECONDS).isoformat()
            raise self.retry(
                countdown=CLOSE_POLL_SECONDS,
                args=(failover_id,),
                kwargs={"paused": paused + 1, "due": stamp},
            )
        removed, sessions_ended = services.empty_federation(failover, idp)
    except IdpError as exc:
        raise _retry(self, failover_id, exc, paused) from exc
    if failover.is_drill:
        # The drill is judged once, now: read the System Log first so a sign-in made
        # since the last poll counts (a failed read is kept on the cursor; judge anyway).
        systemlog.poll_system_log(idp)
    services.confirm_closed(failover_id, removed_members=removed, sessions_ended=sessions_ended)


@shared_task(name="federation.sweep_failover_work")
def sweep_failover_work() -> int:
    """Every few seconds: re-send the failover's Okta work whose task was lost or never
    queued (Redis down when the approver opened or closed it)."""
    return len(work.resend_overdue_work())


@shared_task(name="federation.return_to_normal_tick")
def return_to_normal_tick() -> dict[str, list[int]]:
    """Beat: run scheduled deactivations that are due; remind those still signed in."""
    return {
        "deactivations": services.run_due_deactivations(),
        "reminded": services.send_due_reminders(),
    }


@shared_task(name="federation.remind_overdue_drill")
def remind_overdue_drill() -> bool:
    return drills.remind_if_overdue()


# --- Readiness -------------------------------------------------------------------------------


@shared_task(
    name="federation.verify_readiness",
    acks_late=True,
    reject_on_worker_lost=True,
    # Checks only read; a lost run is simply stale, the next one starts afresh.
    max_retries=0,
    # Every account of a large plan is assumed into and read: more than the default limit.
    soft_time_limit=600,
    time_limit=660,
)
def verify_readiness(run_id: int | None = None) -> str | None:
    """Check AWS and Okta against the plan: a run queued from the portal, or the daily one."""
    run: ReadinessRun | None
    if run_id is None:
        run = readiness.run_now(ReadinessRun.Trigger.SCHEDULE)
    else:
        run = readiness.execute_run(run_id)
    return run.status if run is not None else None


# --- The monitors -----------------------------------------------------------------------------


@shared_task(name="federation.poll_health", acks_late=True, ignore_result=True)
def poll_health() -> str:
    return health.poll().state


@shared_task(name="federation.poll_system_log", acks_late=True, ignore_result=True)
def poll_system_log() -> dict[str, int]:
    report = systemlog.poll_system_log()
    console_logins = systemlog.poll_cloudtrail()
    return {
        "events": report.events,
        "sign_ins": report.sign_ins + console_logins,
        "sign_outs": report.sign_outs,
        "alerts": len(report.alerts),
    }


@shared_task(name="federation.sweep_session_denies", acks_late=True, ignore_result=True)
def sweep_session_denies() -> dict[str, int]:
    return session_denies.sweep()
