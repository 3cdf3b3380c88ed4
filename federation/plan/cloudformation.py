"""The access plan as two CloudFormation templates (JSON).

* ``emergency-account.template.json`` -- deploy once in the emergency access
  account: the SAML provider (its metadata document a parameter: Okta's
  "Identity Provider metadata" of the AWS Account Federation app) and every
  ``EmergencyAccess_Role<N>_<LEVEL>`` role with the exact trust and permissions
  documents of :mod:`federation.plan.iam`.
* ``workload-accounts.template.json`` -- one template for every workload
  account, suitable for a StackSet: the ``EmergencyAccess_<LEVEL>`` roles. With
  least-privilege trust each account trusts only its own emergency roles; the
  account's N comes from a mapping keyed by ``AWS::AccountId``, so the StackSet
  needs no per-account parameters and refuses an account the plan does not list.

Both can also create the read-only audit role readiness checks assume
(``settings.AWS_AUDIT_ROLE_NAME``) when given the ARN allowed to assume it.
Deploy the emergency account first: AWS rejects a trust policy naming a role
that does not exist yet.
"""

from __future__ import annotations

import re
from typing import Any

from federation.plan.iam import (
    Policy,
    RenderedPlan,
    account_root_arn,
    role_arn,
    workload_role_trust_policy,
)

EMERGENCY_TEMPLATE = "emergency-account.template.json"
WORKLOAD_TEMPLATE = "workload-accounts.template.json"
FORMAT_VERSION = "2010-09-09"
ACCOUNT_MAP = "WorkloadAccounts"
AUDIT_CONDITION = "CreateAuditRole"
# What readiness reads (and nothing else): the roles, their policies, the SAML provider.
AUDIT_ACTIONS = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
]


def logical_id(name: str) -> str:
    """A CloudFormation logical id (alphanumeric) for a role name."""
    return re.sub(r"[^A-Za-z0-9]", "", name)


def _audit_parameters() -> dict[str, Any]:
    return {
        "AuditPrincipalArn": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": r"^(arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+)?$",
            "Description": "The IAM role (or user) the Emergency Access Portal runs as: it may "
            "assume the read-only audit role for daily readiness checks. Empty: no audit role.",
        },
        "AuditRoleName": {
            "Type": "String",
            "Default": "EmergencyAccessAudit",
            "AllowedPattern": r"^[\w+=,.@-]{1,64}$",
            "Description": "Name of the audit role (the portal's AWS_AUDIT_ROLE_NAME).",
        },
    }


def _audit_conditions() -> dict[str, Any]:
    return {AUDIT_CONDITION: {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuditPrincipalArn"}, ""]}]}}


def _audit_role(resources: list[Any], extra_actions: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Condition": AUDIT_CONDITION,
        "Properties": {
            "RoleName": {"Ref": "AuditRoleName"},
            "Description": "Read-only: lets the Emergency Access Portal check the emergency "
            "access roles against its plan.",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": {"Ref": "AuditPrincipalArn"}},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "ReadEmergencyAccessSetup",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [*AUDIT_ACTIONS, *extra_actions],
                                "Resource": resources,
                            }
                        ],
                    },
                }
            ],
        },
    }


def emergency_account_template(plan: RenderedPlan) -> dict[str, Any]:
    """The SAML provider and the emergency roles, documents verbatim from the plan."""
    account = plan.emergency_account_id
    resources: dict[str, Any] = {
        "SamlProvider": {
            "Type": "AWS::IAM::SAMLProvider",
            "Properties": {
                "Name": plan.saml_provider_name,
                "SamlMetadataDocument": {"Ref": "SamlMetadataDocument"},
            },
        }
    }
    outputs: dict[str, Any] = {
        "SamlProviderArn": {
            "Description": "Okta's AWS Account Federation app uses this provider.",
            "Value": {"Ref": "SamlProvider"},
        }
    }
    for role in plan.emergency_roles:
        key = logical_id(role.role_name)
        resources[key] = {
            "Type": "AWS::IAM::Role",
            # The trust policy names the provider by its literal ARN (the exact document
            # readiness compares with), so the dependency is stated, not inferred.
            "DependsOn": "SamlProvider",
            "Properties": {
                "RoleName": role.role_name,
                "Description": f"Emergency access: {role.level} in {role.workload_account_name} "
                f"({role.workload_account_id}) through Okta group {role.okta_group}",
                "MaxSessionDuration": role.max_session_duration,
                "AssumeRolePolicyDocument": role.trust_policy,
                "Policies": [
                    {
                        "PolicyName": "AssumeWorkloadRole",
                        "PolicyDocument": role.permissions_policy,
                    }
                ],
            },
        }
        outputs[f"{key}Arn"] = {"Value": {"Fn::GetAtt": [key, "Arn"]}}
    resources["AuditRole"] = _audit_role(
        [role_arn(account, "EmergencyAccess_*"), plan.saml_provider_arn],
        ("iam:GetSAMLProvider",),
    )
    return {
        "AWSTemplateFormatVersion": FORMAT_VERSION,
        "Description": f"Emergency access when IAM Identity Center is disrupted: SAML provider "
        f"and emergency roles of the emergency access account {account} (generated by the "
        "Emergency Access Portal from its access plan; deploy before the workload accounts).",
        "Parameters": {
            "SamlMetadataDocument": {
                "Type": "String",
                "MinLength": 1,
                "Description": "The SAML metadata XML of Okta's AWS Account Federation app "
                "(Sign On tab, Identity Provider metadata).",
            },
            **_audit_parameters(),
        },
        "Rules": {
            "EmergencyAccountOnly": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, account]},
                        "AssertDescription": f"Deploy this template in the emergency access "
                        f"account {account} only.",
                    }
                ]
            }
        },
        "Conditions": _audit_conditions(),
        "Resources": resources,
        "Outputs": outputs,
    }


