"""The rendered EventBridge rules (shape and cfn-lint) and the drill item that proves an
alarm fires."""

from __future__ import annotations

from io import StringIO

import pytest
from cfnlint.api import ManualArgs, lint
from django.core.management import CommandError, call_command
from django.utils import timezone

from federation.evidence_models import AwsRoleUse
from federation.failover import drills
from federation.failover import services as failover_services
from federation.plan import cloudformation, iam, parse_plan
from federation.plan.files import files
from portal.models import AuditEvent
from tests.readiness.test_lint import PLANS

from .conftest import saml_event


def rendered(name: str) -> iam.RenderedPlan:
    return iam.render(parse_plan(PLANS[name]))


@pytest.mark.parametrize("plan_name", PLANS)
def test_every_rendered_template_passes_cfn_lint(plan_name):
    for name, body in cloudformation.templates(rendered(plan_name)).items():
        matches = lint(
            iam.dumps(body),
            config=ManualArgs(regions=["us-east-1", "eu-central-1"], include_checks=["I"]),
        )
        assert [str(m) for m in matches] == [], name


def test_cfn_lint_checks_the_alarm_resources():
    body = cloudformation.emergency_account_template(rendered("least privilege"))
    body["Resources"]["AwsEventsDestination"]["Properties"]["HttpMethod"] = "FETCH"
    body["Resources"]["AwsEventsConnection"]["Properties"]["AuthorizationType"] = "KEY"

    matches = lint(iam.dumps(body), config=ManualArgs(regions=["us-east-1"]))

    assert len([m for m in matches if m.rule.id == "E3030"]) == 2


def _rules(body: dict) -> dict:
    return {
        r["Properties"]["Name"]: r for r in body["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
    }  # fmt: skip


def test_the_emergency_account_rules_catch_saml_and_console_sign_ins():
    plan = rendered("least privilege")
    body = cloudformation.emergency_account_template(plan)
    rules = _rules(body)

    saml = rules[cloudformation.SAML_RULE]["Properties"]["EventPattern"]
    assert saml["detail"]["eventName"] == ["AssumeRoleWithSAML"]
    assert saml["detail"]["requestParameters"]["roleArn"] == [
        {"prefix": f"arn:aws:iam::{plan.emergency_account_id}:role/EmergencyAccess_Role"}
    ]
    console = rules[cloudformation.CONSOLE_RULE]["Properties"]["EventPattern"]
    assert console["detail-type"] == ["AWS Console Sign In via CloudTrail"]
    for rule in rules.values():
        assert rule["Condition"] == cloudformation.ALARMS_CONDITION
        [target] = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["AwsEventsDestination", "Arn"]}
        assert target["RoleArn"] == {"Fn::GetAtt": ["AwsEventsInvokeRole", "Arn"]}
    connection = body["Resources"]["AwsEventsConnection"]["Properties"]
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "X-Emergency-Access-Events-Key",
        "ApiKeyValue": {"Ref": "AwsEventsSecret"},
    }
    assert body["Parameters"]["AwsEventsSecret"]["NoEcho"] is True
    # Global sign-in events arrive in us-east-1: deploying with alarms elsewhere is refused.
    assert body["Rules"]["AlarmsInUsEast1"]["Assertions"][0]["Assert"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
    }


def test_the_stackset_rule_catches_assume_role_into_the_workload_roles():
    body = cloudformation.workload_accounts_template(rendered("root trust"))
    [rule] = _rules(body).values()

    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["eventName"] == ["AssumeRole"]
    [prefix] = pattern["detail"]["requestParameters"]["roleArn"]
    assert prefix["prefix"]["Fn::Sub"].endswith(":role/EmergencyAccess_")


def test_regional_sign_in_endpoints_get_their_own_template(settings):
    settings.SITE_URL = "https://portal.example.com"
    plan = rendered("regional")

    assert cloudformation.sign_in_regions(plan) == ["us-east-1", "eu-central-1"]
    written = files(plan, "cloudformation")
    assert cloudformation.REGIONAL_ALARMS_TEMPLATE in written
    regional = cloudformation.regional_alarms_template(plan)
    assert regional is not None
    assert set(_rules(regional)) == set(cloudformation.EMERGENCY_RULES)
    assert regional["Parameters"]["AwsEventsEndpoint"]["Default"] == (
        "https://portal.example.com/api/v1/aws-events"
    )
    assert cloudformation.regional_alarms_template(rendered("least privilege")) is None


@pytest.mark.django_db
def test_a_drill_proves_an_aws_side_alarm_fires(
    post_event, plan, approver, oncall, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        drill = failover_services.open_failover(
            actor=approver, reason="Quarterly drill", drill=True
        )

    def item():
        [found] = [i for i in drills.drill_checklist(drill) if i.key == "aws_alarm"]
        return found

    assert item().proved is False
    role = plan.roles[("prod-payments", "RO")]
    post_event(saml_event(role.role_name, oncall.email, timezone.now()))

    assert item().proved is True
    assert oncall.email in item().evidence


@pytest.mark.django_db
def test_without_aws_events_the_drill_does_not_ask_for_an_alarm(
    settings, plan, approver, django_capture_on_commit_callbacks
):
    settings.AWS_EVENTS_SECRET = settings.AWS_EVENTS_SECRET_SHA256 = ""
    with django_capture_on_commit_callbacks(execute=False):
        drill = failover_services.open_failover(
            actor=approver, reason="Quarterly drill", drill=True
        )

    assert "aws_alarm" not in {i.key for i in drills.drill_checklist(drill)}


@pytest.mark.django_db
def test_the_demo_command_simulates_an_alarm(plan, open_failover, oncall, approver):
    out = StringIO()

    call_command("simulate_aws_role_use", oncall.email, stdout=out)

    assert out.getvalue().startswith("ALERT (No active grant for this person and role)")
    assert AwsRoleUse.objects.get().source == "simulated"
    assert AuditEvent.objects.filter(action="aws.role_use_alert").exists()


@pytest.mark.django_db
def test_the_demo_command_refuses_an_unknown_role(plan):
    with pytest.raises(CommandError, match="No such emergency role"):
        call_command("simulate_aws_role_use", "x@example.com", "--role", "Nope")
