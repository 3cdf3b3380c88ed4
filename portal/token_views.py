"""The API tokens page: list, create (shown once) and revoke my personal tokens.

Any signed-in user may hold tokens, auditors included: a token acts as its owner,
with exactly the owner's permissions, so an auditor's token is read-only.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.accounts import tokens
from portal.accounts.stepup import step_up
from portal.core.errors import DomainError, InvalidTransition
from portal.core.types import SignedInRequest
from portal.core.web import page, refused
from portal.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=tokens.NAME_MAX_LENGTH,
        help_text="What will use it, e.g. “incident bot” or “my laptop CLI”.",
        error_messages={"required": "Give the token a name, e.g. what will use it."},
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=settings.API_TOKEN_MAX_DAYS,
        initial=settings.API_TOKEN_DEFAULT_DAYS,
        required=False,
        help_text=f"1 to {settings.API_TOKEN_MAX_DAYS} days; "
        f"{settings.API_TOKEN_DEFAULT_DAYS} if left empty.",
    )
    read_only = forms.BooleanField(
        label="Read-only",
        required=False,
        help_text="The token can read but never change anything, whatever you may do.",
    )


@require_http_methods(["GET", "POST"])
@never_cache  # the page that shows a new token must never be cached
@page
@step_up
def token_list(request: SignedInRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    created: tuple[ApiToken, str] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            created = tokens.create_token(
                request.user,
                form.cleaned_data["name"],
                request.user,
                days=form.cleaned_data["expires_in_days"],
                read_only=form.cleaned_data["read_only"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except DomainError as exc:
            return refused(request, str(exc), exc.http_status)
        else:
            form = TokenForm()
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        "new_token": created[0] if created else None,
        "new_raw": created[1] if created else None,
        "now": timezone.now(),
    }
    return render(request, "portal/tokens.html", context, status=400 if form.errors else 200)


@require_POST
@page
def token_revoke(request: SignedInRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=pk, user=request.user).first()
    if token is None:
        raise Http404("You have no such API token.")
    try:
        tokens.revoke_token(token, request.user)
    except InvalidTransition as exc:
        messages.info(request, str(exc))
    else:
        messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("tokens")
