"""The foundation journey in a real browser, on the real worker and the sandbox Okta org.

An approver opens a failover; an engineer (on a phone) files a read-only request;
the approver approves it in the queue; the engineer's page turns "Active" by itself
once the worker has added them to the Okta group; the approver revokes; the
engineer's page turns "Revoked".
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, nav

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

ROLE_LABEL = "prod-payments (111111111111) — RO, max 240 min, 1 approval"
GRANT_TIMEOUT = 45_000  # ms: approval → worker → Okta → the page's next poll


def test_request_approve_grant_revoke(prepared_plan, engineer, approver, sign_in, screenshot):
    # prepared_plan comes first: it talks to Okta (asyncio) before Playwright's loop starts.
    # The approver declares the disruption.
    desk = sign_in(approver)
    nav(desk, "Failover").click()
    desk.get_by_label("Reason").fill("IAM Identity Center is down in eu-west-1 (INC-42).")
    desk.get_by_role("button", name="Open failover").click()
    expect(desk.locator(".messages")).to_contain_text("opened")
    expect(desk.locator(".banner")).to_contain_text("open since")

    # The engineer, on a phone, files a read-only request.
    phone = sign_in(engineer, viewport=PHONE)
    expect(phone.locator(".banner")).to_contain_text("emergency access requests are open")
    nav(phone, "New request").click()
    # Several roles can be ticked at once (one request each); here just one.
    phone.get_by_label(ROLE_LABEL).check()
    expect(phone.locator("#duration-limit")).to_have_text("At most 240 minutes for this role.")
    phone.get_by_label("Justification").fill(
        "Payments are failing; I need to read the CloudWatch logs of the workers."
    )
    phone.get_by_label("Ticket or incident").fill("INC-42")
    phone.get_by_label("Duration (minutes)").fill("30")
    phone.get_by_role("button", name="File the request").click()
    expect(phone).to_have_url(re.compile(r"/requests/\d+/$"))
    request_id = int(re.search(r"/requests/(\d+)/$", phone.url).group(1))
    status = phone.locator("#request-status .status-line .badge")
    expect(status).to_have_text("Pending approval")

    # The approver approves it inline in the queue (htmx replaces the row).
    nav(desk, "Approvals").click()
    row = desk.locator(f"#queue-request-{request_id}")
    expect(row).to_contain_text("engineer")
    row.get_by_placeholder("Comment (optional)").fill("Read-only is fine.")
    row.get_by_role("button", name="Approve").click()
    expect(desk.locator(f"#queue-request-{request_id}")).to_contain_text(
        "Okta access is being granted"
    )

    # The engineer's page, untouched, shows the grant once the worker confirmed it in Okta.
    expect(status).to_have_text("Active", timeout=GRANT_TIMEOUT)
    expect(phone.locator("#request-timeline")).to_contain_text("Access granted in Okta")
    screenshot(phone, "phone-request-active")
    nav(phone, "Dashboard").click()
    expect(phone.locator("#dashboard-live")).to_contain_text(f"#{request_id}")
    screenshot(phone, "phone-dashboard")
    phone.go_back()

    # The approver revokes from the request page.
    desk.goto(f"/requests/{request_id}/")
    desk.get_by_placeholder("Reason (the engineer sees it)").fill("Incident mitigated.")
    desk.get_by_role("button", name="Revoke access").click()
    # It asks first (issue 12), with the reason already given.
    dialog = desk.get_by_role("dialog", name=f"Revoke request #{request_id}?")
    expect(dialog.get_by_label("Why")).to_have_value("Incident mitigated.")
    dialog.get_by_role("button", name="Revoke access").click()
    expect(desk.locator(".messages")).to_contain_text("revoked")
    expect(desk.locator("#request-status .status-line .badge")).to_have_text("Revoked")

    # …and the engineer's page follows by itself.
    status = phone.locator("#request-status .status-line .badge")
    expect(status).to_have_text("Revoked", timeout=GRANT_TIMEOUT)
    expect(phone.locator("#request-status")).to_contain_text(
        "Membership removed", timeout=GRANT_TIMEOUT
    )
    screenshot(phone, "phone-request-revoked")
