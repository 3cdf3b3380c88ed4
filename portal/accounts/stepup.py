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
from functools import wraps
from typing import Any

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def last_authenticated_at(request: HttpRequest) -> float | None:
    records = get_authentication_records(request, request.user)
    return max((r.get("at", 0) for r in records), default=None)


def recently_authenticated(request: HttpRequest) -> bool:
    at = last_authenticated_at(request)
    return at is not None and time.time() - at < settings.STEP_UP_SECONDS


def step_up(view: Any) -> Any:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            request.method not in SAFE_METHODS
            and request.user.is_authenticated
            and not recently_authenticated(request)
        ):
            if get_adapter().get_reauthentication_methods(request.user):
                raise ReauthenticationRequired()
            # Okta-only account: sign in through Okta again, then press the button again.
            back = request.headers.get("Referer") or request.get_full_path()
            login = reverse("openid_connect_login", kwargs={"provider_id": "okta"})
            return HttpResponseRedirect(f"{login}?{urlencode({'next': back})}")
        return view(request, *args, **kwargs)

    return wrapper
