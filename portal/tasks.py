"""The portal's own tasks: notification delivery and the periodic care of the audit log.

Thin and idempotent like every task: a redelivered message is not sent twice,
verifying twice or writing one more checkpoint is harmless.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError
from celery import Task, current_task, shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import OperationalError, transaction

from federation.monitor import machinery
from portal import audit, notify
from portal.audit import checkpoints, integrity
from portal.core import scheduler

log = logging.getLogger(__name__)


# --- Notification delivery ----------------------------------------------------------------


# Celery's Task is generic for type checkers only (celery-types); at run time it is not
# subscriptable (Celery < 5.7).
if TYPE_CHECKING:
    _Task = Task[..., None]
else:
    _Task = Task


class DeliveryTask(_Task):
    """Keeps the NotificationLog row in step with each attempt and the final outcome."""

    log_arg = 0  # the position of the NotificationLog id among the task's arguments

    def _log_id(self, args: Any, kwargs: Any) -> int | None:
        if kwargs and kwargs.get("log_id") is not None:
            log_id: int = kwargs["log_id"]
            return log_id
        return args[self.log_arg] if args and len(args) > self.log_arg else None

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        log.warning("%s: delivery failed, will retry: %s", self.name, exc)
        notify.mark_retrying(self._log_id(args, kwargs), exc)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        log_id = self._log_id(args, kwargs)
        log.error("%s: notification %s was not delivered: %s", self.name, log_id, exc)
        if log_id is None:
            return
        with transaction.atomic():
            audit.lock_chain()  # the lock order: the audit chain, then rows
            row = notify.mark_failed(log_id, exc)
            if row is None:
                return
            audit.record(
                "notification.failed",
                row,
                system="notifier",
                payload={
                    "channel": row.channel,
                    "event": row.event,
                    "subject": row.subject,
                    "recipients": row.recipients,
                    "error": str(exc)[:500],
                },
            )


DELIVERY: dict[str, Any] = {
    "base": DeliveryTask,
    "autoretry_for": (OSError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "acks_late": True,
}


@shared_task(
    name="portal.send_email", max_retries=settings.NOTIFY_MAX_RETRIES, log_arg=3, **DELIVERY
)
def send_email(subject: str, body: str, recipients: list[str], log_id: int | None = None) -> None:
    if notify.already_sent(log_id):
        return
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    notify.mark_sent(log_id)


@shared_task(
    name="portal.send_slack", max_retries=settings.NOTIFY_MAX_RETRIES, log_arg=1, **DELIVERY
)
def send_slack(message: dict[str, Any], log_id: int | None = None, url: str = "") -> None:
    if notify.already_sent(log_id):
        return
    target = url or settings.SLACK_WEBHOOK_URL
    if not target:
        # Slack was switched off after this was queued: fail (no retry) through
        # on_failure, which marks the row and writes the notification.failed event.
        raise notify.SlackRejected("SLACK_WEBHOOK_URL is not set")
    notify.post_to_slack(target, message)
    notify.mark_sent(log_id)


# --- The machinery's heartbeat (docs/reliability.md) --------------------------------------


@shared_task(name="portal.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    """Sent by beat every few seconds: a worker ran it, so beat -> Redis -> worker -> the
    database works. /readyz and the approvers' banner read its age."""
    scheduler.beat("worker", detail=current_task.request.hostname or "")
    machinery.check_and_alert()


# --- The audit log ------------------------------------------------------------------------


@shared_task(
    name="portal.verify_audit_chain",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def verify_audit_chain(trigger: str = "beat", run_id: int | None = None) -> bool:
    """Verify the chain and its checkpoints; alert when broken. True when intact."""
    result = integrity.run(f"task: {trigger}", run_id=run_id)
    if not result.intact:
        integrity.alert(result)
    return result.intact


@shared_task(
    name="portal.audit_checkpoint",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, OSError, BotoCoreError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def audit_checkpoint() -> int:
    """Sign the chain's head and store it outside the database; the seq checkpointed."""
    return checkpoints.write_checkpoint().seq
