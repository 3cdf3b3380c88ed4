"""An archive of past requests with known facts, for the auditor page tests (imported by them)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import transaction

from federation.models import Failover, FailoverStatus
from portal import audit
from requests_app.models import AccessRequest, Approval, Status
from tests.conftest import make_user


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def make_request(user, role, failover, status, filed, *, granted=None, ended=None, **fields):
    req = AccessRequest.objects.create(
        requester=user,
        role=role,
        failover=failover,
        justification=fields.pop("justification", "Looking into the payments outage in prod."),
        ticket=fields.pop("ticket", "INC-1"),
        duration_minutes=60,
        status=status,
        okta_login=user.email,
        activated_at=at(granted) if granted else None,
        ended_at=at(ended) if ended else None,
        membership_removed_at=at(ended) + dt.timedelta(seconds=10) if granted and ended else None,
        **fields,
    )
    # created_at is auto_now_add: set the historic value afterwards.
    AccessRequest.objects.filter(pk=req.pk).update(created_at=at(filed))
    req.refresh_from_db()
    return req


@pytest.fixture
def archive(plan, engineer, oncall, approver, approver2):
    """Two closed failovers (one a drill) and five requests with known facts."""
    alice = make_user("alice", "alice@example.com")
    real = Failover.objects.create(
        opened_by=approver, reason="IdC down in eu-west-1", status=FailoverStatus.CLOSED
    )
    drill = Failover.objects.create(
        opened_by=approver2, reason="Quarterly drill", is_drill=True, status=FailoverStatus.CLOSED
    )
    Failover.objects.filter(pk=real.pk).update(
        opened_at=at("2025-03-01T09:00:00"), closed_at=at("2025-03-01T18:00:00")
    )
    Failover.objects.filter(pk=drill.pk).update(
        opened_at=at("2025-06-10T08:00:00"), closed_at=at("2025-06-12T18:00:00")
    )
    real.refresh_from_db()
    drill.refresh_from_db()
    pay_ro, pay_ops = plan.roles[("prod-payments", "RO")], plan.roles[("prod-payments", "Ops")]
    data_ro, data_ops = plan.roles[("prod-data", "RO")], plan.roles[("prod-data", "Ops")]
    r1 = make_request(
        engineer, pay_ro, real, Status.EXPIRED, "2025-03-01T10:00:00",
        granted="2025-03-01T10:05:00", ended="2025-03-01T11:05:00",
        justification="Kafka consumer lag on the payments queue", ticket="INC-1",
    )  # fmt: skip
    r2 = make_request(
        oncall, data_ops, real, Status.REVOKED, "2025-03-01T12:00:00",
        granted="2025-03-01T12:10:00", ended="2025-03-01T12:30:00",
        justification="Database failover checks on the replica", ticket="INC-2",
    )  # fmt: skip
    r3 = make_request(
        engineer, data_ro, drill, Status.DENIED, "2025-06-10T10:00:00",
        ticket="DRILL-7", decided_by=approver2, decision_comment="use the runbook",
    )  # fmt: skip
    r4 = make_request(
        alice, pay_ops, drill, Status.EXPIRED, "2025-06-11T09:00:00",
        granted="2025-06-11T09:05:00", ended="2025-06-11T11:05:00", ticket="DRILL-8",
    )  # fmt: skip
    r5 = make_request(alice, pay_ro, drill, Status.LAPSED, "2025-06-12T10:00:00", ticket="=1+2")
    Approval.objects.create(request=r1, approver=approver, comment="ok")
    Approval.objects.create(request=r2, approver=approver, comment="first")
    Approval.objects.create(request=r2, approver=approver2, comment="second")
    Approval.objects.create(request=r4, approver=approver, comment="drill ok")
    Approval.objects.create(request=r4, approver=approver2, comment="")
    with transaction.atomic():
        audit.record("request.filed", r1, actor=engineer, payload={"ticket": "INC-1"})
        audit.record("request.approved", r1, actor=approver, payload={"from": "pending"})
        audit.record("request.filed", r2, actor=oncall, payload={"ticket": "INC-2"})
        audit.record(
            "okta.unexpected_member_removed",
            pay_ro,
            system="reconciler",
            payload={"login": "mallory@example.com"},
        )
    return SimpleNamespace(
        real=real, drill=drill, alice=alice, r1=r1, r2=r2, r3=r3, r4=r4, r5=r5, plan=plan
    )
