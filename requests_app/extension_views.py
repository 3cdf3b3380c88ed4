"""Extending an active grant from the request page: ask, approve, deny, withdraw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from portal.accounts.stepup import step_up
from portal.core import access
from portal.core.errors import DomainError, NotAllowed
from portal.core.types import SignedInRequest
from portal.core.web import add_service_error, page, refused, require
from requests_app import extensions
from requests_app.forms import ActionForm, ExtensionForm
from requests_app.models import Extension, ExtensionStatus
from requests_app.views import detail_context, extension_context, visible_request

# action name in the URL -> the service call, given the extension, the actor and the comment.
EXTENSION_ACTIONS: dict[str, Callable[[Extension, Any, str], Extension]] = {
    "approve": lambda ext, actor, text: extensions.approve_extension(
        ext, actor=actor, comment=text
    ),
    "deny": lambda ext, actor, text: extensions.deny_extension(ext, actor=actor, reason=text),
    "cancel": lambda ext, actor, text: extensions.cancel_extension(ext, actor=actor),
}


@require_POST
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
def request_extend(request: SignedInRequest, pk: int) -> HttpResponse:
    req = visible_request(request.user, pk)
    form = ExtensionForm(request.POST)
    if form.is_valid():
        try:
            ext = extensions.request_extension(req, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
        except NotAllowed as exc:
            return refused(request, str(exc))
        except DomainError as exc:
            messages.error(request, str(exc))
            return redirect("request-detail", pk=req.pk)
        else:
            messages.success(
                request, f"Asked for {ext.minutes} more minutes; approvers have been told."
            )
            return redirect("request-detail", pk=req.pk)
    context = detail_context(request.user, req) | extension_context(request.user, req, form)
    return render(request, "requests_app/request_detail.html", context, status=400)


@require_POST
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
@step_up(unless_action=frozenset({"cancel"}))
def extension_action(request: SignedInRequest, pk: int, ext_id: int, action: str) -> HttpResponse:
    req = visible_request(request.user, pk)
    ext = Extension.objects.filter(pk=ext_id, request=req).first()
    if ext is None or action not in EXTENSION_ACTIONS:
        raise Http404("No such extension.")
    form = ActionForm(request.POST)
    if not form.is_valid():
        return refused(request, "The comment is too long (2000 characters at most).", 400)
    try:
        ext = EXTENSION_ACTIONS[action](ext, request.user, form.cleaned_data["comment"].strip())
    except NotAllowed as exc:
        return refused(request, str(exc))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        ext.refresh_from_db()
        done = {
            "approve": f"Extension approved: access now ends {localtime(ext.new_expires_at):%H:%M}."
            if ext.status == ExtensionStatus.APPROVED
            else "Your approval is recorded.",
            "deny": "Extension denied.",
            "cancel": "Extension withdrawn.",
        }[action]
        messages.success(request, done)
    # Decided inline in the approvals queue: back to the queue.
    if request.POST.get("next") == reverse("approvals"):
        return redirect("approvals")
    return redirect("request-detail", pk=req.pk)
