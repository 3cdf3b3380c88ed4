"""The foundation loop end to end on real parts: request → approval → Okta membership
→ expiry / revoke, and the failover around it. PostgreSQL, Redis, a real Celery
worker process, the real okta SDK against the sandbox Okta org over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from federation.failover import services as failover_services
from federation.models import Failover, FailoverStatus
from portal.audit import events_for, verify_chain
from requests_app import services
from requests_app.models import AccessRequest, Status
from requests_app.tasks import reconcile_emergency_groups
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JUSTIFICATION = "Identity Center is down and the payment workers need a restart."


def members(sandbox, group_name: str) -> set[str]:
    return set(sandbox.member_logins(group_name))


def status_of(req: AccessRequest) -> str:
    return AccessRequest.objects.values_list("status", flat=True).get(pk=req.pk)


def open_failover(approver) -> Failover:
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        what="the worker to activate the federation app",
    )
    return failover


def file(user, role, minutes: int = 30) -> AccessRequest:
    return services.file_request(
        requester=user, role=role, justification=JUSTIFICATION, ticket="INC-7",
        duration_minutes=minutes,
    )  # fmt: skip


def test_the_whole_loop(integration, prepared_plan, engineer, approver, approver2):
    sandbox = integration
    app_id = settings.OKTA_AWS_APP_ID
    assert sandbox.app_status(app_id) == "INACTIVE"

    # 1. An approver declares the disruption: a worker activates the federation app.
    failover = open_failover(approver)
    assert sandbox.app_status(app_id) == "ACTIVE"

    # 2 to 4. The engineer files; one approval for RO; the worker adds the member.
    ro = prepared_plan.roles[("prod-payments", "RO")]
    req = file(engineer, ro)
    assert status_of(req) == Status.PENDING
    assert members(sandbox, ro.okta_group_name) == set()
    services.approve(req, actor=approver, comment="go")
    wait_for(lambda: status_of(req) == Status.ACTIVE, what="the grant to become active")
    req.refresh_from_db()
    assert members(sandbox, ro.okta_group_name) == {"engineer@example.com"}
    assert req.expires_at == req.activated_at + dt.timedelta(minutes=30)

    # 5a. Expiry: when the granted time is up, beat + worker remove the member.
    AccessRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now())
    wait_for(lambda: status_of(req) == Status.EXPIRED, what="beat to expire the grant")
    wait_for(
        lambda: AccessRequest.objects.get(pk=req.pk).membership_removed_at,
        what="the member to be removed",
    )
    assert members(sandbox, ro.okta_group_name) == set()

    # Ops needs two distinct approvers; then an approver revokes early.
    ops = prepared_plan.roles[("prod-data", "Ops")]
    ops_req = file(engineer, ops, minutes=120)
    services.approve(ops_req, actor=approver)
    assert status_of(ops_req) == Status.PENDING
    services.approve(ops_req, actor=approver2)
    wait_for(lambda: status_of(ops_req) == Status.ACTIVE, what="the Ops grant")
    assert members(sandbox, ops.okta_group_name) == {"engineer@example.com"}
    services.revoke(ops_req, actor=approver, reason="done")
    wait_for(
        lambda: AccessRequest.objects.get(pk=ops_req.pk).membership_removed_at,
        what="the revoked member to be removed",
    )
    assert members(sandbox, ops.okta_group_name) == set()

    # 5b. Closing the failover empties every group and deactivates the app.
    live = file(engineer, ro)
    services.approve(live, actor=approver)
    wait_for(lambda: status_of(live) == Status.ACTIVE, what="a grant live at close time")
    pending = file(approver2, prepared_plan.roles[("prod-payments", "Ops")])
    # Straight from ACTIVE, without the return-to-normal checklist: a forced close.
    failover_services.close_failover(actor=approver, reason="IdC healthy again", force=True)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).status == FailoverStatus.CLOSED,
        what="the failover to close",
    )
    assert sandbox.app_status(app_id) == "INACTIVE"
    for role in prepared_plan.roles.values():
        assert members(sandbox, role.okta_group_name) == set()
    assert status_of(live) == Status.REVOKED
    assert status_of(pending) == Status.LAPSED

    # 6. Every step is in the request's timeline and the audit chain holds.
    actions = [e.action for e in events_for(req)]
    assert actions == [
        "request.filed",
        "request.approval_added",
        "request.approved",
        "request.active",
        "request.expired",
        "request.membership_removed",
        "request.sessions_ended",
    ]
    assert [e.actor_label for e in events_for(req)][:3] == ["engineer", "approver1", "approver1"]
    assert [e.action for e in events_for(failover)] == [
        "failover.opened",
        "failover.app_activated",
        "failover.closing",
        "failover.closed",
        "failover.sessions_ended",
    ]
    assert verify_chain() is None


@pytest.mark.parametrize("okta_status", [429, 500])
def test_okta_error_then_success(okta_status, integration, prepared_plan, engineer, approver):
    sandbox = integration
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    req = file(engineer, ro)
    sandbox.fail_next("PUT", "/api/v1/groups/", status=okta_status, count=1)
    services.approve(req, actor=approver)
    wait_for(lambda: status_of(req) == Status.ACTIVE, what="the grant after one Okta error")
    req.refresh_from_db()
    errors = [e for e in events_for(req) if e.action == "request.okta_error"]
    if okta_status == 429:
        # Rate limited is not a failure: the grant waited for the reset (paced), no error.
        assert req.provisioning_attempts == 0 and errors == []
    else:
        assert req.provisioning_attempts == 1
        assert len(errors) == 1 and errors[0].payload["retry"] is True
    assert members(sandbox, ro.okta_group_name) == {"engineer@example.com"}


def test_retries_exhausted_fail_the_request(integration, prepared_plan, engineer, approver):
    sandbox = integration
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    req = file(engineer, ro)
    sandbox.fail_next("PUT", "/api/v1/groups/", status=503, count=50)
    services.approve(req, actor=approver)
    wait_for(lambda: status_of(req) == Status.FAILED, timeout=60, what="the request to fail")
    sandbox.clear_faults()
    req.refresh_from_db()
    assert "Okta kept failing" in req.end_reason
    assert req.provisioning_attempts == int(os.environ.get("GRANT_TASK_MAX_RETRIES", "3")) + 1
    wait_for(
        lambda: AccessRequest.objects.get(pk=req.pk).membership_removed_at,
        what="a failed grant's membership to be confirmed absent",
    )
    assert members(sandbox, ro.okta_group_name) == set()


def test_reconciler_removes_members_added_behind_the_portals_back(
    integration, prepared_plan, engineer, oncall, approver
):
    sandbox = integration
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    req = file(engineer, ro)
    services.approve(req, actor=approver)
    wait_for(lambda: status_of(req) == Status.ACTIVE, what="the grant")
    sandbox.add_member_behind_the_back(ro.okta_group_name, "oncall@example.com")
    # (beat's own reconciler run may already be on its way: the member may go at any moment)
    reconcile_emergency_groups.delay()
    wait_for(
        lambda: members(sandbox, ro.okta_group_name) == {"engineer@example.com"},
        what="the reconciler to remove the unexpected member",
    )
    from portal.models import AuditEvent

    # The member is removed in Okta before the worker's transaction with the alert commits.
    alert = wait_for(
        lambda: AuditEvent.objects.filter(action="okta.unexpected_member_removed").first(),
        what="the okta.unexpected_member_removed alert",
    )
    assert alert.payload == {"okta_group": ro.okta_group_name, "login": "oncall@example.com"}


def test_approval_to_membership_latency(integration, prepared_plan, approver):
    """Time from the approving commit to Okta membership, 20 times (figures for the issue)."""
    from tests.conftest import make_user

    sandbox = integration
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    samples = []
    for n in range(20):
        login = f"latency{n}@example.com"
        sandbox.create_user(login, "Latency", f"Tester{n}")
        user = make_user(f"latency{n}", login)
        req = file(user, ro)
        started = time.perf_counter()
        services.approve(req, actor=approver)
        wait_for(lambda login=login: login in members(sandbox, ro.okta_group_name), interval=0.005)
        samples.append(time.perf_counter() - started)
        wait_for(lambda req=req: status_of(req) == Status.ACTIVE, what="activation")
    result = {
        "samples": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "p90_ms": round(sorted(samples)[int(len(samples) * 0.9) - 1] * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }
    out = Path(settings.VAR_DIR) / "approval_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    print(f"\napproval → Okta membership: {result}")
    assert len(samples) == 20
