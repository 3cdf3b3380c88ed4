"""Tell people what happened: email and Slack, queued on commit, sent by a worker.

Delivery only: the texts live with the part of the portal that has something to say
(``requests_app/messages.py``, ``federation/failover/messages.py``, ...), and each
calls ``notify()`` inside the transaction of the state change it announces. ``notify``
writes one ``NotificationLog`` row per channel in that same transaction (so the intent
to notify commits or rolls back with the change) and queues the delivery task after
commit, so a notification never blocks or breaks the request that caused it. The
delivery tasks (``portal/tasks.py``) retry with backoff; after the last attempt the row
is marked failed, the failure is logged and an audit event ``notification.failed`` is
written: never lost silently.

Slack is optional (``SLACK_WEBHOOK_URL``, an incoming webhook). When the Slack
app's signing secret is configured too, approval requests carry Approve / Deny
buttons, handled by ``portal.slack_views.interactivity``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from slack_sdk.webhook import WebhookClient

from portal import queue
from portal.core.access import APPROVERS
from portal.models import NotificationLog, SlackIdentity

log = logging.getLogger(__name__)

PREFIX = "[Emergency access]"


# --- Who and where ------------------------------------------------------------------------


def approver_emails(exclude: str = "") -> list[str]:
    users = get_user_model().objects.filter(groups__name=APPROVERS, is_active=True)
    return sorted({u.email for u in users if u.email and u.email != exclude})


def staff_emails() -> list[str]:
    users = get_user_model().objects.filter(is_staff=True, is_active=True)
    return sorted({u.email for u in users if u.email})


def link(name: str, *args: object) -> str:
    """The absolute URL of a portal page, for a message."""
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def when(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


def slack_mention(user: Any) -> str:
    """``<@U123>`` when the user's Slack identity is known, else their username."""
    identity = SlackIdentity.objects.filter(user=user).first() if user is not None else None
    if identity is not None:
        return f"<@{identity.slack_user_id}>"
    return user.get_username() if user is not None else ""


# --- Messages -----------------------------------------------------------------------------


# The action_id of the reason box above the buttons; Slack sends what was typed in it with
# the button press (the payload's ``state.values``).
REASON_ACTION_ID = "reason"


def _reason_box(kind: str, value: str) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": f"reason-{kind}-{value}",
        "optional": True,
        "label": {"type": "plain_text", "text": "Reason (a denial needs one; it is shown)"},
        "element": {"type": "plain_text_input", "action_id": REASON_ACTION_ID},
    }


def _buttons(kind: str, value: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": f"decide-{kind}-{value}",
        "elements": [
            {
                "type": "button",
                "action_id": f"approve_{kind}",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": f"deny_{kind}",
                "text": {"type": "plain_text", "text": "Deny"},
                "style": "danger",
                "value": value,
            },
        ],
    }


def slack_message(
    subject: str, text: str, link: str, *, mention: str = "", decide: tuple[str, str] | None = None
) -> dict[str, Any]:
    """An incoming-webhook message: a fallback text and Block Kit blocks."""
    head = f"{mention} " if mention else ""
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{head}*{subject}*\n{text}"[:2900]},
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in the portal>"}],
        },
    ]
    if decide is not None and settings.SLACK_SIGNING_SECRET:
        blocks += [_reason_box(*decide), _buttons(*decide)]
    return {"text": f"{head}{subject} — {link}", "blocks": blocks}


def notify(
    event: str,
    subject: str,
    text: str,
    link: str,
    emails: Iterable[str],
    *,
    mention: str = "",
    decide: tuple[str, str] | None = None,
) -> None:
    """Record and queue one notification on every configured channel."""
    subject = f"{PREFIX} {subject}"[:255]
    recipients = sorted({e for e in emails if e})
    if recipients:
        email_log = NotificationLog.objects.create(
            channel=NotificationLog.Channel.EMAIL,
            event=event,
            subject=subject,
            recipients=recipients,
            link=link,
        )
        queue.send_email(subject, f"{text}\n\n{link}", recipients, email_log.pk)
    if settings.SLACK_WEBHOOK_URL:
        slack_log = NotificationLog.objects.create(
            channel=NotificationLog.Channel.SLACK,
            event=event,
            subject=subject,
            recipients=["slack"],
            link=link,
        )
        message = slack_message(subject, text, link, mention=mention, decide=decide)
        queue.send_slack(message, slack_log.pk)


