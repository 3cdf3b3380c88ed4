"""Reactions to sign-in and password changes (connected in PortalConfig.ready)."""

from __future__ import annotations

import time
from typing import Any

from allauth.account import signals as allauth_signals
from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save, pre_save

from portal.accounts import identity, mfa_policy, portal_groups, sessions


def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    now = time.time()
    request.session[sessions.SIGNED_IN_AT] = now
    request.session[sessions.SEEN_AT] = now


def _allauth_signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """allauth's own signal, sent once every stage (second factor included) is done."""
    # The sign-in itself is a fresh authentication: allauth's own step-up pages
    # (adding an authenticator) need not ask for the password again at once.
    records = request.session.get(AUTHENTICATION_METHODS_SESSION_KEY)
    if isinstance(records, list):
        request.session[AUTHENTICATION_METHODS_SESSION_KEY] = [
            {**r, "reauthenticated": True} for r in records
        ]
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is not None and sociallogin.account.provider == "okta":
        _okta_signed_in(request, user, sociallogin)


def _okta_signed_in(request: Any, user: Any, sociallogin: Any) -> None:
    """Okta vouched for this login: bind it (audited) and note whether MFA was done."""
    claims = (sociallogin.account.extra_data or {}).get("id_token") or {}
    info = (sociallogin.account.extra_data or {}).get("userinfo") or {}
    login = info.get("preferred_username") or claims.get("preferred_username") or ""
    if mfa_policy.amr_says_mfa(claims.get("amr")):
        request.session[mfa_policy.OKTA_MFA_SESSION_KEY] = True
    if login:
        identity.bind_okta_login(
            user, login, okta_user_id=sociallogin.account.uid, actor=user, via="okta-sign-in"
        )
    # The plan's [okta_groups] fills portal groups (eligibility) from Okta's groups claim.
    portal_groups.sync_from_okta(user, claims.get("groups", info.get("groups")))


def _remember_password(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.pk is None:
        instance._portal_password_before = None
        return
    instance._portal_password_before = (
        sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    )


def _password_changed(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_portal_password_before", None)
    if created or before is None or before == instance.password:
        return
    instance._portal_password_before = instance.password
    # Django's session hash already ends the other sessions; tokens need revoking.
    sessions.end_sessions_and_tokens(instance, reason="the password was changed")


def connect() -> None:
    user_model = get_user_model()
    user_logged_in.connect(_signed_in, dispatch_uid="portal.signed_in")
    allauth_signals.user_logged_in.connect(_allauth_signed_in, dispatch_uid="portal.allauth_in")
    pre_save.connect(_remember_password, sender=user_model, dispatch_uid="portal.pw_before")
    post_save.connect(_password_changed, sender=user_model, dispatch_uid="portal.pw_changed")
