"""EventBridge-shaped events (the shapes of AWS's CloudTrail and EventBridge docs) and grants."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.test import Client

from tests.evidence.conftest import grant  # noqa: F401

SECRET = "s3cret-connection-key-for-tests"
HEADER = "X-Emergency-Access-Events-Key"
EMERGENCY = "123456789012"
PROVIDER = f"arn:aws:iam::{EMERGENCY}:saml-provider/Okta"


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(detail: dict[str, Any], *, source: str, detail_type: str, account: str) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": detail["eventTime"],
        "region": detail["awsRegion"],
        "resources": [],
        "detail": detail,
    }


def saml_event(role: str, login: str, at: dt.datetime, *, event_id: str | None = None) -> dict:
    """``AssumeRoleWithSAML`` of an emergency role, as EventBridge delivers it."""
    session_arn = f"arn:aws:sts::{EMERGENCY}:assumed-role/{role}/{login}"
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "SAMLUser",
            "principalId": f"X1Y2Z3/abc=:{login}",
            "userName": login,
            "identityProvider": "X1Y2Z3/abc=",
        },
        "eventTime": _iso(at),
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithSAML",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "Mozilla/5.0",
        "requestParameters": {
            "sAMLAssertionID": "_1a2b3c",
            "roleSessionName": login,
            "principalArn": PROVIDER,
            "roleArn": f"arn:aws:iam::{EMERGENCY}:role/{role}",
            "durationSeconds": 3600,
            "sourceIdentity": login,
        },
        "responseElements": {
            "credentials": {
                "accessKeyId": "ASIAEXAMPLE",
                "sessionToken": "IQoJb3JpZ2lu",
                "expiration": "Nov 29, 2026, 10:00:00 PM",
            },
            "assumedRoleUser": {"assumedRoleId": f"AROAEXAMPLE:{login}", "arn": session_arn},
            "packedPolicySize": 6,
            "subject": login,
            "subjectType": "unspecified",
            "issuer": "http://www.okta.com/exk0sandbox0aws0fed01",
            "audience": "https://signin.aws.amazon.com/saml",
            "nameQualifier": "X1Y2Z3/abc=",
            "sourceIdentity": login,
        },
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": EMERGENCY,
        "eventCategory": "Management",
    }
    return envelope(
        detail, source="aws.sts", detail_type="AWS API Call via CloudTrail", account=EMERGENCY
    )


def console_event(role: str, session: str, at: dt.datetime, *, result: str = "Success") -> dict:
    """``ConsoleLogin`` with an emergency role (federated sign-in through the SAML role)."""
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{session}",
            "arn": f"arn:aws:sts::{EMERGENCY}:assumed-role/{role}/{session}",
            "accountId": EMERGENCY,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{EMERGENCY}:role/{role}",
                    "accountId": EMERGENCY,
                    "userName": role,
                },
                "attributes": {"creationDate": _iso(at), "mfaAuthenticated": "false"},
            },
        },
        "eventTime": _iso(at),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "Mozilla/5.0",
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": result},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "No",
            "SamlProviderArn": PROVIDER,
        },
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": EMERGENCY,
        "eventCategory": "Management",
    }
    return envelope(
        detail,
        source="aws.signin",
        detail_type="AWS Console Sign In via CloudTrail",
        account=EMERGENCY,
    )


def assume_role_event(
    workload: str, level: str, caller_role: str, login: str, at: dt.datetime
) -> dict:
    """``AssumeRole`` into a workload account's ``EmergencyAccess_<LEVEL>`` (role chaining
    from the emergency role; the source identity carries over)."""
    target = f"arn:aws:iam::{workload}:role/EmergencyAccess_{level}"
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{login}",
            "arn": f"arn:aws:sts::{EMERGENCY}:assumed-role/{caller_role}/{login}",
            "accountId": EMERGENCY,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{EMERGENCY}:role/{caller_role}",
                    "accountId": EMERGENCY,
                    "userName": caller_role,
                },
                "sourceIdentity": login,
            },
        },
        "eventTime": _iso(at),
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRole",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "requestParameters": {"roleArn": target, "roleSessionName": login},
        "responseElements": {
            "assumedRoleUser": {
                "assumedRoleId": f"AROAWORKLOAD:{login}",
                "arn": f"arn:aws:sts::{workload}:assumed-role/EmergencyAccess_{level}/{login}",
            },
            "sourceIdentity": login,
        },
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": workload,
        "eventCategory": "Management",
    }
    return envelope(
        detail, source="aws.sts", detail_type="AWS API Call via CloudTrail", account=workload
    )


@pytest.fixture
def events_secret(settings):
    settings.AWS_EVENTS_SECRET = SECRET
    settings.AWS_EVENTS_SECRET_SHA256 = ""
    return SECRET


@pytest.fixture
def post_event(events_secret):
    """POST one event to /api/v1/aws-events as EventBridge's API destination does."""
    client = Client()

    def _post(event: Any, *, secret: str | None = SECRET, raw: str | None = None, **headers):
        if secret is not None:
            headers[HEADER] = secret
        body = raw if raw is not None else json.dumps(event)
        return client.post(
            "/api/v1/aws-events", body, content_type="application/json", headers=headers
        )

    return _post