def notify_now(event: str, subject: str, text: str, link: str, emails: Iterable[str]) -> None:
    """Deliver one notification from this process (email and Slack), not through the
    queue: for "the worker is down", which a queued delivery would wait for. Recorded like
    any other (the rows are written in the caller's transaction) and sent once that
    transaction commits, directly from this process: a rolled-back change sends nothing.
    A channel that fails then falls back to the queue (delivered once a worker is back)."""
    subject = f"{PREFIX} {subject}"[:255]
    recipients = sorted({e for e in emails if e})
    if recipients:
        row = NotificationLog.objects.create(
            channel=NotificationLog.Channel.EMAIL, event=event, subject=subject,
            recipients=recipients, link=link,
        )  # fmt: skip
        body = f"{text}\n\n{link}"
        transaction.on_commit(partial(_email_now, event, subject, body, recipients, row.pk))
    if settings.SLACK_WEBHOOK_URL:
        row = NotificationLog.objects.create(
            channel=NotificationLog.Channel.SLACK, event=event, subject=subject,
            recipients=["slack"], link=link,
        )  # fmt: skip
        message = slack_message(subject, text, link)
        transaction.on_commit(partial(_slack_now, event, message, row.pk))


def _email_now(event: str, subject: str, body: str, recipients: list[str], log_id: int) -> None:
    try:
        send_mail(subject, body, None, recipients)
        mark_sent(log_id)
    except Exception as exc:
        log.warning("could not email %s now, queued: %s", event, exc)
        queue.send_email(subject, body, recipients, log_id)


def _slack_now(event: str, message: dict[str, Any], log_id: int) -> None:
    try:
        post_to_slack(settings.SLACK_WEBHOOK_URL, message)
        mark_sent(log_id)
    except Exception as exc:
        log.warning("could not post %s to Slack now, queued: %s", event, exc)
        queue.send_slack(message, log_id)


# --- Delivery -----------------------------------------------------------------------------


class SlackRejected(Exception):
    """Slack answered 4xx: the webhook URL or message is wrong; retrying will not help."""


class SlackUnavailable(OSError):
    """Slack answered 429 or 5xx: try again later."""


def post_to_slack(url: str, message: dict[str, Any]) -> None:
    """POST one message to a Slack webhook (or an interaction's response_url)."""
    response = WebhookClient(url, timeout=settings.SLACK_TIMEOUT_SECONDS).send_dict(message)
    if response.status_code == 429 or response.status_code >= 500:
        raise SlackUnavailable(f"Slack answered {response.status_code}: {response.body[:200]}")
    if response.status_code >= 400:
        raise SlackRejected(
            f"Slack refused the message ({response.status_code}): {response.body[:200]}"
        )


def already_sent(log_id: int | None) -> bool:
    """True when an earlier delivery of this row got through (a redelivered task, acks_late)."""
    return (
        log_id is not None
        and NotificationLog.objects.filter(pk=log_id, state=NotificationLog.State.SENT).exists()
    )


def mark_sent(log_id: int | None) -> None:
    _mark(
        log_id,
        state=NotificationLog.State.SENT,
        attempts=F("attempts") + 1,
        sent_at=timezone.now(),
        last_error="",
    )


def mark_retrying(log_id: int | None, error: BaseException) -> None:
    _mark(log_id, attempts=F("attempts") + 1, last_error=str(error)[:2000])


def _mark(log_id: int | None, **fields: Any) -> None:
    if log_id is not None:
        NotificationLog.objects.filter(pk=log_id).update(**fields)


def mark_failed(log_id: int, error: BaseException) -> NotificationLog | None:
    """Mark the row failed (in the caller's transaction, under a row lock); the row."""
    row = NotificationLog.objects.select_for_update().filter(pk=log_id).first()
    if row is None:
        return None
    row.state = NotificationLog.State.FAILED
    row.attempts += 1
    row.last_error = str(error)[:2000]
    row.save(update_fields=["state", "attempts", "last_error"])
    return row
