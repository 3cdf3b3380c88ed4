"""Break-glass from the request page: the requester's self-activation, approvers' review."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts.stepup import step_up
from portal.core import access
from portal.core.errors import DomainError, NotAllowed
from portal.core.types import SignedInRequest
from portal.core.web import add_service_error, page, refused, require
from requests_app import break_glass
from requests_app.models import ReviewStatus
from requests_app.views import visible_request


class BreakGlassForm(forms.Form):
    confirmation = forms.CharField(
        label="Type the confirmation", max_length=64, error_messages={"required": "Type it."}
    )
    ticket = forms.CharField(
        label="Ticket or incident",
        max_length=128,
        error_messages={"required": "Give the ticket or incident reference."},
    )


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("accept", "Accept"), ("flag", "Flag")])
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


@require_http_methods(["GET", "POST"])
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
@step_up
def request_break_glass(request: SignedInRequest, pk: int) -> HttpResponse:
    req = visible_request(request.user, pk)
    if req.requester_id != request.user.pk:
        return refused(request, "Only the requester can break the glass on their own request.")
    form = BreakGlassForm(request.POST or None, initial={"ticket": req.ticket})
    if request.method == "POST" and form.is_valid():
        try:
            break_glass.activate(req, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
        except NotAllowed as exc:
            return refused(request, str(exc))
        except DomainError as exc:
            messages.error(request, str(exc))
            return redirect("request-detail", pk=req.pk)
        else:
            messages.warning(
                request,
                f"Break-glass: request #{req.pk} is being granted now. Every approver has been "
                "alerted and two of them will review this use.",
            )
            return redirect("request-detail", pk=req.pk)
    context = {
        "req": req,
        "form": form,
        "state": break_glass.availability(req),
        "phrase": break_glass.confirmation_for(req),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "requests_app/break_glass.html", context, status=status)


@require_POST
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
@step_up
def request_review(request: SignedInRequest, pk: int) -> HttpResponse:
    req = visible_request(request.user, pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return refused(
            request, 'Say "accept" or "flag" (a comment of 2000 characters at most).', 400
        )
    try:
        review = break_glass.review(req, actor=request.user, **form.cleaned_data)
    except NotAllowed as exc:
        return refused(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        done = {
            ReviewStatus.OPEN: "Your verdict is recorded; it needs another approver.",
            ReviewStatus.ACCEPTED: "The break-glass use is accepted.",
            ReviewStatus.FLAGGED: "The break-glass use is flagged; staff have been alerted.",
        }[ReviewStatus(review.status)]
        messages.success(request, done)
    return redirect("request-detail", pk=req.pk)
