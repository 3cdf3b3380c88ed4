"""The eligibility rules in the services, with the in-memory IdP: who may ask, who decides."""

from __future__ import annotations

import pytest

from federation.models import EmergencyRole
from portal.core.errors import NotAllowed
from portal.models import AuditEvent, NotificationLog
from requests_app import eligibility, extensions, services
from requests_app.models import Status
from tests.eligibility.conftest import JUSTIFICATION, Written, join


def file(user, role, minutes=60):
    return services.file_request(
        requester=user,
        role=role,
        justification=JUSTIFICATION,
        ticket="INC-7",
        duration_minutes=minutes,
    )


def test_a_plan_without_eligibility_stays_open(plan, fake_idp, open_failover, engineer, approver):
    req = file(engineer, plan.roles[("prod-payments", "Ops")])
    filed = AuditEvent.objects.get(action="request.filed", target_id=str(req.pk))
    assert filed.payload["eligibility"].startswith("open:")
    services.deny(req, actor=approver, reason="no")
    denied = AuditEvent.objects.get(action="request.denied", target_id=str(req.pk))
    assert denied.payload["eligibility"].startswith("open:")
    assert not eligibility.plan_has_eligibility()


def test_outside_the_requesters_filing_is_refused_and_writes_nothing(
    restricted, fake_idp, open_failover, engineer
):
    written = Written()
    with pytest.raises(NotAllowed, match="not eligible to request EmergencyAccess_Role1_RO"):
        file(engineer, restricted.roles[("prod-payments", "RO")])
    written.assert_nothing()


def test_one_ineligible_role_in_a_batch_files_none(restricted, fake_idp, open_failover, engineer):
    written = Written()
    with pytest.raises(NotAllowed, match="workload account prod-payments requesters: one of sre"):
        services.file_requests(
            requester=engineer,
            roles=[
                restricted.roles[("prod-data", "RO")],
                restricted.roles[("prod-payments", "RO")],
            ],
            justification=JUSTIFICATION,
            ticket="INC-7",
            duration_minutes=30,
        )
    written.assert_nothing()


def test_a_member_of_the_group_files_and_the_rule_is_recorded(
    restricted, fake_idp, open_failover, engineer
):
    join(engineer, "sre")
    req = file(engineer, restricted.roles[("prod-payments", "RO")])
    event = AuditEvent.objects.get(action="request.filed", target_id=str(req.pk))
    assert event.payload["eligibility"] == "workload account prod-payments requesters via sre"
    # Other accounts name nobody: still open.
    other = file(engineer, restricted.roles[("prod-data", "RO")])
    assert other.status == Status.PENDING


def test_account_and_level_lists_both_apply(restricted, fake_idp, open_failover, engineer):
    restricted.levels["RO"].requesters = ["readers"]
    restricted.levels["RO"].save()
    join(engineer, "sre")
    with pytest.raises(NotAllowed, match="level RO requesters: one of readers"):
        file(engineer, restricted.roles[("prod-payments", "RO")])
    join(engineer, "readers")
    req = file(engineer, restricted.roles[("prod-payments", "RO")])
    event = AuditEvent.objects.get(action="request.filed", target_id=str(req.pk))
    assert event.payload["eligibility"] == (
        "workload account prod-payments requesters via sre; level RO requesters via readers"
    )


def test_approvers_outside_the_level_cannot_approve_or_deny(
    restricted, fake_idp, open_failover, engineer, approver
):
    req = file(engineer, restricted.roles[("prod-data", "Ops")])
    written = Written()
    with pytest.raises(NotAllowed, match=r"not eligible to approve .* level Ops approvers"):
        services.approve(req, actor=approver)
    with pytest.raises(NotAllowed, match="not eligible to deny"):
        services.deny(req, actor=approver, reason="Not needed.")
    written.assert_nothing()
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_an_eligible_approver_decides_and_the_rule_is_audited(
    restricted, fake_idp, open_failover, engineer, approver, approver2, monkeypatch
):
    monkeypatch.setattr("requests_app.queue.provision_grant", lambda pk: None)
    join(approver, "sre-leads")
    join(approver2, "sre-leads")
    req = file(engineer, restricted.roles[("prod-data", "Ops")])
    services.approve(req, actor=approver)
    services.approve(req, actor=approver2)
    req.refresh_from_db()
    assert req.status == Status.APPROVED
    added = AuditEvent.objects.filter(action="request.approval_added", target_id=str(req.pk))
    assert {e.payload["eligibility"] for e in added} == {"level Ops approvers via sre-leads"}
    approved = AuditEvent.objects.get(action="request.approved", target_id=str(req.pk))
    assert approved.payload["eligibility"] == "level Ops approvers via sre-leads"


def test_extension_decisions_follow_the_approvers(
    restricted, fake_idp, open_failover, engineer, approver, approver2, monkeypatch
):
    monkeypatch.setattr("requests_app.queue.provision_grant", lambda pk: None)
    join(approver, "sre-leads")
    join(approver2, "sre-leads")
    req = file(engineer, restricted.roles[("prod-data", "Ops")], minutes=30)
    services.approve(req, actor=approver)
    services.approve(req, actor=approver2)
    services.activate(req.pk, okta_user_id="00u1")
    ext = extensions.request_extension(
        req, actor=engineer, minutes=10, justification="the fix needs ten more minutes please"
    )
    outsider = join(approver2.__class__.objects.create_user("lead3", "l3@example.com"), "x")
    join(outsider, "approvers")
    written = Written()
    with pytest.raises(NotAllowed, match="not eligible to approve"):
        extensions.approve_extension(ext, actor=outsider)
    with pytest.raises(NotAllowed, match="not eligible to deny"):
        extensions.deny_extension(ext, actor=outsider)
    written.assert_nothing()
    extensions.approve_extension(ext, actor=approver)
    event = AuditEvent.objects.get(action="request.extended", target_id=str(req.pk))
    assert event.payload["eligibility"] == "level Ops approvers via sre-leads"


def test_requestable_roles_and_decidable_filter(restricted, engineer, approver):
    names = {r.role_name for r in eligibility.requestable_roles(engineer)}
    assert names == {"EmergencyAccess_Role2_RO", "EmergencyAccess_Role2_Ops"}
    join(engineer, "sre")
    assert eligibility.requestable_roles(engineer).count() == 4
    assert eligibility.plan_has_eligibility()
    decidable = EmergencyRole.objects.filter(eligibility.decidable_filter(approver, ""))
    assert {r.level.name for r in decidable} == {"RO"}
    join(approver, "sre-leads")
    decidable = EmergencyRole.objects.filter(eligibility.decidable_filter(approver, ""))
    assert decidable.count() == 4


def test_filings_are_sent_only_to_approvers_who_may_decide(
    restricted, fake_idp, open_failover, engineer, approver, approver2
):
    join(approver2, "sre-leads")
    file(engineer, restricted.roles[("prod-data", "Ops")])
    file(engineer, restricted.roles[("prod-data", "RO")])
    ops, ro = NotificationLog.objects.filter(event="request.filed").order_by("pk")
    assert ops.recipients == [approver2.email]
    assert set(ro.recipients) == {approver.email, approver2.email}
