"""Signing in, in Chromium: setting up TOTP, signing in with it, and "Sign in with Okta"
through the sandbox org's OpenID Connect pages."""

from __future__ import annotations

import pytest

from portal.core.access import APPROVERS
from portal.models import PortalAccount
from tests.browser.conftest import PASSWORD, sign_in_with_password
from tests.conftest import make_user, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.real_sign_in]


@pytest.fixture
def okta_provider(settings, sandbox_org):
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**directives, "form-action": ["'self'", sandbox_org.url]}
    }
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


def _page(browser, live_portal):
    context = browser.new_context(base_url=live_portal)
    context.set_default_timeout(15_000)
    return context, context.new_page()


def test_an_approver_without_mfa_sets_up_totp_then_signs_in_with_it(browser, live_portal):
    approver = make_user("approver1", "approver1@example.com", APPROVERS, mfa=False)
    context, page = _page(browser, live_portal)

    page.goto("/accounts/login/")
    sign_in_with_password(page, approver)
    page.goto("/approvals/")
    assert page.url.endswith("/accounts/2fa/")  # held at set-up: nothing else
    page.goto("/accounts/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").input_value()
    activation_code = totp_code(secret)
    page.locator("input[name=code]").fill(activation_code)
    page.get_by_role("button", name="Activate").click()
    page.wait_for_load_state()
    page.goto("/approvals/")
    assert page.url.endswith("/approvals/")
    context.close()

    # A new browser: password, then the code from the app.
    context, page = _page(browser, live_portal)
    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill("approver1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    # The app's code of the moment (allauth does not mark the activation code as used, so
    # within its 30 s period it may be the same one).
    page.locator("input[name=code]").fill(totp_code(secret))
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{live_portal}/")
    assert "approver1" in page.content()
    context.close()


def test_a_wrong_code_does_not_sign_in(browser, live_portal):
    approver = make_user("approver1", "approver1@example.com", APPROVERS)
    context, page = _page(browser, live_portal)
    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill(approver.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.locator("input[name=code]").fill("000000" if totp_code() != "000000" else "111111")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state()
    assert "/accounts/2fa/authenticate/" in page.url
    context.close()


def test_sign_in_with_okta_through_the_sandbox(browser, live_portal, okta_provider):
    approver = make_user("approver1", "approver1@example.com", APPROVERS, mfa=False)
    context, page = _page(browser, live_portal)

    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with Okta").click()
    page.get_by_role("button", name="approver1@example.com").click()  # the sandbox's page
    page.wait_for_url(f"{live_portal}/")
    page.goto("/approvals/")

    assert page.url.endswith("/approvals/")  # Okta's amr said MFA: no local factor needed
    assert PortalAccount.objects.get(user=approver).okta_login == "approver1@example.com"
    context.close()
