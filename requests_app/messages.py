"""What the portal tells people about access requests, grants and extensions.

Each function is called inside the transaction of the change it announces; delivery
is ``portal.notify``'s job.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.notify import approver_emails, link, notify, slack_mention, staff_emails, when
from requests_app.eligibility import approver_emails_for
from requests_app.models import AccessRequest, BreakGlassReview, Extension, ReviewVerdict


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
        # Only the approvers the plan lets decide this role (all of them when it names none).
        approver_emails_for(req.role, exclude=req.requester.email),
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
        approver_emails_for(req.role, exclude=req.requester.email),
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


# --- Break-glass ----------------------------------------------------------------------------


def break_glass_activated(req: AccessRequest, review: BreakGlassReview) -> None:
    """Loud on purpose: every approver (and staff) at once, not one by one."""
    who = req.requester.get_username()
    drill = " (drill)" if req.failover.is_drill else ""
    notify(
        "request.break_glass",
        f"BREAK-GLASS{drill}: #{req.pk} {who} activated {req.role} without approval",
        f"Nobody decided request #{req.pk} within {req.role.level.break_glass_after_minutes} "
        f"min, so {who} (Okta login {req.okta_login}) activated {req.role.role_name} "
        f"({req.role.level.name}) themselves for {req.duration_minutes} min, ticket "
        f"{req.ticket}.\n\n{req.justification}\n\nTwo approvers other than {who} must "
        f"review it by {when(review.due_at)}; you can revoke it now.",
        link("request-detail", req.pk),
        [*approver_emails(exclude=req.requester.email), *staff_emails()],
    )


def break_glass_review_overdue(review: BreakGlassReview) -> None:
    req = review.request
    notify(
        "break_glass.review_overdue",
        f"Break-glass review of #{req.pk} is overdue",
        f"The break-glass grant of #{req.pk} ({req.requester.get_username()}, {req.role}) "
        f"was due for review by {when(review.due_at)}; two approvers other than the "
        "requester must accept or flag it.",
        link("request-detail", req.pk),
        [*approver_emails(exclude=req.requester.email), *staff_emails()],
    )


def break_glass_flagged(review: BreakGlassReview, verdict: ReviewVerdict) -> None:
    req = review.request
    comment = f"\n\n{verdict.comment}" if verdict.comment else ""
    notify(
        "break_glass.flagged",
        f"Break-glass use of #{req.pk} was flagged",
        f"{verdict.reviewer.get_username()} flagged the break-glass grant of #{req.pk} "
        f"({req.requester.get_username()}, {req.role}, ticket {req.ticket}).{comment}",
        link("request-detail", req.pk),
        [*staff_emails(), *approver_emails(exclude=req.requester.email)],
    )
