"""Who must have a second factor, and whether they have one.

``MFA_REQUIRED_FOR`` names the roles (approver, auditor, staff) or ``all``. A
second factor is an allauth authenticator (TOTP or WebAuthn), or, when
``OKTA_AMR_SATISFIES_MFA`` is on, a session begun by an Okta sign-in whose id token
says MFA was done at Okta (``amr`` contains ``mfa``).
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.http import HttpRequest

from portal.core.access import APPROVERS, AUDITORS, _in_group

# Set in the session by the Okta sign-in when its amr claim says MFA was done.
OKTA_MFA_SESSION_KEY = "portal_okta_mfa"
SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


def mfa_required(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    wanted = set(settings.MFA_REQUIRED_FOR)
    if "all" in wanted:
        return True
    return bool(
        ("approver" in wanted and _in_group(user, APPROVERS))
        or ("auditor" in wanted and _in_group(user, AUDITORS))
        or ("staff" in wanted and (user.is_staff or user.is_superuser))
    )


def has_second_factor(request: HttpRequest, user: Any) -> bool:
    if settings.OKTA_AMR_SATISFIES_MFA and request.session.get(OKTA_MFA_SESSION_KEY):
        return True
    return bool(is_mfa_enabled(user, SECOND_FACTORS))


def amr_says_mfa(amr: Any) -> bool:
    return isinstance(amr, list) and "mfa" in amr
