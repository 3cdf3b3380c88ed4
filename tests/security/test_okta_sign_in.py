"""Sign in with Okta through the sandbox org's OpenID Connect endpoints, over HTTP.

The portal's allauth openid_connect provider talks to the sandbox for real:
discovery, authorize (its sign-in page), token (code + PKCE), userinfo, and the
JWKS whose RSA key signs the id token.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.test import Client

from portal.accounts.mfa_policy import OKTA_MFA_SESSION_KEY
from portal.core.access import APPROVERS
from portal.models import AuditEvent, PortalAccount
from tests.conftest import make_user

pytestmark = [pytest.mark.integration, pytest.mark.real_sign_in, pytest.mark.django_db]


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields, self.logins = "", {}, []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name") == "login":
            self.logins.append(a["value"])


@pytest.fixture
def okta(settings, sandbox_org):
    sandbox_org.reset()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "okta",
                    "name": "Okta",
                    "client_id": "portal-sandbox-client",
                    "secret": "portal-sandbox-secret",
                    "settings": {
                        "server_url": sandbox_org.url,
                        "token_auth_method": "client_secret_post",
                    },
                }
            ],
        }
    }
    return sandbox_org


def okta_sign_in(client: Client, login: str) -> object:
    """Press "Sign in with Okta", pick ``login`` on the sandbox page, come back."""
    start = client.post("/accounts/oidc/okta/login/")
    assert start.status_code == 302, start.content
    page = requests.get(start["Location"], timeout=10)
    assert page.status_code == 200
    form = _Form()
    form.feed(page.text)
    assert login in form.logins
    base = "{0.scheme}://{0.netloc}".format(urlsplit(start["Location"]))
    back = requests.post(
        base + form.action, data={**form.fields, "login": login}, allow_redirects=False, timeout=10
    )
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def test_discovery_and_a_real_signing_key(okta):
    config = requests.get(f"{okta.url}/.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == okta.url
    keys = requests.get(config["jwks_uri"], timeout=10).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and len(keys[0]["n"]) > 300


def test_an_approver_signs_in_with_okta_and_okta_mfa_counts(okta, settings):
    approver = make_user("approver1", "approver1@example.com", APPROVERS, mfa=False)
    client = Client(HTTP_HOST="127.0.0.1")

    response = okta_sign_in(client, "approver1@example.com")

    assert response.status_code == 302 and response["Location"] == "/", response.content[:500]
    assert int(client.session["_auth_user_id"]) == approver.pk
    assert client.session[OKTA_MFA_SESSION_KEY] is True
    assert client.get("/approvals/").status_code == 200  # no local authenticator needed
    bound = PortalAccount.objects.get(user=approver)
    assert bound.okta_login == "approver1@example.com" and bound.okta_user_id.startswith("00u")
    event = AuditEvent.objects.get(action="user.okta_login_bound")
    assert event.payload["via"] == "okta-sign-in"


def test_when_okta_mfa_does_not_count_a_local_second_factor_is_required(okta, settings):
    settings.OKTA_AMR_SATISFIES_MFA = False
    make_user("approver1", "approver1@example.com", APPROVERS, mfa=False)
    client = Client(HTTP_HOST="127.0.0.1")
    okta_sign_in(client, "approver1@example.com")
    assert client.get("/approvals/")["Location"] == "/accounts/2fa/"


def test_nobody_signs_up_through_okta(okta):
    client = Client(HTTP_HOST="127.0.0.1")
    response = okta_sign_in(client, "oncall@example.com")  # in Okta, not in the portal
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 302)


def test_a_forged_code_is_refused(okta):
    response = requests.post(
        f"{okta.url}/oauth2/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": "forged",
            "client_id": "portal-sandbox-client",
            "client_secret": "portal-sandbox-secret",
            "redirect_uri": "http://127.0.0.1/accounts/oidc/okta/login/callback/",
        },
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_the_id_token_is_signed_and_says_mfa(okta):
    client = Client(HTTP_HOST="127.0.0.1")
    start = client.post("/accounts/oidc/okta/login/")
    query = parse_qs(urlsplit(start["Location"]).query)
    form = {k: v[0] for k, v in query.items()}
    back = requests.post(
        f"{okta.url}/oauth2/v1/authorize",
        data={**form, "login": "engineer@example.com"},
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    # Without the PKCE verifier the code is useless.
    token = requests.post(
        f"{okta.url}/oauth2/v1/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "portal-sandbox-client",
            "client_secret": "portal-sandbox-secret",
            "redirect_uri": form["redirect_uri"],
        },
        timeout=10,
    )
    assert token.status_code == 400
    assert re.search("PKCE", token.json()["error_description"])
    assert jwt.get_unverified_header is not None
