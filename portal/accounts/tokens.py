"""Personal API tokens: create, authenticate, revoke.

A token is shown once, when it is created; the database keeps only its SHA-256
and a short hint. A token acts as its owner, with exactly the owner's portal
permissions (an auditor's token is read-only, like the auditor).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal import audit
from portal.accounts import messages
from portal.core.errors import InvalidTransition, NotAllowed
from portal.core.types import User
from portal.models import ApiToken, hash_token

# last_used_at is written at most this often per token, not on every API call.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length or 100
HINT_LENGTH = ApiToken._meta.get_field("hint").max_length or 12
# Far longer than any token we issue; anything longer is not worth hashing.
_MAX_RAW_LENGTH = 200


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the token a name, e.g. what will use it."]})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": [f"A token name is at most {NAME_MAX_LENGTH} characters."]})
    return name


def _clean_days(days: int | None) -> int:
    if days is None:
        return settings.API_TOKEN_DEFAULT_DAYS
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise ValidationError(
            {"expires_in_days": [f"A token lives 1 to {settings.API_TOKEN_MAX_DAYS} days."]}
        )
    return days


def create_token(
    user: User,
    name: str,
    actor: User | None,
    *,
    system: str = "system",
    days: int | None = None,
    read_only: bool = False,
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return it with the raw secret, which is never stored.

    ``actor`` is who asked (the user themself on the tokens page, None from a
    management command, recorded as ``system``). The owner is emailed either way.
    """
    name = _clean_name(name)
    days = _clean_days(days)
    if actor is not None and actor.pk != user.pk:
        raise NotAllowed("You can only create API tokens for yourself.")
    if not user.is_active:
        raise NotAllowed(f"{user.get_username()} is not an active user.")
    raw = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            token_hash=hash_token(raw),
            hint=raw[:HINT_LENGTH],
            expires_at=timezone.now() + dt.timedelta(days=days),
            read_only=read_only,
        )
        audit.record(
            "api_token.created",
            token,
            actor=actor,
            system=system,
            payload={
                "owner": user.get_username(),
                "name": name,
                "hint": token.hint,
                "expires_at": token.expires_at,
                "read_only": read_only,
            },
        )
        messages.api_token_created(token)
    return token, raw


def authenticate_token(raw: str | None, client_ip: str | None = None) -> ApiToken | None:
    """The live token of an active owner, or None. Records when and from where it was used."""
    if not raw or not raw.startswith(ApiToken.PREFIX) or len(raw) > _MAX_RAW_LENGTH:
        return None
    token = (
        ApiToken.objects.active().select_related("user").filter(token_hash=hash_token(raw)).first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is None or token.last_used_at <= stale or token.last_used_ip != client_ip:
        # Race-safe and cheap: only one of many concurrent calls writes.
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale) | ~Q(last_used_ip=client_ip),
            pk=token.pk,
        ).update(last_used_at=now, last_used_ip=client_ip)
    return token


def authenticate(raw: str | None, client_ip: str | None = None) -> User | None:
    """The active owner of a live token, or None."""
    token = authenticate_token(raw, client_ip)
    return token.user if token else None


def revoke_all(user: User, *, reason: str, actor: User | None, system: str = "system") -> int:
    """Revoke every live token of ``user`` (password change, deactivation, role removed)."""
    now = timezone.now()
    with transaction.atomic():
        live = list(ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True))
        for token in live:
            audit.record(
                "api_token.revoked",
                token,
                actor=actor,
                system=system,
                payload={
                    "owner": user.get_username(),
                    "name": token.name,
                    "hint": token.hint,
                    "reason": reason,
                },
            )
        ApiToken.objects.filter(pk__in=[t.pk for t in live]).update(revoked_at=now)
    return len(live)


def revoke_token(token: ApiToken, actor: User | None, *, system: str = "system") -> ApiToken:
    """Revoke a token for good; only its owner (or the system) may."""
    if actor is not None and actor.pk != token.user_id:
        raise NotAllowed("You can only revoke your own API tokens.")
    now = timezone.now()
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if not changed:
            raise InvalidTransition(f"The token {token.name!r} is already revoked.")
        audit.record(
            "api_token.revoked",
            token,
            actor=actor,
            system=system,
            payload={"owner": token.user.get_username(), "name": token.name, "hint": token.hint},
        )
    token.revoked_at = now
    return token
