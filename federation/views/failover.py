"""The failover page: declare a disruption (or a drill) and return to normal."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from federation.failover import services
from federation.failover.drills import drill_checklist
from federation.forms import CloseFailoverForm, OpenFailoverForm
from federation.models import Failover
from portal.accounts.stepup import step_up
from portal.core import access
from portal.core.types import SignedInRequest
from portal.core.web import carry_out, page, require
from requests_app.models import HOLDING_STATUSES, Status

HISTORY_SIZE = 50
ONLY_APPROVERS = "Only approvers can open or close a failover."


def _page(
    request: SignedInRequest,
    open_form: OpenFailoverForm | None = None,
    close_form: CloseFailoverForm | None = None,
) -> HttpResponse:
    current = Failover.objects.current()
    impact = None
    if current is not None:
        impact = current.requests.aggregate(
            pending=Count("pk", filter=Q(status=Status.PENDING)),
            holding=Count("pk", filter=Q(status__in=HOLDING_STATUSES)),
        )
    history = Failover.objects.select_related(
        "opened_by", "close_requested_by", "return_to_normal"
    ).annotate(request_count=Count("requests"))[:HISTORY_SIZE]
    context: dict[str, Any] = {
        "current": current,
        "impact": impact,
        "history": history,
        "open_form": open_form or OpenFailoverForm(),
        "close_form": close_form or CloseFailoverForm(),
    }
    if current is not None and current.is_drill:
        context["drill_items"] = [item.as_dict() for item in drill_checklist(current)]
    # The live part polls like the other pages: 204 until something changed.
    context["version"] = _version(current, impact, context.get("drill_items"))
    if request.htmx and request.method == "GET":
        if request.GET.get("v") == context["version"]:
            return HttpResponse(status=204)
        return render(request, "federation/failover.html#live", context)
    return render(request, "federation/failover.html", context)


def _version(current: Failover | None, impact: Any, drill_items: Any) -> str:
    if current is None:
        return "none"
    state = (
        current.pk,
        current.status,
        current.app_activated_at,
        current.confirmed_at,
        current.close_requested_at,
        current.last_error,
        impact,
        [item["proved"] for item in drill_items or []],
    )
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]


@require_GET
@never_cache
@page
@require(access.can_run_failover, ONLY_APPROVERS)
def failover(request: SignedInRequest) -> HttpResponse:
    return _page(request)


@require_POST
@page
@require(access.can_run_failover, ONLY_APPROVERS)
@step_up
def failover_open(request: SignedInRequest) -> HttpResponse:
    form = OpenFailoverForm(request.POST)
    if not form.is_valid():
        return _page(request, open_form=form)
    drill = form.cleaned_data["drill"]

    def open_it() -> str:
        opened = services.open_failover(
            actor=request.user, reason=form.cleaned_data["reason"], drill=drill
        )
        kind = "Drill" if drill else "Failover"
        return (
            f"{kind} #{opened.pk} opened. A worker is activating the federation app in Okta; "
            "engineers can file requests now."
        )

    return carry_out(request, "failover", open_it)


@require_POST
@page
@require(access.can_run_failover, ONLY_APPROVERS)
@step_up
def failover_close(request: SignedInRequest) -> HttpResponse:
    form = CloseFailoverForm(request.POST)
    if not form.is_valid():
        return _page(request, close_form=form)

    def close_it() -> str:
        # The checklist (runbook_views) is the guided way; this form closes at once, as a
        # forced close: it does not wait for sign-outs.
        closing = services.close_failover(
            actor=request.user, reason=form.cleaned_data["reason"], force=True
        )
        return (
            f"{closing} is closing: grants were revoked; a worker is deactivating the "
            "federation app and emptying the groups."
        )

    return carry_out(request, "failover", close_it)
