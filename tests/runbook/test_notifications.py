"""Notifications in the outbox (locmem email) and at a local Slack webhook receiver:
every event, links to the portal, retries, and no failure lost silently."""

from __future__ import annotations

import smtplib
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import transaction

from federation.failover import services
from federation.monitor import messages as health_messages
from portal import notify
from portal import tasks as portal_tasks
from portal.models import AuditEvent, NotificationLog
from requests_app import messages as request_messages
from requests_app import services as request_services
from tests.runbook.conftest import JUSTIFICATION


@pytest.fixture(autouse=True)
def _site(settings, monkeypatch):
    settings.SITE_URL = "https://portal.example.com"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Only the notification tasks run here; Okta work is for other tests.
    for seam in (
        "requests_app.queue.provision_grant",
        "requests_app.queue.deprovision_grant",
        "federation.queue.activate_federation_app",
        "federation.queue.close_federation",
    ):
        monkeypatch.setattr(seam, lambda *a, **k: None)


def subjects() -> list[str]:
    return [m.subject for m in mail.outbox]


def test_the_request_journey_notifies_each_party(
    engineer, approver, approver2, plan, fake_idp, open_failover, slack, deliver_now,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        req = request_services.file_request(
            requester=engineer, role=plan.roles[("prod-payments", "RO")],
            justification=JUSTIFICATION, ticket="INC-8", duration_minutes=30,
        )  # fmt: skip
    filed = mail.outbox[-1]
    assert set(filed.to) == {"approver1@example.com", "approver2@example.com"}
    assert f"https://portal.example.com/requests/{req.pk}/" in filed.body
    with django_capture_on_commit_callbacks(execute=True):
        request_services.approve(req, actor=approver)
    with django_capture_on_commit_callbacks(execute=True):
        request_services.activate(req.pk, okta_user_id="00u1")
    with django_capture_on_commit_callbacks(execute=True):
        request_services.revoke(req, actor=approver, reason="done")
    to_engineer = [m for m in mail.outbox if m.to == ["engineer@example.com"]]
    assert to_engineer[0].subject.endswith("approved, being granted")
    assert any("active until" in m.subject for m in to_engineer)
    assert any(m.subject.endswith("revoked") and "Sign out" in m.body for m in to_engineer)
    # Slack got the same events, each with a link to the page.
    assert len(slack.posts) == 4
    first = slack.posts[0]["json"]
    assert f"https://portal.example.com/requests/{req.pk}/" in str(first["blocks"])
    assert all(p["path"] == "/services/T000/B000/XXXX" for p in slack.posts)
    # (The open_failover fixture's own notice was never sent: its callbacks were dropped.)
    logs = NotificationLog.objects.exclude(event="failover.opened")
    assert {log.state for log in logs} == {"sent"}
    assert {log.channel for log in logs} == {"email", "slack"}


def test_buttons_only_with_a_signing_secret(
    engineer, plan, fake_idp, open_failover, slack, deliver_now, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    def file(role):
        with django_capture_on_commit_callbacks(execute=True):
            return request_services.file_request(
                requester=engineer, role=plan.roles[role], justification=JUSTIFICATION,
                ticket="INC-8", duration_minutes=30,
            )  # fmt: skip

    file(("prod-payments", "RO"))
    assert "actions" not in [b["type"] for b in slack.posts[-1]["json"]["blocks"]]
    settings.SLACK_SIGNING_SECRET = "s3cret"
    req = file(("prod-data", "RO"))
    [actions] = [b for b in slack.posts[-1]["json"]["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("approve_request", str(req.pk)),
        ("deny_request", str(req.pk)),
    ]


def test_failover_health_drift_and_return_events(
    approver, engineer, grant, slack, deliver_now, django_capture_on_commit_callbacks
):
    grant(engineer)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        health_messages.health_changed(
            SimpleNamespace(state="DISRUPTED", evidence="3 probes failed")
        )
        health_messages.health_changed("HEALTHY")
        request_messages.drift_found(
            "oncall was added to aws#X#1 outside the portal", {"By": "admin"}
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.start_return(actor=approver, override_reason="AWS says resolved")
    assert "[Emergency access] Identity Center is DISRUPTED" in subjects()
    assert "[Emergency access] Identity Center is HEALTHY" in subjects()
    assert any(s.startswith("[Emergency access] Drift in Okta") for s in subjects())
    signout = next(m for m in mail.outbox if "Sign out now" in m.subject)
    assert signout.to == ["engineer@example.com"]
    assert "https://portal.example.com/requests/" in signout.body
    approvers = next(m for m in mail.outbox if m.subject.endswith("is returning to normal"))
    assert "https://portal.example.com/failover/return/" in approvers.body
    events = set(NotificationLog.objects.values_list("event", flat=True))
    assert {"health.changed", "okta.drift", "failover.return_started"} <= events
    assert any("Sign out now" in t for t in slack.texts())


def test_failover_opened_and_closed(
    approver, plan, deliver_now, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        failover = services.open_failover(actor=approver, reason="IdC down", drill=True)
    # The activation task is queued too: run only the notifications here.
    assert any("opened" in s for s in subjects())
    with django_capture_on_commit_callbacks(execute=False):
        services.close_failover(actor=approver, force=True, reason="done")
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm_closed(failover.pk, removed_members=0, sessions_ended=[])
    assert any(s.endswith("closed") for s in subjects())
    assert any("report" in s for s in subjects())
    assert queued


def test_a_retried_email_is_delivered(monkeypatch, db, settings):
    calls = {"n": 0}
    real = portal_tasks.send_mail

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] < 3:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(portal_tasks, "send_mail", flaky)
    mail.outbox.clear()
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", ["a@example.com"])
    log = NotificationLog.objects.get()
    portal_tasks.send_email.apply(args=["S", "B", ["a@example.com"], log.pk])
    log.refresh_from_db()
    assert log.state == "sent" and log.attempts >= 3
    assert len(mail.outbox) == 1


def test_a_notification_that_keeps_failing_is_marked_and_audited(monkeypatch, db, settings):
    settings.NOTIFY_MAX_RETRIES = 2

    def down(*args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(portal_tasks, "send_mail", down)
    monkeypatch.setattr(portal_tasks.send_email, "max_retries", 2)
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", ["a@example.com"])
    log = NotificationLog.objects.get()
    portal_tasks.send_email.apply(args=["S", "B", ["a@example.com"], log.pk])
    log.refresh_from_db()
    assert log.state == "failed"
    assert "mail server down" in log.last_error
    event = AuditEvent.objects.get(action="notification.failed")
    assert event.payload["channel"] == "email" and event.payload["recipients"] == ["a@example.com"]


def test_slack_refusing_the_message_is_not_retried_but_recorded(slack, db):
    slack.statuses = [404]
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", [])
    log = NotificationLog.objects.get(channel="slack")
    portal_tasks.send_slack.apply(args=[{"text": "hi"}, log.pk])
    log.refresh_from_db()
    assert log.state == "failed" and "404" in log.last_error
    assert len(slack.posts) == 1
    assert AuditEvent.objects.filter(action="notification.failed").exists()


def test_slack_switched_off_after_queueing_is_recorded_as_failed(slack, db, settings):
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", [])
    log = NotificationLog.objects.get(channel="slack")
    settings.SLACK_WEBHOOK_URL = ""
    portal_tasks.send_slack.apply(args=[{"text": "hi"}, log.pk])
    log.refresh_from_db()
    assert log.state == "failed" and "SLACK_WEBHOOK_URL" in log.last_error
    assert slack.posts == []
    failed = AuditEvent.objects.get(action="notification.failed")
    assert failed.payload["channel"] == "slack"


def test_slack_unavailable_is_retried(slack, db, monkeypatch):
    slack.statuses = [503, 500]
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", [])
    log = NotificationLog.objects.get(channel="slack")
    portal_tasks.send_slack.apply(args=[{"text": "hi"}, log.pk])
    log.refresh_from_db()
    assert log.state == "sent"
    assert len(slack.posts) == 3


def test_a_redelivered_task_does_not_send_twice(slack, db):
    """acks_late: a task that delivered but died before its ack runs again; nothing is resent."""
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", ["a@example.com"])
    email_log = NotificationLog.objects.get(channel="email")
    slack_log = NotificationLog.objects.get(channel="slack")
    mail.outbox.clear()
    for _ in range(2):
        portal_tasks.send_email.apply(args=["S", "B", ["a@example.com"], email_log.pk])
        portal_tasks.send_slack.apply(args=[{"text": "hi"}, slack_log.pk])
    assert len(mail.outbox) == 1
    assert len(slack.posts) == 1
    email_log.refresh_from_db()
    assert email_log.state == "sent" and email_log.attempts == 1


def test_without_slack_only_email_is_logged(engineer, db, settings):
    settings.SLACK_WEBHOOK_URL = ""
    with transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", ["a@example.com"])
    assert list(NotificationLog.objects.values_list("channel", flat=True)) == ["email"]


def test_a_notification_rolls_back_with_its_change(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        notify.notify("test.event", "Hello", "Body", "https://x/", ["a@example.com"])
        raise RuntimeError("the state change failed")
    assert not NotificationLog.objects.exists()


def test_health_changed_lists_the_monitors_evidence(
    approver, deliver_now, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from federation.monitor.health import HealthState

    state = HealthState("DISRUPTED", timezone.now(), ("sso-admin: 3 failures", "portal: 503"))
    with django_capture_on_commit_callbacks(execute=True):
        health_messages.health_changed(state)
    assert "Evidence: sso-admin: 3 failures; portal: 503" in mail.outbox[-1].body
