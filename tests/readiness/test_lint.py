"""The rendered templates pass cfn-lint; the rendered policies raise no parliament finding.

Both linters run offline: cfn-lint ships the CloudFormation resource specs,
parliament the IAM actions, resources and condition keys.
"""

from __future__ import annotations

import json

import parliament
import pytest
from cfnlint.api import ManualArgs, lint

from federation.plan import cloudformation, iam, parse_plan

from .conftest import DEMO_TEXT

ROOT_TEXT = DEMO_TEXT.replace(
    'workload_trust = "emergency_role"', 'workload_trust = "account_root"'
)
REGIONAL_TEXT = DEMO_TEXT.replace(
    'saml_audiences = ["https://signin.aws.amazon.com/saml"]',
    'saml_audiences = ["https://signin.aws.amazon.com/saml", '
    '"https://eu-central-1.signin.aws.amazon.com/saml"]',
).replace("session_duration_seconds = 3600", "session_duration_seconds = 28800")
PLANS = {"least privilege": DEMO_TEXT, "root trust": ROOT_TEXT, "regional": REGIONAL_TEXT}


def rendered(name: str) -> iam.RenderedPlan:
    return iam.render(parse_plan(PLANS[name]))


@pytest.mark.parametrize("plan_name", PLANS)
@pytest.mark.parametrize(
    "template", [cloudformation.EMERGENCY_TEMPLATE, cloudformation.WORKLOAD_TEMPLATE]
)
def test_templates_pass_cfn_lint(plan_name, template):
    body = cloudformation.templates(rendered(plan_name))[template]

    matches = lint(
        iam.dumps(body),
        config=ManualArgs(regions=["us-east-1", "eu-west-1"], include_checks=["I"]),
    )

    assert [str(m) for m in matches] == []


def test_cfn_lint_is_really_checking():
    """A broken template is reported: the clean results above mean something."""
    body = cloudformation.emergency_account_template(rendered("least privilege"))
    role = body["Resources"]["EmergencyAccessRole1RO"]["Properties"]
    role["MaxSessionDuration"] = 60
    role["Unknown"] = True

    matches = lint(iam.dumps(body), config=ManualArgs(regions=["us-east-1"]))

    assert {m.rule.id for m in matches} >= {"E3002", "E3034"}


def test_emergency_template_carries_the_rendered_documents():
    plan = rendered("least privilege")
    body = cloudformation.emergency_account_template(plan)

    for role in plan.emergency_roles:
        properties = body["Resources"][cloudformation.logical_id(role.role_name)]["Properties"]
        assert properties["RoleName"] == role.role_name
        assert properties["AssumeRolePolicyDocument"] == role.trust_policy
        assert properties["Policies"] == [
            {"PolicyName": "AssumeWorkloadRole", "PolicyDocument": role.permissions_policy}
        ]
        assert properties["MaxSessionDuration"] == 3600
    provider = body["Resources"]["SamlProvider"]["Properties"]
    assert provider == {"Name": "Okta", "SamlMetadataDocument": {"Ref": "SamlMetadataDocument"}}


@pytest.mark.parametrize("plan_name", ["least privilege", "root trust"])
def test_stackset_template_gives_each_account_its_planned_trust(plan_name):
    plan = rendered(plan_name)
    body = cloudformation.workload_accounts_template(plan)

    for role in plan.workload_roles:
        properties = body["Resources"][cloudformation.logical_id(role.role_name)]["Properties"]
        assert properties["ManagedPolicyArns"] == [role.managed_policy_arn]
        resolved = cloudformation.resolved_workload_trust(body, role.account_id, role.level)
        assert resolved == role.trust_policy
    # No per-account parameters: one template for the whole StackSet.
    assert set(body["Parameters"]) == {
        "AuditPrincipalArn",
        "AuditRoleName",
        "AwsEventsSecret",
        "AwsEventsEndpoint",
    }


def _findings(document: dict) -> list[tuple[str, str]]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return [(f.issue, f.detail) for f in policy.findings]


def _as_identity_policy(trust: dict, role_arn: str) -> dict:
    """parliament models identity policies (every statement needs a Resource); a trust
    policy's resource is the role it is attached to, so lint it with that made explicit."""
    return {
        **trust,
        "Statement": [{**s, "Resource": role_arn} for s in trust["Statement"]],
    }


@pytest.mark.parametrize("plan_name", PLANS)
def test_parliament_finds_nothing_in_any_rendered_policy(plan_name):
    plan = rendered(plan_name)
    documents = []
    for role in plan.emergency_roles:
        documents.append(role.permissions_policy)
        documents.append(_as_identity_policy(role.trust_policy, role.role_arn))
    for role in plan.workload_roles:
        documents.append(_as_identity_policy(role.trust_policy, role.role_arn))
        documents.append(_as_identity_policy(role.alternative_trust_policy, role.role_arn))

    assert {json.dumps(d): _findings(d) for d in documents} == {
        json.dumps(d): [] for d in documents
    }


def test_parliament_flags_the_older_guide_form():
    """Why the portal follows the current guide: SAML:aud is not a condition key of
    sts:SetSourceIdentity, so the older one-statement trust policy is reported."""
    legacy = iam.legacy_emergency_role_trust_policy(
        "arn:aws:iam::123456789012:saml-provider/Okta", ["https://signin.aws.amazon.com/saml"]
    )
    role = "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_RO"

    assert _findings(_as_identity_policy(legacy, role)) == [
        (
            "UNKNOWN_CONDITION_FOR_ACTION",
            "Unknown condition SAML:aud for action sts:SetSourceIdentity",
        )
    ]


def test_parliament_is_really_checking():
    broken = iam.emergency_role_permissions_policy(["arn:aws:iam::111111111111:role/X"])
    broken["Statement"][0]["Action"] = "sts:AssumeRol"

    assert _findings(broken) == [("UNKNOWN_ACTION", "Unknown action sts:AssumeRol")]
