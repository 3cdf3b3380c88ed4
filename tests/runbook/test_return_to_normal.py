"""The return-to-normal checklist as services: health or override, the announcement,
waiting for sign-outs, closing now / scheduled / forced, reminders, and the closed state."""

from __future__ import annotations

import datetime as dt
import itertools
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from federation.failover import checklist as return_checklist
from federation.failover import services
from federation.models import Failover, FailoverStatus, ReturnToNormal
from federation.monitor.health import HealthState
from federation.tasks import close_federation
from portal.audit import events_for, verify_chain
from portal.core.errors import Conflict, NotAllowed
from portal.models import AuditEvent, NotificationLog
from requests_app import services as request_services
from requests_app.models import Status
from tests.runbook.conftest import seen_signing_in, signs_out


@pytest.fixture
def healthy(monkeypatch):
    monkeypatch.setattr(
        "federation.monitor.health.current_state",
        lambda **kw: HealthState("HEALTHY", timezone.now() - dt.timedelta(minutes=30), ("ok",)),
    )


def steps(failover: Failover) -> dict[str, str]:
    return {s.key: s.state for s in return_checklist.checklist(failover).steps}


def start(actor, capture, **kwargs):
    with capture(execute=False):
        return services.start_return(actor=actor, **kwargs)


# --- Step 1: health or override --------------------------------------------------------------


def test_the_checklist_before_the_start(approver, open_failover, healthy):
    assert steps(open_failover) == {
        "health": "current",
        "announce": "todo",
        "signouts": "todo",
        "deactivate": "todo",
        "close": "todo",
    }
    checklist = return_checklist.checklist(open_failover)
    assert checklist.health.state == "HEALTHY"
    assert checklist.can_start


def test_not_healthy_needs_an_override_reason(
    approver, open_failover, django_capture_on_commit_callbacks
):
    # No monitor samples at all: the state is UNKNOWN, not HEALTHY.
    with pytest.raises(ValidationError) as raised:
        start(approver, django_capture_on_commit_callbacks)
    assert "override_reason" in raised.value.message_dict
    assert "not HEALTHY" in raised.value.message_dict["override_reason"][0]
    open_failover.refresh_from_db()
    assert open_failover.status == FailoverStatus.ACTIVE
    failover = start(
        approver, django_capture_on_commit_callbacks, override_reason="AWS status page is green"
    )
    run = failover.return_to_normal
    assert failover.status == FailoverStatus.RETURNING
    assert run.health_state == "UNKNOWN"
    assert run.health_override_reason == "AWS status page is green"
    event = events_for(failover).get(action="failover.return_started")
    assert event.payload["override_reason"] == "AWS status page is green"
    assert "overrode" in return_checklist.checklist(failover).steps[0].summary


def test_healthy_needs_no_reason_and_the_override_is_not_kept(
    approver, open_failover, healthy, django_capture_on_commit_callbacks
):
    failover = start(
        approver, django_capture_on_commit_callbacks, override_reason="not needed, ignored"
    )
    assert failover.return_to_normal.health_state == "HEALTHY"
    assert failover.return_to_normal.health_override_reason == ""


def test_only_approvers_start_it(engineer, auditor, open_failover, healthy):
    for who in (engineer, auditor):
        with pytest.raises(NotAllowed):
            services.start_return(actor=who)
    assert Failover.objects.get().status == FailoverStatus.ACTIVE


def test_it_starts_only_from_an_active_failover(
    approver, open_failover, healthy, django_capture_on_commit_callbacks
):
    start(approver, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict, match="returning to normal"):
        start(approver, django_capture_on_commit_callbacks)


def test_without_a_failover_it_is_a_conflict(approver, plan, healthy):
    with pytest.raises(Conflict, match="not open"):
        services.start_return(actor=approver)


# --- Step 2: announce; no new requests --------------------------------------------------------


