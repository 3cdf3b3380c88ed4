"""Okta's circuit breaker and the rate-limit pacer through the real okta SDK against the
sandbox org over HTTP (federation/idp/guard.py, docs/reliability.md)."""

from __future__ import annotations

import time

import pytest

from federation.idp import IdpNotFound, IdpRateLimited, IdpRetryableError, IdpUnavailable
from federation.idp.okta import OktaIdentityProvider
from federation.monitor import machinery
from federation.sandbox import DEFAULT_APP_ID, SandboxServer
from federation.sandbox.faults import FaultRule
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

RO = "aws#EmergencyAccess_Role1_RO#123456789012"


@pytest.fixture
def idp(sandbox: SandboxServer, settings) -> OktaIdentityProvider:
    settings.OKTA_SDK_MAX_RETRIES = 0
    return OktaIdentityProvider()


def test_calls_are_paced_to_the_limit_okta_reports_not_bounced_off_it(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_PACE_MAX_WAIT_SECONDS = 0  # defer at once (a task would retry at the reset)
    idp.ensure_group(RO)
    sandbox.add_faults(rate_limits={"groups": 6})
    since = time.time()
    answered, paced = 0, None
    for _ in range(10):
        try:
            idp.find_group(RO)
            answered += 1
        except IdpRateLimited as exc:
            paced = exc
            break
    calls = sandbox.call_log.calls(since)
    assert paced is not None and 30 < paced.retry_after <= 62
    assert answered == len(calls) and 1 <= answered <= 6
    assert [c for c in calls if c[4] == 429] == []  # paced: Okta never had to refuse
    # Other families have their own budget.
    assert idp.get_app(DEFAULT_APP_ID).status == "INACTIVE"


def test_a_429_empties_the_window_until_its_reset(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_PACE_MAX_WAIT_SECONDS = 0
    sandbox.fail_next("GET", "/api/v1/apps/", status=429, reset_in=30)
    with pytest.raises(IdpRetryableError) as first:
        idp.get_app(DEFAULT_APP_ID)
    assert first.value.status == 429
    with pytest.raises(IdpRateLimited):  # not sent: the window is spent until the reset
        idp.get_app(DEFAULT_APP_ID)
    assert sandbox.snapshot()["request_counts"][f"GET /api/v1/apps/{DEFAULT_APP_ID}"] == 1


def test_the_circuit_opens_pauses_calls_and_a_probe_closes_it(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_CIRCUIT_FAILURES = 3
    settings.OKTA_CIRCUIT_COOLDOWN_SECONDS = 1
    sandbox.add_faults([FaultRule(503, "/api/v1/", "*", count=1000)])
    for _ in range(3):
        with pytest.raises(IdpRetryableError) as failed:
            idp.get_app(DEFAULT_APP_ID)
        assert failed.value.status == 503
    path = f"GET /api/v1/apps/{DEFAULT_APP_ID}"
    assert sandbox.snapshot()["request_counts"][path] == 3
    with pytest.raises(IdpUnavailable) as paused:
        idp.get_app(DEFAULT_APP_ID)
    assert sandbox.snapshot()["request_counts"][path] == 3  # not sent
    assert paused.value.since is not None and 0 < paused.value.retry_after <= 1
    okta = machinery.check_okta()
    assert not okta.ok and okta.detail.startswith("Okta unreachable since "), okta
    assert "circuit open after 3 failed calls" in okta.detail
    assert "Okta unreachable since" in machinery.banner()
    opened = AuditEvent.objects.get(action="okta.circuit_opened")
    assert opened.payload["failures"] == 3

    # Half-open: one probe; it fails, so another cool-down (a pause, not a failure).
    time.sleep(1.1)
    with pytest.raises(IdpUnavailable):
        idp.get_app(DEFAULT_APP_ID)
    assert sandbox.snapshot()["request_counts"][path] == 4
    with pytest.raises(IdpUnavailable):
        idp.get_app(DEFAULT_APP_ID)
    assert sandbox.snapshot()["request_counts"][path] == 4

    # Okta is back: the next probe gets an answer and closes the circuit, once.
    sandbox.clear_faults()
    time.sleep(1.1)
    assert idp.get_app(DEFAULT_APP_ID).status == "INACTIVE"
    assert machinery.okta_unreachable() == ""
    assert idp.get_app(DEFAULT_APP_ID).status == "INACTIVE"
    assert AuditEvent.objects.filter(action="okta.circuit_opened").count() == 1
    closed = AuditEvent.objects.get(action="okta.circuit_closed")
    assert closed.payload["unreachable_seconds"] >= 2


def test_any_answer_resets_the_count(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_CIRCUIT_FAILURES = 2
    for _ in range(3):
        sandbox.fail_next("GET", "/api/v1/apps/", status=503)
        with pytest.raises(IdpRetryableError):
            idp.get_app(DEFAULT_APP_ID)
        with pytest.raises(IdpNotFound):  # a 404 is an answer: Okta is there
            idp.get_app("0oanosuchapp")
    assert machinery.okta_unreachable() == ""
