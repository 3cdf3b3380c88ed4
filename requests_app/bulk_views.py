"""Bulk approval from the approvers' queue (an incident surge): one form, one decision each."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal.core import access
from portal.views import page, require
from requests_app import services
from requests_app.forms import BulkApproveForm

# Refusals listed one by one on the page; the rest are counted.
SHOWN_REFUSALS = 10


def step_up_response(request: HttpRequest) -> HttpResponse | None:
    """STEP-UP HOOK: a response that asks the approver to re-authenticate, or None to go on.

    Approving many requests at once is one step-up for the whole batch; the
    check is being added separately. Until then nothing is asked here.
    """
    return None


@require_POST
@page
@require(access.is_approver, "Only approvers can approve requests.")
def approve_selected(request: HttpRequest) -> HttpResponse:
    form = BulkApproveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("approvals")
    asked = step_up_response(request)
    if asked is not None:
        return asked
    outcomes = services.approve_many(
        form.cleaned_data["chosen"], actor=request.user, comment=form.cleaned_data["comment"]
    )
    approved = [o for o in outcomes if o.approved]
    refused = [o for o in outcomes if not o.approved]
    if approved:
        messages.success(
            request,
            f"Approved {len(approved)} request{'s' if len(approved) != 1 else ''}: "
            + ", ".join(f"#{o.id}" for o in approved)
            + ".",
        )
    for outcome in refused[:SHOWN_REFUSALS]:
        messages.error(request, f"#{outcome.id}: {outcome.error}")
    if len(refused) > SHOWN_REFUSALS:
        messages.error(request, f"… and {len(refused) - SHOWN_REFUSALS} more refused.")
    return redirect("approvals")
