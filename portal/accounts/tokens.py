"""Personal API tokens: create, authenticate, revoke.

A token is shown once, when it is created; the database keeps only its SHA-256
and a short hint. A token acts as its owner, with exactly the owner's portal
permissions (an auditor's token is read-only, like the auditor).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal import audit
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


def create_token(
    user: User,
    name: str,
    actor: User | None,
    *,
    system: str = "system",
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return it with the raw secret, which is never stored.

    ``actor`` is who asked (the user themself on the tokens page, None from a
    management command, recorded as ``system``).
    """
    name = _clean_name(name)
    if actor is not None and actor.pk != user.pk:
        raise NotAllowed("You can only create API tokens for yourself.")
    if not user.is_active:
        raise NotAllowed(f"{user.get_username()} is not an active user.")
    raw = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, token_hash=hash_token(raw), hint=raw[:HINT_LENGTH]
        )
        audit.record(
            "api_token.created",
            token,
            actor=actor,
            system=system,
            payload={"owner": user.get_username(), "name": name, "hint": token.hint},
        )
    return token, raw


def authenticate(raw: str | None) -> User | None:
    """The active owner of a live token, or None. Records when the token was last used."""
    if not raw or not raw.startswith(ApiToken.PREFIX) or len(raw) > _MAX_RAW_LENGTH:
        return None
    token = (
        ApiToken.objects.active().select_related("user").filter(token_hash=hash_token(raw)).first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is None or token.last_used_at <= stale:
        # Race-safe and cheap: only one of many concurrent calls writes.
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=token.pk
        ).update(last_used_at=now)
    return token.user


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
