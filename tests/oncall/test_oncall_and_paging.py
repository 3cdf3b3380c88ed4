"""On-call approval and paging on the real stack: PostgreSQL, Redis, the real Celery worker
process, the sandbox Okta org, and the sandbox PagerDuty over https through the real
``pagerduty`` client."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation.failover import services as failover_services
from federation.models import Failover
from portal.audit import events_for, verify_chain
from portal.celery import app
from portal.models import AuditEvent
from requests_app import paging, services
from requests_app.models import (
    AccessRequest,
    ApproverPage,
    OnCallCheck,
    OnCallOutcome,
    PageStatus,
    Status,
)
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JUSTIFICATION = "Identity Center is down and payments are failing for customers."


def open_failover(approver) -> Failover:
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        what="the worker to activate the federation app",
    )
    return failover


def file(user, role) -> AccessRequest:
    return services.file_request(
        requester=user, role=role, justification=JUSTIFICATION, ticket="INC-9", duration_minutes=30
    )


def status_of(req: AccessRequest) -> str:
    return AccessRequest.objects.values_list("status", flat=True).get(pk=req.pk)


def checked(req: AccessRequest) -> OnCallCheck:
    return wait_for(
        lambda: OnCallCheck.objects.filter(request=req).first(),
        what="the worker's on-call lookup",
    )


def with_oncall_rule(plan, level: str, escalation_level: int = 1):
    found = plan.levels[level]
    found.oncall_schedule, found.oncall_escalation_level = "PSCHED1", escalation_level
    found.save()
    return found


def test_a_requester_on_call_counts_as_one_approval_and_is_granted(
    pd, prepared_plan, engineer, approver, integration
):
    with_oncall_rule(prepared_plan, "RO")
    pd.state.set_oncall([{"email": "engineer@example.com", "escalation_level": 1}])
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]

    req = file(engineer, ro)

    wait_for(lambda: status_of(req) == Status.ACTIVE, what="the on-call grant in Okta")
    assert set(integration.member_logins(ro.okta_group_name)) == {"engineer@example.com"}
    check = OnCallCheck.objects.get(request=req)
    assert check.outcome == OnCallOutcome.ON_CALL
    added = events_for(req).get(action="oncall.approval_added")
    assert added.actor_id is None and "oncall" in added.actor_label
    evidence = added.payload
    assert evidence["schedule"] == "PSCHED1"
    assert evidence["escalation_level"] == 1
    assert evidence["escalation_policy"] == "PAPPROV"
    assert evidence["email"] == "engineer@example.com"
    assert evidence["start"] and evidence["end"]
    assert evidence["decided_by"] == "on-call rule"
    approved = events_for(req).get(action="request.approved")
    assert "oncall" in approved.actor_label and approved.payload["oncall"]["schedule"] == "PSCHED1"
    req.refresh_from_db()
    assert req.decided_by is None and "on-call rule" in req.decision_comment
    assert verify_chain() is None


def test_on_call_is_one_approval_of_two_a_human_gives_the_other(
    pd, prepared_plan, engineer, approver, approver2
):
    with_oncall_rule(prepared_plan, "Ops")
    pd.state.set_oncall([{"email": "engineer@example.com"}])
    open_failover(approver)
    req = file(engineer, prepared_plan.roles[("prod-payments", "Ops")])
    assert checked(req).outcome == OnCallOutcome.ON_CALL
    assert status_of(req) == Status.PENDING  # Ops needs two approvals

    services.approve(req, actor=approver)

    assert status_of(req) == Status.APPROVED
    added = events_for(req).get(action="request.approval_added")
    assert (added.payload["approvals"], added.payload["required"]) == (2, 2)


def test_on_call_at_a_higher_tier_than_the_rule_allows_is_not_an_approval(
    pd, prepared_plan, engineer, approver
):
    with_oncall_rule(prepared_plan, "RO", escalation_level=1)
    pd.state.set_oncall(
        [{"email": "engineer@example.com", "escalation_level": 2}, {"email": "x@example.com"}]
    )
    open_failover(approver)
    req = file(engineer, prepared_plan.roles[("prod-payments", "RO")])
    assert checked(req).outcome == OnCallOutcome.NOT_ON_CALL
    assert status_of(req) == Status.PENDING
    event = events_for(req).get(action="oncall.not_on_call")
    assert event.payload["on_call"] == ["engineer@example.com", "x@example.com"]


@pytest.mark.parametrize(
    "fault",
    [{"status": 503}, {"delay_ms": 3500}],  # PagerDuty down; slower than the 2 s timeout
    ids=["pagerduty-down", "timeout"],
)
def test_a_failed_lookup_falls_back_to_human_approval_audited(
    pd, prepared_plan, engineer, approver, fault
):
    with_oncall_rule(prepared_plan, "RO")
    pd.state.set_oncall([{"email": "engineer@example.com"}])
    pd.state.fault = fault
    open_failover(approver)
    req = file(engineer, prepared_plan.roles[("prod-payments", "RO")])

    assert checked(req).outcome == OnCallOutcome.FAILED
    assert status_of(req) == Status.PENDING
    failed = events_for(req).get(action="oncall.lookup_failed")
    assert failed.payload["fallback"] == "human approval"
    assert failed.payload["error"]
    # A human approves as always.
    services.approve(req, actor=approver)
    assert status_of(req) == Status.APPROVED


def events(pd, action: str) -> list[dict]:
    return [e for e in pd.state.events_for() if e["event_action"] == action]


def send_paging_check() -> None:
    """Beat's task, run by the real worker (which then sends the page)."""
    app.send_task("requests_app.page_approvers")


