"""Break-glass: self-activation when nobody answers, its limits, and its post-hoc review."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from federation.failover import services as failover_services
from federation.failover.report import build_report
from federation.models import Failover, FailoverStatus
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.models import AuditEvent, NotificationLog
from requests_app import break_glass, extensions, services
from requests_app.models import (
    AccessRequest,
    BreakGlassReview,
    ExtensionStatus,
    ReviewStatus,
    Status,
)
from requests_app.tasks import escalate_break_glass_reviews
from tests.conftest import make_user
from tests.eligibility.conftest import JUSTIFICATION, Written, join

LATER = dt.timedelta(minutes=31)  # past the RO default wait of 30 minutes


@pytest.fixture
def provisioned(monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr("requests_app.queue.provision_grant", queued.append)
    return queued


@pytest.fixture
def pending(plan, fake_idp, open_failover, engineer):
    return services.file_request(
        requester=engineer,
        role=plan.roles[("prod-payments", "RO")],
        justification=JUSTIFICATION,
        ticket="INC-9",
        duration_minutes=120,
    )


def smash(req, user, *, now=None, phrase=None, ticket="INC-9"):
    return break_glass.activate(
        req,
        actor=user,
        confirmation=phrase if phrase is not None else f"break glass #{req.pk}",
        ticket=ticket,
        now=now or timezone.now() + LATER,
    )


def test_after_the_wait_the_requester_activates_capped_and_loud(
    pending, engineer, approver, approver2, admin_user, provisioned
):
    req = smash(pending, engineer)
    assert (req.status, req.break_glass, req.decided_by) == (Status.APPROVED, True, engineer)
    assert req.duration_minutes == 60  # the RO break_glass_max_minutes, not the 120 asked
    assert provisioned == [req.pk]
    event = AuditEvent.objects.get(action="request.break_glass")
    assert event.payload["ticket"] == "INC-9" and event.payload["duration_minutes"] == 60
    assert event.payload["eligibility"].startswith("open:")
    review = BreakGlassReview.objects.get(request=req)
    assert review.status == ReviewStatus.OPEN
    assert review.due_at - timezone.now() > dt.timedelta(hours=23)
    alert = NotificationLog.objects.get(event="request.break_glass")
    assert set(alert.recipients) == {approver.email, approver2.email, admin_user.email}
    assert alert.subject.startswith("[") and "BREAK-GLASS" in alert.subject


def test_before_the_wait_it_is_refused_and_writes_nothing(pending, engineer, provisioned):
    written = Written()
    with pytest.raises(Conflict, match="opens 30 min after filing"):
        smash(pending, engineer, now=timezone.now() + dt.timedelta(minutes=5))
    written.assert_nothing()
    assert provisioned == []


def test_only_the_requester_and_only_with_the_phrase_and_ticket(
    pending, engineer, approver, provisioned
):
    written = Written()
    with pytest.raises(NotAllowed, match="Only the requester"):
        smash(pending, approver)
    with pytest.raises(ValidationError) as bad:
        smash(pending, engineer, phrase="yes", ticket=" ")
    assert set(bad.value.message_dict) == {"confirmation", "ticket"}
    written.assert_nothing()


def test_a_level_without_break_glass_never_offers_it(plan, fake_idp, open_failover, engineer):
    req = services.file_request(
        requester=engineer,
        role=plan.roles[("prod-payments", "Ops")],
        justification=JUSTIFICATION,
        ticket="INC-9",
        duration_minutes=60,
    )
    assert not break_glass.can_break_glass(engineer, req, timezone.now() + dt.timedelta(days=1))
    with pytest.raises(Conflict, match="allows no break-glass for Ops"):
        smash(req, engineer, now=timezone.now() + dt.timedelta(days=1))


def test_only_while_the_failover_is_active(pending, engineer):
    # The return to normal has started (its own service is tested elsewhere).
    Failover.objects.filter(pk=pending.failover_id).update(status=FailoverStatus.RETURNING)
    with pytest.raises(Conflict, match="is not active"):
        smash(pending, engineer)


def test_an_ineligible_requester_cannot_break_glass(pending, plan, engineer):
    plan.accounts["prod-payments"].requesters = ["sre"]
    plan.accounts["prod-payments"].save()
    with pytest.raises(NotAllowed, match="not eligible"):
        smash(pending, engineer)


def test_a_decided_request_cannot_break_glass(pending, engineer, approver):
    services.deny(pending, actor=approver, reason="no")
    with pytest.raises(InvalidTransition):
        smash(pending, engineer)


def test_two_other_approvers_accept(pending, engineer, approver, approver2, provisioned):
    req = smash(pending, engineer)
    with pytest.raises(NotAllowed, match="Only approvers"):
        break_glass.review(req, actor=engineer, verdict="accept")
    review = break_glass.review(req, actor=approver, verdict="accept")
    assert review.status == ReviewStatus.OPEN
    with pytest.raises(NotAllowed, match="already reviewed"):
        break_glass.review(req, actor=approver, verdict="accept")
    review = break_glass.review(req, actor=approver2, verdict="accept", comment="fine")
    assert review.status == ReviewStatus.ACCEPTED
    assert AuditEvent.objects.filter(action="break_glass.accepted").count() == 1


def test_one_flag_flags_it_and_alerts_staff(pending, engineer, approver, admin_user, provisioned):
    req = smash(pending, engineer)
    with pytest.raises(ValidationError):
        break_glass.review(req, actor=approver, verdict="flag")
    review = break_glass.review(req, actor=approver, verdict="flag", comment="no incident")
    assert review.status == ReviewStatus.FLAGGED
    alert = NotificationLog.objects.get(event="break_glass.flagged")
    assert admin_user.email in alert.recipients
    with pytest.raises(InvalidTransition):
        break_glass.review(req, actor=approver, verdict="accept")


def test_a_request_that_was_not_break_glass_has_no_review(pending, approver):
    with pytest.raises(InvalidTransition, match="not a break-glass grant"):
        break_glass.review(pending, actor=approver, verdict="accept")


def test_overdue_reviews_escalate_once_per_interval(
    pending, engineer, approver, admin_user, provisioned, settings
):
    req = smash(pending, engineer)
    review = BreakGlassReview.objects.get(request=req)
    assert break_glass.escalate_overdue() == []
    later = review.due_at + dt.timedelta(minutes=1)
    assert break_glass.escalate_overdue(later) == [req.pk]
    assert break_glass.escalate_overdue(later + dt.timedelta(minutes=5)) == []
    again = later + dt.timedelta(minutes=settings.BREAK_GLASS_ESCALATION_MINUTES + 1)
    assert break_glass.escalate_overdue(again) == [req.pk]
    review.refresh_from_db()
    assert review.escalations == 2
    alert = NotificationLog.objects.filter(event="break_glass.review_overdue").first()
    assert alert is not None and admin_user.email in alert.recipients
    # The beat task runs the same sweep (nothing overdue right now).
    assert escalate_break_glass_reviews() == 0


def test_extending_a_break_glass_grant_needs_a_real_approval(
    pending, engineer, approver, provisioned
):
    req = smash(pending, engineer)
    services.activate(req.pk, okta_user_id="00u1")
    ext = extensions.request_extension(
        req, actor=engineer, minutes=10, justification="still fixing the payments outage now"
    )
    assert ext.status == ExtensionStatus.PENDING
    with pytest.raises(NotAllowed):
        extensions.approve_extension(ext, actor=engineer)
    extensions.approve_extension(ext, actor=approver)
    ext.refresh_from_db()
    assert ext.status == ExtensionStatus.APPROVED


def test_drills_exercise_it(
    plan, fake_idp, engineer, approver, provisioned, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        drill = failover_services.open_failover(
            actor=approver, reason="quarterly drill", drill=True
        )
    req = services.file_request(
        requester=engineer,
        role=plan.roles[("prod-data", "RO")],
        justification=JUSTIFICATION,
        ticket="DRILL-1",
        duration_minutes=30,
    )
    assert req.failover_id == drill.pk
    smash(req, engineer, ticket="DRILL-1")
    assert AuditEvent.objects.get(action="request.break_glass").payload["drill"] is True
    assert "(drill)" in NotificationLog.objects.get(event="request.break_glass").subject


def test_the_report_marks_it(pending, engineer, approver, provisioned):
    smash(pending, engineer)
    break_glass.review(pending, actor=approver, verdict="accept")
    report = build_report(AccessRequest.objects.get(pk=pending.pk).failover)
    row = next(a for a in report["access"] if a["request_id"] == pending.pk)
    assert row["break_glass"]["review_status"] == "open"
    assert row["break_glass"]["reviewers"][0]["verdict"] == "accept"
    whats = [a["what"] for a in report["approvals"] if a["request_id"] == pending.pk]
    assert any(w.startswith("BREAK-GLASS") for w in whats)
    assert "break-glass review: accepted" in whats


def test_an_approver_alone_is_no_reviewer_quorum(pending, engineer, approver, provisioned):
    # A third person who is not an approver cannot review either.
    other = make_user("other", "other@example.com")
    req = smash(pending, engineer)
    with pytest.raises(NotAllowed, match="Only approvers"):
        break_glass.review(req, actor=other, verdict="accept")
    join(other, "sre")
    with pytest.raises(NotAllowed):
        break_glass.review(req, actor=other, verdict="accept")


def test_an_approver_never_reviews_their_own_break_glass(
    plan, fake_idp, open_failover, approver, approver2, provisioned
):
    req = services.file_request(
        requester=approver,
        role=plan.roles[("prod-data", "RO")],
        justification=JUSTIFICATION,
        ticket="INC-9",
        duration_minutes=30,
    )
    smash(req, approver)
    with pytest.raises(NotAllowed, match="own break-glass"):
        break_glass.review(req, actor=approver, verdict="accept")
    assert break_glass.review(req, actor=approver2, verdict="accept").status == ReviewStatus.OPEN