def test_everyone_is_told_and_new_requests_are_refused(
    approver, engineer, oncall, grant, pending, healthy, plan, deliver_now,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    active = grant(engineer)
    waiting = pending(oncall)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        failover = services.start_return(actor=approver)
    run = failover.return_to_normal
    assert run.announced_to == ["engineer"]
    assert run.announced_at is not None
    # The pending request can never be granted now.
    waiting.refresh_from_db()
    assert waiting.status == Status.LAPSED
    assert "returning to normal" in waiting.end_reason
    # Email to the emergency user (and approvers), logged as sent.
    [message] = [m for m in mail.outbox if "Sign out now" in m.subject]
    assert message.to == ["engineer@example.com"]
    assert f"/requests/{active.pk}/" in message.body
    [told] = [m for m in mail.outbox if m.subject.endswith("is returning to normal")]
    assert "approver1@example.com" in told.to and "/failover/return/" in told.body
    for log in NotificationLog.objects.filter(event="failover.return_started"):
        assert log.state == NotificationLog.State.SENT
    # New requests are refused from now on.
    with pytest.raises(Conflict, match="returning to normal"):
        request_services.file_request(
            requester=oncall, role=plan.roles[("prod-data", "RO")],
            justification="Still need to look at the logs please.", ticket="INC-2",
            duration_minutes=30,
        )  # fmt: skip
    assert active.pk in [req.pk for req, _ in return_checklist.still_signed_in(failover)]


def test_the_banner_tells_everyone_to_sign_out(
    approver, engineer, grant, healthy, client, django_capture_on_commit_callbacks
):
    grant(engineer)
    start(approver, django_capture_on_commit_callbacks)
    client.force_login(engineer)
    page = client.get("/").content.decode()
    assert "sign out of the AWS console now" in page
    assert "Request access" not in page


# --- Step 3: waiting for sign-outs, reminders --------------------------------------------------


def test_waiting_lists_who_is_still_signed_in(
    approver, engineer, oncall, grant, healthy, django_capture_on_commit_callbacks
):
    mine = grant(engineer)
    theirs = grant(oncall, account="prod-data")
    seen_signing_in(mine)
    failover = start(approver, django_capture_on_commit_callbacks)
    names = {req.requester.username for req, _ in return_checklist.still_signed_in(failover)}
    assert names == {"engineer", "oncall"}  # oncall holds access without a sign-out yet
    assert steps(failover)["signouts"] == "current"

    signs_out(mine, django_capture_on_commit_callbacks)
    assert [r.pk for r, _ in return_checklist.still_signed_in(failover)] == [theirs.pk]
    signs_out(theirs, django_capture_on_commit_callbacks)
    assert return_checklist.still_signed_in(failover) == []
    assert steps(failover)["signouts"] == "done"
    checklist = return_checklist.checklist(failover).as_dict()
    assert checklist["still_signed_in"] == []
    assert {u["how"] for u in checklist["users"]} == {"self-reported"}


def test_reminders_go_to_those_still_signed_in_once_per_interval(
    approver, engineer, oncall, grant, healthy, settings, deliver_now,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.SIGNOUT_REMINDER_MINUTES = 15
    mine = grant(engineer)
    grant(oncall, account="prod-data")
    failover = start(approver, django_capture_on_commit_callbacks)
    signs_out(mine, django_capture_on_commit_callbacks)
    now = timezone.now()
    assert services.send_due_reminders(now + dt.timedelta(minutes=5)) == []
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_due_reminders(now + dt.timedelta(minutes=16)) == [failover.pk]
    [message] = mail.outbox
    assert message.to == ["oncall@example.com"]
    assert "/requests/" in message.body and "engineer" not in message.body
    # The next round is due one interval later, not at the next tick.
    assert services.send_due_reminders(now + dt.timedelta(minutes=20)) == []
    event = events_for(failover).get(action="failover.signout_reminder")
    assert event.payload == {"still_signed_in": ["oncall"], "reminder": 1}
    assert ReturnToNormal.objects.get().reminders_sent == 1


def test_remind_now_button(approver, engineer, grant, healthy, django_capture_on_commit_callbacks):
    grant(engineer)
    start(approver, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        assert services.remind_now(actor=approver) == ["engineer"]
    with pytest.raises(NotAllowed):
        services.remind_now(actor=engineer)


# --- Step 4: close now, scheduled, forced --------------------------------------------------------


def test_closing_waits_for_sign_outs_unless_forced(
    approver, engineer, grant, healthy, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    seen_signing_in(req)
    start(approver, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict, match="Still signed in: engineer"):
        services.close_failover(actor=approver)
    with pytest.raises(ValidationError, match="Say why"):
        services.close_failover(actor=approver, force=True)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        failover = services.close_failover(
            actor=approver, force=True, reason="engineer is on a plane"
        )
    assert failover.status == FailoverStatus.CLOSING
    assert len(queued) >= 2  # deprovisioning of the revoked grant, close_federation
    run = ReturnToNormal.objects.get()
    assert run.forced and run.close_reason == "engineer is on a plane"
    assert run.still_signed_in_at_close == ["engineer"]
    req.refresh_from_db()
    assert req.status == Status.REVOKED
    closing = events_for(failover).get(action="failover.closing")
    assert closing.payload == {"reason": "engineer is on a plane", "forced": True}


def test_closing_after_everyone_signed_out(
    approver, engineer, grant, healthy, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    start(approver, django_capture_on_commit_callbacks)
    signs_out(req, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        failover = services.close_failover(actor=approver, reason="all out")
    assert failover.status == FailoverStatus.CLOSING
    assert not ReturnToNormal.objects.get().forced


def test_an_active_failover_closes_only_when_forced(approver, open_failover):
    with pytest.raises(Conflict, match="Start the return to normal first"):
        services.close_failover(actor=approver, reason="done")
    with pytest.raises(ValidationError):
        services.close_failover(
            actor=approver,
            reason="x",
            force=True,
            deactivate_at=timezone.now() + dt.timedelta(hours=1),
        )


def test_scheduled_deactivation_is_persisted_and_run_by_the_tick(
    approver, engineer, grant, healthy, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    start(approver, django_capture_on_commit_callbacks)
    signs_out(req, django_capture_on_commit_callbacks)
    at = timezone.now() + dt.timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        failover = services.close_failover(actor=approver, reason="after hours", deactivate_at=at)
    assert queued and not any("close_federation" in repr(q) for q in queued)
    failover.refresh_from_db()
    assert failover.status == FailoverStatus.RETURNING
    assert ReturnToNormal.objects.get().deactivate_at == at
    assert return_checklist.checklist(failover).scheduled_for == at
    assert events_for(failover).filter(action="failover.deactivation_scheduled").exists()
    req.refresh_from_db()
    assert req.status == Status.ACTIVE  # access lasts until the chosen time

    assert services.run_due_deactivations(at - dt.timedelta(minutes=1)) == []
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert services.run_due_deactivations(at + dt.timedelta(seconds=1)) == [failover.pk]
    failover.refresh_from_db()
    assert failover.status == FailoverStatus.CLOSING
    closing = events_for(failover).get(action="failover.closing")
    assert closing.actor_label == "scheduler"
    assert closing.payload["scheduled_by"] == "approver1"
    req.refresh_from_db()
    assert req.status == Status.REVOKED
    # A second tick finds nothing to do.
    assert services.run_due_deactivations(at + dt.timedelta(minutes=1)) == []


def test_closing_with_a_past_time_means_now(
    approver, engineer, grant, healthy, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    start(approver, django_capture_on_commit_callbacks)
    signs_out(req, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        failover = services.close_failover(
            actor=approver, deactivate_at=timezone.now() - dt.timedelta(minutes=1)
        )
    assert failover.status == FailoverStatus.CLOSING


# --- Step 4 in Okta and step 5 --------------------------------------------------------------


def test_the_worker_empties_groups_deactivates_and_ends_sessions(
    approver, engineer, grant, healthy, fake_idp, settings, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    fake_idp.activate_app(settings.OKTA_AWS_APP_ID)
    start(approver, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        failover = services.close_failover(actor=approver, force=True, reason="test")
    with django_capture_on_commit_callbacks(execute=False):
        close_federation.apply(args=[failover.pk])
    failover.refresh_from_db()
    assert failover.status == FailoverStatus.CLOSED
    assert fake_idp.members_of(req.role.okta_group_name) == []
    assert fake_idp.get_app(settings.OKTA_AWS_APP_ID).status == "INACTIVE"
    run = ReturnToNormal.objects.get()
    assert run.sessions_revoked_for == ["engineer@example.com"]
    assert events_for(failover).filter(action="failover.sessions_ended").exists()
    assert steps(failover) == {
        "health": "done",
        "announce": "done",
        "signouts": "skipped",
        "deactivate": "done",
        "close": "done",
    }
    assert verify_chain() is None


def test_a_proposed_failover_is_withdrawn_by_closing(approver, plan, settings):
    settings.REQUIRE_FAILOVER_CONFIRMATION = True
    failover = services.open_failover(actor=approver, reason="IdC looks down")
    closed = services.close_failover(actor=approver, reason="false alarm")
    assert closed.status == FailoverStatus.CLOSED
    assert AuditEvent.objects.filter(action="failover.withdrawn").count() == 1
    assert Failover.objects.get(pk=failover.pk).closed_at is not None


def test_checklist_version_changes_with_the_state(
    approver, engineer, grant, healthy, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    failover = Failover.objects.get()
    first = return_checklist.checklist(failover).version()
    assert return_checklist.checklist(failover).version() == first
    start(approver, django_capture_on_commit_callbacks)
    second = return_checklist.checklist(failover).version()
    assert second != first
    signs_out(req, django_capture_on_commit_callbacks)
    assert return_checklist.checklist(failover).version() != second


def test_the_sign_out_email_links_to_a_page_the_engineer_may_open(
    approver, engineer, grant, healthy, deliver_now, client, django_capture_on_commit_callbacks
):
    """Issue 12, defect 1: the only link was /failover/return/ ("Not allowed" for engineers)
    and the text said "Failover #1 (Returning to normal) is returning to normal"."""
    held = grant(engineer)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        failover = services.start_return(actor=approver)
    with django_capture_on_commit_callbacks(execute=True):
        services.remind_now(actor=approver)
    mine = [m for m in mail.outbox if "engineer@example.com" in m.to]
    assert len(mine) == 2  # told, then reminded
    client.force_login(engineer)
    for message in mine:
        assert f"Failover #{failover.pk} is returning to normal" in message.body
        assert "(Returning to normal)" not in message.body
        link = message.body.strip().splitlines()[-1]
        assert link.endswith(f"/requests/{held.pk}/")
        page = client.get(urlsplit(link).path)
        assert page.status_code == 200
        assert "I have signed out of AWS" in page.content.decode()


def test_closing_revokes_every_grant_in_one_pass_each_audited_on_its_own(
    approver, engineer, grant, healthy, monkeypatch, django_capture_on_commit_callbacks
):
    """Closing revokes all live grants at once (issue 13, return to normal at scale): each
    grant still gets its own ``request.revoked`` event in the chain, its own removal task
    and its own message, and the app's task is sent first."""
    reqs = [
        grant(engineer, "prod-payments", "RO"),
        grant(engineer, "prod-payments", "Ops"),
        grant(engineer, "prod-data", "RO"),
    ]
    start(approver, django_capture_on_commit_callbacks)
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(
        "portal.celery.app.send_task", lambda name, args=None, **kw: sent.append((name, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.close_failover(actor=approver, force=True, reason="all back on IdC")
    names = [name for name, _ in sent]
    assert names[0] == "federation.close_federation"
    removals = sorted(args[0] for name, args in sent if name == "requests_app.deprovision_grant")
    assert removals == sorted(r.pk for r in reqs)
    for req in reqs:
        req.refresh_from_db()
        assert req.status == Status.REVOKED
        assert req.ended_by == approver and req.end_reason == "The failover was closed."
        assert req.work_due_at is not None  # the grant sweep re-sends a lost removal
        (event,) = events_for(req).filter(action="request.revoked")
        assert event.actor == approver
        assert event.payload == {"from": "active", "reason": "The failover was closed."}
    assert verify_chain() is None
    # Due one after another at the pace Okta allows: the grant sweep re-sends a removal
    # only once it is overdue, not every queued removal of a big close.
    dues = [r.work_due_at for r in sorted(reqs, key=lambda r: r.pk)]
    spacing = dt.timedelta(seconds=services.removal_spacing())
    assert all(later - earlier == spacing for earlier, later in itertools.pairwise(dues))
    # Closing again finds nothing left to revoke.
    assert request_services.revoke_many([r.pk for r in reqs], actor=approver, reason="x") == []
