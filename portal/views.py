"""Cross-cutting pages (dashboard, audit log, health) and the helpers every page view uses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRedirect

from portal.core import access
from portal.models import AuditEvent
from requests_app.models import HOLDING_STATUSES, OPEN_STATUSES, AccessRequest, Status

log = logging.getLogger(__name__)

View = Callable[..., HttpResponse]

AUDIT_PAGE_SIZE = 50


# --- Helpers shared by the page views of every app ------------------------------------


def page(view: View) -> View:
    """``login_required`` that also copes with htmx.

    An htmx poll whose session ran out must not swap the login page into a fragment:
    it gets an ``HX-Redirect`` to the login page instead.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                back = request.htmx.current_url_abs_path or request.get_full_path()
                login = resolve_url(settings.LOGIN_URL)
                return HttpResponseClientRedirect(redirect_to_login(back, login)["Location"])
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def require(check: Callable[[Any], bool], message: str) -> Callable[[View], View]:
    """Refuse (403, with ``message`` on the page) users for whom ``check`` is false."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def refused(request: HttpRequest, message: str, status: int = 403) -> HttpResponse:
    """The 403 page with the service's own explanation."""
    return render(request, "403.html", {"exception": message}, status=status)


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
    counts = visible.aggregate(
        pending=Count("pk", filter=Q(status=Status.PENDING)),
        granting=Count("pk", filter=Q(status=Status.APPROVED)),
        active=Count("pk", filter=Q(status=Status.ACTIVE)),
    )
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
        from federation.failover.drills import drill_status

        context["drill"] = drill_status()
    if access.can_read_plan(user):
        from federation.readiness.checks import latest_finished

        context["readiness"] = {"last": latest_finished()}
    return context


@require_GET
@never_cache
@page
def dashboard(request: HttpRequest) -> HttpResponse:
    context = _dashboard_context(request.user)
    template = "portal/dashboard.html"
    if request.htmx:
        template += "#live"
    else:
        # The monitor cards poll their own partials; only the first render fills them here.
        from federation.views.monitor import monitor_context

        context |= monitor_context(request.user)
    return render(request, template, context)


# --- Audit log ------------------------------------------------------------------------


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
def audit_log(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("action", "").strip()[:64]
    target = request.GET.get("target", "").strip()[:130]
    page_obj = Paginator(_filtered_events(action, target), AUDIT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page_obj": page_obj,
        "action": action,
        "target": target,
        "known_actions": AuditEvent.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct(),
    }
    return render(request, "portal/audit_log.html", context)


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
