"""Bulk approval from the approvers' queue (an incident surge): one form, one decision each."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal.accounts.stepup import step_up
from portal.core import access
from portal.core.types import SignedInRequest
from portal.core.web import page, require
from requests_app import services
from requests_app.forms import BulkApproveForm

# Refusals listed one by one on the page; the rest are counted.
SHOWN_REFUSALS = 10


@require_POST
@page
@require(access.is_approver, "Only approvers can approve requests.")
@step_up  # one fresh sign-in for the whole batch
def approve_selected(request: SignedInRequest) -> HttpResponse:
    form = BulkApproveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("approvals")
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
