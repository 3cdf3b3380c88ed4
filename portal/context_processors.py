from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Case, When
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from federation.evidence_models import HealthStateChange
from federation.models import Failover
from portal.core import access
from requests_app.models import (
    HOLDING_STATUSES,
    AccessRequest,
    Extension,
    ExtensionStatus,
    Status,
)


def portal(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    if not user.is_authenticated:
        return {}
    return {
        # Looked up once, when a template first asks: a page's fragment (a poll) does not.
        "current_failover": SimpleLazyObject(_current_failover),
        "user_is_approver": access.is_approver(user),
        "user_is_auditor": access.is_auditor(user),
        "user_can_write": access.can_write(user),
        "portal_demo": not settings.PRODUCTION,
        # Called only where a template asks (the banner in base.html): no query otherwise.
        "health_disrupted": _health_disrupted,
        # Lazy as well: one count for the menu badge, one lookup for the returning banner.
        "pending_approvals": lambda: _pending_approvals(user),
        "my_held_request": lambda: _my_held_request(user),
    }


def _current_failover() -> Failover | None:
    return Failover.objects.select_related("opened_by", "close_requested_by").current()


def _pending_approvals(user: Any) -> int:
    """What waits for this approver's decision: requests and extensions of others."""
    if not access.is_approver(user):
        return 0
    requests = (
        AccessRequest.objects.filter(status=Status.PENDING)
        .exclude(requester=user)
        .exclude(approvals__approver=user)
        .count()
    )
    extensions = (
        Extension.objects.filter(status=ExtensionStatus.PENDING, request__status=Status.ACTIVE)
        .exclude(request__requester=user)
        .count()
    )
    return requests + extensions


def _my_held_request(user: Any) -> AccessRequest | None:
    """The user's granted request in the current failover (where "I have signed out" is)."""
    return (
        AccessRequest.objects.filter(
            requester=user,
            activated_at__isnull=False,
            failover__in=Failover.objects.exclude(status="closed"),
        )
        # A grant still held first, then the latest one (its sign-out may be pending).
        .annotate(held=Case(When(status__in=HOLDING_STATUSES, then=0), default=1))
        .order_by("held", "-activated_at")
        .first()
    )


def _health_disrupted() -> Any:
    """The Identity Center health change to DISRUPTED, if that is the current state."""
    last = HealthStateChange.objects.first()
    return last if last is not None and last.state == "DISRUPTED" else None
