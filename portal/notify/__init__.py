"""Tell people what happened: email and Slack, queued on commit, sent by a worker.

Every public function here is called inside the transaction of the state change
it announces. It writes one ``NotificationLog`` row per channel in that same
transaction (so the intent to notify commits or rolls back with the change) and
queues the delivery task after commit, so a notification never blocks or breaks
the request that caused it. The tasks retry with backoff (Celery autoretry);
after the last attempt the row is marked failed, the failure is logged and an
audit event ``notification.failed`` is written: never lost silently.

Slack is optional (``SLACK_WEBHOOK_URL``, an incoming webhook). When the Slack
app's signing secret is configured too, approval requests carry Approve / Deny
buttons, handled by ``portal.slack_views.interactivity``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.core.access import APPROVERS

if TYPE_CHECKING:
    from federation.models import Failover
    from requests_app.models import AccessRequest, Extension

log = logging.getLogger(__name__)

PREFIX = "[Emergency access]"


# --- Who and where ------------------------------------------------------------------------


def _approver_emails(exclude: str = "") -> list[str]:
    users = get_user_model().objects.filter(groups__name=APPROVERS, is_active=True)
    return sorted({u.email for u in users if u.email and u.email != exclude})


def _link(name: str, *args: object) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def _when(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"


def _slack_mention(user: Any) -> str:
    """``<@U123>`` when the user's Slack identity is known, else their username."""
    from portal.models import SlackIdentity

    identity = SlackIdentity.objects.filter(user=user).first() if user is not None else None
    if identity is not None:
        return f"<@{identity.slack_user_id}>"
    return user.get_username() if user is not None else ""


# --- Delivery -----------------------------------------------------------------------------


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
        blocks.append(_buttons(*decide))
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
    from portal.models import NotificationLog

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
        body = f"{text}\n\n{link}"
        transaction.on_commit(lambda: send_email.delay(subject, body, recipients, email_log.pk))
    if settings.SLACK_WEBHOOK_URL:
        slack_log = NotificationLog.objects.create(
            channel=NotificationLog.Channel.SLACK,
            event=event,
            subject=subject,
            recipients=["slack"],
            link=link,
        )
        message = slack_message(subject, text, link, mention=mention, decide=decide)
        transaction.on_commit(lambda: send_slack.delay(message, slack_log.pk))


def _tell_requester(req: AccessRequest, event: str, subject: str, text: str) -> None:
    """Notify the person who filed ``req``, by email and with a Slack mention."""
    notify(
        event,
        subject,
        text,
        _link("request-detail", req.pk),
        [req.requester.email],
        mention=_slack_mention(req.requester),
    )


# --- Access requests ----------------------------------------------------------------------


def request_filed(req: AccessRequest, *, escalation: int = 0) -> None:
    who = req.requester.get_username()
    again = (
        f" (still waiting after {escalation * settings.ESCALATION_MINUTES} min)"
        if escalation
        else ""
    )
    notify(
        "request.escalated" if escalation else "request.filed",
        f"#{req.pk} {who} asks for {req.role}{again}",
        f"{who} asks for {req.role.role_name} ({req.role.level.name}, "
        f"{req.duration_minutes} min) for {req.ticket}.\n\n{req.justification}",
        _link("request-detail", req.pk),
        _approver_emails(exclude=req.requester.email),
        decide=("request", str(req.pk)),
    )


def request_escalated(req: AccessRequest) -> None:
    request_filed(req, escalation=req.escalations)


def request_decided(req: AccessRequest) -> None:
    state = req.get_status_display().lower()
    comment = f"\n{req.decision_comment}" if req.decision_comment else ""
    _tell_requester(
        req,
        "request.decided",
        f"#{req.pk} {state}",
        f"Your request for {req.role} is {state}.{comment}",
    )


