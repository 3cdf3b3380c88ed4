"""The auditor's portal: request history, timelines, people, accounts, the list of
failovers (each linking to federation's failover report), exports and the integrity
badge. Read-only: approvers and auditors may look; any method but GET/HEAD is refused
(403 for auditors, who change nothing anywhere).
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from federation.models import Failover, WorkloadAccount
from portal.audit import events_for, integrity
from portal.auditor import exports, history
from portal.core import access
from portal.core.schemas import MAX_ID
from portal.core.types import SignedInRequest
from portal.core.validators import no_control_characters
from portal.core.web import View, page
from portal.models import AuditEvent
from requests_app.models import AccessRequest, Approval

PAGE_SIZE = 25
EVENTS_PAGE_SIZE = 50
SAFE_METHODS = ("GET", "HEAD")
ONLY_READERS = "Only approvers and auditors can read the audit pages."
READ_ONLY = "Auditors have read-only access: these pages change nothing."


def auditor_page(view: View) -> View:
    """Signed in, an approver or auditor, and reading: anything but GET/HEAD is refused."""

    @page
    @wraps(view)
    def wrapper(request: SignedInRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not access.can_read_audit(request.user):
            raise PermissionDenied(ONLY_READERS)
        if request.method not in SAFE_METHODS:
            if not access.can_write(request.user):
                raise PermissionDenied(READ_ONLY)
            return HttpResponseNotAllowed(SAFE_METHODS)
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


def auditor_action(view: View) -> View:
    """An approver's or auditor's action that changes no evidence ("verify now"): POST only,
    so Django's CSRF check stands between it and any other site."""

    @page
    @wraps(view)
    def wrapper(request: SignedInRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not access.can_read_audit(request.user):
            raise PermissionDenied(ONLY_READERS)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


# --- Request history ---------------------------------------------------------------------

COLUMNS = [
    ("filed", "Filed"),
    ("person", "Requester"),
    ("account", "Account"),
    ("level", "Level"),
    ("status", "Status"),
    ("granted", "Granted"),
    ("ended", "Ended"),
]


def _headers(sort: str) -> list[dict[str, Any]]:
    current, descending = sort.lstrip("-"), sort.startswith("-")
    headers = []
    for key, label in COLUMNS:
        active = key == current
        headers.append(
            {
                "key": key,
                "label": label,
                "active": active,
                "descending": active and descending,
                # First click sorts newest / Z first for dates, A first for names.
                "next": (key if descending else f"-{key}")
                if active
                else (f"-{key}" if key in {"filed", "granted", "ended"} else key),
            }
        )
    return headers


def _history_form(request: SignedInRequest) -> tuple[history.HistoryFilter, dict[str, Any] | None]:
    form = history.HistoryFilter(request.GET)
    return form, (form.cleaned_data if form.is_valid() else None)


@auditor_page
def request_history(request: SignedInRequest) -> HttpResponse:
    form, data = _history_form(request)
    page_obj = (
        history.page_of(history.filtered(data), request.GET.get("page"), PAGE_SIZE)
        if data is not None
        else None
    )
    sort = (data or {}).get("sort") or history.DEFAULT_SORT
    context = {
        "form": form,
        "page_obj": page_obj,
        "headers": _headers(sort),
        "filtered": any(v for k, v in (data or {}).items() if k != "sort"),
        "query": request.GET.urlencode(),
    }
    return render(
        request, "portal/auditor/history.html", context, status=200 if data is not None else 400
    )


@auditor_page
def request_history_export(request: SignedInRequest, fmt: str) -> HttpResponseBase:
    _, data = _history_form(request)
    if data is None:
        return HttpResponseBadRequest("Invalid filters: open the history page to see why.")
    requests = history.filtered(data)
    return exports.stream("access-requests", fmt, lambda: exports.request_lines(requests, fmt))


# --- One request, one person, one account -------------------------------------------------


@auditor_page
def request_timeline(request: SignedInRequest, pk: int) -> HttpResponse:
    req = history.for_display(AccessRequest.objects.filter(pk=pk)).first()
    if req is None:
        raise Http404("No such request.")
    events = list(events_for(req).order_by("seq"))
    checked = [(event, event.compute_hash() == event.hash) for event in events]
    context = {
        "req": req,
        "events": checked,
        "held_until": req.held_until,
        "held_minutes": req.held_minutes(),
    }
    return render(request, "portal/auditor/request_timeline.html", context)


@auditor_page
def person(request: SignedInRequest, pk: int) -> HttpResponse:
    who = get_object_or_404(get_user_model(), pk=pk)
    requests = history.for_table(AccessRequest.objects.filter(requester=who)).order_by(
        "-created_at", "-pk"
    )
    roles = events_for(("user", who.pk)).order_by("-seq")
    activity = AuditEvent.objects.filter(actor=who).order_by("-seq")
    context = {
        "who": who,
        "groups": sorted(who.groups.values_list("name", flat=True)),
        "requests": requests[:PAGE_SIZE],
        "request_count": requests.count(),
        "role_events": roles[:EVENTS_PAGE_SIZE],
        "decisions": history.for_table(
            # A subquery, not a join: no duplicate rows, no DISTINCT over the whole table.
            AccessRequest.objects.filter(
                Q(pk__in=Approval.objects.filter(approver=who).values("request_id"))
                | Q(decided_by=who)
                | Q(ended_by=who)
            )
        ).order_by("-created_at", "-pk")[:PAGE_SIZE],
        "page_obj": Paginator(activity, EVENTS_PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render(request, "portal/auditor/person.html", context)


@auditor_page
def account(request: SignedInRequest, pk: int) -> HttpResponse:
    acct = get_object_or_404(WorkloadAccount.objects.select_related("emergency_account"), pk=pk)
    roles = list(acct.roles.select_related("level"))
    requests = history.for_table(
        AccessRequest.objects.filter(role__in=[r.pk for r in roles])
    ).order_by("-created_at", "-pk")
    plan_targets = Q(target_type="workloadaccount", target_id=str(acct.pk)) | Q(
        target_type="emergencyrole", target_id__in=[str(r.pk) for r in roles]
    )
    context = {
        "acct": acct,
        "roles": roles,
        "page_obj": Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page")),
        "held_count": requests.filter(activated_at__isnull=False).count(),
        "people_count": requests.filter(activated_at__isnull=False)
        .values("requester")
        .distinct()
        .count(),
        "plan_events": AuditEvent.objects.filter(plan_targets).order_by("-seq")[:EVENTS_PAGE_SIZE],
    }
    return render(request, "portal/auditor/account.html", context)


# --- Failovers ------------------------------------------------------------------------------


@auditor_page
def failover_list(request: SignedInRequest) -> HttpResponse:
    """Every failover and drill, linking to its report (federation's failover report)."""
    failovers = Failover.objects.select_related("opened_by").annotate(
        request_count=Count("requests", distinct=True),
        grant_count=Count("requests", filter=Q(requests__activated_at__isnull=False)),
    )
    page_obj = Paginator(failovers.order_by("-opened_at"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "portal/auditor/failovers.html", {"page_obj": page_obj})


# --- The audit log export and the integrity badge -------------------------------------------


class AuditExportFilter(forms.Form):
    from_seq = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID, label="From #")
    to_seq = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID, label="To #")
    action = forms.CharField(required=False, max_length=64, validators=[no_control_characters])
    target = forms.CharField(required=False, max_length=130, validators=[no_control_characters])


def audit_events(data: dict[str, Any]) -> Any:
    events = AuditEvent.objects.order_by("seq")
    if data.get("from_seq"):
        events = events.filter(seq__gte=data["from_seq"])
    if data.get("to_seq"):
        events = events.filter(seq__lte=data["to_seq"])
    if data.get("action"):
        events = events.filter(action__startswith=data["action"].strip())
    if data.get("target"):
        target_type, _, target_id = data["target"].strip().partition(":")
        events = events.filter(target_type=target_type.strip().lower())
        if target_id.strip():
            events = events.filter(target_id=target_id.strip())
    return events


@auditor_page
def audit_export(request: SignedInRequest, fmt: str) -> HttpResponseBase:
    form = AuditExportFilter(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Invalid filters: {form.errors.as_text()}")
    events = audit_events(form.cleaned_data)
    partial = bool(form.cleaned_data.get("action") or form.cleaned_data.get("target"))
    # Say in the response whether the export is a contiguous stretch of the chain.
    meta = {"Selection": "filtered" if partial else "contiguous"}
    return exports.stream("audit-log", fmt, lambda: exports.event_lines(events, fmt), meta=meta)


@auditor_page
def integrity_badge(request: SignedInRequest) -> HttpResponse:
    return render(request, "portal/auditor/integrity_badge.html", {"badge": integrity.badge()})


@auditor_action
def integrity_verify(request: SignedInRequest) -> HttpResponse:
    """ "Verify now": queue a full verification (it runs in a worker). It reads only, but
    it starts work, so it is a POST with the CSRF token: no other site can set it off."""
    queued = integrity.request_verification(f"verify now ({request.user.get_username()})")
    if request.htmx:
        return render(request, "portal/auditor/integrity_badge.html", {"badge": integrity.badge()})
    if queued is None:
        messages.info(request, "A verification is already running.")
    else:
        messages.success(request, "Verification queued: the badge shows the result shortly.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "auditor-history"
    return redirect(back)
