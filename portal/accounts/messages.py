"""What the account-security side tells people (through the portal's notify)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal import notify
from portal.models import ApiToken


def _staff_emails() -> list[str]:
    users = get_user_model().objects.filter(is_staff=True, is_active=True)
    return sorted({u.email for u in users if u.email})


def api_token_created(token: ApiToken) -> None:
    """The owner hears of every new token: one they did not make is an incident."""
    owner = token.user
    scope = "read-only" if token.read_only else "full (acts as you)"
    notify.notify(
        "api_token.created",
        f"A new API token “{token.name}” was created for {owner.get_username()}",
        f"Token {token.hint}… ({scope}) was created and expires {token.expires_at:%Y-%m-%d %H:%M} "
        "UTC. If this was not you, revoke it now and tell an administrator.",
        settings.SITE_URL.rstrip("/") + reverse("tokens"),
        [owner.email],
    )


def login_locked_out(login: str, client_ip: str | None, detail: dict[str, Any]) -> None:
    notify.notify(
        "account.locked_out",
        f"Sign-in locked out for {login or '(no login)'} after repeated failures",
        f"Too many failed sign-ins for {login!r} (client {client_ip or 'unknown'}). "
        "The account's sign-in is paused for a few minutes; others are unaffected.\n"
        f"{detail}",
        settings.SITE_URL.rstrip("/") + reverse("audit-log"),
        _staff_emails(),
    )
