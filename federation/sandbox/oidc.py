"""The sandbox org's OpenID Connect endpoints: what "Sign in with Okta" needs.

Discovery, authorize (a sign-in page listing the sandbox's users; picking one
consents at once), token (authorization code + PKCE, client_secret_post or basic),
userinfo and JWKS with a real RSA signing key generated at start. The id token's
``amr`` says MFA was done (``["pwd", "mfa"]``) unless the org is told otherwise.

For the sandbox only: any loopback redirect URI is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "portal-sandbox-client"
CLIENT_SECRET = "portal-sandbox-secret"  # noqa: S105 -- the local sandbox org's, public by design
CODE_SECONDS = 120
TOKEN_SECONDS = 3600
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class OidcError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass
class OidcProvider:
    """Codes, tokens and the signing key of one sandbox org."""

    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    amr: list[str] = field(default_factory=lambda: ["pwd", "mfa"])
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)

    # --- documents --------------------------------------------------------------------

    @staticmethod
    def discovery(base: str) -> dict[str, Any]:
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth2/v1/authorize",
            "token_endpoint": f"{base}/oauth2/v1/token",
            "userinfo_endpoint": f"{base}/oauth2/v1/userinfo",
            "jwks_uri": f"{base}/oauth2/v1/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "email",
                "email_verified",
                "preferred_username",
                "amr",
                "groups",
            ],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid}
        return {"keys": [{**jwk, "n": b64(numbers.n), "e": b64(numbers.e)}]}

    # --- authorize ----------------------------------------------------------------------

    def check_authorize(self, query: dict[str, str]) -> None:
        if query.get("response_type") != "code":
            raise OidcError(400, "unsupported_response_type", "Only response_type=code.")
        if query.get("client_id") not in self.clients:
            raise OidcError(400, "invalid_client", "Unknown client_id.")
        redirect = urlsplit(query.get("redirect_uri", ""))
        if redirect.scheme not in {"http", "https"} or redirect.hostname not in LOOPBACK:
            raise OidcError(400, "invalid_request", "The sandbox redirects to loopback only.")

    def sign_in_page(self, query: dict[str, str], users: list[dict[str, Any]]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        buttons = "".join(
            f'<li><button type="submit" name="login" value="{html.escape(u["profile"]["login"])}">'
            f"{html.escape(u['profile']['login'])}</button></li>"
            for u in users
        )
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Sandbox Okta: sign in</title></head><body>"
            "<h1>Sandbox Okta org</h1><p>Sign in as (password and MFA are taken as done):</p>"
            f"<form method='post' action='/oauth2/v1/authorize'>{hidden}<ul>{buttons}</ul></form>"
            "</body></html>"
        )

    def issue_code(
        self, form: dict[str, str], user: dict[str, Any], groups: list[str] | None = None
    ) -> str:
        """``groups``: the user's Okta group names, sent as the ``groups`` claim."""
        self.check_authorize(form)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "client_id": form["client_id"],
                "redirect_uri": form["redirect_uri"],
                "nonce": form.get("nonce"),
                "challenge": form.get("code_challenge"),
                "user": user,
                "groups": groups,
                "expires": time.time() + CODE_SECONDS,
            }
        params = {"code": code}
        if form.get("state"):
            params["state"] = form["state"]
        sep = "&" if "?" in form["redirect_uri"] else "?"
        return f"{form['redirect_uri']}{sep}{urlencode(params)}"

    # --- token and userinfo -------------------------------------------------------------

    def exchange(
        self, form: dict[str, str], basic: tuple[str, str] | None, base: str
    ) -> dict[str, Any]:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if self.clients.get(client_id) != secret or not secret:
            raise OidcError(401, "invalid_client", "Client authentication failed.")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant["expires"] < time.time() or grant["client_id"] != client_id:
            raise OidcError(400, "invalid_grant", "The code is invalid or expired.")
        if grant["redirect_uri"] != form.get("redirect_uri"):
            raise OidcError(400, "invalid_grant", "redirect_uri does not match.")
        if grant["challenge"]:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if digest.decode() != grant["challenge"]:
                raise OidcError(400, "invalid_grant", "PKCE verification failed.")
        user = grant["user"]
        access = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[access] = {"user": user, "expires": time.time() + TOKEN_SECONDS}
        now = int(time.time())
        claims = {
            "iss": base,
            "aud": client_id,
            "sub": user["id"],
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "auth_time": now,
            "amr": list(self.amr),
            "preferred_username": user["profile"]["login"],
            "email": user["profile"].get("email") or user["profile"]["login"],
            "email_verified": True,
        }
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        if grant.get("groups") is not None:
            claims["groups"] = list(grant["groups"])
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": "openid profile email",
            "id_token": id_token,
        }

    def userinfo(self, authorization: str) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            found = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None or found["expires"] < time.time():
            raise OidcError(401, "invalid_token", "The access token is invalid or expired.")
        profile = found["user"]["profile"]
        return {
            "sub": found["user"]["id"],
            "preferred_username": profile["login"],
            "email": profile.get("email") or profile["login"],
            "email_verified": True,
            "name": " ".join(p for p in (profile.get("firstName"), profile.get("lastName")) if p),
            "given_name": profile.get("firstName", ""),
            "family_name": profile.get("lastName", ""),
        }


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()