def grant_active(req: AccessRequest) -> None:
    _tell_requester(
        req,
        "request.active",
        f"#{req.pk} active until {timezone.localtime(req.expires_at):%H:%M %Z}",
        f"You are in {req.role.okta_group_name} until {_when(req.expires_at)}. "
        "Sign in through Okta's AWS Account Federation app.",
    )


def grant_ending_soon(req: AccessRequest) -> None:
    _tell_requester(
        req,
        "request.ending_soon",
        f"#{req.pk} ends at {timezone.localtime(req.expires_at):%H:%M %Z}",
        f"Your emergency access to {req.role} ends at {_when(req.expires_at)}. "
        "Save your work; ask for an extension on the request page if you still need it.",
    )


def grant_ended(req: AccessRequest) -> None:
    _tell_requester(
        req,
        "request.ended",
        f"#{req.pk} {req.get_status_display().lower()}",
        f"Your emergency access to {req.role} has ended: {req.end_reason} "
        "Sign out of the AWS console.",
    )


def grant_failed(req: AccessRequest) -> None:
    notify(
        "request.failed",
        f"#{req.pk} could not be granted",
        f"Adding {req.okta_login} to {req.role.okta_group_name} failed: {req.last_error}",
        _link("request-detail", req.pk),
        [req.requester.email, *_approver_emails()],
    )


def extension_requested(ext: Extension) -> None:
    req = ext.request
    who = ext.requested_by.get_username()
    notify(
        "extension.requested",
        f"#{req.pk} {who} asks for {ext.minutes} more minutes",
        f"{who} asks to extend {req.role} by {ext.minutes} min "
        f"(now until {_when(req.expires_at)}).\n\n{ext.justification}",
        _link("request-detail", req.pk),
        _approver_emails(exclude=req.requester.email),
        decide=("extension", f"{req.pk}:{ext.pk}"),
    )


def extension_decided(ext: Extension) -> None:
    req = ext.request
    state = ext.get_status_display().lower()
    until = f" Your access now ends at {_when(ext.new_expires_at)}." if ext.new_expires_at else ""
    _tell_requester(
        req,
        "extension.decided",
        f"#{req.pk} extension {state}",
        f"Your extension of {req.role} by {ext.minutes} min is {state}.{until}",
    )


# --- Failover -----------------------------------------------------------------------------


def failover_changed(failover: Failover, what: str) -> None:
    notify(
        f"failover.{what.split()[0]}",
        f"{failover} {what}",
        f"{failover} was {what}.\nReason: {failover.reason}",
        _link("dashboard"),
        _approver_emails(),
    )


def failover_proposed(failover: Failover) -> None:
    notify(
        "failover.proposed",
        f"{failover} needs a second approver",
        f"{failover.opened_by.get_username()} declared an Identity Center disruption: "
        f"{failover.reason}\nA second approver must confirm it before the federation app "
        "is activated.",
        _link("failover"),
        _approver_emails(exclude=failover.opened_by.email),
    )


def _failover_name(failover: Failover) -> str:
    """What people call it: "Failover #3" or "Drill #3" (no internal status)."""
    return f"{'Drill' if failover.is_drill else 'Failover'} #{failover.pk}"


