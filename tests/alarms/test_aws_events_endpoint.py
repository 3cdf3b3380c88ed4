"""POST /api/v1/aws-events: EventBridge-shaped events in, matched uses and alerts out."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.test import Client
from django.utils import timezone

from federation.evidence_models import AwsRoleUse, EvidenceKind, SignInEvidence
from federation.failover.report import build_report
from federation.models import Failover
from portal.audit import events_for
from portal.models import AuditEvent, NotificationLog
from requests_app.evidence import sign_out_status
from requests_app.models import AccessRequest, Status
from tests.api.conftest import as_user

from .conftest import SECRET, assume_role_event, console_event, saml_event

pytestmark = pytest.mark.django_db


def alerts_told() -> list[NotificationLog]:
    return list(NotificationLog.objects.filter(event="aws.role_use_alert"))


# --- Matched uses ---------------------------------------------------------------------------


def test_a_saml_sign_in_with_a_grant_is_evidence_on_the_grants_timeline(
    post_event, grant, engineer
):
    req = grant(engineer)
    at = timezone.now().replace(microsecond=0)

    response = post_event(saml_event(req.role.role_name, engineer.email, at))

    assert response.status_code == 200, response.content
    assert response.json() == {"result": "recorded", "alert": "", "grant_id": req.pk}
    use = AwsRoleUse.objects.get()
    assert (use.grant, use.role, use.login, use.failover) == (
        req, req.role, engineer.email, req.failover
    )  # fmt: skip
    evidence = SignInEvidence.objects.get(kind=EvidenceKind.AWS_ROLE_USE)
    assert (evidence.request, evidence.role, evidence.at) == (req, req.role, at)
    assert sign_out_status(req).last_sign_in == at
    [event] = events_for(req).filter(action="aws.role_used")
    assert event.payload["event"] == "AssumeRoleWithSAML"
    assert event.payload["source_identity"] == engineer.email
    assert alerts_told() == []


def test_the_timeline_page_labels_the_aws_side_evidence(post_event, grant, engineer, client):
    req = grant(engineer)
    post_event(saml_event(req.role.role_name, engineer.email, timezone.now()))
    client.force_login(engineer)

    page = client.get(f"/requests/{req.pk}/").content.decode()

    assert "Used the role in AWS (seen by AWS)" in page


def test_a_console_sign_in_matches_the_login_case_insensitively(post_event, grant, engineer):
    req = grant(engineer)
    event = console_event(req.role.role_name, engineer.email.upper(), timezone.now())

    response = post_event(event)

    assert response.json() == {"result": "recorded", "alert": "", "grant_id": req.pk}
    assert AwsRoleUse.objects.get().event_name == "ConsoleLogin"


def test_switching_into_the_workload_role_matches_the_grant(post_event, grant, engineer, plan):
    req = grant(engineer)
    event = assume_role_event(
        "111111111111", "RO", req.role.role_name, engineer.email, timezone.now()
    )

    response = post_event(event)

    assert response.json() == {"result": "recorded", "alert": "", "grant_id": req.pk}
    use = AwsRoleUse.objects.get()
    assert use.role_arn == "arn:aws:iam::111111111111:role/EmergencyAccess_RO"
    assert use.role == plan.roles[("prod-payments", "RO")]


def test_a_failed_console_sign_in_is_ignored(post_event, grant, engineer):
    req = grant(engineer)

    response = post_event(
        console_event(req.role.role_name, engineer.email, timezone.now(), result="Failure")
    )

    assert response.json()["result"] == "ignored"
    assert not AwsRoleUse.objects.exists()


# --- Alerts ----------------------------------------------------------------------------------


def test_a_use_without_a_grant_alerts_approvers_and_staff_once_an_hour(
    post_event, grant, engineer, oncall, approver, admin_user, client
):
    req = grant(engineer)  # someone else's grant: oncall has none
    at = timezone.now().replace(minute=5) - dt.timedelta(hours=1)
    req.failover.opened_at = at - dt.timedelta(hours=1)
    req.failover.save(update_fields=["opened_at"])

    first = post_event(saml_event(req.role.role_name, oncall.email, at))
    again = post_event(
        console_event(req.role.role_name, oncall.email, at + dt.timedelta(minutes=1))
    )

    assert first.json() == {"result": "recorded", "alert": "unmatched", "grant_id": None}
    assert again.json()["alert"] == "unmatched"
    assert AwsRoleUse.objects.filter(alert="unmatched").count() == 2
    assert AuditEvent.objects.filter(action="aws.role_use_alert").count() == 2
    [told] = alerts_told()  # once per (role, person, hour)
    assert {approver.email, admin_user.email} <= set(told.recipients)
    assert oncall.email in told.subject
    # The failover report lists it as done outside the portal.
    report = build_report(req.failover)
    assert [e["action"] for e in report["outside_portal"]] == ["aws.role_use_alert"] * 2
    assert {u["alert"] for u in report["aws_role_uses"]} == {"unmatched"}
    # ... and the dashboard shows it.
    client.force_login(approver)
    page = client.get("/").content.decode()
    assert "Emergency roles used in AWS outside a grant" in page
    assert oncall.email in page


def test_the_next_hour_alerts_again(post_event, grant, engineer, oncall):
    req = grant(engineer)
    at = timezone.now() - dt.timedelta(hours=2)
    req.failover.opened_at = at - dt.timedelta(minutes=1)
    req.failover.save(update_fields=["opened_at"])

    post_event(saml_event(req.role.role_name, oncall.email, at))
    post_event(saml_event(req.role.role_name, oncall.email, at + dt.timedelta(hours=1)))

    assert len(alerts_told()) == 2


def test_a_use_with_no_failover_open_is_an_alert(post_event, plan, engineer, approver):
    role = plan.roles[("prod-data", "Ops")]

    response = post_event(saml_event(role.role_name, engineer.email, timezone.now()))

    assert response.json() == {"result": "recorded", "alert": "no_failover", "grant_id": None}
    event = AuditEvent.objects.get(action="aws.role_use_alert")
    assert event.payload["alert"] == "no_failover"
    assert event.payload["login"] == engineer.email
    assert len(alerts_told()) == 1


def test_a_use_after_the_failover_closed_is_an_alert(post_event, grant, engineer):
    req = grant(engineer)
    ended = timezone.now() - dt.timedelta(minutes=10)
    AccessRequest.objects.filter(pk=req.pk).update(
        status=Status.EXPIRED, ended_at=ended, membership_removed_at=ended
    )
    Failover.objects.filter(pk=req.failover_id).update(status="closed", closed_at=ended)

    response = post_event(saml_event(req.role.role_name, engineer.email, timezone.now()))

    assert response.json()["alert"] == "no_failover"


def test_an_unplanned_emergency_role_is_an_alert(post_event, open_failover, engineer):
    response = post_event(saml_event("EmergencyAccess_Role9_Admin", engineer.email, timezone.now()))

    assert response.json()["alert"] == "unmatched"
    assert AwsRoleUse.objects.get().role is None


# --- Replay ------------------------------------------------------------------------------------


def test_a_repeated_event_is_a_200_no_op(post_event, grant, engineer, oncall):
    req = grant(engineer)
    event = saml_event(req.role.role_name, oncall.email, timezone.now())

    first = post_event(event)
    count = AuditEvent.objects.count()
    second = post_event(event)
    # EventBridge retries with a new envelope id: CloudTrail's eventID still identifies it.
    third = post_event({**event, "id": "another-delivery"})

    assert first.json()["result"] == "recorded"
    assert second.status_code == third.status_code == 200
    assert second.json() == third.json() == {
        "result": "duplicate", "alert": "unmatched", "grant_id": None,
    }  # fmt: skip
    assert AwsRoleUse.objects.count() == 1
    assert AuditEvent.objects.count() == count
    assert len(alerts_told()) == 1


# --- Authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET.upper()])
def test_without_the_connection_secret_nothing_is_recorded(post_event, open_failover, secret):
    response = post_event(saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now()),
                          secret=secret)  # fmt: skip

    assert response.status_code == 401
    assert "secret" in response.json()["detail"]
    assert not AwsRoleUse.objects.exists()


def test_a_users_session_or_token_is_not_accepted(post_event, approver, auditor):
    as_auditor = as_user(auditor)
    client = Client()
    client.force_login(approver)
    event = saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now())

    by_session = client.post("/api/v1/aws-events", event, content_type="application/json")
    by_token = as_auditor.post("/aws-events", event)

    assert by_session.status_code == by_token.status_code == 401
    assert not AwsRoleUse.objects.exists()


def test_unconfigured_the_endpoint_refuses_everything(post_event, settings):
    settings.AWS_EVENTS_SECRET = ""

    response = post_event(saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now()))

    assert response.status_code == 401
    assert "not configured" in response.json()["detail"]


def test_the_settings_may_hold_only_the_secrets_hash(post_event, settings, open_failover):
    settings.AWS_EVENTS_SECRET = ""
    settings.AWS_EVENTS_SECRET_SHA256 = hashlib.sha256(SECRET.encode()).hexdigest()
    event = saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now())

    assert post_event(event).status_code == 200
    assert post_event(event, secret="wrong").status_code == 401


def test_the_secret_is_never_logged(post_event, open_failover, caplog):
    caplog.set_level("DEBUG")
    post_event(saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now()))
    post_event(saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now()),
               secret="wrong-" + SECRET)  # fmt: skip

    assert SECRET not in caplog.text


# --- Bad input -----------------------------------------------------------------------------


def _without(event: dict, *path: str) -> dict:
    event = {**event, "detail": dict(event["detail"])}
    target = event if len(path) == 1 else event["detail"]
    target.pop(path[-1])
    return event


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: _without(e, "detail", "eventID"), "detail.eventID"),
        (lambda e: _without(e, "detail", "eventTime"), "detail.eventTime"),
        (lambda e: _without(e, "detail"), "detail"),
        (lambda e: {**e, "detail-type": "EC2 Instance State-change Notification"}, "detail-type"),
        (lambda e: {**e, "account": "not-an-account"}, "account"),
        (lambda e: {**e, "time": "yesterday"}, "time"),
        (lambda e: {**e, "detail": "a string"}, "detail.eventID"),
        (lambda e: {**e, "detail": {**e["detail"], "userIdentity": "x"}}, "detail.userIdentity"),
    ],
)
def test_a_bad_envelope_is_a_400_with_field_errors(post_event, open_failover, change, field):
    event = saml_event("EmergencyAccess_Role1_RO", "x@example.com", timezone.now())

    response = post_event(change(event))

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not AwsRoleUse.objects.exists()


@pytest.mark.parametrize("raw", ["{not json", "[]", "null", '"text"', b"\xff\xfe"])
def test_a_body_that_is_not_an_event_is_a_400(post_event, raw):
    response = post_event(None, raw=raw)

    assert response.status_code == 400
    assert response.json()["detail"]
