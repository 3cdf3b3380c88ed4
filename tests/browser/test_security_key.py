"""A security key (WebAuthn) in Chromium: an approver adds one, signs in with the password
and the key, and steps up with the key before approving.

The key is Chromium's virtual authenticator (DevTools protocol ``WebAuthn`` domain): a
CTAP2 USB key that holds resident keys and verifies its user. It belongs to the page's
browser tab, so the approver logs out and back in on the same page (as one does on one
machine with one key).
"""

from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from federation.failover import services as failover_services
from portal.core.access import APPROVERS
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.browser.conftest import PASSWORD
from tests.conftest import make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.real_sign_in,
    pytest.mark.django_db(transaction=True),
]

STEP_UP_SECONDS = 4  # short, so that the test can outwait the sign-in


def plug_in_security_key(page) -> tuple[object, str]:
    """Chromium's virtual authenticator on ``page``'s tab; returns (CDP session, its id)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def credentials_on_key(cdp, authenticator_id: str) -> list[dict]:
    return cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


def log_in_with_password(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()


@pytest.fixture
def pending_request(prepared_plan, engineer) -> AccessRequest:
    """An open failover and an engineer's read-only request, made before Playwright's event
    loop starts (filing looks the engineer up in Okta, with asyncio)."""
    opener = make_user("approver2", "approver2@example.com", APPROVERS)
    failover_services.open_failover(actor=opener, reason="IdC down (INC-9)", drill=False)
    return services.file_request(
        requester=engineer,
        role=prepared_plan.roles[("prod-payments", "RO")],
        justification="Payments are failing; I need to read the CloudWatch logs of the workers.",
        ticket="INC-9",
        duration_minutes=30,
    )


def test_an_approver_adds_a_security_key_signs_in_and_steps_up_with_it(
    pending_request, browser, live_portal, short_step_up
):
    req = pending_request
    approver = make_user("approver1", "approver1@example.com", APPROVERS, mfa=False)
    context = browser.new_context(base_url=live_portal)
    context.set_default_timeout(15_000)
    page = context.new_page()
    cdp, key = plug_in_security_key(page)

    # 1. No second factor yet: held at the set-up page; the approver adds the key.
    log_in_with_password(page, "approver1")
    page.goto("/approvals/")
    assert page.url.endswith("/accounts/2fa/")
    page.goto("/accounts/2fa/webauthn/add/")
    page.get_by_label("Name").fill("Desk key")
    page.get_by_role("button", name="Add").click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    assert Authenticator.objects.filter(user=approver, type=Authenticator.Type.WEBAUTHN).exists()
    assert len(credentials_on_key(cdp, key)) == 1
    page.goto("/approvals/")
    assert page.url.endswith("/approvals/")  # the key is a second factor: no longer held

    # 2. Log out; log in again: the password, then the key.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    log_in_with_password(page, "approver1")
    page.wait_for_url("**/accounts/2fa/authenticate/")
    before = credentials_on_key(cdp, key)[0]["signCount"]
    page.get_by_role("button", name="Use a security key").click()
    page.wait_for_url(f"{live_portal}/")
    assert credentials_on_key(cdp, key)[0]["signCount"] > before  # the key signed
    page.goto("/approvals/")
    assert page.url.endswith("/approvals/")

    # 3. Minutes later (here: seconds): approving asks for the key again, then goes through.
    time.sleep(STEP_UP_SECONDS + 1)
    page.goto(f"/requests/{req.pk}/")
    page.locator("#decision-comment").fill("Read-only is fine.")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_url("**/reauthenticate/**")
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING  # not yet
    page.get_by_role("link", name="Use a security key").click()
    page.wait_for_url("**/2fa/webauthn/reauthenticate/**")
    before = credentials_on_key(cdp, key)[0]["signCount"]
    page.get_by_role("button", name="Use a security key").click()
    # allauth replays the approval once the key has answered.
    page.wait_for_url(f"**/requests/{req.pk}/")
    expect(page.locator(".messages")).to_contain_text(f"Request #{req.pk} approved")
    assert credentials_on_key(cdp, key)[0]["signCount"] > before
    assert AccessRequest.objects.get(pk=req.pk).status in {Status.APPROVED, Status.ACTIVE}
    context.close()


@pytest.fixture
def short_step_up(settings):
    settings.STEP_UP_SECONDS = STEP_UP_SECONDS
    return settings