def test_waiting_requests_page_the_approvers_once_per_failover_then_resolve(
    pd, prepared_plan, engineer, oncall, approver, settings
):
    failover = open_failover(approver)
    first = file(engineer, prepared_plan.roles[("prod-payments", "RO")])
    second = file(oncall, prepared_plan.roles[("prod-data", "RO")])
    assert paging.check() == []  # nobody waited long enough yet

    waited = timezone.now() - dt.timedelta(minutes=settings.PAGERDUTY_PAGE_AFTER_MINUTES + 1)
    AccessRequest.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=waited)
    send_paging_check()
    wait_for(lambda: events(pd, "trigger"), what="the page in the sandbox PagerDuty")
    page = ApproverPage.objects.get(failover=failover)
    wait_for(lambda: ApproverPage.objects.get(pk=page.pk).sent_action == "trigger", what="sent")
    assert paging.check() == []  # idempotent: still one page
    send_paging_check()
    triggers = events(pd, "trigger")
    assert len(triggers) == 1, triggers  # two requests wait: one page
    assert triggers[0]["dedup_key"] == f"emergency-access-failover-{failover.pk}"
    assert "2 requests waiting" in triggers[0]["summary"]
    assert triggers[0]["custom_details"]["approvals_queue"].endswith("/approvals/")
    assert page.status == PageStatus.TRIGGERED
    paged = AuditEvent.objects.get(action="pagerduty.paged")
    assert paged.payload["waiting"] == 2 and paged.target_id == str(failover.pk)

    services.deny(first, actor=approver, reason="not needed after all")
    assert paging.check() == []  # one still waits

    services.approve(second, actor=approver)
    send_paging_check()
    wait_for(lambda: events(pd, "resolve"), what="the page resolved")
    assert [e["dedup_key"] for e in events(pd, "resolve")] == [triggers[0]["dedup_key"]]
    (incident,) = pd.state.incidents.values()
    assert incident["status"] == "resolved" and incident["triggers"] == 1
    assert ApproverPage.objects.get(pk=page.pk).status == PageStatus.RESOLVED
    assert AuditEvent.objects.filter(action="pagerduty.resolved").count() == 1
    assert verify_chain() is None


def test_closing_the_failover_resolves_its_page(pd, prepared_plan, engineer, approver, settings):
    failover = open_failover(approver)
    req = file(engineer, prepared_plan.roles[("prod-payments", "RO")])
    waited = timezone.now() - dt.timedelta(minutes=settings.PAGERDUTY_PAGE_AFTER_MINUTES + 1)
    AccessRequest.objects.filter(pk=req.pk).update(created_at=waited)
    assert paging.check() == [f"trigger emergency-access-failover-{failover.pk}"]
    wait_for(lambda: events(pd, "trigger"), what="the page")

    failover_services.close_failover(actor=approver, force=True, reason="incident over")
    send_paging_check()

    wait_for(lambda: events(pd, "resolve"), what="the page resolved at close")
    resolved = AuditEvent.objects.get(action="pagerduty.resolved")
    assert "failover is" in resolved.payload["reason"]
