"""Liveness and readiness: /healthz, /readyz, `manage.py doctor`, the approvers' red banner
and the once-per-episode alert when the worker or beat goes silent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from federation.idp import guard
from federation.monitor import machinery
from portal import notify as notify_module
from portal.core import scheduler
from portal.models import AuditEvent, Heartbeat, NotificationLog
from portal.notify import notify_now
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


REAL_CHECK_OKTA = machinery.check_okta


@pytest.fixture(autouse=True)
def _okta_not_checked(monkeypatch):
    # No Okta org in unit tests: reachable, as far as these tests are concerned (its circuit
    # is still read: an open one says so without asking Okta).
    def circuit_only(now=None):
        if machinery.okta_unreachable(now):
            return REAL_CHECK_OKTA(now)
        return machinery.Component("okta", True, "ok")

    monkeypatch.setattr(machinery, "check_okta", circuit_only)


def _alive(*names: str, age: float = 1) -> None:
    for name in names:
        scheduler.beat(name)
        Heartbeat.objects.filter(name=name).update(
            seen_at=timezone.now() - dt.timedelta(seconds=age)
        )


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


def test_readyz_names_each_component_with_its_age(client, settings):
    settings.HEARTBEAT_STALE_SECONDS = 30
    _alive("worker", "beat", age=3)
    body = client.get("/readyz").json()
    assert set(body["components"]) == {"database", "broker", "worker", "beat", "okta"}
    assert body["components"]["worker"]["ok"] is True
    assert 2 <= body["components"]["worker"]["age_seconds"] < 10
    assert body["components"]["database"]["ok"] is True


def test_readyz_is_503_and_says_so_when_the_worker_is_silent(client, settings):
    settings.HEARTBEAT_STALE_SECONDS = 30
    _alive("beat")
    _alive("worker", age=95)
    response = client.get("/readyz")
    assert response.status_code == 503
    worker = response.json()["components"]["worker"]
    assert worker["ok"] is False and worker["detail"] == "silent for 95 s"


def test_silent_worker_shows_the_red_banner_to_approvers_and_alerts_once(
    approver, engineer, settings, django_capture_on_commit_callbacks
):
    settings.HEARTBEAT_STALE_SECONDS = 30
    _alive("beat")
    _alive("worker", age=120)
    content = signed_in(approver).get(reverse("dashboard")).content.decode()
    assert "Grants are not being processed: the worker is silent for 120 s." in content
    assert "grants are not being processed" not in (
        signed_in(engineer).get(reverse("dashboard")).content.decode().lower()
    )
    # Once per episode: the dashboard above alerted nobody; the first check does, the next not.
    # (The alert goes out once the check's transaction commits.)
    with django_capture_on_commit_callbacks(execute=True):
        assert machinery.check_and_alert() == ["worker"]
        assert machinery.check_and_alert() == []
    assert len(mail.outbox) == 1
    assert "The worker is down" in mail.outbox[0].subject
    assert approver.email in mail.outbox[0].to
    assert NotificationLog.objects.filter(event="machinery.silent", state="sent").count() == 1
    # Back: the episode ends (approvers are told), and a new silence alerts again.
    _alive("worker")
    with django_capture_on_commit_callbacks(execute=True):
        machinery.check_and_alert()
    assert "The worker is back" in mail.outbox[-1].subject
    _alive("worker", age=120)
    assert machinery.check_and_alert() == ["worker"]


def test_doctor_prints_each_component_and_fails_when_one_is_down(settings, capsys):
    settings.HEARTBEAT_STALE_SECONDS = 30
    _alive("worker", "beat")
    call_command("doctor", "--check", "worker", "--check", "beat")
    out = capsys.readouterr().out
    assert "ok   worker" in out and "ok   beat" in out
    _alive("beat", age=300)
    with pytest.raises(CommandError, match="not ready: beat"):
        call_command("doctor", "--check", "beat")


# --- notify_now: direct delivery, but only of what committed --------------------------------


def _refuse_the_queue(monkeypatch) -> None:
    """notify_now sends from this process: the queue (maybe what is down) is not used."""

    def refuse(*args, **kwargs):
        raise AssertionError("notify_now queued a delivery that should have been direct")

    monkeypatch.setattr("portal.queue.send_email", refuse)
    monkeypatch.setattr("portal.queue.send_slack", refuse)


def _alert() -> None:
    notify_now("machinery.silent", "The worker is down", "text", "https://portal/", ["a@x.test"])


@pytest.mark.django_db(transaction=True)
def test_notify_now_sends_nothing_when_the_callers_transaction_rolls_back(monkeypatch):
    _refuse_the_queue(monkeypatch)
    with pytest.raises(RuntimeError), transaction.atomic():
        _alert()
        assert mail.outbox == []  # not before the commit
        raise RuntimeError("the caller's change fails after the alert was written")
    assert mail.outbox == []
    assert not NotificationLog.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_notify_now_sends_directly_once_the_callers_transaction_commits(monkeypatch, settings):
    _refuse_the_queue(monkeypatch)
    posted = []
    settings.SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/T/B/x"
    monkeypatch.setattr("portal.notify.post_to_slack", lambda url, message: posted.append(url))
    with transaction.atomic():
        _alert()
        assert mail.outbox == [] and posted == []
    assert [m.to for m in mail.outbox] == [["a@x.test"]]
    assert posted == [settings.SLACK_WEBHOOK_URL]
    assert set(NotificationLog.objects.values_list("channel", "state")) == {
        ("email", "sent"),
        ("slack", "sent"),
    }


@pytest.mark.django_db(transaction=True)
def test_notify_now_falls_back_to_the_queue_when_the_direct_send_fails(monkeypatch):
    queued = []
    monkeypatch.setattr("portal.queue.send_email", lambda *args: queued.append(args))

    def smtp_down(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr("portal.notify.send_mail", smtp_down)
    with transaction.atomic():
        _alert()
    row = NotificationLog.objects.get()
    assert row.state == NotificationLog.State.QUEUED
    assert queued == [(row.subject, "text\n\nhttps://portal/", ["a@x.test"], row.pk)]


@pytest.mark.django_db(transaction=True)
def test_the_silent_worker_alert_leaves_after_the_heartbeat_row_is_released(
    approver, settings, monkeypatch
):
    """check_and_alert holds the heartbeat row locked while it decides: the email is sent
    after that transaction, never while the lock is held."""
    settings.HEARTBEAT_STALE_SECONDS = 30
    _alive("beat")
    _alive("worker", age=120)
    in_transaction = []
    real_send = notify_module.send_mail

    def send_mail(*args, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return real_send(*args, **kwargs)

    monkeypatch.setattr("portal.notify.send_mail", send_mail)
    assert machinery.check_and_alert() == ["worker"]
    assert in_transaction == [False]
    assert "The worker is down" in mail.outbox[0].subject


def test_an_open_okta_circuit_shows_on_the_dashboard_readyz_and_doctor(
    approver, settings, client, capsys
):
    settings.OKTA_CIRCUIT_FAILURES = 2
    _alive("worker", "beat")
    for _ in range(2):
        guard.record_failure("add eng to aws#...", "no answer from Okta (ClientConnectorError)")
    content = signed_in(approver).get(reverse("dashboard")).content.decode()
    assert "Okta unreachable since " in content
    assert "grants and removals are paused and resume by themselves" in content
    okta = machinery.check_okta()
    assert not okta.ok and okta.detail.startswith("Okta unreachable since ")
    assert "ClientConnectorError" in okta.warning and okta.age_seconds is not None
    with pytest.raises(CommandError, match="not ready: okta"):
        call_command("doctor", "--check", "okta")
    assert "Okta unreachable since" in capsys.readouterr().out
    assert AuditEvent.objects.filter(action="okta.circuit_opened").count() == 1
