"""Who may call the sandbox: the SSWS API token, static Bearer tokens, and OAuth 2.0
access tokens its ``/oauth2/v1/token`` endpoint issues to a service app."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .events import Caller
from .ids import stable_id

SERVICE_LOGIN = "portal-service@example.com"
ADMIN_LOGIN = "okta-admin@example.com"
# The scopes the token endpoint grants (the portal's service app).
GRANTABLE_SCOPES = frozenset(
    f"okta.{resource}.{level}"
    for resource in ("users", "groups", "apps")
    for level in ("read", "manage")
) | {"okta.logs.read"}


def person(login: str, display: str) -> dict[str, Any]:
    """A System Log actor for a user."""
    return {
        "id": stable_id("00u", login),
        "type": "User",
        "alternateId": login,
        "displayName": display,
    }


# The API token's owner, as the System Log names it, and an admin working in the console.
SERVICE_ACTOR = person(SERVICE_LOGIN, "Emergency Access Portal (API token)")
ADMIN_ACTOR = person(ADMIN_LOGIN, "Okta Administrator")


class OAuthError(Exception):
    """An OAuth 2.0 error response (``{"error", "error_description"}``)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.description = description


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
        return claims
    except (IndexError, ValueError):
        return {}


class Credentials:
    """Accepted credentials and the OAuth tokens issued so far (thread-safe)."""

    def __init__(
        self, token: str, bearer_tokens: Iterable[str] = (), clock: Callable[[], float] = time.time
    ) -> None:
        self.token = token
        self._static_bearer = frozenset(bearer_tokens)
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[str, tuple[str, frozenset[str]]] = {}

    def forget_issued(self) -> None:
        with self._lock:
            self._issued.clear()

    def caller_for(self, authorization: str) -> tuple[Caller, frozenset[str] | None] | None:
        """Who the Authorization header belongs to and its OAuth scopes (None = all)."""
        scheme, _, credential = authorization.partition(" ")
        if scheme.startswith("SSWS"):
            # The okta SDK sends "SSWS<token>" without the space; Okta accepts both.
            credential = credential if scheme == "SSWS" else scheme[4:]
            if credential and secrets.compare_digest(credential, self.token):
                return Caller(dict(SERVICE_ACTOR), "trs" + stable_id("", self.token)[:22]), None
            return None
        if scheme != "Bearer" or not credential:
            return None
        if credential in self._static_bearer:
            return Caller(dict(SERVICE_ACTOR), "trsSandboxOAuthStatic01"), None
        with self._lock:
            issued = self._issued.get(credential)
        if issued is None:
            return None
        client_id, scopes = issued
        actor = {
            "id": client_id,
            "type": "PublicClientApp",
            "alternateId": client_id,
            "displayName": "Emergency Access Portal (OAuth service app)",
        }
        return Caller(actor, "trs" + stable_id("", credential)[:22]), scopes

    def issue_token(self, form: dict[str, str]) -> dict[str, Any]:
        """``POST /oauth2/v1/token`` for a service app (client_credentials + private_key_jwt).

        The JWT's signature is not verified (the sandbox holds no public keys); its
        claims are: ``iss == sub == client_id``, ``aud`` is this endpoint, not expired.
        """
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "The grant type is not supported.")
        claims = _jwt_claims(form.get("client_assertion", ""))
        client_id = claims.get("iss")
        if (
            not client_id
            or claims.get("sub") != client_id
            or not str(claims.get("aud", "")).endswith("/oauth2/v1/token")
            or float(claims.get("exp", 0)) < self._clock()
        ):
            raise OAuthError(401, "invalid_client", "The client_assertion token is invalid.")
        scopes = frozenset(form.get("scope", "").split())
        if not scopes or not scopes <= GRANTABLE_SCOPES:
            raise OAuthError(
                400,
                "invalid_scope",
                "One or more scopes are not configured for the authorization server resource.",
            )
        token = "sbx." + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = (client_id, scopes)
        return {
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": token,
            "scope": " ".join(sorted(scopes)),
        }
