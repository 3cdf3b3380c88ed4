"""The on-call rule and the paging check as units: the sandbox PagerDuty in this process
(over https, through the real client), the queue patched."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation.models import FailoverStatus
from portal.models import AuditEvent
from requests_app import oncall, paging, services
from requests_app.models import (
    PAGE_TRANSITIONS,
    AccessRequest,
    ApproverPage,
    OnCallCheck,
    OnCallOutcome,
    PageStatus,
    Status,
)

pytestmark = pytest.mark.django_db

JUSTIFICATION = "Identity Center is down and payments are failing for customers."


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []
    for name in ("check_oncall", "send_page", "provision_grant"):
        monkeypatch.setattr(
            f"requests_app.queue.{name}", lambda pk, name=name: calls.append((name, pk))
        )
    return calls


def file(user, role) -> AccessRequest:
    return services.file_request(
        requester=user, role=role, justification=JUSTIFICATION, ticket="INC-1", duration_minutes=30
    )


@pytest.fixture
def ro(plan):
    level = plan.levels["RO"]
    level.oncall_schedule = "PSCHED1"
    level.save()
    return plan.roles[("prod-payments", "RO")]


def test_filing_queues_the_lookup_only_where_the_level_has_the_rule(
    fake_idp, open_failover, engineer, ro, plan, queued
):
    with_rule = file(engineer, ro)
    without = file(engineer, plan.roles[("prod-payments", "Ops")])
    assert ("check_oncall", with_rule.pk) in queued
    assert ("check_oncall", without.pk) not in queued


def test_the_lookup_runs_once_and_approves_ro(fake_idp, open_failover, engineer, ro, pd, queued):
    pd.state.set_oncall([{"email": "ENGINEER@example.com"}])  # emails match in any case
    req = file(engineer, ro)
    found = oncall.check(req.pk)
    assert found is not None and found.outcome == OnCallOutcome.ON_CALL
    assert AccessRequest.objects.get(pk=req.pk).status == Status.APPROVED
    assert ("provision_grant", req.pk) in queued
    assert oncall.check(req.pk) is None  # decided: nothing to do, nothing recorded twice
    assert OnCallCheck.objects.count() == 1
    assert AuditEvent.objects.filter(action="oncall.approval_added").count() == 1


def test_without_pagerduty_configured_the_lookup_fails_to_human_approval(
    fake_idp, open_failover, engineer, ro, settings, queued
):
    settings.PAGERDUTY_API_TOKEN = ""
    req = file(engineer, ro)
    assert oncall.check(req.pk).outcome == OnCallOutcome.FAILED
    event = AuditEvent.objects.get(action="oncall.lookup_failed")
    assert "not configured" in event.payload["error"]
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING


def test_a_request_decided_before_the_lookup_is_left_alone(
    fake_idp, open_failover, engineer, approver, ro, pd, queued
):
    pd.state.set_oncall([{"email": "engineer@example.com"}])
    req = file(engineer, ro)
    services.approve(req, actor=approver)
    assert oncall.check(req.pk) is None
    assert not OnCallCheck.objects.exists()


def test_the_page_table_is_walked_both_ways(open_failover):
    page = ApproverPage.objects.create(failover=open_failover, dedup_key="k")
    assert PAGE_TRANSITIONS["trigger"][0] == {PageStatus.RESOLVED}
    paging._move(page, "resolve", {})  # not triggered: no change, no event
    assert page.status == PageStatus.RESOLVED and page.triggers == 0
    paging._move(page, "trigger", {})
    paging._move(page, "trigger", {})  # already triggered: no second page
    assert (page.status, page.triggers) == (PageStatus.TRIGGERED, 1)
    paging._move(page, "resolve", {})
    assert page.status == PageStatus.RESOLVED and page.resolved_at is not None
    actions = AuditEvent.objects.filter(action__startswith="pagerduty.").values_list(
        "action", flat=True
    )
    assert list(actions) == ["pagerduty.paged", "pagerduty.resolved"]


def test_without_a_routing_key_nothing_is_paged(
    fake_idp, open_failover, engineer, plan, settings, queued
):
    settings.PAGERDUTY_ROUTING_KEY = ""
    req = file(engineer, plan.roles[("prod-payments", "RO")])
    AccessRequest.objects.filter(pk=req.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert paging.check() == []
    assert not ApproverPage.objects.exists()


def test_a_page_is_sent_then_sent_again_only_when_unconfirmed(
    fake_idp, open_failover, engineer, plan, pd, queued
):
    req = file(engineer, plan.roles[("prod-payments", "RO")])
    AccessRequest.objects.filter(pk=req.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert paging.check() == [f"trigger emergency-access-failover-{open_failover.pk}"]
    page = ApproverPage.objects.get()
    assert queued.count(("send_page", page.pk)) == 1
    assert paging.check() == []  # not confirmed yet: the check sends it again
    assert queued.count(("send_page", page.pk)) == 2
    assert paging.send(page.pk) == "trigger"
    assert paging.send(page.pk) == ""  # PagerDuty already holds it
    assert paging.check() == []
    assert queued.count(("send_page", page.pk)) == 2
    assert len(pd.state.events_for()) == 1


def test_a_failover_returning_to_normal_resolves_the_page(
    fake_idp, open_failover, engineer, plan, pd, queued
):
    req = file(engineer, plan.roles[("prod-payments", "RO")])
    AccessRequest.objects.filter(pk=req.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1)
    )
    paging.check()
    type(open_failover).objects.filter(pk=open_failover.pk).update(status=FailoverStatus.RETURNING)
    assert paging.check() == [f"resolve emergency-access-failover-{open_failover.pk}"]
    assert ApproverPage.objects.get().status == PageStatus.RESOLVED


def test_the_on_call_approval_counts_in_what_is_still_needed(
    fake_idp, open_failover, engineer, plan, pd, queued
):
    ops = plan.levels["Ops"]
    ops.oncall_schedule = "PSCHED1"
    ops.save()
    pd.state.set_oncall([{"email": "engineer@example.com"}])
    req = file(engineer, plan.roles[("prod-payments", "Ops")])
    assert req.approvals_needed() == 2
    oncall.check(req.pk)
    req = AccessRequest.objects.get(pk=req.pk)
    assert (req.status, req.approvals_needed()) == (Status.PENDING, 1)
