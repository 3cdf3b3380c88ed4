"""Step-up: a fresh sign-in (password, second factor or Okta) before a sensitive action.

Page views that approve, deny, revoke, run the failover, change roles or create a
token wear ``@step_up``. A POST whose last authentication is older than
``STEP_UP_SECONDS`` raises allauth's ``ReauthenticationRequired``: allauth's
middleware keeps the request, asks for the password or second factor, and replays
it. An Okta-only account (no password, no authenticator) signs in through Okta
again. The API is not affected: the token is the credential there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast, overload

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def last_authenticated_at(request: HttpRequest) -> float | None:
    records = get_authentication_records(request, request.user)
    return max((r.get("at", 0) for r in records), default=None)


def recently_authenticated(request: HttpRequest) -> bool:
    at = last_authenticated_at(request)
    return at is not None and time.time() - at < settings.STEP_UP_SECONDS


def needs_step_up(request: HttpRequest) -> bool:
    return (
        request.method not in SAFE_METHODS
        and request.user.is_authenticated
        and not recently_authenticated(request)
    )


def ask_for_step_up(request: HttpRequest) -> HttpResponse:
    """Send the user to sign in again; a plain POST is replayed afterwards by allauth."""
    htmx = getattr(request, "htmx", None)
    if get_adapter().get_reauthentication_methods(request.user):
        if not htmx:
            raise ReauthenticationRequired()
        target = reverse("account_reauthenticate")
    else:
        # An Okta-only account (no password, no authenticator): sign in through Okta again.
        target = reverse("openid_connect_login", kwargs={"provider_id": "okta"})
    back = (htmx.current_url_abs_path if htmx else None) or request.headers.get("Referer") or "/"
    url = f"{target}?{urlencode({'next': back})}"
    # htmx would swap the sign-in page into a fragment: make it a full-page visit instead.
    return HttpResponseClientRedirect(url) if htmx else HttpResponseRedirect(url)


View = TypeVar("View", bound=Callable[..., HttpResponse])


@overload
def step_up(view: View) -> View: ...


@overload
def step_up(*, unless_action: frozenset[str]) -> Callable[[View], View]: ...


def step_up(
    view: View | None = None, *, unless_action: frozenset[str] = frozenset()
) -> View | Callable[[View], View]:
    """A fresh sign-in before an unsafe request; ``unless_action`` lists the ``action``
    URL arguments that do not need one (a requester cancelling their own request)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if kwargs.get("action") not in unless_action and needs_step_up(request):
                return ask_for_step_up(request)
            return view(request, *args, **kwargs)

        return cast(View, wrapper)

    return decorator(view) if view is not None else decorator
