"""The rendered documents are the AWS guide's, for the guide's own numbers.

The guide: IAM Identity Center user guide, "Set up emergency access to the AWS
Management Console" > "One-time setup of a direct IAM federation application in
Okta" (steps 7-9). Its JSON is copied below verbatim (whitespace aside) and
compared with what the portal renders as JSON values *and* as compact text in
the guide's key order -- byte for byte.

The guide has had three revisions of the emergency role's trust policy:
the current one (two statements: SetSourceIdentity on its own), the latest
one (the same, with regional sign-in endpoints in SAML:aud), and an older one
(one statement with the three actions under the SAML:aud condition). The portal
renders the current form, the latest when the plan lists regional endpoints,
and recognises the older one (readiness warns about it).
"""

from __future__ import annotations

import json

import pytest

from federation.plan import iam, parse_plan

from .conftest import DEMO_TEXT, demo_plan

GUIDE_TRUST = """{
    "Version":"2012-10-17",
    "Statement": [
      {
         "Effect":"Allow",
         "Principal":{
            "Federated":"arn:aws:iam::123456789012:saml-provider/Okta"
         },
         "Action":[
            "sts:AssumeRoleWithSAML",
            "sts:TagSession"
         ],
         "Condition":{
            "StringEquals":{
               "SAML:aud": "https://signin.aws.amazon.com/saml"
            }
         }
      },
      {
         "Effect":"Allow",
         "Principal":{
         "Federated":"arn:aws:iam::123456789012:saml-provider/Okta"
         },
         "Action":"sts:SetSourceIdentity"
      }
   ]
}"""

# The latest revision: regional sign-in endpoints ("[SAML PROVIDER NAME]" filled in).
GUIDE_TRUST_REGIONAL = """{
    "Version":"2012-10-17",
    "Statement": [
      {
         "Effect":"Allow",
         "Principal":{
            "Federated":"arn:aws:iam::123456789012:saml-provider/Okta"
         },
         "Action":[
            "sts:AssumeRoleWithSAML",
            "sts:TagSession"
         ],
         "Condition":{
            "StringEquals":{
               "SAML:aud": [
                        "https://signin.aws.amazon.com/saml",
                        "https://us-west-2.signin.aws.amazon.com/saml",
                        "https://us-west-1.signin.aws.amazon.com/saml",
                        "https://us-east-2.signin.aws.amazon.com/saml"
               ]
            }
         }
      },
      {
         "Effect":"Allow",
         "Principal":{
         "Federated":"arn:aws:iam::123456789012:saml-provider/Okta"
         },
         "Action":"sts:SetSourceIdentity"
       }
   ]
}"""

GUIDE_TRUST_OLDER = """{
    "Version": "2012-10-17",
    "Statement": [
      {
         "Effect":"Allow",
         "Principal":{
            "Federated":"arn:aws:iam::123456789012:saml-provider/Okta"
         },
         "Action":[
            "sts:AssumeRoleWithSAML",
            "sts:SetSourceIdentity",
            "sts:TagSession"
         ],
         "Condition":{
            "StringEquals":{
               "SAML:aud":"https://signin.aws.amazon.com/saml"
            }
         }
      }
   ]
}"""

GUIDE_PERMISSIONS = """{
    "Version":"2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": [
                "arn:aws:iam::111122223333:role/EmergencyAccess_RO",
                "arn:aws:iam::444455556666:role/EmergencyAccess_RO"
            ]
        }
    ]
}"""

GUIDE_WORKLOAD_TRUST = """{
    "Version":"2012-10-17",
    "Statement":[
      {
         "Effect":"Allow",
         "Principal":{
            "AWS":"arn:aws:iam::123456789012:root"
         },
         "Action":"sts:AssumeRole"
      }
   ]
}"""

PROVIDER = "arn:aws:iam::123456789012:saml-provider/Okta"
GLOBAL = ["https://signin.aws.amazon.com/saml"]


def assert_same_as_guide(rendered: dict, guide_text: str) -> None:
    guide = json.loads(guide_text)
    assert rendered == guide
    # Byte for byte: the same keys in the same order, the same list order.
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    assert json.dumps(rendered, **compact) == json.dumps(guide, **compact)


