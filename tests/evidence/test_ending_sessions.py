"""Ending access really ends it: on revoke and expiry the person's Okta sessions are
revoked and, with IAM write access, AWS's "revoke older sessions" deny goes on the role
(moto server for IAM); the deny comes off once every session it denies has expired."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from django.utils import timezone

from federation.aws import session_denies
from federation.idp import IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider
from federation.models import EvidenceKind, RoleSessionDeny, SignInEvidence
from federation.tasks import sweep_session_denies
from portal.audit import events_for
from requests_app import grants, services
from requests_app.evidence import SESSIONS_REVOKED, end_sessions, sign_out_status
from requests_app.models import AccessRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def iam(aws, settings, plan):
    """IAM write access to the emergency account (moto), with the plan's roles in it."""
    settings.AWS_EMERGENCY_IAM_WRITE = True
    settings.AWS_EMERGENCY_IAM_ROLE_ARN = ""
    client = boto3.client("iam", endpoint_url=aws, region_name="us-east-1")
    for role in plan.roles.values():
        client.create_role(RoleName=role.role_name, AssumeRolePolicyDocument="{}")
    return client


def inline(client, role) -> dict:
    names = client.list_role_policies(RoleName=role.role_name)["PolicyNames"]
    return {
        name: client.get_role_policy(RoleName=role.role_name, PolicyName=name)["PolicyDocument"]
        for name in names
    }


def end(req: AccessRequest, approver, fake_idp, django_capture_on_commit_callbacks):
    """Revoke, then run the deprovisioning the worker would run."""
    with django_capture_on_commit_callbacks(execute=False):
        services.revoke(req, actor=approver, reason="incident over")
    grants.deprovision_grant(req.pk, fake_idp)
    return AccessRequest.objects.get(pk=req.pk)


def test_revoking_ends_the_okta_sessions(
    grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks
):
    req = end(grant(engineer), approver, fake_idp, django_capture_on_commit_callbacks)
    assert req.membership_removed_at is not None
    assert InMemoryIdentityProvider.revoked_sessions == [req.okta_user_id]
    actions = [e.action for e in events_for(req)]
    assert actions[-2:] == ["request.membership_removed", "request.sessions_ended"]
    ended = events_for(req).get(action="request.sessions_ended")
    assert ended.payload == {"okta_sessions": "revoked", "aws_session_deny": "not configured"}
    # Okta-only revocation is shown, but does not count as signing out of AWS.
    assert not sign_out_status(req).signed_out


