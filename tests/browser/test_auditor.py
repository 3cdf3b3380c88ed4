"""The auditor's journey in a real browser, with the real worker verifying the chain.

An auditor opens History, narrows it to one person and one account, opens a
request's timeline, presses "Verify now" (the badge refreshes itself once the
worker is done), and downloads the audit log as JSON Lines, which
tools/verify_export.py verifies. The same pages on a phone.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.harness import ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


def test_history_timeline_verify_and_export(integration, archive, auditor, sign_in, screenshot):
    page = sign_in(auditor)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="Request history")).to_be_visible()
    expect(page.locator("table.history tbody tr")).to_have_count(5)
    expect(page.locator("#integrity-badge")).to_contain_text("not verified yet")

    page.get_by_label("Person").fill("alice")
    page.get_by_label("Account").select_option(label="prod-payments (111111111111)")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.history tbody tr")).to_have_count(2)
    screenshot(page, "auditor-history")

    page.get_by_role("link", name=f"#{archive.r4.pk}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Request #{archive.r4.pk} — timeline")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("approver1")

    # A POST with the CSRF token (a button in a form), never a link: issue 10, finding 8.
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#integrity-badge")).to_contain_text("Audit chain intact.", timeout=45_000)
    screenshot(page, "auditor-timeline")

    page.get_by_role("link", name="Audit log", exact=True).first.click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON Lines").click()
    path = download.value.path()
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "tools" / "verify_export.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "OK: 4 events" in result.stdout


def test_the_history_on_a_phone(integration, archive, auditor, sign_in, screenshot):
    page = sign_in(auditor, viewport=PHONE)
    page.goto("/auditor/?kind=drill")
    expect(page.locator("table.history tbody tr")).to_have_count(3)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the page scrolls sideways ({width}px)"
    screenshot(page, "auditor-history-phone")
