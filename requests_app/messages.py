"""What the portal tells people about access requests, grants and extensions.

Each function is called inside the transaction of the change it announces; delivery
is ``portal.notify``'s job.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.notify import approver_emails, link, notify, slack_mention, when
from requests_app.models import AccessRequest, Extension


def _tell_requester(req: AccessRequest, event: str, subject: str, text: str) -> None:
    """Notify the person who filed ``req``, by email and with a Slack mention."""
    notify(
        event,
        subject,
        text,
        link("request-detail", req.pk),
        [req.requester.email],
        mention=slack_mention(req.requester),
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
        f"{who} (Okta login {req.okta_login}) asks for {req.role.role_name} "
        f"({req.role.level.name}, {req.duration_minutes} min) for {req.ticket}."
        f"\n\n{req.justification}",
        link("request-detail", req.pk),
        approver_emails(exclude=req.requester.email),
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
        f"You are in {req.role.okta_group_name} until {when(req.expires_at)}. "
        "Sign in through Okta's AWS Account Federation app.",
    )


def grant_ending_soon(req: AccessRequest) -> None:
    _tell_requester(
        req,
        "request.ending_soon",
        f"#{req.pk} ends at {timezone.localtime(req.expires_at):%H:%M %Z}",
        f"Your emergency access to {req.role} ends at {when(req.expires_at)}. "
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
        link("request-detail", req.pk),
        [req.requester.email, *approver_emails()],
    )


def extension_requested(ext: Extension) -> None:
    req = ext.request
    who = ext.requested_by.get_username()
    notify(
        "extension.requested",
        f"#{req.pk} {who} asks for {ext.minutes} more minutes",
        f"{who} asks to extend {req.role} by {ext.minutes} min "
        f"(now until {when(req.expires_at)}).\n\n{ext.justification}",
        link("request-detail", req.pk),
        approver_emails(exclude=req.requester.email),
        decide=("extension", f"{req.pk}:{ext.pk}"),
    )


def extension_decided(ext: Extension) -> None:
    req = ext.request
    state = ext.get_status_display().lower()
    until = f" Your access now ends at {when(ext.new_expires_at)}." if ext.new_expires_at else ""
    _tell_requester(
        req,
        "extension.decided",
        f"#{req.pk} extension {state}",
        f"Your extension of {req.role} by {ext.minutes} min is {state}.{until}",
    )


def drift_found(summary: str, detail: dict[str, Any] | None = None) -> None:
    """Someone changed emergency access in Okta behind the portal's back."""
    extra = "".join(f"\n{key}: {value}" for key, value in (detail or {}).items())
    notify(
        "okta.drift",
        f"Drift in Okta: {summary}"[:200],
        f"{summary}{extra}\nSee the audit log.",
        link("audit-log"),
        approver_emails(),
    )