def workload_accounts_template(plan: RenderedPlan) -> dict[str, Any]:
    """The workload roles for every workload account: one template, a StackSet's."""
    emergency = plan.emergency_account_id
    numbers = {role.account_id: role.number for role in plan.workload_roles}
    resources: dict[str, Any] = {}
    for level in plan.levels:
        sample = next(role for role in plan.workload_roles if role.level == level)
        if plan.least_privilege:
            principal: Any = {
                "Fn::Sub": [
                    f"arn:${{AWS::Partition}}:iam::{emergency}:role/EmergencyAccess_Role${{Number}}_{level}",
                    {"Number": {"Fn::FindInMap": [ACCOUNT_MAP, {"Ref": "AWS::AccountId"}, "N"]}},
                ]
            }
        else:
            principal = account_root_arn(emergency)
        resources[logical_id(sample.role_name)] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": sample.role_name,
                "Description": f"Emergency access ({level}): reached by switching role from "
                f"the emergency access account {emergency}.",
                "AssumeRolePolicyDocument": workload_role_trust_policy(principal),
                "ManagedPolicyArns": [sample.managed_policy_arn],
            },
        }
    resources["AuditRole"] = _audit_role(
        [{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/EmergencyAccess_*"}]
    )
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": FORMAT_VERSION,
        "Description": f"Emergency access when IAM Identity Center is disrupted: the "
        f"EmergencyAccess_<LEVEL> roles of a workload account, trusted from the emergency "
        f"access account {emergency} (a StackSet over the plan's workload accounts; "
        "generated by the Emergency Access Portal).",
        "Parameters": _audit_parameters(),
        "Conditions": _audit_conditions(),
        "Resources": resources,
    }
    if plan.least_privilege:
        # The mapping doubles as a guard: an account the plan does not list fails to deploy.
        template["Mappings"] = {
            ACCOUNT_MAP: {account: {"N": str(n)} for account, n in numbers.items()},
        }
    else:
        # Root trust needs no per-account value; a rule keeps the guard.
        template["Rules"] = {
            "PlannedAccountsOnly": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Contains": [list(numbers), {"Ref": "AWS::AccountId"}]},
                        "AssertDescription": "Deploy only to the plan's workload accounts.",
                    }
                ]
            }
        }
    return template


def resolved_workload_trust(template: dict[str, Any], account_id: str, level: str) -> Policy:
    """The trust policy a workload stack instance gets in ``account_id`` (for tests/pages)."""
    role = template["Resources"][logical_id(f"EmergencyAccess_{level}")]
    document = role["Properties"]["AssumeRolePolicyDocument"]
    principal = document["Statement"][0]["Principal"]["AWS"]
    if isinstance(principal, dict):
        text, values = principal["Fn::Sub"]
        if set(values) != {"Number"}:
            raise ValueError(f"unexpected substitution {values!r}")
        number = template["Mappings"][ACCOUNT_MAP][account_id]["N"]
        principal = text.replace("${Number}", number).replace("${AWS::Partition}", "aws")
    return workload_role_trust_policy(principal)


def templates(plan: RenderedPlan) -> dict[str, dict[str, Any]]:
    """File name -> template."""
    return {
        EMERGENCY_TEMPLATE: emergency_account_template(plan),
        WORKLOAD_TEMPLATE: workload_accounts_template(plan),
    }


def stackset_accounts(plan: RenderedPlan) -> list[str]:
    return list(dict.fromkeys(role.account_id for role in plan.workload_roles))
