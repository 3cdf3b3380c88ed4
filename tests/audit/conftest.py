"""A realistic history for the audit tests: a failover, requests through every path, config
changes. Everything goes through the services, so the events are the ones production writes."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.accounts import roles
from requests_app import services

JUSTIFICATION = "Payments are failing and I need to read the CloudWatch logs to find out why."


def file(user, role, minutes: int = 60):
    return services.file_request(
        requester=user,
        role=role,
        justification=JUSTIFICATION,
        ticket="INC-1234",
        duration_minutes=minutes,
    )


@pytest.fixture
def history(
    plan, fake_idp, open_failover, engineer, oncall, approver, approver2, auditor,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    """About twenty events of every kind: filed, approved (1 and 2 approvers), granted,
    expired, revoked, denied, cancelled, a role granted, a plan change, an outside change."""
    ro, ops = plan.roles[("prod-payments", "RO")], plan.roles[("prod-data", "Ops")]
    with django_capture_on_commit_callbacks(execute=False):
        expired = file(engineer, ro)
        services.approve(expired, actor=approver, comment="go")
        services.activate(expired.pk, okta_user_id="00u1")
        services.expire(expired.pk, now=timezone.now() + dt.timedelta(hours=2))
        services.confirm_membership_removed(expired.pk, detail="removed")
        revoked = file(oncall, ops)
        services.approve(revoked, actor=approver, comment="first")
        services.approve(revoked, actor=approver2, comment="second")
        services.activate(revoked.pk, okta_user_id="00u2")
        services.revoke(revoked, actor=approver, reason="done early")
        denied = file(engineer, ops)
        services.deny(denied, actor=approver2, reason="use RO")
        cancelled = file(oncall, ro)
        services.cancel(cancelled, actor=oncall, reason="not needed")
        pending = file(engineer, plan.roles[("prod-data", "RO")])
        roles.grant_role(oncall, "approver", system="test")
        with transaction.atomic():
            audit.record(
                "okta.unexpected_member_removed",
                ro,
                system="reconciler",
                payload={"okta_group": ro.okta_group_name, "login": "mallory@example.com"},
            )
            # Values JSON has no type for: dates, decimals, non-ASCII text.
            from decimal import Decimal

            audit.record(
                "test.odd_values",
                ("thing", 1),
                system="test",
                payload={"when": timezone.now(), "amount": Decimal("1.50"), "name": "Zoë ✓"},
            )
    return SimpleNamespace(
        expired=expired, revoked=revoked, denied=denied, cancelled=cancelled, pending=pending
    )
