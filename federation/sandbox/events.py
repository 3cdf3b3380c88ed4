"""System Log events shaped like Okta's (``LogEvent`` in the OpenAPI document).

Only fields the spec allows are emitted, and never ``null`` where the spec
does not allow it: the contract tests validate these against ``api.yaml``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

# Okta's event type catalogue: eventType -> (displayMessage, legacyEventType).
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "group.user_membership.add": (
        "Add user to group membership",
        "core.user_group_member.user_add",
    ),
    "group.user_membership.remove": (
        "Remove user from group membership",
        "core.user_group_member.user_remove",
    ),
    "group.lifecycle.create": ("Create Okta group", "group.lifecycle.create"),
    "group.application_assignment.add": (
        "Add assigned application to group",
        "app.generic.config.app_group_assignment.add",
    ),
    "group.application_assignment.remove": (
        "Remove assigned application from group",
        "app.generic.config.app_group_assignment.remove",
    ),
    "application.lifecycle.activate": ("Activate application", "app.generic.config.app_activated"),
    "application.lifecycle.deactivate": (
        "Deactivate application",
        "app.generic.config.app_deactivated",
    ),
    "user.session.clear": ("Clear user session", "core.user.session.clear"),
    "user.session.start": ("User login to Okta", "core.user_auth.login_success"),
    "user.session.end": ("User logout from Okta", "core.user_auth.logout_success"),
    "user.authentication.sso": ("User single sign on to app", "app.auth.sso"),
}


def iso(moment: dt.datetime) -> str:
    """Okta's timestamp format: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp (``Z`` or offset); naive values are taken as UTC."""
    parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class Caller:
    """Who made an API call, as the System Log records it."""

    actor: dict[str, Any]
    external_session_id: str
    ip: str = "127.0.0.1"
    user_agent: str = "unknown"
    request_id: str = ""
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def user_target(user: dict[str, Any]) -> dict[str, Any]:
    profile = user["profile"]
    return {
        "id": user["id"],
        "type": "User",
        "alternateId": profile["login"],
        "displayName": f"{profile.get('firstName') or ''} {profile.get('lastName') or ''}".strip(),
    }


def group_target(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": group["id"],
        "type": "UserGroup",
        "alternateId": "unknown",
        "displayName": group["profile"]["name"],
    }


def app_target(app: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": app["id"],
        "type": "AppInstance",
        "alternateId": app["label"],
        "displayName": app["label"],
    }


def build_event(
    event_type: str,
    caller: Caller,
    targets: list[dict[str, Any]],
    *,
    published: dt.datetime,
    outcome: str = "SUCCESS",
    reason: str = "",
    display_message: str = "",
) -> dict[str, Any]:
    display, legacy = EVENT_TYPES.get(event_type, (event_type, event_type))
    geo = {"city": "Localhost", "country": "Sandbox"}
    event: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "published": iso(published),
        "eventType": event_type,
        "legacyEventType": legacy,
        "version": "0",
        "severity": "INFO" if outcome in {"SUCCESS", "ALLOW"} else "WARN",
        "displayMessage": display_message or display,
        "actor": caller.actor,
        "client": {
            "userAgent": {"rawUserAgent": caller.user_agent, "os": "Unknown", "browser": "UNKNOWN"},
            "zone": "null",
            "device": "Unknown",
            "ipAddress": caller.ip,
            "geographicalContext": geo,
        },
        "outcome": {"result": outcome, **({"reason": reason} if reason else {})},
        "target": targets,
        "transaction": {"type": "WEB", "id": caller.request_id or "sandbox", "detail": {}},
        "debugContext": {
            "debugData": {"requestId": caller.request_id, "requestUri": caller.path, **caller.extra}
        },
        "authenticationContext": {
            "authenticationStep": 0,
            "externalSessionId": caller.external_session_id,
        },
        "securityContext": {},
        "request": {"ipChain": [{"ip": caller.ip, "version": "V4", "geographicalContext": geo}]},
    }
    return event
