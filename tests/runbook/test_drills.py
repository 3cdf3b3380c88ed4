"""Drills: what a drill proved (from the audit log and evidence), its stored result, the
schedule and its reminder, the dashboard card."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from federation.failover import checklist as return_checklist
from federation.failover import drills, services
from federation.models import DrillResult, Failover, FailoverStatus, ReturnToNormal
from federation.tasks import close_federation
from portal import audit
from portal.models import AuditEvent
from tests.runbook.conftest import seen_signing_in


@pytest.fixture
def drill(approver, plan, fake_idp, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        failover = services.open_failover(actor=approver, reason="Quarterly drill", drill=True)
    fake_idp.activate_app(settings.OKTA_AWS_APP_ID)
    services.confirm_app_activated(failover.pk)
    return Failover.objects.get(pk=failover.pk)


def close(approver, failover, capture):
    with capture(execute=False):
        services.close_failover(actor=approver, force=True, reason="drill done")
    with capture(execute=False):
        close_federation.apply(args=[failover.pk])
    failover.refresh_from_db()
    return failover


def proved(failover) -> dict[str, bool]:
    return {item.key: item.proved for item in drills.drill_checklist(failover)}


def test_a_full_drill_passes(drill, approver, engineer, grant, django_capture_on_commit_callbacks):
    req = grant(engineer)
    assert proved(drill) == {
        "app_activated": True,
        "user_added": True,
        "signed_in": False,
        "user_removed": False,
        "app_deactivated": False,
        "groups_empty": False,
    }
    seen_signing_in(req)
    assert proved(drill)["signed_in"]
    drill = close(approver, drill, django_capture_on_commit_callbacks)
    assert drill.status == FailoverStatus.CLOSED
    run = ReturnToNormal.objects.get(failover=drill)
    assert run.drill_result == DrillResult.PASSED
    assert {item["key"]: item["proved"] for item in run.drill_checklist} == dict.fromkeys(
        ["app_activated", "user_added", "signed_in", "user_removed", "app_deactivated",
         "groups_empty"], True,
    )  # fmt: skip
    result = AuditEvent.objects.get(action="failover.drill_result")
    assert result.payload == {"result": "passed", "not_proved": []}


def test_a_drill_without_a_sign_in_fails(
    drill, approver, engineer, grant, django_capture_on_commit_callbacks
):
    grant(engineer)
    drill = close(approver, drill, django_capture_on_commit_callbacks)
    run = ReturnToNormal.objects.get(failover=drill)
    assert run.drill_result == DrillResult.FAILED
    assert AuditEvent.objects.get(action="failover.drill_result").payload["not_proved"] == [
        "signed_in"
    ]


def test_a_real_failover_has_no_drill_result(
    approver, engineer, grant, open_failover, fake_idp, django_capture_on_commit_callbacks
):
    grant(engineer)
    failover = close(approver, open_failover, django_capture_on_commit_callbacks)
    assert ReturnToNormal.objects.get(failover=failover).drill_result == ""


def _closed_drill(approver, result: str, days_ago: int) -> Failover:
    at = timezone.now() - dt.timedelta(days=days_ago)
    failover = Failover.objects.create(
        opened_by=approver, reason="drill", is_drill=True, status=FailoverStatus.CLOSED,
        closed_at=at,
    )  # fmt: skip
    ReturnToNormal.objects.create(failover=failover, drill_result=result)
    return failover


def test_schedule_and_overdue(approver, settings, plan):
    settings.DRILL_INTERVAL_DAYS = 90
    status = drills.drill_status()
    assert status.last is None and status.overdue and status.next_due is None
    _closed_drill(approver, DrillResult.PASSED, days_ago=100)
    failed = _closed_drill(approver, DrillResult.FAILED, days_ago=10)
    status = drills.drill_status()
    assert status.last == failed and status.result == "failed"
    assert status.overdue  # the last *passed* drill is 100 days old
    _closed_drill(approver, DrillResult.PASSED, days_ago=5)
    status = drills.drill_status()
    assert not status.overdue
    assert status.next_due.date() == (timezone.now() + dt.timedelta(days=85)).date()


def test_overdue_reminder_once_a_day(
    approver, plan, deliver_now, django_capture_on_commit_callbacks
):
    _closed_drill(approver, DrillResult.PASSED, days_ago=120)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert drills.remind_if_overdue(now)
    assert any("drill is overdue" in m.subject for m in mail.outbox)
    assert not drills.remind_if_overdue(now + dt.timedelta(hours=3))
    assert drills.remind_if_overdue(now + dt.timedelta(hours=25))
    assert AuditEvent.objects.filter(action="drill.overdue_reminder").count() == 2


def test_no_reminder_while_a_failover_is_open(drill):
    assert not drills.remind_if_overdue()


def test_the_dashboard_shows_the_last_drill(approver, plan, client):
    last = _closed_drill(approver, DrillResult.PASSED, days_ago=3)
    client.force_login(approver)
    page = client.get("/").content.decode()
    assert 'id="drill-card"' in page
    assert f"#{last.pk}</a>" in page and "Passed" in page
    assert "Next drill due" in page


def test_the_failover_page_shows_the_drill_checklist(drill, approver, client):
    client.force_login(approver)
    page = client.get("/failover/").content.decode()
    assert "What this drill has proved so far" in page
    assert "Federation app activated in Okta" in page


def test_the_wizard_shows_the_drill_result(
    drill, approver, engineer, grant, django_capture_on_commit_callbacks, client
):
    seen_signing_in(grant(engineer))
    close(approver, drill, django_capture_on_commit_callbacks)
    client.force_login(approver)
    page = client.get("/failover/return/").content.decode()
    assert "What this drill proved" in page
    assert "drill-passed" in page
    assert return_checklist.checklist(drill).steps[-1].summary == "Closed. Drill passed."


def test_a_sign_in_not_yet_polled_still_counts_when_the_drill_closes(
    drill, approver, engineer, grant, settings, django_capture_on_commit_callbacks
):
    """Issue 12, defect 2: a drill closed within one System Log poll of the sign-in was
    recorded "Failed" forever while its own report showed the sign-in."""
    from federation.idp.memory import InMemoryIdentityProvider

    settings.OKTA_PORTAL_ACTORS = ["portal-service@example.com"]
    grant(engineer)
    app = [{"id": settings.OKTA_AWS_APP_ID, "type": "AppInstance", "displayName": "AWS"}]
    InMemoryIdentityProvider.log_event("user.authentication.sso", engineer.email, targets=app)
    assert not proved(drill)["signed_in"]  # in Okta's log, not read by the portal yet
    drill = close(approver, drill, django_capture_on_commit_callbacks)
    assert ReturnToNormal.objects.get(failover=drill).drill_result == DrillResult.PASSED


def test_a_fresh_installation_is_not_overdue_at_once(settings, plan):
    """Issue 12: a fresh demo said "a drill is overdue" from the first minute."""
    settings.DRILL_INTERVAL_DAYS = 90
    with transaction.atomic():
        audit.record("plan.imported", ("plan", "demo"), system="manage.py seed_demo")
    status = drills.drill_status()
    assert not status.overdue
    assert status.next_due.date() == (timezone.now() + dt.timedelta(days=90)).date()
    assert drills.drill_status(timezone.now() + dt.timedelta(days=91)).overdue
