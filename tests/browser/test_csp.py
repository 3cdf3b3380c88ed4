"""The browser enforces the portal's Content-Security-Policy, and the fixture notices.

Every browser test fails on a CSP violation (tests/browser/conftest.py); this one
checks the policy really is on: an injected inline script does not run, an inline
style is refused, and both are reported.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_inline_script_and_style_are_refused(sign_in, engineer, csp_violations):
    page = sign_in(engineer)
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__inlineRan = true";
          document.body.appendChild(s);
          document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>');
        }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__inlineRan") is None
    found = list(csp_violations)
    csp_violations.clear()  # caused on purpose; anything else still fails the test
    assert any("script-src" in v for v in found), found
    assert any("style-src" in v for v in found), found


def test_the_portal_pages_cause_no_violation(sign_in, approver, csp_violations):
    page = sign_in(approver)
    for path in ["/", "/requests/", "/audit/", "/auditor/", "/tokens/", "/api/v1/docs"]:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert csp_violations == []
