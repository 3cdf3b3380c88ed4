"""An ``after`` cursor the org does not know (a restart, a reset, made up) is refused the
way Okta refuses one: 400 E0000001, never a 500 (issue 12, defect 3)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from federation.sandbox import SandboxServer

from .conftest import call


def next_after(links: list[str]) -> str | None:
    for link in links:
        for part in link.split(","):
            if 'rel="next"' in part:
                query = urlsplit(part.split(";")[0].strip().strip("<>")).query
                return parse_qs(query)["after"][0]
    return None


def test_a_cursor_from_before_a_restart_is_a_400_not_a_500(sandbox: SandboxServer) -> None:
    for _ in range(3):
        sandbox.inject_event("user.authentication.sso", "engineer@example.com")
    cursor = next_after(call(sandbox.url, "GET", "/api/v1/logs").links)
    assert cursor
    sandbox.reset()  # what a restarted `make demo` org looks like: empty, new life

    refused = call(sandbox.url, "GET", "/api/v1/logs", query={"after": cursor})

    assert refused.status == 400
    assert refused.json["errorCode"] == "E0000001"
    assert "after" in refused.json["errorCauses"][0]["errorSummary"]


def test_made_up_cursors_are_refused(sandbox: SandboxServer) -> None:
    for cursor in ("123_999", "not-a-cursor", "1_0"):
        reply = call(sandbox.url, "GET", "/api/v1/logs", query={"after": cursor})
        assert (reply.status, reply.json["errorCode"]) == (400, "E0000001"), cursor
