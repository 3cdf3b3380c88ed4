"""The reconciler is O(changes): between full passes it follows the Okta System Log and
repairs just the emergency group a membership event shows drifting (the dispatch in
federation.failover.systemlog, the repair in requests_app.grants). In-memory identity
provider; the worker and the sandbox org over HTTP are in
tests/integration/test_reconciler_follows_system_log.py."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from federation.failover import systemlog
from federation.idp import IdpPermanentError, IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider
from federation.models import LogCursor
from portal.models import AuditEvent, NotificationLog
from requests_app import grants, services, tasks
from requests_app.models import AccessRequest, Status

pytestmark = pytest.mark.django_db
APP = "0oasandboxawsfed01"
ADMIN = "okta-admin@example.com"


@pytest.fixture
def idp(fake_idp, settings, monkeypatch):
    """The fake org, counting the calls the reconciler pays for."""
    settings.OKTA_AWS_APP_ID = APP
    settings.OKTA_PORTAL_ACTORS = ["portal-service@example.com"]
    settings.SYSTEM_LOG_POLL_SECONDS = 30
    settings.RECONCILE_FULL_PASS_SECONDS = 900
    calls: Counter[str] = Counter()
    original = InMemoryIdentityProvider.list_group_members

    def counted(self, group_id):
        calls[group_id] += 1
        return original(self, group_id)

    monkeypatch.setattr(InMemoryIdentityProvider, "list_group_members", counted)
    fake_idp.calls = calls
    return fake_idp


def behind_the_back(group_name: str, login: str, *, added: bool = True):
    """What an Okta admin does in the console: the membership changes, the log says who."""
    idp = InMemoryIdentityProvider()
    group, user = idp.find_group(group_name), idp.find_user(login)
    with InMemoryIdentityProvider._lock:
        members = InMemoryIdentityProvider._members[group.id]
        if added:
            members.append(user.id)
        else:
            members.remove(user.id)
    InMemoryIdentityProvider.touch_membership(group.id)
    targets = [
        {"id": user.id, "type": "User", "alternateId": login, "displayName": login},
        {"id": group.id, "type": "UserGroup", "alternateId": "unknown", "displayName": group_name},
    ]
    kind = "group.user_membership.add" if added else "group.user_membership.remove"
    return InMemoryIdentityProvider._record(kind, ADMIN, targets)


def app_switched(actor: str, action: str = "activate"):
    target = [{"id": APP, "type": "AppInstance", "alternateId": "AWS", "displayName": "AWS"}]
    return InMemoryIdentityProvider._record(f"application.lifecycle.{action}", actor, target)


def poll(idp, capture):
    with capture(execute=False):
        return systemlog.poll_system_log(idp)


def test_a_member_added_behind_the_back_is_removed_by_the_poll_that_reads_it(
    idp, plan, django_capture_on_commit_callbacks, approver
):
    ro = plan.roles[("prod-payments", "RO")]
    behind_the_back(ro.okta_group_name, "oncall@example.com")

    report = poll(idp, django_capture_on_commit_callbacks)

    assert report.reconciled == [ro.okta_group_name]
    assert report.removed_unexpected == ["oncall@example.com"]
    assert idp.members_of(ro.okta_group_name) == []
    # Just that group was listed, once.
    assert dict(idp.calls) == {idp.find_group(ro.okta_group_name).id: 1}
    # The alerts of today: the reconciler's and the outside change's.
    removed = AuditEvent.objects.get(action="okta.unexpected_member_removed")
    assert removed.payload == {"okta_group": ro.okta_group_name, "login": "oncall@example.com"}
    assert AuditEvent.objects.filter(action="okta.outside_change").count() == 1
    assert NotificationLog.objects.filter(event="okta.drift").count() == 2
    # Read again: nothing new, no Okta call.
    assert poll(idp, django_capture_on_commit_callbacks).reconciled == []
    assert sum(idp.calls.values()) == 1


def test_the_portals_own_grants_cost_no_okta_call(
    idp, plan, grant, engineer, django_capture_on_commit_callbacks
):
    req = grant(engineer)  # the portal's add: explained by an active grant
    ro = plan.roles[("prod-payments", "RO")]
    group = idp.find_group(ro.okta_group_name)
    report = poll(idp, django_capture_on_commit_callbacks)
    assert report.events >= 1 and report.reconciled == []
    # The grant ends and the portal removes the member: explained too.
    AccessRequest.objects.filter(pk=req.pk).update(status=Status.REVOKED)
    idp.remove_group_member(group.id, req.okta_user_id)
    assert poll(idp, django_capture_on_commit_callbacks).reconciled == []
    assert sum(idp.calls.values()) == 0


def test_an_add_read_after_its_grant_ended_is_the_portals_own(
    idp, plan, grant, engineer, approver, django_capture_on_commit_callbacks
):
    """The poll may read a grant's add only after the grant ended (a return to normal
    revokes hundreds while the poll catches up): judged at the event's time, the add was
    the portal's; no listing, and no second removal racing the portal's own."""
    req = grant(engineer)  # the add is in the log, not read yet
    with django_capture_on_commit_callbacks(execute=False):
        services.revoke(req, actor=approver, reason="the incident is over")
    report = poll(idp, django_capture_on_commit_callbacks)  # removal still in flight
    assert report.events >= 1 and report.reconciled == []
    ro = plan.roles[("prod-payments", "RO")]
    assert idp.members_of(ro.okta_group_name) == ["engineer@example.com"]
    assert sum(idp.calls.values()) == 0


def test_a_member_added_again_after_the_portal_removed_them_is_drift(
    idp, plan, grant, engineer, approver, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    ro = plan.roles[("prod-payments", "RO")]
    with django_capture_on_commit_callbacks(execute=False):
        services.revoke(req, actor=approver, reason="the incident is over")
    group = idp.find_group(ro.okta_group_name)
    idp.remove_group_member(group.id, req.okta_user_id)
    services.confirm_membership_removed(req.pk, detail="removed")
    assert poll(idp, django_capture_on_commit_callbacks).reconciled == []

    behind_the_back(ro.okta_group_name, "engineer@example.com")  # after the removal
    report = poll(idp, django_capture_on_commit_callbacks)

    assert report.reconciled == [ro.okta_group_name]
    assert report.removed_unexpected == ["engineer@example.com"]
    assert idp.members_of(ro.okta_group_name) == []


def test_an_active_grants_member_removed_behind_the_back_is_restored(
    idp, plan, grant, engineer, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    ro = plan.roles[("prod-payments", "RO")]
    poll(idp, django_capture_on_commit_callbacks)
    behind_the_back(ro.okta_group_name, "engineer@example.com", added=False)

    report = poll(idp, django_capture_on_commit_callbacks)

    assert report.reconciled == [ro.okta_group_name] and report.restored == [req.pk]
    assert idp.members_of(ro.okta_group_name) == ["engineer@example.com"]
    assert AuditEvent.objects.filter(action="okta.member_restored").count() == 1


def test_many_changes_to_one_group_list_it_once_and_other_groups_not_at_all(
    idp, plan, django_capture_on_commit_callbacks
):
    ro = plan.roles[("prod-payments", "RO")]
    for login in ("oncall@example.com", "engineer@example.com"):
        behind_the_back(ro.okta_group_name, login)
    behind_the_back(ro.okta_group_name, "oncall@example.com", added=False)
    other = InMemoryIdentityProvider.add_group("Engineering")
    behind_the_back(other.name, "engineer@example.com")

    report = poll(idp, django_capture_on_commit_callbacks)

    assert report.reconciled == [ro.okta_group_name]
    assert report.removed_unexpected == ["engineer@example.com"]
    assert dict(idp.calls) == {idp.find_group(ro.okta_group_name).id: 1}
    assert idp.members_of("Engineering") == ["engineer@example.com"]


def test_a_repair_that_fails_asks_for_a_full_pass_and_the_events_are_still_recorded(
    idp, plan, django_capture_on_commit_callbacks
):
    ro = plan.roles[("prod-payments", "RO")]
    grants.reconcile_emergency_groups(idp)  # a full pass just ran
    behind_the_back(ro.okta_group_name, "oncall@example.com")
    idp.fail_next("list_group_members", IdpRetryableError("Okta answered 503", status=503))

    report = poll(idp, django_capture_on_commit_callbacks)

    assert report.reconciled == [] and len(report.full_pass_requested) == 1
    assert AuditEvent.objects.filter(action="okta.outside_change").count() == 1
    assert LogCursor.objects.get(name=systemlog.CURSOR).after  # the cursor moved on
    assert grants.full_pass_due().startswith("requested: ")
    with django_capture_on_commit_callbacks(execute=False):
        tick = grants.reconcile(idp)
    assert tick.full_pass and tick.removed_unexpected == ["oncall@example.com"]
    assert grants.full_pass_due() == ""


def test_the_app_switched_outside_the_portal_asks_for_a_full_pass(
    idp, plan, django_capture_on_commit_callbacks
):
    grants.reconcile_emergency_groups(idp)
    app_switched("portal-service@example.com")  # the portal itself: nothing asked
    poll(idp, django_capture_on_commit_callbacks)
    assert grants.full_pass_due() == ""
    app_switched(ADMIN, "deactivate")
    report = poll(idp, django_capture_on_commit_callbacks)
    assert report.full_pass_requested == [
        f"{ADMIN} application.lifecycle.deactivate outside the portal"
    ]
    assert "application.lifecycle.deactivate" in grants.full_pass_due()


def test_a_refused_cursor_asks_for_a_full_pass(idp, plan, django_capture_on_commit_callbacks):
    poll(idp, django_capture_on_commit_callbacks)
    grants.reconcile_emergency_groups(idp)
    assert grants.full_pass_due() == ""
    refused = IdpPermanentError(
        "400 E0000001 Api validation failed: after", status=400, code="E0000001"
    )
    idp.fail_next("read_system_log", refused)
    report = poll(idp, django_capture_on_commit_callbacks)
    assert report.error == "" and report.full_pass_requested
    assert "cursor" in grants.full_pass_due()


# --- The reconciler's tick: when is a full pass due -----------------------------------------


def followed(now=None):
    """The System Log poller read the log successfully just now."""
    LogCursor.objects.update_or_create(
        name=systemlog.CURSOR,
        defaults={"after": "42", "polled_at": now or timezone.now(), "last_error": ""},
    )


def long_ago():
    """Every group's membership last changed an hour ago (Okta's lastMembershipUpdated)."""
    for group_id in InMemoryIdentityProvider._membership_updated:
        InMemoryIdentityProvider._membership_updated[group_id] = timezone.now() - dt.timedelta(
            hours=1
        )


def backdate_passes(seconds: float) -> None:
    LogCursor.objects.filter(name__startswith=grants.RECONCILER).update(
        updated_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def test_the_tick_lists_groups_only_when_a_full_pass_is_due(idp, plan, settings):
    groups = len(plan.roles)
    followed()
    first = grants.reconcile(idp)  # no full pass yet: a complete one, every group
    assert first.full_pass and first.groups_listed == groups
    quiet = grants.reconcile(idp)
    assert not quiet.full_pass and sum(idp.calls.values()) == groups  # no Okta call
    # RECONCILE_FULL_PASS_SECONDS later: the periodic full pass.
    long_ago()
    backdate_passes(settings.RECONCILE_FULL_PASS_SECONDS + 1)
    assert grants.full_pass_due() == "the periodic full pass"
    periodic = grants.reconcile(idp)
    # Okta's census says no membership changed: no group listed.
    assert periodic.full_pass and periodic.groups_listed == 0
    assert sum(idp.calls.values()) == groups


def test_a_full_pass_lists_the_groups_okta_says_changed_and_those_in_use(
    idp, plan, grant, engineer, settings, django_capture_on_commit_callbacks
):
    ro, ops = plan.roles[("prod-payments", "RO")], plan.roles[("prod-payments", "Ops")]
    grants.reconcile_emergency_groups(idp)
    grant(engineer, level="RO")  # RO in use
    long_ago()
    # Changed behind the back with the System Log missed (no poll): only the census sees it.
    behind_the_back(ops.okta_group_name, "oncall@example.com")
    backdate_passes(settings.RECONCILE_FULL_PASS_SECONDS + 1)
    LogCursor.objects.filter(name=grants.RECONCILER_COMPLETE).update(updated_at=timezone.now())
    idp.calls.clear()
    with django_capture_on_commit_callbacks(execute=False):
        report = grants.reconcile_emergency_groups(idp)
    assert report.removed_unexpected == ["oncall@example.com"]
    listed = {idp.find_group(r.okta_group_name).id for r in (ro, ops)}
    assert set(idp.calls) == listed and report.groups_listed == 2


def test_every_fourth_full_pass_lists_every_group(idp, plan, settings):
    grants.reconcile_emergency_groups(idp)
    long_ago()
    full = settings.RECONCILE_FULL_PASS_SECONDS
    backdate_passes(full * (grants.COMPLETE_PASS_EVERY - 1))
    assert grants.reconcile_emergency_groups(idp).groups_listed == 0
    backdate_passes(full * grants.COMPLETE_PASS_EVERY)
    assert grants.reconcile_emergency_groups(idp).groups_listed == len(plan.roles)


@pytest.mark.parametrize(
    "log_state",
    [
        {"after": ""},  # never read (or the cursor was dropped)
        {"last_error": "Okta answered 503"},  # the last read failed
        {"polled_at": timezone.now() - dt.timedelta(minutes=5)},  # not read for 10 periods
    ],
    ids=["no-cursor", "last-read-failed", "stale"],
)
def test_while_the_system_log_is_not_followed_every_tick_is_a_full_pass(idp, plan, log_state):
    followed()
    grants.reconcile(idp)
    assert grants.full_pass_due() == ""
    LogCursor.objects.filter(name=systemlog.CURSOR).update(**log_state)
    assert grants.full_pass_due() == "the System Log is not being followed"
    assert grants.reconcile(idp).full_pass


def test_a_request_made_during_a_full_pass_is_kept_for_the_next_tick(idp, plan, monkeypatch):
    followed()
    grants.request_full_pass("first")
    original = grants.reconcile_group

    def meanwhile(role, provider, report=None):
        if report is not None and report.groups_listed == 0:
            grants.request_full_pass("second")
        return original(role, provider, report)

    monkeypatch.setattr(grants, "reconcile_group", meanwhile)
    assert grants.reconcile(idp).full_pass
    assert grants.full_pass_due().endswith("second")


def test_the_task_is_the_tick_and_full_lists_every_group_at_once(idp, plan):
    followed()
    assert tasks.reconcile_emergency_groups.apply().get()["full_pass"] == 1  # the first
    assert tasks.reconcile_emergency_groups.apply().get()["groups_listed"] == 0  # not due
    long_ago()
    done = tasks.reconcile_emergency_groups.apply(kwargs={"full": True}).get()
    assert done["full_pass"] == 1 and done["groups_listed"] == len(plan.roles)
