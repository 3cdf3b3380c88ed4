"""The grant tasks as units: how they sort Okta failures into retry / fail / done.

The in-memory identity provider stands in for Okta; the task runs in-process
with Celery's ``apply`` (retries included), inside the test's transaction.
"""

from __future__ import annotations

import pytest

from federation.idp import IdpNotFound, IdpPermanentError, IdpRetryableError
from portal.celery import backoff_seconds
from requests_app import grants, tasks
from requests_app.models import AccessRequest, Status
from tests.unit.test_state_machine import make_request


@pytest.fixture
def approved(fake_idp, engineer, plan, open_failover):
    return make_request(
        engineer, plan.roles[("prod-payments", "RO")], open_failover, status=Status.APPROVED
    )


@pytest.fixture
def on_commit_tasks(monkeypatch):
    """Tasks the services queue after commit (never run inside a unit test's transaction)."""
    monkeypatch.setattr("portal.queue.send_email", lambda *a: None)


def test_provision_adds_the_member_and_starts_the_clock(approved, fake_idp, on_commit_tasks):
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == Status.ACTIVE
    assert fake_idp.members_of(approved.role.okta_group_name) == ["engineer@example.com"]


def test_provision_twice_is_harmless(approved, fake_idp, on_commit_tasks):
    tasks.provision_grant.apply(args=[approved.pk])
    activated_at = AccessRequest.objects.get(pk=approved.pk).activated_at
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.activated_at == activated_at
    assert fake_idp.members_of(approved.role.okta_group_name) == ["engineer@example.com"]


def test_retryable_errors_retry_then_succeed(approved, fake_idp, settings, on_commit_tasks):
    settings.GRANT_TASK_BACKOFF_BASE_SECONDS = 0
    fake_idp.fail_next("add_group_member", IdpRetryableError("429", status=429), times=2)
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == Status.ACTIVE
    assert approved.provisioning_attempts == 2


def test_retries_exhausted_fail_the_request(approved, fake_idp, settings, monkeypatch):
    settings.GRANT_TASK_BACKOFF_BASE_SECONDS = 0
    settings.GRANT_TASK_MAX_RETRIES = 2
    monkeypatch.setattr("requests_app.queue.deprovision_grant", lambda *a: None)
    monkeypatch.setattr("portal.queue.send_email", lambda *a: None)
    fake_idp.fail_next("add_group_member", IdpRetryableError("503", status=503), times=10)
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == Status.FAILED
    assert approved.provisioning_attempts == 3
    assert "Okta kept failing" in approved.end_reason


@pytest.mark.parametrize("error", [IdpNotFound("no user"), IdpPermanentError("forbidden")])
def test_permanent_errors_fail_at_once(approved, fake_idp, monkeypatch, error):
    monkeypatch.setattr("requests_app.queue.deprovision_grant", lambda *a: None)
    monkeypatch.setattr("portal.queue.send_email", lambda *a: None)
    fake_idp.fail_next("add_group_member", error)
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == Status.FAILED
    assert approved.provisioning_attempts == 1


def test_deprovision_keeps_a_member_another_grant_needs(
    fake_idp, engineer, plan, open_failover, on_commit_tasks
):
    role = plan.roles[("prod-payments", "RO")]
    ended = make_request(engineer, role, open_failover, status=Status.REVOKED)
    live = make_request(engineer, role, open_failover, status=Status.APPROVED)
    tasks.provision_grant.apply(args=[live.pk])
    grants.deprovision_grant(ended.pk, fake_idp)
    ended.refresh_from_db()
    assert ended.membership_removed_at is not None
    assert fake_idp.members_of(role.okta_group_name) == ["engineer@example.com"]


def test_reconciler_removes_strangers_and_restores_missing(
    fake_idp, engineer, oncall, plan, open_failover, on_commit_tasks
):
    role = plan.roles[("prod-payments", "RO")]
    live = make_request(engineer, role, open_failover, status=Status.APPROVED)
    tasks.provision_grant.apply(args=[live.pk])
    group = fake_idp.find_group(role.okta_group_name)
    engineer_id = fake_idp.find_user("engineer@example.com").id
    fake_idp.remove_group_member(group.id, engineer_id)
    fake_idp.add_group_member(group.id, fake_idp.find_user("oncall@example.com").id)

    report = grants.reconcile_emergency_groups(fake_idp)

    assert report.removed_unexpected == ["oncall@example.com"]
    assert report.restored == [live.pk]
    assert fake_idp.members_of(role.okta_group_name) == ["engineer@example.com"]


def test_backoff_grows_with_jitter_and_honours_okta_reset(settings):
    settings.GRANT_TASK_BACKOFF_BASE_SECONDS = 2
    settings.GRANT_TASK_BACKOFF_MAX_SECONDS = 300
    for retries in range(10):
        cap = min(300, 2 * 2**retries)
        delays = {backoff_seconds(retries) for _ in range(20)}
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(delays) > 1  # jitter
    after_reset = {backoff_seconds(0, retry_after=45) for _ in range(20)}
    assert all(45 <= d <= 50 for d in after_reset)
    assert len(after_reset) > 1  # jitter after the reset too