def test_expiry_ends_the_sessions_too(
    grant, engineer, fake_idp, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    with django_capture_on_commit_callbacks(execute=False):
        services.expire(req.pk, now=req.expires_at)
    grants.deprovision_grant(req.pk, fake_idp)
    assert InMemoryIdentityProvider.revoked_sessions == [req.okta_user_id]


def test_it_is_idempotent(grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks):
    req = end(grant(engineer), approver, fake_idp, django_capture_on_commit_callbacks)
    end_sessions(req)
    grants.deprovision_grant(req.pk, fake_idp)
    assert InMemoryIdentityProvider.revoked_sessions == [req.okta_user_id]
    assert SignInEvidence.objects.filter(kind=EvidenceKind.SESSIONS_REVOKED).count() == 1


def test_an_okta_failure_is_retried_by_the_deprovisioning(
    grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    fake_idp.fail_next("revoke_user_sessions", IdpRetryableError("503", status=503))
    with pytest.raises(IdpRetryableError):
        end(req, approver, fake_idp, django_capture_on_commit_callbacks)
    req.refresh_from_db()
    assert req.membership_removed_at is not None  # the member is gone already
    grants.deprovision_grant(req.pk, fake_idp)  # the task's retry
    assert InMemoryIdentityProvider.revoked_sessions == [req.okta_user_id]


def test_another_live_grant_keeps_the_okta_session(
    grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks
):
    ro = grant(engineer)
    grant(engineer, "prod-data", "RO")
    req = end(ro, approver, fake_idp, django_capture_on_commit_callbacks)
    assert InMemoryIdentityProvider.revoked_sessions == []
    assert events_for(req).get(action="request.sessions_ended").payload["okta_sessions"] == (
        "kept (another live grant)"
    )


def test_a_grant_that_never_became_active_has_nothing_to_end(
    plan, fake_idp, open_failover, engineer
):
    req = services.file_request(
        requester=engineer, role=plan.roles[("prod-payments", "RO")],
        justification="Need to look at the logs of payments", ticket="INC-1",
        duration_minutes=30,
    )  # fmt: skip
    end_sessions(req)
    assert InMemoryIdentityProvider.revoked_sessions == []
    assert not SignInEvidence.objects.exists()


# --- AWS: the revoke-older-sessions deny (moto server) -------------------------------------


def test_revoking_attaches_the_deny_to_the_role(
    iam, grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    SignInEvidence.objects.create(
        failover=req.failover, login="engineer@example.com", kind=EvidenceKind.SIGN_IN,
        at=timezone.now(), source="okta-system-log", source_id="evt-1",
    )  # fmt: skip
    before = timezone.now()
    req = end(req, approver, fake_idp, django_capture_on_commit_callbacks)
    policies = inline(iam, req.role)
    assert list(policies) == ["AWSRevokeOlderSessions"]
    statement = policies["AWSRevokeOlderSessions"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == ["*"]
    moment = dt.datetime.fromisoformat(
        statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].replace("Z", "+00:00")
    )
    # Tokens issued before the revocation are denied; later ones (new grants) are not.
    assert before - dt.timedelta(seconds=1) <= moment <= timezone.now() + dt.timedelta(seconds=2)
    deny = RoleSessionDeny.objects.get(role=req.role)
    assert not deny.pending and deny.attached_at
    status = sign_out_status(req)
    assert (status.signed_out, status.how) == (True, SESSIONS_REVOKED)
    assert events_for(req.role).get(action="aws.session_deny_attached")
    # Other roles are untouched.
    other = type(req.role).objects.exclude(pk=req.role_id)
    assert all(inline(iam, role) == {} for role in other)


def test_the_deny_is_not_attached_while_the_person_still_holds_the_role(
    iam, grant, engineer, oncall, approver, fake_idp, django_capture_on_commit_callbacks
):
    first = grant(engineer)
    # A second live grant of the same role for the same Okta account, through another
    # portal account (one person holds one open request per role and portal account).
    second = AccessRequest.objects.get(pk=first.pk)
    second.pk, second.requester = None, oncall
    second.save()
    req = end(first, approver, fake_idp, django_capture_on_commit_callbacks)
    # The membership stays (the other grant needs it), and so do the sessions.
    assert "sessions_ended" not in " ".join(e.action for e in events_for(req))
    end_sessions(req)  # e.g. from the return to normal
    assert inline(iam, req.role) == {}
    payload = events_for(req).get(action="request.sessions_ended").payload
    assert payload == {
        "okta_sessions": "kept (another live grant)",
        "aws_session_deny": "kept (another live grant of this role)",
    }


def test_an_aws_failure_stays_pending_and_the_sweep_attaches_it(
    iam, grant, engineer, approver, fake_idp, settings, django_capture_on_commit_callbacks
):
    good_endpoint = settings.AWS_ENDPOINT_URL
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"
    req = end(grant(engineer), approver, fake_idp, django_capture_on_commit_callbacks)
    deny = RoleSessionDeny.objects.get(role=req.role)
    assert deny.pending and "Could not connect" in deny.last_error
    assert events_for(req).get(action="request.sessions_ended").payload["aws_session_deny"] == (
        "deny pending"
    )
    settings.AWS_ENDPOINT_URL = good_endpoint
    assert sweep_session_denies() == {"attached": 1, "lifted": 0}
    assert list(inline(iam, req.role)) == ["AWSRevokeOlderSessions"]


def test_the_deny_comes_off_only_after_every_session_it_denies_has_expired(
    iam, grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks
):
    req = end(grant(engineer), approver, fake_idp, django_capture_on_commit_callbacks)
    deny = RoleSessionDeny.objects.get(role=req.role)
    duration = dt.timedelta(seconds=req.role.emergency_account.session_duration_seconds)
    # Removing it sooner would bring the revoked sessions back to life.
    too_soon = deny.issued_before + duration
    assert session_denies.sweep(now=too_soon) == {"attached": 0, "lifted": 0}
    assert list(inline(iam, req.role)) == ["AWSRevokeOlderSessions"]
    late_enough = deny.issued_before + duration + session_denies.LIFT_MARGIN
    assert session_denies.sweep(now=late_enough) == {"attached": 0, "lifted": 1}
    assert inline(iam, req.role) == {}
    deny.refresh_from_db()
    assert deny.removed_at == late_enough
    assert events_for(req.role).get(action="aws.session_deny_removed").payload["forced"] is False
    # Still evidence afterwards: those sessions did end at the revocation.
    assert sign_out_status(req).how in {SESSIONS_REVOKED, "session-expired"}


def test_a_later_revocation_moves_the_moment_forward(
    iam, grant, engineer, oncall, approver, fake_idp, django_capture_on_commit_callbacks
):
    first = end(grant(engineer), approver, fake_idp, django_capture_on_commit_callbacks)
    moment = RoleSessionDeny.objects.get(role=first.role).issued_before
    later = grant(oncall)
    RoleSessionDeny.objects.filter(role=first.role).update(
        issued_before=moment - dt.timedelta(minutes=5)
    )
    end(later, approver, fake_idp, django_capture_on_commit_callbacks)
    deny = RoleSessionDeny.objects.get(role=first.role)
    assert deny.issued_before >= moment and not deny.pending
    document = inline(iam, first.role)["AWSRevokeOlderSessions"]
    assert json.dumps(document).count("aws:TokenIssueTime") == 1


def test_without_iam_write_access_nothing_is_written_to_aws(
    aws, settings, grant, engineer, approver, fake_idp, django_capture_on_commit_callbacks
):
    settings.AWS_EMERGENCY_IAM_WRITE = False
    end(grant(engineer), approver, fake_idp, django_capture_on_commit_callbacks)
    assert not RoleSessionDeny.objects.exists()
    assert sweep_session_denies() == {}
