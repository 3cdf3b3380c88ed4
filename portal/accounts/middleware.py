"""Session policy, the MFA requirement and the read-only admin for auditors.

Installed after allauth's AccountMiddleware (see settings.MIDDLEWARE).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from portal.accounts import mfa_policy, sessions
from portal.core.access import is_auditor
from portal.core.types import User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The "last seen" time is written at most this often (seconds), not on every request.
SEEN_RESOLUTION = 60


class SessionPolicyMiddleware:
    """Ends a session past its absolute lifetime, idle too long, or ended by an admin."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            why = self._ended(request, user)
            if why:
                logout(request)
                if request.path.startswith("/api/"):
                    return self.get_response(request)
                return HttpResponseRedirect(
                    f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}"
                )
        return self.get_response(request)

    def _ended(self, request: HttpRequest, user: User) -> str:
        now = time.time()
        session = request.session
        signed_in = session.get(sessions.SIGNED_IN_AT)
        if signed_in is None:
            # A session from before this policy (or a test's force_login): start it now.
            session[sessions.SIGNED_IN_AT] = signed_in = now
        seen = session.get(sessions.SEEN_AT, signed_in)
        if now - signed_in > settings.SESSION_ABSOLUTE_HOURS * 3600:
            return "absolute"
        if now - seen > settings.SESSION_IDLE_MINUTES * 60:
            return "idle"
        ended = sessions.ended_after(user)
        if ended is not None and signed_in < ended:
            return "ended"
        if now - seen >= SEEN_RESOLUTION or sessions.SEEN_AT not in session:
            session[sessions.SEEN_AT] = now
        return ""


def _allowed_without_mfa(path: str) -> bool:
    prefixes = (
        "/accounts/2fa/",
        "/accounts/logout/",
        "/accounts/reauthenticate/",
        "/accounts/login/",
        "/static/",
        "/healthz",
    )
    return path.startswith(prefixes)


class RequireMfaMiddleware:
    """Someone whose role needs a second factor and has none can only set one up."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not _allowed_without_mfa(request.path)
            and mfa_policy.mfa_required(user)
            and not mfa_policy.has_second_factor(request, user)
        ):
            if request.path.startswith("/api/"):
                return HttpResponse(
                    '{"detail": "Set up a second factor (MFA) on the portal first."}',
                    status=403,
                    content_type="application/json",
                )
            return HttpResponseRedirect(reverse("mfa_index"))
        return self.get_response(request)


class AuditorsReadOnlyAdminMiddleware:
    """Auditors change nothing in the admin, whatever their staff or superuser flags."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method not in SAFE_METHODS
            and request.path.startswith("/admin/")
            and is_auditor(getattr(request, "user", None))
        ):
            raise PermissionDenied("Auditors are read-only: the admin refuses their changes.")
        return self.get_response(request)
