from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from federation.evidence_models import HealthStateChange
from federation.models import Failover
from portal.core import access


def portal(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    if not user.is_authenticated:
        return {}
    return {
        "current_failover": Failover.objects.select_related(
            "opened_by", "close_requested_by"
        ).current(),
        "user_is_approver": access.is_approver(user),
        "user_is_auditor": access.is_auditor(user),
        "user_can_write": access.can_write(user),
        # Called only where a template asks (the banner in base.html): no query otherwise.
        "health_disrupted": _health_disrupted,
    }


def _health_disrupted() -> Any:
    """The Identity Center health change to DISRUPTED, if that is the current state."""
    last = HealthStateChange.objects.first()
    return last if last is not None and last.state == "DISRUPTED" else None
