"""Reading the System Log (in-memory identity provider; the sandbox over HTTP is in
tests/integration/test_sign_in_evidence.py): what is recorded, the persisted cursor,
idempotency, late events and changes made behind the portal's back."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation.failover import systemlog
from federation.idp import IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider
from federation.models import EvidenceKind, LogCursor, OutsideChangeAlert, SignInEvidence
from portal.models import AuditEvent, NotificationLog

pytestmark = pytest.mark.django_db
APP = "0oasandboxawsfed01"


def app_target(app_id: str = APP):
    return [{"id": app_id, "type": "AppInstance", "alternateId": "AWS", "displayName": "AWS"}]


def sso(login: str, *, app_id: str = APP, outcome: str = "SUCCESS", published=None):
    return InMemoryIdentityProvider.log_event(
        "user.authentication.sso", login, targets=app_target(app_id), outcome=outcome,
        published=published,
    )  # fmt: skip


def poll(idp):
    return systemlog.poll_system_log(idp)


@pytest.fixture
def idp(fake_idp, settings):
    settings.OKTA_AWS_APP_ID = APP
    settings.OKTA_PORTAL_ACTORS = ["portal-service@example.com"]
    return fake_idp


def test_a_sign_in_to_the_federation_app_is_recorded_for_the_failover(idp, open_failover):
    event = sso("Engineer@example.com")
    sso("engineer@example.com", app_id="0oaSomethingElse")  # another app: not AWS
    sso("engineer@example.com", outcome="FAILURE")  # an attempt that failed
    report = poll(idp)
    assert (report.events, report.sign_ins) == (3, 1)
    recorded = SignInEvidence.objects.get()
    assert (recorded.login, recorded.kind, recorded.failover) == (
        "engineer@example.com", EvidenceKind.SIGN_IN, open_failover,
    )  # fmt: skip
    assert recorded.source_id == event.uuid and recorded.at == event.published


def test_okta_sign_outs_are_kept_only_for_emergency_users(idp, grant, engineer):
    grant(engineer)
    InMemoryIdentityProvider.log_event("user.session.end", "engineer@example.com")
    InMemoryIdentityProvider.log_event("user.session.end", "somebody@example.com")
    report = poll(idp)
    assert report.sign_outs == 1
    assert list(SignInEvidence.objects.values_list("login", "kind")) == [
        ("engineer@example.com", EvidenceKind.OKTA_SESSION_END)
    ]


def test_the_cursor_is_persisted_and_each_poll_reads_only_what_is_new(idp, open_failover):
    sso("engineer@example.com")
    first = poll(idp)
    cursor = LogCursor.objects.get(name=systemlog.CURSOR)
    assert first.events == 1 and cursor.after
    assert poll(idp).events == 0  # nothing new
    sso("oncall@example.com")
    second = poll(idp)
    assert second.events == 1 and second.sign_ins == 1
    assert LogCursor.objects.get(name=systemlog.CURSOR).after != cursor.after
    assert SignInEvidence.objects.count() == 2


def test_reading_the_same_events_twice_records_them_once(idp, open_failover):
    sso("engineer@example.com")
    poll(idp)
    LogCursor.objects.filter(name=systemlog.CURSOR).update(after="0")  # as if the move was lost
    again = poll(idp)
    assert again.events == 1 and again.sign_ins == 0
    assert SignInEvidence.objects.count() == 1


def test_a_late_event_published_before_events_already_read_is_not_missed(idp, open_failover):
    sso("engineer@example.com")
    poll(idp)
    # Okta publishes an earlier sign-in only now: a "since the last timestamp" poll would skip it.
    late = sso("oncall@example.com", published=timezone.now() - dt.timedelta(minutes=5))
    assert poll(idp).sign_ins == 1
    assert SignInEvidence.objects.get(source_id=late.uuid).at == late.published


def test_full_pages_are_followed_within_one_poll(idp, open_failover, settings):
    settings.SYSTEM_LOG_PAGE_SIZE = 2
    for n in range(5):
        sso("engineer@example.com", published=timezone.now() + dt.timedelta(seconds=n))
    report = poll(idp)
    assert (report.pages, report.events, report.sign_ins) == (3, 5, 5)


def test_an_okta_error_leaves_the_cursor_and_says_so(idp, open_failover):
    sso("engineer@example.com")
    poll(idp)
    before = LogCursor.objects.get(name=systemlog.CURSOR).after
    idp.fail_next("read_system_log", IdpRetryableError("Okta answered 503", status=503))
    report = poll(idp)
    assert report.error == "Okta answered 503"
    cursor = LogCursor.objects.get(name=systemlog.CURSOR)
    assert cursor.after == before and cursor.last_error == "Okta answered 503"
    assert poll(idp).error == "" and LogCursor.objects.get(name=systemlog.CURSOR).last_error == ""


# --- Changes made behind the portal's back --------------------------------------------------


def members_changed_by(actor: str, group_name: str, login: str, event_type: str):
    group = InMemoryIdentityProvider().find_group(group_name)
    user = InMemoryIdentityProvider().find_user(login)
    targets = [
        {"id": user.id, "type": "User", "alternateId": login, "displayName": login},
        {"id": group.id, "type": "UserGroup", "alternateId": "unknown", "displayName": group_name},
    ]
    return InMemoryIdentityProvider._record(event_type, actor, targets)


def test_a_member_added_by_an_okta_admin_raises_an_alert(
    idp, plan, open_failover, approver, approver2, django_capture_on_commit_callbacks
):
    group = plan.roles[("prod-payments", "Ops")].okta_group_name
    event = members_changed_by(
        "okta-admin@example.com", group, "oncall@example.com", "group.user_membership.add"
    )
    with django_capture_on_commit_callbacks(execute=False):
        report = poll(idp)
    assert report.alerts == [
        f"okta-admin@example.com added oncall@example.com to {group} outside the portal"
    ]
    alert = OutsideChangeAlert.objects.get()
    assert (alert.event_uuid, alert.actor, alert.target) == (
        event.uuid, "okta-admin@example.com", group,
    )  # fmt: skip
    audit = AuditEvent.objects.get(action="okta.outside_change")
    assert audit.payload["user"] == "oncall@example.com"
    assert audit.payload["failover"] == open_failover.pk
    note = NotificationLog.objects.get(event="okta.drift")
    assert "outside the portal" in note.subject
    assert set(note.recipients) == {"approver1@example.com", "approver2@example.com"}
    # Read again: no second alert.
    LogCursor.objects.filter(name=systemlog.CURSOR).update(after="0")
    with django_capture_on_commit_callbacks(execute=False):
        assert poll(idp).alerts == []


def test_the_portals_own_changes_and_other_groups_raise_nothing(idp, plan, open_failover):
    role = plan.roles[("prod-payments", "RO")]
    user = idp.find_user("engineer@example.com")
    group = idp.find_group(role.okta_group_name)
    idp.add_group_member(group.id, user.id)  # logged as the portal's service actor
    idp.remove_group_member(group.id, user.id)
    other = InMemoryIdentityProvider.add_group("Engineering")
    members_changed_by(
        "okta-admin@example.com", other.name, "engineer@example.com", "group.user_membership.add"
    )
    idp.activate_app(APP)  # the portal switching the app on
    assert poll(idp).alerts == []
    assert not OutsideChangeAlert.objects.exists()


def test_the_app_switched_on_in_the_okta_console_raises_an_alert(
    idp, plan, django_capture_on_commit_callbacks
):
    # In normal times (no failover open) this is exactly what must not go unnoticed.
    InMemoryIdentityProvider._record(
        "application.lifecycle.activate", "okta-admin@example.com", app_target()
    )
    with django_capture_on_commit_callbacks(execute=False):
        report = poll(idp)
    assert report.alerts == [
        "okta-admin@example.com activated the federation app AWS federation app outside the portal"
    ]
    assert OutsideChangeAlert.objects.get().failover is None


def test_without_knowing_the_portals_actor_nothing_is_called_outside(idp, plan, settings):
    settings.OKTA_PORTAL_ACTORS = []
    InMemoryIdentityProvider._record(
        "application.lifecycle.activate", "okta-admin@example.com", app_target()
    )
    assert poll(idp).alerts == []


def test_the_first_poll_starts_at_the_open_failover(idp, open_failover):
    from federation.models import Failover

    Failover.objects.filter(pk=open_failover.pk).update(
        opened_at=timezone.now() - dt.timedelta(hours=3)
    )
    sso("engineer@example.com", published=timezone.now() - dt.timedelta(hours=2))
    sso("engineer@example.com", published=timezone.now() - dt.timedelta(hours=4))
    assert poll(idp).sign_ins == 1
