"""The CloudTrail LookupEvents poller feeds the same matcher (botocore Stubber: moto has no
CloudTrail lookup backend); EventBridge and the poller record one event once."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from django.utils import timezone

from federation.aws import clients as aws_clients
from federation.evidence_models import AwsRoleUse, EvidenceKind, SignInEvidence
from federation.failover import systemlog
from portal.models import NotificationLog

from .conftest import saml_event

pytestmark = pytest.mark.django_db


def lookup(name: str) -> dict:
    return {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
        "StartTime": ANY,
        "EndTime": ANY,
    }


def as_lookup_event(event: dict) -> dict:
    """What LookupEvents returns for the CloudTrail record EventBridge carried."""
    detail = event["detail"]
    return {
        "EventId": detail["eventID"],
        "EventName": detail["eventName"],
        "EventTime": timezone.now(),
        "EventSource": detail["eventSource"],
        "Username": detail["userIdentity"].get("userName", ""),
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


def test_a_polled_saml_use_without_a_grant_alerts(cloudtrail, grant, engineer, oncall):
    req = grant(engineer)
    stray = saml_event(req.role.role_name, oncall.email, timezone.now())
    cloudtrail.add_response("lookup_events", {"Events": []}, lookup("ConsoleLogin"))
    cloudtrail.add_response(
        "lookup_events", {"Events": [as_lookup_event(stray)]}, lookup("AssumeRoleWithSAML")
    )

    systemlog.poll_cloudtrail()

    use = AwsRoleUse.objects.get()
    assert (use.source, use.alert, use.login) == ("cloudtrail", "unmatched", oncall.email)
    assert NotificationLog.objects.filter(event="aws.role_use_alert").count() == 1
    cloudtrail.assert_no_pending_responses()


def test_a_polled_use_with_a_grant_is_evidence(cloudtrail, grant, engineer):
    req = grant(engineer)
    cloudtrail.add_response("lookup_events", {"Events": []}, lookup("ConsoleLogin"))
    cloudtrail.add_response(
        "lookup_events",
        {
            "Events": [
                as_lookup_event(saml_event(req.role.role_name, engineer.email, timezone.now()))
            ]
        },
        lookup("AssumeRoleWithSAML"),
    )

    systemlog.poll_cloudtrail()

    assert AwsRoleUse.objects.get().grant == req
    assert SignInEvidence.objects.get(kind=EvidenceKind.AWS_ROLE_USE).request == req


def test_an_event_seen_by_both_paths_is_recorded_once(
    cloudtrail, post_event, grant, engineer, oncall
):
    req = grant(engineer)
    stray = saml_event(req.role.role_name, oncall.email, timezone.now())
    assert post_event(stray).json()["result"] == "recorded"
    cloudtrail.add_response("lookup_events", {"Events": []}, lookup("ConsoleLogin"))
    cloudtrail.add_response(
        "lookup_events", {"Events": [as_lookup_event(stray)]}, lookup("AssumeRoleWithSAML")
    )

    systemlog.poll_cloudtrail()

    assert AwsRoleUse.objects.get().source == "eventbridge"
    assert NotificationLog.objects.filter(event="aws.role_use_alert").count() == 1


def test_an_unreadable_record_is_skipped(cloudtrail, open_failover):
    cloudtrail.add_response("lookup_events", {"Events": []}, lookup("ConsoleLogin"))
    cloudtrail.add_response(
        "lookup_events",
        {"Events": [{"EventId": "e9", "EventName": "AssumeRoleWithSAML",
                     "EventTime": timezone.now(), "CloudTrailEvent": "{not json"}]},
        lookup("AssumeRoleWithSAML"),
    )  # fmt: skip

    systemlog.poll_cloudtrail()

    assert not AwsRoleUse.objects.exists()
