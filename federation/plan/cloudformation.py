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

AWS-side alarms (given the ``AwsEventsSecret`` parameter): EventBridge rules forward
every use of an emergency role -- ``AssumeRoleWithSAML`` and ``ConsoleLogin`` of
``EmergencyAccess_Role*`` in the emergency account, ``AssumeRole`` into
``EmergencyAccess_*`` in each workload account -- to the portal's
``POST /api/v1/aws-events`` through an API destination whose connection sends the
secret as an API-key header. Sign-in events of these global services are delivered in
us-east-1, so the emergency template is deployed there; a plan with regional SAML
sign-in endpoints also gets ``emergency-account-regional-alarms.template.json``, one
stack per sign-in Region.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from federation.plan.iam import (
    Policy,
    RenderedPlan,
    account_root_arn,
    role_arn,
    workload_role_trust_policy,
)

EMERGENCY_TEMPLATE = "emergency-account.template.json"
WORKLOAD_TEMPLATE = "workload-accounts.template.json"
REGIONAL_ALARMS_TEMPLATE = "emergency-account-regional-alarms.template.json"
FORMAT_VERSION = "2010-09-09"
ACCOUNT_MAP = "WorkloadAccounts"
AUDIT_CONDITION = "CreateAuditRole"
# What readiness reads (and nothing else): the roles, their policies, the SAML provider.
AUDIT_ACTIONS = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "events:DescribeRule",
    "events:ListRules",
    "events:ListTargetsByRule",
]
# --- AWS-side alarms ---
ALARMS_CONDITION = "ForwardAwsEvents"
GLOBAL_EVENTS_REGION = "us-east-1"  # where ConsoleLogin / AssumeRoleWithSAML are delivered
EVENTS_PATH = "/api/v1/aws-events"
# The rules' names: readiness looks for exactly these (``events:DescribeRule``).
SAML_RULE = "EmergencyAccess-AssumeRoleWithSAML"
CONSOLE_RULE = "EmergencyAccess-ConsoleLogin"
WORKLOAD_RULE = "EmergencyAccess-AssumeRole"
EMERGENCY_RULES = (SAML_RULE, CONSOLE_RULE)
WORKLOAD_RULES = (WORKLOAD_RULE,)
_REGIONAL_AUDIENCE = re.compile(
    r"^https://([a-z]{2}(?:-[a-z]+)+-\d)\.signin\.aws\.amazon\.com/saml$"
)


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


def sign_in_regions(plan: RenderedPlan) -> list[str]:
    """us-east-1 (the global sign-in endpoint) and the plan's regional SAML endpoints."""
    regions = [GLOBAL_EVENTS_REGION]
    for audience in plan.saml_audiences:
        match = _REGIONAL_AUDIENCE.match(audience)
        if match and match.group(1) not in regions:
            regions.append(match.group(1))
    return regions


def events_endpoint() -> str:
    """``https://<portal>/api/v1/aws-events`` from SITE_URL (EventBridge calls https only;
    a local http SITE_URL gives a placeholder to replace at deploy time)."""
    site = settings.SITE_URL.rstrip("/")
    if site.startswith("http://"):
        site = "https://" + site.removeprefix("http://")
    return site + EVENTS_PATH


def _alarm_parameters() -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "Type": "String",
        "Default": events_endpoint(),
        "AllowedPattern": r"^https://[^\s]+$",
        "Description": "The portal's AWS events endpoint (https://<portal>" + EVENTS_PATH + ").",
    }
    return {
        "AwsEventsSecret": {
            "Type": "String",
            "NoEcho": True,
            "Default": "",
            "Description": "The portal's AWS_EVENTS_SECRET (EventBridge keeps it in Secrets "
            "Manager, in the connection). Empty: no AWS-side alarms.",
        },
        "AwsEventsEndpoint": endpoint,
    }


def _alarm_conditions() -> dict[str, Any]:
    return {ALARMS_CONDITION: {"Fn::Not": [{"Fn::Equals": [{"Ref": "AwsEventsSecret"}, ""]}]}}


