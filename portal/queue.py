"""The background work of the cross-cutting parts (notification delivery, audit
verification): one function per task, sent by name after the transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.celery import send_on_commit
from portal.models import NotificationLog

SEND_EMAIL = "portal.send_email"
SEND_SLACK = "portal.send_slack"
VERIFY_AUDIT_CHAIN = "portal.verify_audit_chain"


def send_email(subject: str, body: str, recipients: list[str], log_id: int) -> None:
    send_on_commit(SEND_EMAIL, [subject, body, recipients, log_id], on_failure=_not_queued(log_id))


def send_slack(message: dict[str, Any], log_id: int, url: str = "") -> None:
    """Post to the webhook, or to ``url`` (an interaction's response_url)."""
    send_on_commit(SEND_SLACK, [message, log_id, url], on_failure=_not_queued(log_id))


def _not_queued(log_id: int) -> Callable[[Exception], None]:
    """Redis is down: the change that caused the notification stands (it committed); the
    row says why nothing was delivered instead of the web request failing after the fact."""

    def record(exc: Exception) -> None:
        NotificationLog.objects.filter(pk=log_id).update(last_error=f"not queued: {exc}"[:2000])

    return record


def verify_audit_chain(
    trigger: str, run_id: int, *, on_failure: Callable[[Exception], None]
) -> None:
    send_on_commit(VERIFY_AUDIT_CHAIN, [trigger, run_id], on_failure=on_failure)