def test_emergency_role_trust_policy_is_the_guides():
    plan = demo_plan()
    role = plan.emergency_roles[0]

    assert role.role_name == "EmergencyAccess_Role1_RO"
    assert_same_as_guide(role.trust_policy, GUIDE_TRUST)
    # Every emergency role has the same trust (the group decides who gets which role).
    assert {json.dumps(r.trust_policy) for r in plan.emergency_roles} == {
        json.dumps(role.trust_policy)
    }


def test_regional_audiences_give_the_guides_latest_form():
    text = DEMO_TEXT.replace(
        'saml_audiences = ["https://signin.aws.amazon.com/saml"]',
        'saml_audiences = ["https://signin.aws.amazon.com/saml", '
        '"https://us-west-2.signin.aws.amazon.com/saml", '
        '"https://us-west-1.signin.aws.amazon.com/saml", '
        '"https://us-east-2.signin.aws.amazon.com/saml"]',
    )
    plan = iam.render(parse_plan(text))

    assert_same_as_guide(plan.emergency_roles[0].trust_policy, GUIDE_TRUST_REGIONAL)


def test_older_guide_form_is_recognised_not_rendered():
    legacy = iam.legacy_emergency_role_trust_policy(PROVIDER, GLOBAL)

    assert_same_as_guide(legacy, GUIDE_TRUST_OLDER)
    assert not iam.policies_equivalent(demo_plan().emergency_roles[0].trust_policy, legacy)


def test_permissions_policy_is_the_guides():
    """The guide's example lists two accounts' roles; the same function renders it."""
    rendered = iam.emergency_role_permissions_policy(
        [
            "arn:aws:iam::111122223333:role/EmergencyAccess_RO",
            "arn:aws:iam::444455556666:role/EmergencyAccess_RO",
        ]
    )

    assert_same_as_guide(rendered, GUIDE_PERMISSIONS)


def test_each_emergency_role_switches_to_exactly_its_mapped_workload_role():
    """The guide's mapping table: Role<N>_<LEVEL> -> account N's EmergencyAccess_<LEVEL>."""
    plan = demo_plan()

    assert [
        (r.role_name, r.permissions_policy["Statement"][0]["Resource"])
        for r in plan.emergency_roles
    ] == [
        ("EmergencyAccess_Role1_RO", "arn:aws:iam::111111111111:role/EmergencyAccess_RO"),
        ("EmergencyAccess_Role1_Ops", "arn:aws:iam::111111111111:role/EmergencyAccess_Ops"),
        ("EmergencyAccess_Role2_RO", "arn:aws:iam::222222222222:role/EmergencyAccess_RO"),
        ("EmergencyAccess_Role2_Ops", "arn:aws:iam::222222222222:role/EmergencyAccess_Ops"),
    ]
    assert plan.emergency_roles[0].permissions_policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "arn:aws:iam::111111111111:role/EmergencyAccess_RO",
            }
        ],
    }


def test_workload_trust_guide_form_is_the_guides():
    text = DEMO_TEXT.replace('workload_trust = "emergency_role"', 'workload_trust = "account_root"')
    plan = iam.render(parse_plan(text))

    assert not plan.least_privilege
    for role in plan.workload_roles:
        assert_same_as_guide(role.trust_policy, GUIDE_WORKLOAD_TRUST)
    assert "root" in plan.trust_why


def test_workload_trust_least_privilege_by_default():
    plan = demo_plan()

    assert plan.least_privilege
    assert [(r.role_arn, r.trusted_principal) for r in plan.workload_roles] == [
        (
            "arn:aws:iam::111111111111:role/EmergencyAccess_RO",
            "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_RO",
        ),
        (
            "arn:aws:iam::111111111111:role/EmergencyAccess_Ops",
            "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_Ops",
        ),
        (
            "arn:aws:iam::222222222222:role/EmergencyAccess_RO",
            "arn:aws:iam::123456789012:role/EmergencyAccess_Role2_RO",
        ),
        (
            "arn:aws:iam::222222222222:role/EmergencyAccess_Ops",
            "arn:aws:iam::123456789012:role/EmergencyAccess_Role2_Ops",
        ),
    ]
    # The guide's document with only the principal narrowed; the other form is offered too.
    first = plan.workload_roles[0]
    narrowed = json.loads(GUIDE_WORKLOAD_TRUST)
    narrowed["Statement"][0]["Principal"]["AWS"] = first.trusted_principal
    assert first.trust_policy == narrowed
    assert_same_as_guide(first.alternative_trust_policy, GUIDE_WORKLOAD_TRUST)
    assert "trusts only the one emergency role" in plan.trust_why


