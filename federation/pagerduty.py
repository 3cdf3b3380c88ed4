"""PagerDuty, the outside world's on-call: who is on call now, and paging the approvers.

The one place the portal speaks to PagerDuty, through its well-kept client ``pagerduty``
(the successor of pdpyras): ``RestApiV2Client`` for ``GET /oncalls`` and ``GET /users``,
``EventsApiV2Client`` for the Events API v2 (``trigger`` / ``resolve`` by dedup key).
Plain dataclasses come out; every failure (unreachable, timeout, 4xx/5xx, a body that is
not what PagerDuty sends) is one ``PagerDutyError``: the callers fall back (on-call
approval → human approval) or retry (a page).

Both APIs are https only (the client refuses anything else); the sandbox PagerDuty
(``federation/sandbox/pagerduty.py``) serves https with its own certificate, trusted
through ``PAGERDUTY_CA_BUNDLE``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pagerduty
from django.conf import settings


class PagerDutyError(Exception):
    """PagerDuty did not answer, or not as PagerDuty does."""


@dataclass(frozen=True)
class OnCall:
    """One on-call entry of ``GET /oncalls`` (with ``include[]=users``)."""

    email: str
    user_id: str
    schedule_id: str
    escalation_policy_id: str
    escalation_level: int
    start: str | None  # None: on call permanently (no schedule behind the level)
    end: str | None

    def evidence(self) -> dict[str, Any]:
        """What the audit log records when this entry counts as an approval."""
        return {
            "schedule": self.schedule_id,
            "escalation_policy": self.escalation_policy_id,
            "escalation_level": self.escalation_level,
            "user": self.user_id,
            "email": self.email,
            "start": self.start,
            "end": self.end,
        }


def rest_configured() -> bool:
    return bool(settings.PAGERDUTY_API_TOKEN and settings.PAGERDUTY_API_URL)


def events_configured() -> bool:
    return bool(settings.PAGERDUTY_ROUTING_KEY and settings.PAGERDUTY_EVENTS_URL)


def _tls() -> ssl.SSLContext | bool:
    if settings.PAGERDUTY_CA_BUNDLE:
        return ssl.create_default_context(cafile=settings.PAGERDUTY_CA_BUNDLE)
    return True


_Client = TypeVar("_Client", pagerduty.RestApiV2Client, pagerduty.EventsApiV2Client)


def _tune(client: _Client) -> _Client:
    # An emergency does not wait on PagerDuty: one attempt, a short timeout; the callers
    # decide what a failure means (fall back, or retry the task with backoff).
    client.timeout = settings.PAGERDUTY_TIMEOUT_SECONDS
    client.max_network_attempts = 0
    client.max_http_attempts = 0
    client.retry = {429: 0, 500: 0, 502: 0, 503: 0, 504: 0}
    return client


def rest_client() -> pagerduty.RestApiV2Client:
    try:
        client = pagerduty.RestApiV2Client(
            settings.PAGERDUTY_API_TOKEN, base_url=settings.PAGERDUTY_API_URL, verify=_tls()
        )
    except pagerduty.Error as exc:  # e.g. an http:// URL
        raise PagerDutyError(f"PagerDuty REST API: {exc}") from exc
    return _tune(client)


def events_client() -> pagerduty.EventsApiV2Client:
    try:
        client = pagerduty.EventsApiV2Client(
            settings.PAGERDUTY_ROUTING_KEY, base_url=settings.PAGERDUTY_EVENTS_URL, verify=_tls()
        )
    except pagerduty.Error as exc:
        raise PagerDutyError(f"PagerDuty Events API: {exc}") from exc
    return _tune(client)


def _call(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except pagerduty.Error as exc:
        raise PagerDutyError(f"{what}: {exc}") from exc
    except OSError as exc:  # the CA file, TLS and socket errors the client lets through
        raise PagerDutyError(f"{what}: {exc}") from exc


def _oncall(entry: dict[str, Any]) -> OnCall:
    try:
        user = entry["user"]
        return OnCall(
            email=str(user.get("email") or "").lower(),
            user_id=str(user["id"]),
            schedule_id=str((entry.get("schedule") or {}).get("id") or ""),
            escalation_policy_id=str(entry["escalation_policy"]["id"]),
            escalation_level=int(entry["escalation_level"]),
            start=entry.get("start"),
            end=entry.get("end"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PagerDutyError(f"GET /oncalls: unexpected entry {entry!r}") from exc


def oncalls(
    *, schedule_ids: list[str] | None = None, escalation_policy_ids: list[str] | None = None
) -> list[OnCall]:
    """Who is on call now for these schedules / escalation policies (users' emails
    included, the earliest entry per user and level)."""
    params: dict[str, Any] = {"include[]": ["users"], "earliest": "true"}
    if schedule_ids:
        params["schedule_ids[]"] = list(schedule_ids)
    if escalation_policy_ids:
        params["escalation_policy_ids[]"] = list(escalation_policy_ids)
    entries = _call("GET /oncalls", lambda: rest_client().list_all("oncalls", params=params))
    return [_oncall(entry) for entry in entries]


def find_user(email: str) -> dict[str, Any] | None:
    """The PagerDuty user with this email (``GET /users?query=``), or None."""
    users = _call("GET /users", lambda: rest_client().list_all("users", params={"query": email}))
    return next((u for u in users if str(u.get("email", "")).lower() == email.lower()), None)


def check_credentials() -> int:
    """One cheap read (``GET /users``, one page): the token works. Returns the users seen."""
    response = _call("GET /users", lambda: rest_client().get("/users", params={"limit": 1}))
    if not response.is_success:
        raise PagerDutyError(f"GET /users: HTTP {response.status_code}")
    return len(response.json().get("users", []))


def trigger(
    dedup_key: str,
    summary: str,
    *,
    source: str,
    details: dict[str, Any],
    links: list[dict[str, str]],
) -> str:
    """Open (or, with the same dedup key, join) the incident that pages the approvers."""
    result: str = _call(
        "Events API trigger",
        lambda: events_client().trigger(
            summary[:1024],
            source,
            dedup_key=dedup_key,
            severity="critical",
            custom_details=details,
            links=links,
        ),
    )
    return result


def resolve(dedup_key: str) -> str:
    """Resolve the incident of this dedup key (nothing waits any more)."""
    result: str = _call("Events API resolve", lambda: events_client().resolve(dedup_key))
    return result
