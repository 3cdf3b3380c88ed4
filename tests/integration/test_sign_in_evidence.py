"""Sign-in / sign-out evidence and outside changes from the sandbox Okta org's System Log,
read by the real Celery worker through the okta SDK; ending sessions on revoke."""

from __future__ import annotations

import datetime as dt

import pytest

from federation.failover import services as failover_services
from federation.failover.systemlog import CURSOR
from federation.models import (
    EvidenceKind,
    Failover,
    LogCursor,
    OutsideChangeAlert,
    SignInEvidence,
)
from federation.sandbox.events import iso
from federation.tasks import poll_system_log
from portal.audit import events_for
from portal.models import AuditEvent
from requests_app import services
from requests_app.evidence import OKTA_SESSION_ENDED, sign_out_status
from requests_app.models import AccessRequest, Status
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

JUSTIFICATION = "Identity Center is down and the payment workers need a restart."


def open_failover(approver) -> Failover:
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        what="the worker to activate the federation app",
    )
    return failover


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


def cursor() -> LogCursor | None:
    return LogCursor.objects.filter(name=CURSOR).first()


def poll_once() -> LogCursor:
    """Ask the worker for one System Log poll and wait until it has run."""
    before = cursor()
    polled_before = before.polled_at if before else None
    poll_system_log.delay()
    return wait_for(
        lambda: (c := cursor()) is not None and c.polled_at != polled_before and c,
        what="the worker to poll the System Log",
    )


def test_sign_ins_sign_outs_and_late_events_with_a_persisted_cursor(
    integration, prepared_plan, engineer, oncall, approver
):
    sandbox = integration
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    req = granted(engineer, ro, approver)
    other = granted(oncall, prepared_plan.roles[("prod-data", "RO")], approver)

    # Run 1: the engineer signs in to AWS through the Okta tile.
    sso = sandbox.inject_event("user.authentication.sso", "engineer@example.com")
    first = poll_once()
    assert first.after and not first.last_error
    signed_in = SignInEvidence.objects.get(source_id=sso["uuid"])
    assert (signed_in.kind, signed_in.login) == (EvidenceKind.SIGN_IN, "engineer@example.com")
    status = sign_out_status(req)
    assert status.signed_in and status.last_sign_in == signed_in.at
    assert status.console_session_ends_by == signed_in.at + dt.timedelta(hours=1)

    # Run 2 starts at the persisted cursor: only what is new is read.
    ended = sandbox.inject_event("user.session.end", "engineer@example.com")
    # A late event: published before the sign-in already read, persisted only now.
    # (between the oncall's approval and the engineer's sign-in; Okta's times are in ms)
    published = other.decided_at.replace(microsecond=0) + dt.timedelta(
        milliseconds=other.decided_at.microsecond // 1000 + 1
    )
    assert published < signed_in.at
    late = sandbox.inject_event(
        "user.authentication.sso", "oncall@example.com", published=iso(published)
    )
    second = poll_once()
    assert second.after != first.after
    assert second.last_batch == 2  # the sign-out and the late sign-in, nothing from run 1
    assert SignInEvidence.objects.get(source_id=late["uuid"]).at == published
    status = sign_out_status(req)
    assert (status.signed_out, status.how) == (True, OKTA_SESSION_ENDED)
    assert status.at == SignInEvidence.objects.get(source_id=ended["uuid"]).at
    assert sign_out_status(other).last_sign_in == published

    # Run 3: nothing new; the same events are never recorded twice.
    third = poll_once()
    assert third.last_batch == 0
    assert SignInEvidence.objects.filter(source="okta-system-log").count() == 3


def test_a_member_added_in_the_okta_console_raises_an_alert(
    integration, prepared_plan, engineer, approver
):
    sandbox = integration
    open_failover(approver)
    ro = prepared_plan.roles[("prod-payments", "RO")]
    granted(engineer, ro, approver)  # the portal's own add: no alert
    ops = prepared_plan.roles[("prod-data", "Ops")]
    sandbox.add_member_behind_the_back(ops.okta_group_name, "oncall@example.com")
    poll_once()
    alert = OutsideChangeAlert.objects.get()
    assert alert.actor == "okta-admin@example.com"
    assert alert.target == ops.okta_group_name
    assert alert.detail["user"] == "oncall@example.com"
    audit = AuditEvent.objects.get(action="okta.outside_change")
    assert audit.payload["event_type"] == "group.user_membership.add"


def test_revoking_ends_the_users_okta_sessions(integration, prepared_plan, engineer, approver):
    sandbox = integration
    open_failover(approver)
    req = granted(engineer, prepared_plan.roles[("prod-payments", "RO")], approver)
    sandbox.inject_event("user.session.start", "engineer@example.com")
    services.revoke(req, actor=approver, reason="done")
    wait_for(
        lambda: events_for(req).filter(action="request.sessions_ended").exists(),
        what="the worker to end the sessions",
    )
    user = next(u for u in sandbox.snapshot()["users"] if u["login"] == "engineer@example.com")
    assert user["sessions_cleared"] == 1 and user["okta_session"] is None
    event = events_for(req).get(action="request.sessions_ended")
    assert event.payload == {"okta_sessions": "revoked", "aws_session_deny": "not configured"}
    cleared = [e for e in sandbox.events() if e["eventType"] == "user.session.clear"]
    assert cleared[-1]["actor"]["alternateId"] == "portal-service@example.com"
