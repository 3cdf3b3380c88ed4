"""The demo's TOTP secrets: seeded for the demo accounts only, readable by a command.

Never in production: ``seed_demo`` and ``demo_totp`` refuse to run there.
"""

from __future__ import annotations

import base64
import hmac
import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser


def demo_secret(username: str) -> str:
    """A stable secret per demo account (so a re-seed keeps the app entry valid)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-totp:{username}".encode(), "sha1")
    return base64.b32encode(digest.digest()).decode().rstrip("=")


def seed(user: AbstractBaseUser) -> bool:
    """Give ``user`` the demo TOTP authenticator; False when they have one already."""
    if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        return False
    TOTP.activate(user, demo_secret(user.get_username()))
    return True


def current_code(user: AbstractBaseUser) -> tuple[str, int] | None:
    """The code the user's authenticator app would show now, and seconds it stays valid."""
    found = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if found is None:
        return None
    secret = get_adapter().decrypt(found.data["secret"])
    period = mfa_settings.TOTP_PERIOD
    now = time.time()
    code = format_hotp_value(hotp_value(secret, int(now // period)))
    return code, period - int(now % period)


__all__ = ["current_code", "demo_secret", "seed"]
