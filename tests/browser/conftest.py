"""Playwright on Debian's Chromium (never a downloaded browser), one context per person."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import totp_code

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "demo-password-123"  # tests/conftest.make_user
PHONE = {"width": 390, "height": 844}
# Test artefacts (gitignored): look at them after a run.
SCREENS = Path(
    os.environ.get(
        "SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "test-results" / "screens"
    )
)
# Every page reports Content-Security-Policy violations to the console, where the
# fixture below collects them: a test that causes one fails (the portal runs with the
# production policy in these tests too).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI
                + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


def _is_csp_violation(text: str) -> bool:
    return text.startswith("CSP violation") or "Content Security Policy" in text


@pytest.fixture
def csp_violations() -> list[str]:
    """What the browser reported; must be empty when the test ends."""
    return []


@pytest.fixture
def browser(monkeypatch, csp_violations) -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: apt-get install chromium")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # (fixtures, assertions) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        violations = csp_violations
        new_context = browser.new_context

        def watched_context(*args, **kwargs):
            context = new_context(*args, **kwargs)
            context.add_init_script(CSP_LISTENER)
            context.on(
                "console",
                lambda msg: violations.append(msg.text) if _is_csp_violation(msg.text) else None,
            )
            return context

        browser.new_context = watched_context
        yield browser
        browser.close()
        assert violations == [], "Content-Security-Policy violations in the browser"


@pytest.fixture
def sign_in(browser, live_portal) -> Callable:
    """A signed-in page for a user, in a browser context of its own (own cookies)."""
    contexts = []

    def _sign_in(user, *, viewport: dict[str, int] | None = None):
        context = browser.new_context(base_url=live_portal, viewport=viewport)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        sign_in_with_password(page, user)
        page.wait_for_url(f"{live_portal}/")
        return page

    yield _sign_in
    for context in contexts:
        context.close()


def sign_in_with_password(page, user) -> None:
    """The local sign-in: password, then the authenticator code if the account has one."""
    page.get_by_label("Username or email").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()
    for _ in range(2):
        if "/accounts/2fa/authenticate/" not in page.url:
            return
        page.locator("input[name=code]").fill(totp_code())
        page.locator("form button[type=submit]").first.click()
        page.wait_for_load_state()
        if "/accounts/2fa/authenticate/" in page.url:
            # allauth refuses a code already used in this 30 s period (the same person
            # signing in twice, e.g. at two screen sizes): use the next period's.
            time.sleep(30 - time.time() % 30 + 1)


def nav(page, name: str):
    """A link of the main menu; on a phone the menu is folded behind "Menu" first."""
    toggle = page.locator(".menu-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


@pytest.fixture
def screenshot() -> Callable:
    SCREENS.mkdir(parents=True, exist_ok=True)

    def _shot(page, name: str) -> Path:
        path = SCREENS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot
