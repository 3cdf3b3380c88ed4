"""Cross-cutting pages (dashboard, audit log, health) and the helpers every page view uses."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.functional import cached_property
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from federation.failover.drills import drill_status
from federation.monitor import machinery, role_use
from federation.readiness.checks import latest_finished
from federation.views.monitor import monitor_context
from portal import audit
from portal.core import access
from portal.core.types import SignedInRequest
from portal.core.validators import no_control_characters
from portal.core.web import CappedPaginator, page, refused, require
from portal.models import AuditEvent
from requests_app.models import (
    HOLDING_STATUSES,
    OPEN_STATUSES,
    AccessRequest,
    BreakGlassReview,
    ReviewStatus,
    Status,
)

log = logging.getLogger(__name__)

AUDIT_PAGE_SIZE = 50


@page
def email_managed_by_admins(request: HttpRequest) -> HttpResponse:
    """allauth's email page, closed: the Okta login is bound by an admin or by Okta."""
    return refused(
        request,
        "Your email is your Okta login, which receives emergency access: only an "
        "administrator (or your Okta sign-in) can change it.",
    )


# --- Dashboard ------------------------------------------------------------------------


def _dashboard_context(user: Any) -> dict[str, Any]:
    sees_all = access.can_see_all_requests(user)
    visible = AccessRequest.objects.visible_to(user)
    # Only the live statuses are counted: the status index finds them without reading
    # years of closed requests (a filtered aggregate over the whole table did).
    live = [Status.PENDING, Status.APPROVED, Status.ACTIVE]
    by_status = dict(
        visible.filter(status__in=live)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    counts = {
        "pending": by_status.get(Status.PENDING, 0),
        "granting": by_status.get(Status.APPROVED, 0),
        "active": by_status.get(Status.ACTIVE, 0),
        # Break-glass use waiting for its post-hoc review (listed below when any).
        "break_glass_open": BreakGlassReview.objects.filter(
            status=ReviewStatus.OPEN, request__in=visible
        ).count(),
    }
    if access.is_approver(user):
        counts["waiting_for_me"] = (
            AccessRequest.objects.filter(status=Status.PENDING)
            .exclude(requester=user)
            .exclude(approvals__approver=user)
            .count()
        )
    holding = (
        AccessRequest.objects.filter(status__in=HOLDING_STATUSES)
        .with_related()
        .order_by("expires_at", "created_at")
        if sees_all
        else AccessRequest.objects.none()
    )
    mine = AccessRequest.objects.filter(requester=user, status__in=OPEN_STATUSES).with_related()
    context = {"sees_all": sees_all, "counts": counts, "holding": holding, "my_open": mine}
    if sees_all:
        context["drill"] = drill_status()
        context["aws_alerts"] = role_use.recent_alerts()
        # Break-glass is loud: every open post-hoc review stays on the dashboard.
        context["break_glass_reviews"] = (
            list(
                BreakGlassReview.objects.filter(status=ReviewStatus.OPEN)
                .select_related("request__requester", "request__role__workload_account")
                .select_related("request__role__level")
                .order_by("due_at")
            )
            if counts["break_glass_open"]
            else []
        )
    if access.is_approver(user):
        context["machinery_banner"] = machinery.banner()
    if access.can_read_plan(user):
        context["readiness"] = {"last": latest_finished()}
    return context


@require_GET
@never_cache
@page
def dashboard(request: SignedInRequest) -> HttpResponse:
    context = _dashboard_context(request.user)
    template = "portal/dashboard.html"
    if request.htmx:
        template += "#live"
    else:
        # The monitor cards poll their own partials; only the first render fills them here.
        context |= monitor_context(request.user)
    return render(request, template, context)


# --- Audit log ------------------------------------------------------------------------


class AuditLogFilter(forms.Form):
    # Django's CharField refuses NUL; the validator the rest of the control characters.
    action = forms.CharField(required=False, max_length=64, validators=[no_control_characters])
    target = forms.CharField(required=False, max_length=130, validators=[no_control_characters])


class HeadPaginator(Paginator):  # type: ignore[type-arg]
    """Pages of the whole audit log, counted by its head's seq."""

    @cached_property
    def count(self) -> int:
        return audit.head()[0]


def known_actions() -> list[str]:
    """The distinct actions in the log, for the filter's suggestions."""
    if connection.vendor != "postgresql":
        return list(
            AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        )
    # A loose index scan: one probe of the action index per distinct action, instead of
    # reading a million rows to find a few dozen values.
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE actions(action) AS (
                (SELECT action FROM {table} ORDER BY action LIMIT 1)
                UNION ALL
                SELECT (SELECT e.action FROM {table} e WHERE e.action > a.action
                        ORDER BY e.action LIMIT 1)
                FROM actions a WHERE a.action IS NOT NULL
            )
            SELECT action FROM actions WHERE action IS NOT NULL
            """  # noqa: S608 -- the table's own name
        )
        return [row[0] for row in cursor.fetchall()]


def _filtered_events(action: str, target: str) -> Any:
    events = AuditEvent.objects.order_by("-seq")
    if action:
        events = events.filter(action__startswith=action)
    if target:
        target_type, _, target_id = target.partition(":")
        events = events.filter(target_type=target_type.strip().lower())
        if target_id.strip():
            events = events.filter(target_id=target_id.strip())
    return events


@require_GET
@page
@require(access.can_read_audit, "Only approvers and auditors can read the audit log.")
def audit_log(request: SignedInRequest) -> HttpResponse:
    form = AuditLogFilter(request.GET)
    valid = form.is_valid()
    action, target = (
        (form.cleaned_data["action"], form.cleaned_data["target"]) if valid else ("", "")
    )
    events = _filtered_events(action, target) if valid else AuditEvent.objects.none()
    # The whole log's size is its head's seq (1, 2, 3, ... without gaps): no count(*)
    # over a million rows per page view.
    whole = valid and not action and not target
    paginator = (HeadPaginator if whole else CappedPaginator)(events, AUDIT_PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page_obj": page_obj,
        "action": action,
        "target": target,
        "known_actions": known_actions(),
    }
    return render(request, "portal/audit_log.html", context, status=200 if valid else 400)


# --- Health ---------------------------------------------------------------------------


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """``ok`` when the web process can reach its database (docker-compose health check)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        log.exception("health check: database unreachable")
        return HttpResponse("database unreachable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Is the machinery working: database, broker, worker and beat heartbeats (with their
    ages), Okta. JSON; 503 when any of them is not. Also notices a silent worker or beat
    and alerts approvers (once per episode)."""
    parts = machinery.components()
    if parts[0].ok:
        try:
            machinery.check_and_alert()
        except DatabaseError:
            log.exception("readiness: could not check the heartbeats")
    ready = all(part.ok for part in parts)
    body = {"ready": ready, "components": {part.name: part.as_dict() for part in parts}}
    return JsonResponse(body, status=200 if ready else 503)
