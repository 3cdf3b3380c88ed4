"""Ending a person's sessions and API tokens when what they may do changes.

Django ends other sessions on a password change itself (the session auth hash), and
an inactive account's sessions no longer load a user. Removing a portal role leaves
the password alone, so each account carries ``sessions_valid_after``: the session
policy middleware ends every session that began before it. API tokens are revoked
outright in all three cases.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.accounts import tokens
from portal.core.types import User
from portal.models import PortalAccount

# Session keys the policy middleware reads (seconds since the epoch).
SIGNED_IN_AT = "portal_signed_in_at"
SEEN_AT = "portal_seen_at"


def end_sessions_and_tokens(
    user: User,
    *,
    reason: str,
    actor: User | None = None,
    system: str = "system",
) -> int:
    """End every session of ``user`` and revoke their tokens; returns tokens revoked.

    Runs in the caller's transaction, so the audit event lands with the change.
    """
    now = timezone.now()
    with transaction.atomic():
        account = PortalAccount.objects.select_for_update().get_or_create(user=user)[0]
        account.sessions_valid_after = now
        account.save(update_fields=["sessions_valid_after"])
        revoked = tokens.revoke_all(user, reason=reason, actor=actor, system=system)
        audit.record(
            "user.sessions_ended",
            ("user", user.pk),
            actor=actor,
            system=system,
            payload={"user": user.get_username(), "reason": reason, "tokens_revoked": revoked},
        )
    return revoked


def ended_after(user: User) -> float | None:
    """Sessions that began before this moment (epoch seconds) are no longer valid."""
    at = (
        PortalAccount.objects.filter(user_id=user.pk)
        .values_list("sessions_valid_after", flat=True)
        .first()
    )
    return at.timestamp() if at else None
