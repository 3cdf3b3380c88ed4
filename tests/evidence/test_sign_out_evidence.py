"""Sign-out evidence: which evidence counts, in what order, and what each answer rests on."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation.models import EvidenceKind, RoleSessionDeny, SignInEvidence
from requests_app import evidence
from requests_app.evidence import (
    OKTA_SESSION_ENDED,
    SELF_REPORTED,
    SESSION_EXPIRED,
    SESSIONS_REVOKED,
    emergency_users,
    sign_out_status,
)
from requests_app.models import AccessRequest

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def seen(req, kind: str, at: dt.datetime, *, source: str = "okta-system-log", **extra):
    return SignInEvidence.objects.create(
        failover=req.failover,
        login=req.okta_login.lower(),
        kind=kind,
        at=at,
        source=source,
        source_id=f"{source}:{kind}:{at.timestamp()}:{extra.get('role', '')}",
        **extra,
    )


def backdate(req: AccessRequest, by: dt.timedelta = 3 * HOUR) -> AccessRequest:
    """The grant was approved and activated ``by`` ago (evidence before that is ignored)."""
    AccessRequest.objects.filter(pk=req.pk).update(
        decided_at=req.decided_at - by, activated_at=req.activated_at - by
    )
    req.refresh_from_db()
    return req


@pytest.fixture
def active(grant, engineer) -> AccessRequest:
    return backdate(grant(engineer))


def test_granted_but_never_seen_signing_in(active):
    status = sign_out_status(active)
    assert status == evidence.SignOutEvidence(False, "", None, None, None)
    assert not status.signed_in


def test_a_sign_in_bounds_the_console_session_by_the_plans_session_duration(active):
    signed_in = timezone.now()
    seen(active, EvidenceKind.SIGN_IN, signed_in)
    status = sign_out_status(active)
    assert status.signed_in and not status.signed_out
    assert status.last_sign_in == signed_in
    assert status.console_session_ends_by == signed_in + HOUR  # the plan's 3600 s
    # Once that time has passed, the session has expired whatever else happened.
    later = sign_out_status(active, now=signed_in + HOUR + dt.timedelta(seconds=1))
    assert (later.signed_out, later.how, later.at) == (True, SESSION_EXPIRED, signed_in + HOUR)


def test_a_longer_session_duration_in_the_plan_moves_the_bound(active):
    active.role.emergency_account.session_duration_seconds = 4 * 3600
    active.role.emergency_account.save()
    signed_in = timezone.now()
    seen(active, EvidenceKind.SIGN_IN, signed_in)
    assert sign_out_status(active).console_session_ends_by == signed_in + 4 * HOUR


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        (EvidenceKind.SELF_REPORTED, SELF_REPORTED),
        (EvidenceKind.OKTA_SESSION_END, OKTA_SESSION_ENDED),
    ],
)
def test_sign_out_evidence_after_the_last_sign_in_counts(active, kind, how):
    signed_in = timezone.now() - dt.timedelta(minutes=10)
    seen(active, EvidenceKind.SIGN_IN, signed_in)
    out = signed_in + dt.timedelta(minutes=5)
    seen(active, kind, out)
    status = sign_out_status(active)
    assert (status.signed_out, status.how, status.at) == (True, how, out)
    assert status.last_sign_in == signed_in


def test_signing_in_again_undoes_an_earlier_sign_out(active):
    start = timezone.now() - dt.timedelta(minutes=20)
    seen(active, EvidenceKind.SIGN_IN, start)
    seen(active, EvidenceKind.SELF_REPORTED, start + dt.timedelta(minutes=5))
    seen(active, EvidenceKind.SIGN_IN, start + dt.timedelta(minutes=10))
    status = sign_out_status(active)
    assert status.signed_in
    assert status.last_sign_in == start + dt.timedelta(minutes=10)


def test_the_earliest_evidence_is_when_they_signed_out(active):
    start = timezone.now() - 2 * HOUR
    seen(active, EvidenceKind.SIGN_IN, start)
    seen(active, EvidenceKind.OKTA_SESSION_END, start + dt.timedelta(minutes=70))
    seen(active, EvidenceKind.SELF_REPORTED, start + dt.timedelta(minutes=30))
    status = sign_out_status(active)
    assert (status.how, status.at) == (SELF_REPORTED, start + dt.timedelta(minutes=30))


def test_evidence_from_before_the_grant_does_not_count(active):
    seen(active, EvidenceKind.SIGN_IN, active.decided_at - HOUR)
    seen(active, EvidenceKind.OKTA_SESSION_END, active.decided_at - HOUR)
    assert sign_out_status(active) == evidence.SignOutEvidence(False, "", None, None, None)


def test_cloudtrail_sign_ins_count_only_for_their_role(grant, engineer, plan):
    ro = grant(engineer)
    ops = grant(engineer, "prod-data", "Ops")
    at = timezone.now()
    seen(ops, EvidenceKind.SIGN_IN, at, source="cloudtrail", role=ops.role)
    assert sign_out_status(ops).last_sign_in == at
    assert sign_out_status(ro).last_sign_in is None
    # An Okta sign-in carries every role the person holds: it counts for both.
    seen(ro, EvidenceKind.SIGN_IN, at + dt.timedelta(seconds=5))
    assert sign_out_status(ro).last_sign_in == at + dt.timedelta(seconds=5)
    assert sign_out_status(ops).last_sign_in == at + dt.timedelta(seconds=5)


def test_an_attached_aws_deny_after_the_sign_in_is_sessions_revoked(active):
    signed_in = timezone.now() - dt.timedelta(minutes=10)
    seen(active, EvidenceKind.SIGN_IN, signed_in)
    attached = timezone.now()
    RoleSessionDeny.objects.create(
        role=active.role, issued_before=attached, attached_at=attached, pending=False
    )
    status = sign_out_status(active)
    assert (status.signed_out, status.how, status.at) == (True, SESSIONS_REVOKED, attached)


def test_a_pending_deny_or_okta_only_revocation_is_a_note_not_a_sign_out(active):
    signed_in = timezone.now() - dt.timedelta(minutes=10)
    seen(active, EvidenceKind.SIGN_IN, signed_in)
    RoleSessionDeny.objects.create(role=active.role, issued_before=timezone.now(), pending=True)
    SignInEvidence.objects.create(
        failover=active.failover, login="engineer@example.com", request=active,
        kind=EvidenceKind.SESSIONS_REVOKED, at=timezone.now(), source="portal",
        source_id="portal:x", detail={"okta": "revoked", "aws": "deny pending"},
    )  # fmt: skip
    status = sign_out_status(active)
    assert status.signed_in
    assert "AWS session deny not attached yet (retrying)" in status.notes
    assert any(note.startswith("Okta sessions: revoked") for note in status.notes)


def test_without_a_sign_in_the_end_of_the_grant_bounds_the_session(active, approver):
    from requests_app import services

    services.revoke(active, actor=approver, reason="done")
    services.confirm_membership_removed(active.pk, detail="removed")
    active.refresh_from_db()
    removed = active.membership_removed_at
    status = sign_out_status(active)
    assert not status.signed_out and not status.signed_in
    assert status.console_session_ends_by == removed + HOUR
    assert "no sign-in seen" in status.notes
    after = sign_out_status(active, now=removed + HOUR)
    assert (after.signed_out, after.how) == (True, SESSION_EXPIRED)


def test_emergency_users_lists_every_ever_active_grant_in_few_queries(
    grant, engineer, oncall, approver, plan, django_assert_max_num_queries
):
    from django.contrib.auth import get_user_model

    from tests.conftest import make_user

    first = grant(engineer)
    second = grant(oncall, "prod-data", "RO")
    seen(first, EvidenceKind.SIGN_IN, timezone.now())
    for n in range(15):
        user = make_user(f"eng{n}", f"eng{n}@example.com")
        from federation.idp.memory import InMemoryIdentityProvider

        InMemoryIdentityProvider.add_user(user.email)
        grant(user)
    assert get_user_model().objects.count() > 15
    with django_assert_max_num_queries(3):
        rows = emergency_users(first.failover)
    assert len(rows) == 17
    assert rows[0][0] == first and rows[0][1].signed_in
    assert rows[1][0] == second and not rows[1][1].signed_in


def test_pending_requests_are_not_emergency_users(plan, fake_idp, open_failover, engineer):
    from requests_app import services

    services.file_request(
        requester=engineer, role=plan.roles[("prod-payments", "RO")],
        justification="Need to look at the logs of payments", ticket="INC-1",
        duration_minutes=30,
    )  # fmt: skip
    assert emergency_users(open_failover) == []
