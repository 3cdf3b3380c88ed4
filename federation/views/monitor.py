"""The dashboard's monitor cards: Identity Center health, and the emergency users of the
open failover with their sign-in / sign-out evidence. Each is a partial polled by htmx."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from federation.evidence_models import LogCursor, OutsideChangeAlert
from federation.failover.systemlog import CURSOR
from federation.models import Failover
from federation.monitor import health
from portal.core import access
from portal.core.types import SignedInRequest
from portal.core.web import page, require
from requests_app import evidence

ALERTS_SHOWN = 10
ALERTS_LOOKBACK = dt.timedelta(days=7)


def health_context(now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "health": health.current_state(now=now),
        "health_rule": health.rule_text(),
        "health_history": health.history(now=now),
    }


def users_context(user: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    if not access.can_see_all_requests(user):
        return {"sees_all": False}
    now = now or timezone.now()
    failover = Failover.objects.current()
    rows = evidence.emergency_users(failover, now=now) if failover else []
    # Changes of the last week, and all of the open failover's however long it runs.
    recent = Q(published__gte=now - ALERTS_LOOKBACK)
    if failover is not None:
        recent |= Q(published__gte=failover.opened_at)
    alerts = OutsideChangeAlert.objects.filter(recent)
    minutes = rows[0][0].role.emergency_account.session_duration_seconds // 60 if rows else 0
    return {
        "sees_all": True,
        "monitor_failover": failover,
        "emergency_rows": rows,
        "session_minutes": minutes,
        "outside_alerts": list(alerts.order_by("-published")[:ALERTS_SHOWN]),
        "system_log": LogCursor.objects.filter(name=CURSOR).first(),
    }


def monitor_context(user: Any) -> dict[str, Any]:
    """Everything the dashboard's first render of both cards needs."""
    now = timezone.now()
    return {**health_context(now), **users_context(user, now)}


@require_GET
@never_cache
@page
def health_card(request: SignedInRequest) -> HttpResponse:
    return render(request, "federation/monitor.html#health", health_context())


@require_GET
@never_cache
@page
@require(access.can_see_all_requests, "Only approvers and auditors see every emergency user.")
def emergency_users_card(request: SignedInRequest) -> HttpResponse:
    return render(request, "federation/monitor.html#users", users_context(request.user))