def test_managed_policies_of_the_guides_table():
    plan = demo_plan()

    assert {(r.role_name, r.managed_policy_arn) for r in plan.workload_roles} == {
        ("EmergencyAccess_RO", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        ("EmergencyAccess_Ops", "arn:aws:iam::aws:policy/job-function/SystemAdministrator"),
    }


def test_session_duration_sets_the_roles_maximum():
    text = DEMO_TEXT.replace("session_duration_seconds = 3600", "session_duration_seconds = 900")
    assert {r.max_session_duration for r in iam.render(parse_plan(text)).emergency_roles} == {3600}
    text = DEMO_TEXT.replace("session_duration_seconds = 3600", "session_duration_seconds = 14400")
    plan = iam.render(parse_plan(text))
    assert {r.max_session_duration for r in plan.emergency_roles} == {14400}
    assert plan.okta.session_duration == 14400


# --- Okta -----------------------------------------------------------------------------------


def test_okta_settings_name_the_guides_groups():
    plan = demo_plan()
    okta = plan.okta

    assert okta.group_filter == r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$"
    assert okta.role_value_pattern == (
        "arn:aws:iam::${accountid}:saml-provider/Okta,arn:aws:iam::${accountid}:role/${role}"
    )
    assert (okta.app_name, okta.sign_on_mode, okta.session_duration) == (
        "amazon_aws",
        "SAML_2_0",
        3600,
    )
    assert [g.name for g in okta.groups] == [
        "aws#EmergencyAccess_Role1_RO#123456789012",
        "aws#EmergencyAccess_Role1_Ops#123456789012",
        "aws#EmergencyAccess_Role2_RO#123456789012",
        "aws#EmergencyAccess_Role2_Ops#123456789012",
    ]
    assert all(g.assigned_to_app for g in okta.groups)


def test_every_group_maps_to_its_role_through_filter_and_pattern():
    plan = demo_plan()

    for role in plan.emergency_roles:
        mapping = iam.map_group(
            role.okta_group, plan.okta.group_filter, plan.okta.role_value_pattern
        )
        assert mapping == iam.GroupMapping(role.okta_group, True, role.role_arn, PROVIDER)


@pytest.mark.parametrize(
    ("group", "group_filter", "problem"),
    [
        ("aws_123456789012_Role", r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$", "does not"),
        ("aws#R#123456789012", r"^aws\#(?{{role}}[\w\-]+)\#(\d+)$", "captures no accountid"),
        ("aws#R#1", r"^aws\#(?{{role}[\w\-]+", "not a valid regular expression"),
    ],
)
def test_group_mapping_problems_are_named(group, group_filter, problem):
    mapping = iam.map_group(group, group_filter, iam.okta_role_value_pattern("Okta"))

    assert problem in mapping.problem


def test_okta_json_uses_okta_setting_names():
    settings = demo_plan().okta.as_dict()["settings"]

    assert set(settings) == {
        "useGroupMapping",
        "appFilter",
        "groupFilter",
        "roleValuePattern",
        "sessionDuration",
        "identityProviderArn",
    }


def test_three_accounts_three_levels():
    text = DEMO_TEXT.replace(
        "[[levels]]",
        '[[workload_accounts]]\nid = "333333333333"\nname = "prod-web"\n\n[[levels]]',
        1,
    ) + (
        '\n[[levels]]\nname = "Admin"\npolicy = "arn:aws:iam::aws:policy/AdministratorAccess"\n'
        "max_duration_minutes = 60\napprovals_required = 2\n"
    )
    plan = iam.render(parse_plan(text))

    assert len(plan.emergency_roles) == len(plan.workload_roles) == 9
    assert plan.emergency_roles[-1].role_name == "EmergencyAccess_Role3_Admin"
    assert plan.workload_roles[-1].trusted_principal == (
        "arn:aws:iam::123456789012:role/EmergencyAccess_Role3_Admin"
    )
