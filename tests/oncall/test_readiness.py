"""Readiness checks PagerDuty once the portal is set up to use it."""

from __future__ import annotations

import pytest

from federation.readiness.checks import FAIL, PASS, UNKNOWN, WARN, Run, check_pagerduty

pytestmark = pytest.mark.django_db


def results() -> dict[tuple[str, str], str]:
    run = Run(plan=None, failover=None)
    check_pagerduty(run)
    return {(r.name, r.subject): r.status for r in run.results}


def with_rule(plan) -> None:
    ops = plan.levels["Ops"]
    ops.oncall_schedule = "PSCHED1"
    ops.save()


def test_nothing_configured_says_nothing(plan, settings):
    settings.PAGERDUTY_API_TOKEN = settings.PAGERDUTY_ROUTING_KEY = ""
    assert results() == {}


def test_a_rule_without_a_token_fails(plan, settings):
    settings.PAGERDUTY_API_TOKEN = settings.PAGERDUTY_ROUTING_KEY = ""
    with_rule(plan)
    assert results() == {("pagerduty.credentials", ""): FAIL, ("pagerduty.paging", ""): WARN}


def test_the_sandbox_passes_with_someone_on_call(plan, pd):
    with_rule(plan)
    assert results()[("pagerduty.schedule", "PSCHED1")] == WARN  # nobody on call yet
    pd.state.set_oncall([{"email": "oncall@example.com"}])
    assert results() == {
        ("pagerduty.credentials", ""): PASS,
        ("pagerduty.schedule", "PSCHED1"): PASS,
        ("pagerduty.paging", ""): PASS,
    }


def test_pagerduty_down_is_unknown(plan, pd):
    with_rule(plan)
    pd.state.fault = {"status": 503}
    assert results()[("pagerduty.credentials", "")] == UNKNOWN
