"""Which Okta account receives a person's access, and who bound it.

The Okta login is not the user's to change: an admin sets it, or the Okta sign-in
binds it (the login Okta itself vouched for). Every change is an audit event.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from portal import audit
from portal.core.types import User
from portal.models import PortalAccount


def account_of(user: User) -> PortalAccount:
    return PortalAccount.objects.get_or_create(user=user)[0]


def okta_login_for(user: User) -> str:
    """The bound Okta login; until one is bound, the email an admin gave the account."""
    bound = PortalAccount.objects.filter(user=user).values_list("okta_login", flat=True).first()
    return bound or getattr(user, "email", "") or ""


def bind_okta_login(
    user: User,
    login: str,
    *,
    okta_user_id: str = "",
    actor: User | None,
    via: str,
    system: str = "system",
) -> bool:
    """Set the Okta login (and id); audited. False when nothing changed."""
    login = login.strip()
    with transaction.atomic():
        account = PortalAccount.objects.select_for_update().get_or_create(user=user)[0]
        before: dict[str, Any] = {
            "okta_login": account.okta_login,
            "okta_user_id": account.okta_user_id,
        }
        after = {"okta_login": login, "okta_user_id": okta_user_id or account.okta_user_id}
        if before == after:
            return False
        account.okta_login, account.okta_user_id = after["okta_login"], after["okta_user_id"]
        account.save(update_fields=["okta_login", "okta_user_id"])
        audit.record(
            "user.okta_login_bound",
            ("user", user.pk),
            actor=actor,
            system=system,
            payload={"user": user.get_username(), "before": before, "after": after, "via": via},
        )
    return True