def _alarm_rule(name: str, description: str, pattern: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::Events::Rule",
        "Condition": ALARMS_CONDITION,
        "Properties": {
            "Name": name,
            "Description": description,
            "State": "ENABLED",
            "EventPattern": pattern,
            "Targets": [
                {
                    "Id": "EmergencyAccessPortal",
                    "Arn": {"Fn::GetAtt": ["AwsEventsDestination", "Arn"]},
                    "RoleArn": {"Fn::GetAtt": ["AwsEventsInvokeRole", "Arn"]},
                    # The portal is idempotent: retrying a day long loses nothing.
                    "RetryPolicy": {
                        "MaximumRetryAttempts": 185,
                        "MaximumEventAgeInSeconds": 86400,
                    },
                }
            ],
        },
    }


def _alarm_forwarding() -> dict[str, Any]:
    """The connection (API-key header = the secret), the API destination, the role the
    rules invoke it with."""
    return {
        "AwsEventsConnection": {
            "Type": "AWS::Events::Connection",
            "Condition": ALARMS_CONDITION,
            "Properties": {
                "Description": "Emergency Access Portal: the AWS events connection secret.",
                "AuthorizationType": "API_KEY",
                "AuthParameters": {
                    "ApiKeyAuthParameters": {
                        "ApiKeyName": settings.AWS_EVENTS_HEADER,
                        "ApiKeyValue": {"Ref": "AwsEventsSecret"},
                    }
                },
            },
        },
        "AwsEventsDestination": {
            "Type": "AWS::Events::ApiDestination",
            "Condition": ALARMS_CONDITION,
            "Properties": {
                "Description": "Emergency Access Portal: POST " + EVENTS_PATH,
                "ConnectionArn": {"Fn::GetAtt": ["AwsEventsConnection", "Arn"]},
                "InvocationEndpoint": {"Ref": "AwsEventsEndpoint"},
                "HttpMethod": "POST",
                "InvocationRateLimitPerSecond": 10,
            },
        },
        "AwsEventsInvokeRole": {
            "Type": "AWS::IAM::Role",
            "Condition": ALARMS_CONDITION,
            "Properties": {
                "Description": "Lets EventBridge deliver emergency-role uses to the portal.",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "InvokePortalApiDestination",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "events:InvokeApiDestination",
                                    "Resource": {"Fn::GetAtt": ["AwsEventsDestination", "Arn"]},
                                }
                            ],
                        },
                    }
                ],
            },
        },
    }


def emergency_alarm_resources(plan: RenderedPlan) -> dict[str, Any]:
    """The emergency account's rules: SAML role assumption and console sign-in of
    ``EmergencyAccess_Role*``, forwarded to the portal."""
    account = plan.emergency_account_id
    return {
        **_alarm_forwarding(),
        "AssumeRoleWithSamlRule": _alarm_rule(
            SAML_RULE,
            "Emergency access: AssumeRoleWithSAML of an EmergencyAccess_Role* role.",
            {
                "source": ["aws.sts"],
                "detail-type": ["AWS API Call via CloudTrail"],
                "detail": {
                    "eventSource": ["sts.amazonaws.com"],
                    "eventName": ["AssumeRoleWithSAML"],
                    "requestParameters": {
                        "roleArn": [{"prefix": f"arn:aws:iam::{account}:role/EmergencyAccess_Role"}]
                    },
                },
            },
        ),
        "ConsoleLoginRule": _alarm_rule(
            CONSOLE_RULE,
            "Emergency access: console sign-in with an EmergencyAccess_Role* role.",
            {
                "source": ["aws.signin"],
                "detail-type": ["AWS Console Sign In via CloudTrail"],
                "detail": {
                    "eventName": ["ConsoleLogin"],
                    "userIdentity": {
                        "arn": [
                            {"prefix": f"arn:aws:sts::{account}:assumed-role/EmergencyAccess_Role"}
                        ]
                    },
                },
            },
        ),
    }


