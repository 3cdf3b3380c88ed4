"""Extending an active grant from the request page: ask, approve, deny, withdraw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from federation.models import FailoverStatus
from portal.core import access
from portal.core.errors import DomainError, NotAllowed
from portal.views import page, refused, require
from requests_app import extensions
from requests_app.forms import ActionForm
from requests_app.models import AccessRequest, Extension, ExtensionStatus
from requests_app.services import MIN_JUSTIFICATION_WORDS

# action name in the URL -> the service call, given the extension, the actor and the comment.
EXTENSION_ACTIONS: dict[str, Callable[[Extension, Any, str], Extension]] = {
    "approve": lambda ext, actor, text: extensions.approve_extension(
        ext, actor=actor, comment=text
    ),
    "deny": lambda ext, actor, text: extensions.deny_extension(ext, actor=actor, reason=text),
    "cancel": lambda ext, actor, text: extensions.cancel_extension(ext, actor=actor),
}


class ExtensionForm(forms.Form):
    minutes = forms.IntegerField(
        label="More minutes",
        min_value=1,
        error_messages={
            "required": "Say how many more minutes you need.",
            "min_value": "Ask for at least 1 more minute.",
            "invalid": "Give a whole number of minutes.",
        },
    )
    justification = forms.CharField(
        label="Why",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why you need more time."},
    )

    def clean_justification(self) -> str:
        text = self.cleaned_data["justification"].strip()
        if len(text.split()) < MIN_JUSTIFICATION_WORDS:
            raise ValidationError(
                f"Say in a sentence why you need more time ({MIN_JUSTIFICATION_WORDS} words or "
                "more)."
            )
        return text


def extension_context(
    user: Any, req: AccessRequest, form: ExtensionForm | None = None
) -> dict[str, Any]:
    """What the request page shows about extensions, and the buttons this user may use."""
    rows = [
        (ext, access.extension_actions(user, ext))
        for ext in req.extensions.select_related("requested_by", "decided_by").prefetch_related(
            "approvals"
        )
    ]
    has_pending = any(ext.status == ExtensionStatus.PENDING for ext, _ in rows)
    left = extensions.remaining_minutes(req) if req.activated_at else 0
    can_ask = (
        access.can_ask_extension(user, req)
        and req.failover.status == FailoverStatus.ACTIVE
        and not has_pending
        and left > 0
    )
    return {
        "extension_rows": rows,
        "can_extend": can_ask,
        "extension_left": left,
        "extension_form": form or ExtensionForm(initial={"minutes": min(30, left) or None}),
        "granted_minutes": extensions.granted_minutes(req),
    }


def _visible(user: Any, pk: int) -> AccessRequest:
    req = AccessRequest.objects.visible_to(user).with_related().filter(pk=pk).first()
    if req is None:
        raise Http404("No such request.")
    return req


@require_POST
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
def request_extend(request: HttpRequest, pk: int) -> HttpResponse:
    from requests_app.views import _detail_context

    req = _visible(request.user, pk)
    form = ExtensionForm(request.POST)
    if form.is_valid():
        try:
            ext = extensions.request_extension(req, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
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
    context = _detail_context(request.user, req) | extension_context(request.user, req, form)
    return render(request, "requests_app/request_detail.html", context, status=400)


@require_POST
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
def extension_action(request: HttpRequest, pk: int, ext_id: int, action: str) -> HttpResponse:
    req = _visible(request.user, pk)
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
