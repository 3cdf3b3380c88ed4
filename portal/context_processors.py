from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from federation.models import Failover
from portal import access


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
    }
