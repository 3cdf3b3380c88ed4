"""Login policy: accounts are created by admins; Okta signs in, never signs up.

Also where a lockout becomes an audit event and an alert, and where an Okta
sign-in that already did MFA at Okta may skip the portal's own second factor.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.internal.httpkit import get_client_ip
from allauth.mfa.stages import AuthenticateStage
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from portal import audit
from portal.accounts import messages, mfa_policy

# One alert per locked-out login per this many seconds, however hard it is hammered.
LOCKOUT_ALERT_SECONDS = 300


def okta_amr(sociallogin: Any) -> Any:
    if sociallogin is None:
        return None
    return (sociallogin.account.extra_data or {}).get("id_token", {}).get("amr")


class PortalMfaStage(AuthenticateStage):
    """allauth's second-factor step, skipped when Okta says it did MFA (if trusted)."""

    def _should_handle(self, request: HttpRequest) -> bool:
        sociallogin = (self.login.signal_kwargs or {}).get("sociallogin")
        if settings.OKTA_AMR_SATISFIES_MFA and mfa_policy.amr_says_mfa(okta_amr(sociallogin)):
            return False
        return bool(super()._should_handle(request))


class ClosedSignupAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_login_stages(self) -> list[str]:
        return [
            "portal.accounts.adapter.PortalMfaStage"
            if path == "allauth.mfa.stages.AuthenticateStage"
            else path
            for path in super().get_login_stages()
        ]

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            login = (credentials.get("email") or credentials.get("username") or "").lower()
            locked_out(request, login)
            raise


def locked_out(request: HttpRequest, login: str) -> None:
    """Audit a lockout and alert staff, once per login per LOCKOUT_ALERT_SECONDS."""
    if not cache.add(f"portal:lockout-alert:{login}", 1, LOCKOUT_ALERT_SECONDS):
        return
    client_ip = get_client_ip(request)
    with transaction.atomic():
        audit.record(
            "account.locked_out",
            ("login", login[:64]),
            payload={"login": login, "client_ip": client_ip},
        )
        messages.login_locked_out(login, client_ip, {"path": request.path})


class OktaSocialAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return False