def _held_request_link(failover: Failover, user: Any) -> str:
    """The user's own request page that holds (or held) access in ``failover``: the page
    with "I have signed out"; engineers may not open the return-to-normal page."""
    held = (
        failover.requests.filter(requester=user, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )
    if held is None:
        return _link("request-list") + "?mine=1"
    return _link("request-detail", held.pk)


def _tell_to_sign_out(event: str, subject: str, failover: Failover, users: list[Any]) -> None:
    text = (
        f"{_failover_name(failover)} is returning to normal: IAM Identity Center is back. "
        "Sign out of the AWS console now and use the AWS access portal (IAM Identity "
        "Center) again. Then press “I have signed out of AWS” on your request page "
        "(the link below)."
    )
    for user in users:
        notify(
            event,
            subject,
            text,
            _held_request_link(failover, user),
            [user.email],
            mention=_slack_mention(user),
        )


def return_started(failover: Failover, users: Iterable[Any]) -> None:
    """Step 2 of the return to normal: every emergency user is told to sign out (each with
    a link to their own request), approvers are told where to follow the sign-outs."""
    users = list(users)
    _tell_to_sign_out(
        "failover.return_started", "Sign out now: Identity Center is back", failover, users
    )
    names = ", ".join(u.get_username() for u in users) or "nobody"
    notify(
        "failover.return_started",
        f"{_failover_name(failover)} is returning to normal",
        f"{_failover_name(failover)} is returning to normal. Told to sign out of the AWS "
        f"console: {names}. No new emergency requests are accepted. Follow the sign-outs "
        "on the return-to-normal page.",
        _link("failover-return"),
        _approver_emails(),
    )


def signout_reminder(failover: Failover, users: Iterable[Any]) -> None:
    _tell_to_sign_out(
        "failover.signout_reminder",
        "Reminder: sign out of the AWS console now",
        failover,
        list(users),
    )


def report_ready(failover: Failover) -> None:
    notify(
        "failover.report",
        f"{failover}: report",
        f"{failover} is closed. The report lists every grant, approval and change made "
        "outside the portal.",
        _link("failover-report", failover.pk),
        _approver_emails(),
    )


def health_changed(state: Any) -> None:
    """Identity Center health turned DISRUPTED or HEALTHY (called by the health monitor).

    ``state`` is a state name or an object with ``.state`` (and optionally
    ``.since`` and ``.evidence``).
    """
    name = str(getattr(state, "state", state)).upper()
    if name == "DISRUPTED":
        text = (
            "IAM Identity Center looks disrupted. If people cannot reach the AWS access "
            "portal, declare a disruption in the portal to switch on emergency access."
        )
    elif name == "HEALTHY":
        text = (
            "IAM Identity Center looks healthy again. If a failover is open, start the "
            "return to normal."
        )
    else:
        text = f"IAM Identity Center health is now {name}."
    evidence = getattr(state, "evidence", None)
    if evidence:
        lines = [evidence] if isinstance(evidence, str) else list(evidence)
        text += "\nEvidence: " + "; ".join(lines)
    notify(
        "health.changed", f"Identity Center is {name}", text, _link("dashboard"), _approver_emails()
    )


def drift_found(summary: str, detail: dict[str, Any] | None = None) -> None:
    """Someone changed emergency access in Okta behind the portal's back."""
    extra = "".join(f"\n{key}: {value}" for key, value in (detail or {}).items())
    notify(
        "okta.drift",
        f"Drift in Okta: {summary}"[:200],
        f"{summary}{extra}\nSee the audit log.",
        _link("audit-log"),
        _approver_emails(),
    )


def drill_overdue(last_drill_at: Any, interval_days: int) -> None:
    since = (
        f"The last passed drill was on {_when(last_drill_at)}."
        if last_drill_at
        else ("No drill has passed yet.")
    )
    notify(
        "drill.overdue",
        "A failover drill is overdue",
        f"{since} Drills are due every {interval_days} days: run one from the Failover page "
        "to prove the federation app, groups and sign-in still work.",
        _link("failover"),
        _approver_emails(),
    )


def _staff_emails() -> list[str]:
    users = get_user_model().objects.filter(is_staff=True, is_active=True)
    return sorted({u.email for u in users if u.email})


def readiness_failed(run: Any) -> None:
    """The daily readiness check found the prepared set-up broken, or could not check it."""
    bad = [r for r in run.results if r.get("status") in ("fail", "unknown")]
    failing = sum(1 for r in bad if r["status"] == "fail")
    subject = (
        f"Emergency access is not ready: {failing} check{'s' if failing != 1 else ''} failing"
        if failing
        else "Emergency access readiness could not be checked"
    )
    lines = "\n".join(
        f"- [{r['status']}] {r['name']} {r.get('subject', '')}: {r['detail']}"
        + (f"\n  Fix: {r['fix']}" if r.get("fix") else "")
        for r in bad[:20]
    )
    more = f"\n… and {len(bad) - 20} more." if len(bad) > 20 else ""
    text = f"{run}:\n{lines}{more}"
    notify("readiness.failed", subject, text, _link("readiness"), _staff_emails())


# --- Tasks --------------------------------------------------------------------------------


class SlackRejected(Exception):
    """Slack answered 4xx: the webhook URL or message is wrong; retrying will not help."""


class SlackUnavailable(OSError):
    """Slack answered 429 or 5xx: try again later."""


def _mark(log_id: int | None, **fields: Any) -> None:
    from portal.models import NotificationLog

    if log_id is not None:
        NotificationLog.objects.filter(pk=log_id).update(**fields)


class DeliveryTask(Task):
    """Keeps the NotificationLog row in step with each attempt and the final outcome."""

    log_arg = 0  # the position of the NotificationLog id among the task's arguments

    def _log_id(self, args: Any, kwargs: Any) -> int | None:
        if kwargs and kwargs.get("log_id") is not None:
            return kwargs["log_id"]
        return args[self.log_arg] if args and len(args) > self.log_arg else None

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        from django.db.models import F

        log.warning("%s: delivery failed, will retry: %s", self.name, exc)
        _mark(self._log_id(args, kwargs), attempts=F("attempts") + 1, last_error=str(exc)[:2000])

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        from portal import audit
        from portal.models import NotificationLog

        log_id = self._log_id(args, kwargs)
        log.error("%s: notification %s was not delivered: %s", self.name, log_id, exc)
        if log_id is None:
            return
        with transaction.atomic():
            row = NotificationLog.objects.select_for_update().filter(pk=log_id).first()
            if row is None:
                return
            row.state = NotificationLog.State.FAILED
            row.attempts += 1
            row.last_error = str(exc)[:2000]
            row.save(update_fields=["state", "attempts", "last_error"])
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


def _already_sent(log_id: int | None) -> bool:
    """True when an earlier delivery of this row got through (a redelivered task, acks_late)."""
    from portal.models import NotificationLog

    return (
        log_id is not None
        and NotificationLog.objects.filter(pk=log_id, state=NotificationLog.State.SENT).exists()
    )


def _sent(log_id: int | None) -> None:
    from django.db.models import F

    from portal.models import NotificationLog

    _mark(
        log_id,
        state=NotificationLog.State.SENT,
        attempts=F("attempts") + 1,
        sent_at=timezone.now(),
        last_error="",
    )


DELIVERY = {
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
    if _already_sent(log_id):
        return
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    _sent(log_id)


def post_to_slack(url: str, message: dict[str, Any]) -> None:
    """POST one message to a Slack webhook (or an interaction's response_url)."""
    from slack_sdk.webhook import WebhookClient

    response = WebhookClient(url, timeout=settings.SLACK_TIMEOUT_SECONDS).send_dict(message)
    if response.status_code == 429 or response.status_code >= 500:
        raise SlackUnavailable(f"Slack answered {response.status_code}: {response.body[:200]}")
    if response.status_code >= 400:
        raise SlackRejected(
            f"Slack refused the message ({response.status_code}): {response.body[:200]}"
        )


@shared_task(
    name="portal.send_slack", max_retries=settings.NOTIFY_MAX_RETRIES, log_arg=1, **DELIVERY
)
def send_slack(message: dict[str, Any], log_id: int | None = None, url: str = "") -> None:
    if _already_sent(log_id):
        return
    target = url or settings.SLACK_WEBHOOK_URL
    if not target:
        # Slack was switched off after this was queued: fail (no retry) through
        # on_failure, which marks the row and writes the notification.failed event.
        raise SlackRejected("SLACK_WEBHOOK_URL is not set")
    post_to_slack(target, message)
    _sent(log_id)
