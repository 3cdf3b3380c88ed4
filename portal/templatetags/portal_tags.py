"""Small display helpers shared by the portal's templates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

register = template.Library()

EVENT_LABELS = {
    "aws.role_used": "Used the role in AWS (seen by AWS)",
    "aws.role_use_alert": "Emergency role used in AWS outside a grant",
    "request.filed": "Filed the request",
    "request.approval_added": "Approval added",
    "request.approved": "Request approved",
    "request.active": "Access granted in Okta",
    "request.denied": "Denied",
    "request.cancelled": "Cancelled",
    "request.lapsed": "Lapsed unanswered",
    "request.failed": "Granting failed",
    "request.expired": "Access expired",
    "request.revoked": "Revoked",
    "request.okta_error": "Okta error",
    "request.membership_removed": "Okta membership removed",
    "failover.opened": "Failover opened",
    "failover.app_activated": "Federation app activated",
    "failover.closing": "Closing: app deactivated, groups emptied",
    "failover.closed": "Failover closed",
    "failover.okta_error": "Okta error",
    "failover.proposed": "Failover proposed (needs a second approver)",
    "failover.confirmed": "Failover confirmed by a second approver",
    "failover.withdrawn": "Proposed failover withdrawn",
    "failover.return_started": "Return to normal: everyone told to sign out",
    "failover.signout_reminder": "Sign-out reminder sent",
    "failover.deactivation_scheduled": "Deactivation scheduled",
    "failover.sessions_ended": "Okta sessions ended at close",
    "failover.drill_result": "Drill result",
    "request.extension_requested": "Asked for more time",
    "request.extension_approval_added": "Extension approval added",
    "request.extended": "Access extended",
    "request.extension_denied": "Extension denied",
    "request.extension_cancelled": "Extension withdrawn",
    "request.extension_lapsed": "Extension lapsed",
    "request.escalated": "Approvers reminded (escalation)",
    "notification.failed": "Notification could not be delivered",
    "drill.overdue_reminder": "Drill overdue: approvers reminded",
    "request.signed_out": "Said they signed out of AWS",
    "request.sessions_ended": "Sessions ended at the end of access (see detail)",
    "okta.outside_change": "Changed in Okta outside the portal",
    "okta.log_cursor_reset": "System Log read again from a recent time (Okta forgot the cursor)",
    "health.changed": "Identity Center health changed",
    "aws.session_deny_attached": "AWS session deny attached",
    "aws.session_deny_removed": "AWS session deny removed",
}


@register.filter
def when(value: dt.datetime | None) -> SafeString | str:
    """A timestamp in the portal's time zone inside a machine-readable ``<time>``."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    # Digits and the zone's name: only the name (a setting) could hold markup. A history
    # page shows 75 of these, and format_html's escaping of each part cost more than the
    # formatting.
    zone = escape(local.strftime("%Z"))
    return mark_safe(  # noqa: S308 -- the one part not made of digits is escaped
        f'<time datetime="{value.isoformat()}" title="{local:%Y-%m-%d %H:%M:%S} {zone}">'
        f"{local:%Y-%m-%d %H:%M}</time>"
    )


@register.filter
def event_label(action: str) -> str:
    return EVENT_LABELS.get(action, action)


# Machine detail kept for the audit log's JSON, not for the one-line summary people read.
SUMMARY_HIDDEN = frozenset({"okta_detail", "okta_user_id", "from"})


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        value = ", ".join(str(v) for v in value) or "none"
    elif isinstance(value, dict | list):
        value = json.dumps(value, cls=DjangoJSONEncoder)
    return Truncator(str(value)).chars(80)


@register.filter
def payload_summary(payload: dict[str, Any] | None) -> str:
    """``key: value · key: value`` — one readable line of an audit payload, in words
    (``drill: no``, not ``drill: False``)."""
    if not payload:
        return ""
    return " · ".join(
        f"{key.replace('_', ' ')}: {_short(value)}"
        for key, value in payload.items()
        if value not in (None, "") and key not in SUMMARY_HIDDEN
    )


@register.filter
def event_title(event: Any) -> str:
    """The event's label, made specific where the payload says what really happened."""
    if event.action == "request.sessions_ended":
        payload = event.payload or {}
        okta = {
            "revoked": "Okta sessions ended",
            "no such Okta user": "No Okta session to end (no such Okta user)",
        }.get(payload.get("okta_sessions", ""), "Okta sessions kept (another live grant)")
        deny = payload.get("aws_session_deny", "")
        if deny == "deny attached":
            return f"{okta}; AWS console sessions revoked"
        if deny == "deny pending":
            return f"{okta}; AWS console sessions being revoked"
        return okta
    if event.action == "request.revoked" and (event.payload or {}).get("ended_by_requester"):
        return "Ended early by the requester"
    return event_label(event.action)


@register.filter
def pretty_json(payload: Any) -> str:
    return json.dumps(payload, cls=DjangoJSONEncoder, indent=2, sort_keys=True)


@register.simple_tag
def status_badge(status: str, label: str) -> SafeString:
    return format_html('<span class="badge status-{}">{}</span>', status, label)
