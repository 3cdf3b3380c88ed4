"""Optional CloudTrail ConsoleLogin evidence (botocore Stubber: moto has no lookup_events)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from django.utils import timezone

from federation.aws import clients as aws_clients
from federation.failover import systemlog
from federation.models import LogCursor, SignInEvidence
from requests_app.evidence import sign_out_status

pytestmark = pytest.mark.django_db


def console_login(event_id: str, role: str, session: str, at: dt.datetime, result="Success"):
    detail = {
        "eventName": "ConsoleLogin",
        "eventSource": "signin.amazonaws.com",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session}",
        },
        "responseElements": {"ConsoleLogin": result},
    }
    return {
        "EventId": event_id,
        "EventName": "ConsoleLogin",
        "EventTime": at,
        "Username": session,
        "CloudTrailEvent": json.dumps(detail),
    }


@pytest.fixture
def cloudtrail(settings, monkeypatch):
    settings.CLOUDTRAIL_CONSOLE_LOGINS = True
    client = boto3.client(
        "cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stubber = Stubber(client)
    stubber.activate()
    monkeypatch.setattr(aws_clients, "emergency_account_client", lambda service, region: client)
    yield stubber
    stubber.deactivate()


EXPECTED = {
    "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}],
    "StartTime": ANY,
    "EndTime": ANY,
}
# The same poll then reads SAML role assumptions for the AWS-side alarms.
SAML = {
    **EXPECTED,
    "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "AssumeRoleWithSAML"}],
}


def test_console_logins_to_emergency_roles_are_sign_ins_for_that_role(cloudtrail, grant, engineer):
    req = grant(engineer)
    at = timezone.now()
    role = req.role.role_name
    cloudtrail.add_response(
        "lookup_events",
        {
            "Events": [
                console_login("e1", role, "engineer@example.com", at),
                console_login("e2", role, "engineer@example.com", at, result="Failure"),
                console_login("e3", "SomeOtherRole", "engineer@example.com", at),
            ]
        },
        EXPECTED,
    )
    cloudtrail.add_response("lookup_events", {"Events": []}, SAML)
    assert systemlog.poll_cloudtrail() == 1
    evidence = SignInEvidence.objects.get(kind="sign_in")
    assert (evidence.source, evidence.role, evidence.login) == (
        "cloudtrail", req.role, "engineer@example.com",
    )  # fmt: skip
    assert sign_out_status(req).last_sign_in == at
    cursor = LogCursor.objects.get(name=systemlog.CLOUDTRAIL_CURSOR)
    # The next poll re-reads an overlap (CloudTrail is late) and records nothing twice.
    cloudtrail.add_response(
        "lookup_events",
        {"Events": [console_login("e1", role, "engineer@example.com", at)]},
        {
            **EXPECTED,
            "StartTime": dt.datetime.fromisoformat(cursor.after) - systemlog.CLOUDTRAIL_OVERLAP,
        },
    )
    cloudtrail.add_response("lookup_events", {"Events": []}, SAML)
    assert systemlog.poll_cloudtrail() == 0
    cloudtrail.assert_no_pending_responses()


def test_off_unless_configured(settings):
    settings.CLOUDTRAIL_CONSOLE_LOGINS = False
    assert systemlog.poll_cloudtrail() == 0
    assert not LogCursor.objects.exists()


def test_a_cloudtrail_error_is_recorded_and_retried_next_time(cloudtrail):
    cloudtrail.add_client_error("lookup_events", service_error_code="ThrottlingException")
    assert systemlog.poll_cloudtrail() == 0
    assert "ThrottlingException" in LogCursor.objects.get().last_error
