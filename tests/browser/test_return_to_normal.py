"""The approver's return to normal in a real browser, on the real worker and the sandbox
Okta org: the checklist page, the engineer's "I have signed out" on a phone, the page
following along by itself, the deactivation, and the report."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from federation.failover import services as failover_services
from federation.models import Failover
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.browser.conftest import PHONE, nav
from tests.harness import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

CLOSE_TIMEOUT = 60_000  # ms: the worker deactivates, empties, verifies, ends sessions


@pytest.fixture
def granted(prepared_plan, engineer, approver) -> tuple[Failover, AccessRequest]:
    """A failover with an active grant, made before Playwright's event loop starts (the
    okta SDK runs its own loop)."""
    failover = failover_services.open_failover(actor=approver, reason="IdC down (INC-42)")
    wait_for(lambda: Failover.objects.get(pk=failover.pk).app_activated_at, what="activation")
    req = services.file_request(
        requester=engineer, role=prepared_plan.roles[("prod-payments", "RO")],
        justification="Payments are failing; I need to read the worker logs.", ticket="INC-42",
        duration_minutes=60,
    )  # fmt: skip
    services.approve(req, actor=approver)
    wait_for(lambda: AccessRequest.objects.get(pk=req.pk).status == Status.ACTIVE, what="grant")
    return failover, req


def test_approver_returns_to_normal(granted, engineer, approver, sign_in, screenshot):
    failover, req = granted
    # The approver opens the checklist from the failover page.
    desk = sign_in(approver)
    nav(desk, "Failover").click()
    desk.get_by_role("link", name="Start the return to normal").click()
    expect(desk).to_have_url(re.compile(r"/failover/return/$"))
    expect(desk.locator("#step-health")).to_have_attribute("data-state", "current")
    # Identity Center is not known HEALTHY here: the override needs a reason.
    desk.get_by_role("button", name="Start: tell everyone to sign out").click()
    expect(desk.locator("#step-health")).to_contain_text("not HEALTHY")
    desk.get_by_label("Override reason").fill("AWS Health shows the SSO event resolved.")
    desk.get_by_role("button", name="Start: tell everyone to sign out").click()
    expect(desk.locator(".messages")).to_contain_text("told to sign out")
    expect(desk.locator("#step-announce")).to_have_attribute("data-state", "done")
    expect(desk.locator("#step-signouts")).to_contain_text("Still signed in: engineer.")
    expect(desk.get_by_role("button", name="Deactivate now")).to_be_disabled()
    screenshot(desk, "return-waiting-for-sign-outs")

    # The engineer, on a phone, is told to sign out and says so.
    phone = sign_in(engineer, viewport=PHONE)
    expect(phone.locator(".banner")).to_contain_text("sign out of the AWS console now")
    phone.goto(f"/requests/{req.pk}/")
    phone.get_by_role("button", name="I have signed out of AWS").click()
    expect(phone.locator(".messages")).to_contain_text("sign-out is recorded")

    # The approver's page follows by itself (htmx) and the deactivation can go ahead.
    expect(desk.locator("#step-signouts")).to_contain_text("Everyone has signed out.")
    expect(desk.locator("#step-signouts")).to_have_attribute("data-state", "done")
    desk.get_by_role("button", name="Deactivate now").click()
    desk.get_by_role("dialog").get_by_role("button", name="Deactivate now").click()
    expect(desk.locator(".messages")).to_contain_text("Closing")
    # The worker deactivates the app, empties the groups, ends sessions: the page follows.
    expect(desk.locator("#step-close")).to_have_attribute(
        "data-state", "done", timeout=CLOSE_TIMEOUT
    )
    expect(desk.locator("#step-deactivate")).to_contain_text("verified in Okta")
    screenshot(desk, "return-closed")
    desk.get_by_role("link", name="Read the report").click()
    expect(desk.locator("h1")).to_contain_text(f"#{failover.pk} — report")
    expect(desk.locator("#access-title")).to_be_visible()
    expect(desk.locator("main")).to_contain_text("engineer")
    expect(desk.locator("main")).to_contain_text("they said so in the portal")
    screenshot(desk, "return-report")
    assert Failover.objects.get(pk=failover.pk).status == "closed"
    assert (
        desk.context.request.get(f"/failover/{failover.pk}/report.json").json()["failover"]["id"]
        == failover.pk
    )
