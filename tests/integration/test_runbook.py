"""The return-to-normal checklist and a drill, end to end on real parts: PostgreSQL,
Redis, the real Celery worker with beat, the okta SDK against the sandbox Okta org."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from federation.failover import checklist as return_checklist
from federation.failover import drills
from federation.failover import services as failover_services
from federation.failover.report import build_report
from federation.failover.systemlog import CURSOR
from federation.models import DrillResult, Failover, FailoverStatus, LogCursor, ReturnToNormal
from federation.tasks import poll_system_log
from portal.audit import events_for, verify_chain
from portal.core.errors import Conflict
from portal.models import NotificationLog
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JUSTIFICATION = "Identity Center is down and the payment workers need a restart."


def open_failover(approver, *, drill: bool = False) -> Failover:
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=drill)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        what="the worker to activate the federation app",
    )
    return Failover.objects.get(pk=failover.pk)


def granted(user, role, approver) -> AccessRequest:
    req = services.file_request(
        requester=user, role=role, justification=JUSTIFICATION, ticket="INC-7",
        duration_minutes=30,
    )  # fmt: skip
    services.approve(req, actor=approver)
    wait_for(
        lambda: AccessRequest.objects.get(pk=req.pk).status == Status.ACTIVE,
        what="the grant to become active",
    )
    return AccessRequest.objects.get(pk=req.pk)


def poll_once() -> None:
    """Ask the worker for one System Log poll (part A's poller) and wait until it has run."""
    before = LogCursor.objects.filter(name=CURSOR).values_list("polled_at", flat=True).first()
    poll_system_log.delay()
    wait_for(
        lambda: (
            LogCursor.objects.filter(name=CURSOR)
            .exclude(polled_at=before)
            .exclude(polled_at__isnull=True)
            .exists()
        ),
        what="the worker to poll the System Log",
    )


def waiting(failover: Failover) -> set[str]:
    return {req.requester.username for req, _ in return_checklist.still_signed_in(failover)}


def status_of(failover: Failover) -> str:
    return Failover.objects.values_list("status", flat=True).get(pk=failover.pk)


def test_the_return_to_normal_on_a_real_worker(
    integration, prepared_plan, engineer, oncall, approver
):
    sandbox = integration
    app_id = settings.OKTA_AWS_APP_ID
    failover = open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    data = prepared_plan.roles[("prod-data", "RO")]
    mine = granted(engineer, ro, approver)
    theirs = granted(oncall, data, approver)
    sandbox.inject_event("user.authentication.sso", "engineer@example.com", app_id=app_id)
    poll_once()

    # 1. Identity Center is not known to be healthy here: an override with a reason.
    with pytest.raises(ValidationError):
        failover_services.start_return(actor=approver)
    announced = time.monotonic()
    failover_services.start_return(
        actor=approver, override_reason="AWS Health: the SSO event is resolved"
    )
    # 2. Everyone was told (the worker delivered it), and requests are refused now.
    wait_for(
        lambda: NotificationLog.objects.filter(
            event="failover.return_started", state="sent"
        ).exists(),
        what="the worker to send the sign-out announcement",
    )
    print(
        f"\nannouncement committed → email sent by the worker: {time.monotonic() - announced:.2f}s"
    )
    assert ReturnToNormal.objects.get().announced_to == ["engineer", "oncall"]
    with pytest.raises(Conflict, match="returning to normal"):
        services.file_request(
            requester=engineer, role=prepared_plan.roles[("prod-data", "Ops")],
            justification=JUSTIFICATION, ticket="INC-8", duration_minutes=30,
        )  # fmt: skip

    # 3. Wait for sign-outs: by the engineer's word, and Okta's sign-out for oncall.
    assert waiting(failover) == {"engineer", "oncall"}
    with pytest.raises(Conflict, match="Still signed in"):
        failover_services.close_failover(actor=approver, reason="too early")
    services.confirm_signed_out(mine, engineer)
    assert waiting(failover) == {"oncall"}
    sandbox.inject_event("user.session.end", "oncall@example.com")
    poll_once()
    assert waiting(failover) == set()
    hows = {
        req.requester.username: ev.how for req, ev in return_checklist.emergency_users(failover)
    }
    assert hows == {"engineer": "self-reported", "oncall": "okta-session-ended"}

    # 4. Deactivation scheduled a few seconds ahead: persisted, run by the beat tick.
    at = timezone.now() + dt.timedelta(seconds=3)
    failover_services.close_failover(actor=approver, reason="everyone is out", deactivate_at=at)
    assert status_of(failover) == FailoverStatus.RETURNING
    assert AccessRequest.objects.get(pk=mine.pk).status == Status.ACTIVE
    started = time.monotonic()
    wait_for(
        lambda: status_of(failover) == FailoverStatus.CLOSED,
        timeout=90,
        what="beat to start the scheduled close and the worker to finish it",
    )
    elapsed = time.monotonic() - started
    print(f"\nscheduled deactivation → closed in {elapsed:.1f}s (3 s ahead, 1 s tick)")
    failover.refresh_from_db()
    assert failover.closed_at >= at
    assert sandbox.app_status(app_id) == "INACTIVE"
    for role in prepared_plan.roles.values():
        assert sandbox.member_logins(role.okta_group_name) == []
    for login in ("engineer@example.com", "oncall@example.com"):
        assert sandbox.org.sessions_cleared.get(sandbox.org.user(login)["id"], 0) >= 1
    run = ReturnToNormal.objects.get()
    assert run.sessions_revoked_for == ["engineer@example.com", "oncall@example.com"]
    closing = events_for(failover).get(action="failover.closing")
    assert closing.actor_label == "scheduler" and closing.payload["scheduled_by"] == "approver1"
    assert {s.key: s.state for s in return_checklist.checklist(failover).steps} == dict.fromkeys(
        ["health", "announce", "signouts", "deactivate", "close"], "done"
    )

    # 5. The report: who had what for how long, every approval, the whole timeline.
    from portal.audit import integrity

    integrity.run("test")  # the report shows the stored verification
    report = build_report(failover)
    assert [(a["requester"], a["status"]) for a in report["access"]] == [
        ("engineer", "revoked"),
        ("oncall", "revoked"),
    ]
    assert all(a["held_minutes"] is not None for a in report["access"])
    assert report["access"][0]["sign_in"]["how"] == "self-reported"
    assert [a["by"] for a in report["approvals"]] == ["approver1", "approver1"]
    actions = [e["action"] for e in report["timeline"] if e["target"].startswith("failover")]
    assert actions == [
        "failover.opened",
        "failover.app_activated",
        "failover.return_started",
        "failover.deactivation_scheduled",
        "failover.closing",
        "failover.closed",
        "failover.sessions_ended",
    ]
    assert report["audit_chain"]["intact"]
    assert theirs.pk in [a["request_id"] for a in report["access"]]
    # Every notification of the failover was delivered by the worker; none failed.
    wait_for(
        lambda: not NotificationLog.objects.filter(state="queued").exists(),
        what="the worker to deliver every notification",
    )
    assert not NotificationLog.objects.filter(state="failed").exists()
    assert verify_chain() is None


def test_a_drill_end_to_end(integration, prepared_plan, engineer, approver):
    sandbox = integration
    drill = open_failover(approver, drill=True)
    req = granted(engineer, prepared_plan.roles[("prod-payments", "RO")], approver)
    proved = {i.key: i.proved for i in drills.drill_checklist(drill)}
    assert proved["app_activated"] and proved["user_added"] and not proved["signed_in"]
    # The engineer signs in through the Okta tile; the System Log poll sees it.
    sandbox.inject_event(
        "user.authentication.sso", "engineer@example.com", app_id=settings.OKTA_AWS_APP_ID
    )
    poll_once()
    assert {i.key: i.proved for i in drills.drill_checklist(drill)}["signed_in"]

    failover_services.start_return(
        actor=approver, override_reason="drill: Identity Center was never down"
    )
    services.confirm_signed_out(req, engineer)
    started = time.monotonic()
    failover_services.close_failover(actor=approver, reason="drill complete")
    wait_for(
        lambda: status_of(drill) == FailoverStatus.CLOSED,
        timeout=60,
        what="the worker to close the drill",
    )
    print(
        f"\nclose now → CLOSED (app off, {len(prepared_plan.roles)} groups emptied and "
        f"verified, sessions ended): {time.monotonic() - started:.2f}s"
    )
    run = ReturnToNormal.objects.get(failover=drill)
    assert run.drill_result == DrillResult.PASSED
    assert {item["key"]: item["proved"] for item in run.drill_checklist} == dict.fromkeys(
        ["app_activated", "user_added", "signed_in", "user_removed", "app_deactivated",
         "groups_empty"], True,
    )  # fmt: skip
    status = drills.drill_status()
    assert status.last.pk == drill.pk and status.result == "passed" and not status.overdue
    assert build_report(drill)["drill"]["result"] == "passed"
