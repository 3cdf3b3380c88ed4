"""Pages of the return to normal (the wizard), the failover report, and confirming a
proposed failover. Views check who may look; federation.failover.services decides."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from federation.failover import checklist as return_checklist
from federation.failover import services
from federation.failover.drills import drill_items
from federation.failover.report import build_report
from federation.forms import CloseForm, StartReturnForm
from federation.models import Failover, FailoverStatus
from portal.accounts.stepup import step_up
from portal.core import access
from portal.core.types import SignedInRequest
from portal.core.web import add_service_error, carry_out, page, require

ONLY_APPROVERS = "Only approvers can run the return to normal."
READERS = "Only approvers and auditors can see the return to normal."


def _shown_failover() -> Failover | None:
    """The failover not yet closed, else the last one closed (its completed checklist)."""
    return Failover.objects.current() or Failover.objects.order_by("-closed_at", "-pk").first()


def _context(
    request: SignedInRequest,
    *,
    start_form: StartReturnForm | None = None,
    close_form: CloseForm | None = None,
) -> dict[str, Any]:
    failover = _shown_failover()
    context: dict[str, Any] = {
        "failover": failover,
        "can_act": access.can_run_failover(request.user),
        "start_form": start_form or StartReturnForm(),
        "close_form": close_form or CloseForm(),
        "now": timezone.now(),
    }
    if failover is not None:
        checklist = return_checklist.checklist(failover)
        context["checklist"] = checklist
        context["steps"] = {step.key: step for step in checklist.steps}
        context["version"] = checklist.version()
        if failover.is_drill:
            context["drill_items"] = drill_items(failover, checklist.run)
    return context


def _wizard(request: SignedInRequest, status: int = 200, **forms: Any) -> HttpResponse:
    return render(request, "federation/return.html", _context(request, **forms), status=status)


@require_GET
@never_cache
@page
@require(access.can_read_audit, READERS)
def return_page(request: SignedInRequest) -> HttpResponse:
    if not request.htmx:
        return _wizard(request)
    context = _context(request)
    if request.GET.get("v") and request.GET.get("v") == context.get("version"):
        return HttpResponse(status=204)
    failover = context["failover"]
    shown = request.GET.get("s")
    if shown and failover is not None and shown != failover.status:
        # The failover changed state: reload the whole page, banner and all.
        return HttpResponseClientRefresh()
    return render(request, "federation/return.html#live", context)


@require_POST
@page
@require(access.can_run_failover, ONLY_APPROVERS)
@step_up
def return_start(request: SignedInRequest) -> HttpResponse:
    form = StartReturnForm(request.POST)
    if not form.is_valid():
        return _wizard(request, 400, start_form=form)

    def start() -> str:
        failover = services.start_return(
            actor=request.user, override_reason=form.cleaned_data["override_reason"]
        )
        told = len(failover.return_to_normal.announced_to)
        return (
            f"Return to normal started: {told} emergency user(s) told to sign out; new "
            "requests are refused."
        )

    try:
        return carry_out(request, "failover-return", start)
    except ValidationError as exc:
        add_service_error(form, exc)
        return _wizard(request, 400, start_form=form)


@require_POST
@page
@require(access.can_run_failover, ONLY_APPROVERS)
def return_remind(request: SignedInRequest) -> HttpResponse:
    def remind() -> str:
        names = services.remind_now(actor=request.user)
        if not names:
            return "Nobody is still signed in: no reminder sent."
        return f"Reminded: {', '.join(names)}."

    return carry_out(request, "failover-return", remind)


@require_POST
@page
@require(access.can_run_failover, ONLY_APPROVERS)
@step_up
def return_close(request: SignedInRequest) -> HttpResponse:
    form = CloseForm(request.POST)
    if not form.is_valid():
        return _wizard(request, 400, close_form=form)
    data = form.cleaned_data

    def close() -> str:
        failover = services.close_failover(
            actor=request.user,
            reason=data["reason"],
            force=data["mode"] == "force",
            deactivate_at=data["deactivate_at"] if data["mode"] == "schedule" else None,
        )
        failover.refresh_from_db()
        if failover.status == FailoverStatus.RETURNING:
            when = timezone.localtime(data["deactivate_at"]).strftime("%Y-%m-%d %H:%M %Z")
            return f"Deactivation scheduled for {when}."
        return (
            "Closing: grants were revoked; a worker is deactivating the federation app, "
            "emptying the groups and ending the users' Okta sessions."
        )

    try:
        return carry_out(request, "failover-return", close)
    except ValidationError as exc:
        add_service_error(form, exc)
        return _wizard(request, 400, close_form=form)


@require_POST
@page
@require(access.can_run_failover, "Only approvers can confirm a failover.")
@step_up
def failover_confirm(request: SignedInRequest) -> HttpResponse:
    def confirm() -> str:
        failover = services.confirm_failover(actor=request.user)
        return f"{failover} confirmed. A worker is activating the federation app in Okta."

    return carry_out(request, "failover", confirm)


# --- The report -----------------------------------------------------------------------------


def _failover_or_404(pk: int) -> Failover:
    failover = Failover.objects.select_related("opened_by").filter(pk=pk).first()
    if failover is None:
        raise Http404("No such failover.")
    return failover


@require_GET
@page
@require(access.can_read_audit, "Only approvers and auditors can read failover reports.")
def failover_report(request: SignedInRequest, pk: int) -> HttpResponse:
    failover = _failover_or_404(pk)
    report = build_report(failover)
    return render(request, "federation/report.html", {"failover": failover, "report": report})


@require_GET
@page
@require(access.can_read_audit, "Only approvers and auditors can read failover reports.")
def failover_report_json(request: SignedInRequest, pk: int) -> HttpResponse:
    report = build_report(_failover_or_404(pk))
    response = HttpResponse(
        json.dumps(report, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="failover-{pk}-report.json"'
    return response
