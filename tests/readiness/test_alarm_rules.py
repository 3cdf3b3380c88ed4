"""Readiness checks the AWS-side alarm rules in moto's EventBridge (issue 14): they exist
in the emergency account (us-east-1) and each workload account, are enabled and target
the portal's API destination."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from federation.plan import cloudformation
from federation.readiness import checks as readiness
from federation.readiness.checks import FAIL, PASS, UNKNOWN

from .conftest import demo_plan

pytestmark = pytest.mark.django_db

E = "123456789012"
WORKLOADS = ("111111111111", "222222222222")


def events_of(endpoint: str, account_id: str, region: str = "us-east-1") -> Any:
    """EventBridge acting in ``account_id`` (through its audit role, as readiness does)."""
    sts = boto3.client(
        "sts", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/EmergencyAccessAudit",
        RoleSessionName="test-alarms",
    )["Credentials"]
    return boto3.client(
        "events",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def deploy_rules(client: Any, names: tuple[str, ...], resources: dict[str, Any]) -> None:
    """What the template's alarm resources create, made with the same properties."""
    connection = client.create_connection(
        Name="portal-events",
        AuthorizationType="API_KEY",
        AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "X-Key", "ApiKeyValue": "s"}},
    )
    destination = client.create_api_destination(
        Name="portal",
        ConnectionArn=connection["ConnectionArn"],
        InvocationEndpoint="https://portal.example.com/api/v1/aws-events",
        HttpMethod="POST",
    )
    patterns = {
        r["Properties"]["Name"]: r["Properties"]["EventPattern"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
    }
    for name in names:
        pattern = patterns[name]
        if name == cloudformation.WORKLOAD_RULE:
            pattern = {**pattern, "detail": {"eventName": ["AssumeRole"]}}  # no Fn::Sub here
        client.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
        client.put_targets(
            Rule=name,
            Targets=[
                {
                    "Id": "EmergencyAccessPortal",
                    "Arn": destination["ApiDestinationArn"],
                    "RoleArn": f"arn:aws:iam::{E}:role/invoke",
                }
            ],
        )


def remove_rules(client: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if client.list_rules(NamePrefix=name)["Rules"]:
            targets = client.list_targets_by_rule(Rule=name)["Targets"]
            if targets:
                client.remove_targets(Rule=name, Ids=[t["Id"] for t in targets])
            client.delete_rule(Name=name)
    for destination in client.list_api_destinations()["ApiDestinations"]:
        client.delete_api_destination(Name=destination["Name"])
    for connection in client.list_connections()["Connections"]:
        client.delete_connection(Name=connection["Name"])


@pytest.fixture
def alarms(plan, aws, settings):
    settings.AWS_EVENTS_SECRET = "s"
    plan = demo_plan()
    emergency = events_of(aws, E)
    deploy_rules(
        emergency,
        cloudformation.EMERGENCY_RULES,
        cloudformation.emergency_alarm_resources(plan),
    )
    workloads = {a: events_of(aws, a) for a in WORKLOADS}
    for client in workloads.values():
        deploy_rules(
            client, cloudformation.WORKLOAD_RULES, cloudformation.workload_alarm_resources()
        )
    yield {"emergency": emergency, **workloads}
    remove_rules(emergency, cloudformation.EMERGENCY_RULES)
    for client in workloads.values():
        remove_rules(client, cloudformation.WORKLOAD_RULES)


def rule_results(found):
    return {(r.subject, r.status) for r in found if r.name == "aws.event_rule"}


def subject(account: str, rule: str) -> str:
    return f"arn:aws:events:us-east-1:{account}:rule/{rule}"


def test_deployed_rules_pass(alarms):
    found = readiness.run_checks(okta=False)

    assert rule_results(found) == {
        (subject(E, cloudformation.SAML_RULE), PASS),
        (subject(E, cloudformation.CONSOLE_RULE), PASS),
        *((subject(a, cloudformation.WORKLOAD_RULE), PASS) for a in WORKLOADS),
    }


def test_a_missing_rule_fails_with_the_template_to_deploy(alarms):
    alarms["emergency"].remove_targets(
        Rule=cloudformation.CONSOLE_RULE, Ids=["EmergencyAccessPortal"]
    )
    alarms["emergency"].delete_rule(Name=cloudformation.CONSOLE_RULE)

    found = readiness.run_checks(okta=False)

    [missing] = [r for r in found if r.subject == subject(E, cloudformation.CONSOLE_RULE)]
    assert missing.status == FAIL
    assert "does not exist in us-east-1" in missing.detail
    assert cloudformation.EMERGENCY_TEMPLATE in missing.fix


def test_a_disabled_rule_fails(alarms):
    alarms[WORKLOADS[1]].disable_rule(Name=cloudformation.WORKLOAD_RULE)

    found = readiness.run_checks(okta=False)

    [disabled] = [
        r for r in found if r.subject == subject(WORKLOADS[1], cloudformation.WORKLOAD_RULE)
    ]
    assert (disabled.status, disabled.detail.endswith("is DISABLED.")) == (FAIL, True)


def test_a_rule_without_the_portal_as_target_fails(alarms):
    alarms["emergency"].remove_targets(Rule=cloudformation.SAML_RULE, Ids=["EmergencyAccessPortal"])

    found = readiness.run_checks(okta=False)

    [bare] = [r for r in found if r.subject == subject(E, cloudformation.SAML_RULE)]
    assert bare.status == FAIL
    assert "API destination" in bare.detail


def test_regional_sign_in_endpoints_need_their_own_rules(alarms, aws, monkeypatch):
    plan = demo_plan()
    regional = type(plan)(**{**plan.__dict__, "saml_audiences": (
        "https://signin.aws.amazon.com/saml", "https://eu-central-1.signin.aws.amazon.com/saml",
    )})  # fmt: skip

    found = readiness.run_checks(okta=False, plan=regional)

    missing = {
        r.subject: r for r in found if r.name == "aws.event_rule" and ":eu-central-1:" in r.subject
    }
    assert set(missing) == {
        f"arn:aws:events:eu-central-1:{E}:rule/{name}" for name in cloudformation.EMERGENCY_RULES
    }
    assert {r.status for r in missing.values()} == {FAIL}
    assert all(cloudformation.REGIONAL_ALARMS_TEMPLATE in r.fix for r in missing.values())


def test_without_a_connection_secret_the_rules_are_not_checked(plan, aws, settings):
    settings.AWS_EVENTS_SECRET = settings.AWS_EVENTS_SECRET_SHA256 = ""

    assert rule_results(readiness.run_checks(okta=False)) == set()


def test_an_unreadable_eventbridge_is_unknown(alarms, settings, monkeypatch):
    def refuse(self, region):
        raise readiness.CouldNotCheck("AWS answered AccessDenied")

    monkeypatch.setattr(readiness.AwsAccount, "events", refuse)

    statuses = {status for _, status in rule_results(readiness.run_checks(okta=False))}

    assert statuses == {UNKNOWN}