def _alarm_region_rule(regions: list[str]) -> dict[str, Any]:
    if len(regions) == 1:
        test: Any = {"Fn::Equals": [{"Ref": "AWS::Region"}, regions[0]]}
    else:
        test = {"Fn::Contains": [regions, {"Ref": "AWS::Region"}]}
    return {
        "RuleCondition": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AwsEventsSecret"}, ""]}]},
        "Assertions": [
            {
                "Assert": test,
                "AssertDescription": "Sign-in events arrive in "
                + ", ".join(regions)
                + ": deploy the AWS-side alarms there.",
            }
        ],
    }


def regional_alarms_template(plan: RenderedPlan) -> dict[str, Any] | None:
    """The emergency account's rules for the plan's regional sign-in endpoints (one stack
    per Region), or None when the plan signs in through us-east-1 only."""
    regions = sign_in_regions(plan)[1:]
    if not regions:
        return None
    return {
        "AWSTemplateFormatVersion": FORMAT_VERSION,
        "Description": f"Emergency access: AWS-side alarms of the emergency access account "
        f"{plan.emergency_account_id} in a regional sign-in Region ({', '.join(regions)}; "
        "generated by the Emergency Access Portal).",
        "Parameters": _alarm_parameters(),
        "Rules": {
            "EmergencyAccountOnly": {
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Equals": [{"Ref": "AWS::AccountId"}, plan.emergency_account_id]
                        },
                        "AssertDescription": "Deploy this template in the emergency access "
                        f"account {plan.emergency_account_id} only.",
                    }
                ]
            },
            "SignInRegionsOnly": _alarm_region_rule(regions),
        },
        "Conditions": _alarm_conditions(),
        "Resources": emergency_alarm_resources(plan),
    }


def workload_alarm_resources() -> dict[str, Any]:
    """A workload account's rule: ``AssumeRole`` into its ``EmergencyAccess_*`` roles."""
    return {
        **_alarm_forwarding(),
        "AssumeRoleRule": _alarm_rule(
            WORKLOAD_RULE,
            "Emergency access: AssumeRole into an EmergencyAccess_* role.",
            {
                "source": ["aws.sts"],
                "detail-type": ["AWS API Call via CloudTrail"],
                "detail": {
                    "eventSource": ["sts.amazonaws.com"],
                    "eventName": ["AssumeRole"],
                    "requestParameters": {
                        "roleArn": [
                            {
                                "prefix": {
                                    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:"
                                    "role/EmergencyAccess_"
                                }
                            }
                        ]
                    },
                },
            },
        ),
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
        [
            role_arn(account, "EmergencyAccess_*"),
            plan.saml_provider_arn,
            {"Fn::Sub": "arn:${AWS::Partition}:events:*:${AWS::AccountId}:rule/*"},
        ],
        ("iam:GetSAMLProvider",),
    )
    resources.update(emergency_alarm_resources(plan))
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
            **_alarm_parameters(),
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
            },
            "AlarmsInUsEast1": _alarm_region_rule([GLOBAL_EVENTS_REGION]),
        },
        "Conditions": {**_audit_conditions(), **_alarm_conditions()},
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
        [
            {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/EmergencyAccess_*"},
            {"Fn::Sub": "arn:${AWS::Partition}:events:*:${AWS::AccountId}:rule/*"},
        ]
    )
    resources.update(workload_alarm_resources())
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": FORMAT_VERSION,
        "Description": f"Emergency access when IAM Identity Center is disrupted: the "
        f"EmergencyAccess_<LEVEL> roles of a workload account, trusted from the emergency "
        f"access account {emergency} (a StackSet over the plan's workload accounts; "
        "generated by the Emergency Access Portal).",
        "Parameters": {**_audit_parameters(), **_alarm_parameters()},
        "Conditions": {**_audit_conditions(), **_alarm_conditions()},
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
    found = {
        EMERGENCY_TEMPLATE: emergency_account_template(plan),
        WORKLOAD_TEMPLATE: workload_accounts_template(plan),
    }
    regional = regional_alarms_template(plan)
    if regional is not None:
        found[REGIONAL_ALARMS_TEMPLATE] = regional
    return found


def stackset_accounts(plan: RenderedPlan) -> list[str]:
    return list(dict.fromkeys(role.account_id for role in plan.workload_roles))
