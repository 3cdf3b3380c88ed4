"""A break-glass grant on real parts: the requester activates it after the wait, the real
worker adds the member in the sandbox Okta org over HTTP, the grant is capped, and two
approvers review it. PostgreSQL, Redis, a real Celery worker process, the okta SDK."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation.failover import services as failover_services
from federation.models import Failover
from portal.audit import events_for, verify_chain
from requests_app import break_glass, services
from requests_app.models import AccessRequest, BreakGlassReview, ReviewStatus, Status
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def status_of(req: AccessRequest) -> str:
    return AccessRequest.objects.values_list("status", flat=True).get(pk=req.pk)


def test_a_break_glass_grant_reaches_okta(
    integration, prepared_plan, engineer, approver, approver2
):
    sandbox = integration
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        what="the worker to activate the federation app",
    )
    ro = prepared_plan.roles[("prod-payments", "RO")]
    req = services.file_request(
        requester=engineer,
        role=ro,
        justification="Identity Center is down and nobody answers the approval page.",
        ticket="INC-77",
        duration_minutes=120,
    )
    # Nobody answered for longer than the level's wait.
    AccessRequest.objects.filter(pk=req.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=ro.level.break_glass_after_minutes + 1)
    )

    break_glass.activate(
        req, actor=engineer, confirmation=f"break glass #{req.pk}", ticket="INC-77"
    )

    wait_for(lambda: status_of(req) == Status.ACTIVE, what="the break-glass grant in Okta")
    req.refresh_from_db()
    assert set(sandbox.member_logins(ro.okta_group_name)) == {"engineer@example.com"}
    # Capped at the level's break_glass_max_minutes, not the 120 asked for.
    assert req.expires_at == req.activated_at + dt.timedelta(
        minutes=ro.level.break_glass_max_minutes
    )
    actions = list(events_for(req).values_list("action", flat=True))
    assert actions.index("request.break_glass") < actions.index("request.active")

    break_glass.review(req, actor=approver, verdict="accept")
    break_glass.review(req, actor=approver2, verdict="accept")
    assert BreakGlassReview.objects.get(request=req).status == ReviewStatus.ACCEPTED

    services.revoke(req, actor=approver, reason="done")
    wait_for(
        lambda: AccessRequest.objects.get(pk=req.pk).membership_removed_at,
        what="the member to be removed",
    )
    assert set(sandbox.member_logins(ro.okta_group_name)) == set()
    assert verify_chain() is None
