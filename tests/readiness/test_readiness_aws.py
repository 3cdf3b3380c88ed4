"""Readiness against a moto server: the correct set-up passes, each kind of drift is named."""

from __future__ import annotations

import json

import pytest

from federation.plan import iam
from federation.readiness import checks as readiness
from federation.readiness.checks import FAIL, PASS, UNKNOWN, WARN
from tests import awsworld

pytestmark = pytest.mark.django_db

E = "123456789012"
A1, A2 = "111111111111", "222222222222"
ROLE1_RO = f"arn:aws:iam::{E}:role/EmergencyAccess_Role1_RO"
WORKLOAD1_RO = f"arn:aws:iam::{A1}:role/EmergencyAccess_RO"
PROVIDER = f"arn:aws:iam::{E}:saml-provider/Okta"


def results(**kwargs):
    return readiness.run_checks(**kwargs)


def find(found, name, subject=None):
    """The one result called ``name`` (for ``subject``)."""
    matches = [r for r in found if r.name == name and (subject is None or r.subject == subject)]
    assert len(matches) == 1, (name, subject, [(r.name, r.subject) for r in found])
    return matches[0]


def not_passing(found):
    return [(r.name, r.subject, r.status, r.detail) for r in found if r.status != PASS]


def test_correct_set_up_passes_everything(plan, aws, okta_ready):
    found = results()

    assert not_passing(found) == []
    names = {r.name for r in found}
    assert {
        "aws.saml_provider",
        "aws.saml_metadata_valid_until",
        "aws.saml_certificate",
        "aws.emergency_role",
        "aws.emergency_role_trust",
        "aws.emergency_role_permissions",
        "aws.workload_role",
        "aws.workload_role_trust",
        "aws.workload_role_policy",
        "okta.credentials",
        "okta.app",
        "okta.app_status",
        "okta.session_duration",
        "okta.group",
        "okta.group_assigned",
        "okta.group_members",
        "okta.group_role_mapping",
        "okta.rate_limit",
    } <= names
    # Every planned role and group is checked.
    assert len([r for r in found if r.name == "aws.emergency_role"]) == 4
    assert len([r for r in found if r.name == "aws.workload_role_trust"]) == 4
    assert len([r for r in found if r.name == "okta.group_members"]) == 4
    assert readiness.overall_status(found) == PASS


# --- AWS drift -------------------------------------------------------------------------------


def test_missing_emergency_role(plan, drift, okta_ready):
    client = drift.iam(E)
    role = drift.plan.emergency_roles[0]
    drift.change(
        lambda: awsworld.delete_role(client, role.role_name),
        lambda: awsworld.create_emergency_role(client, role),
    )

    found = results()

    missing = find(found, "aws.emergency_role", ROLE1_RO)
    assert missing.status == FAIL
    assert "EmergencyAccess_Role1_RO does not exist in the emergency account" in missing.detail
    assert "emergency-account.template.json" in missing.fix
    # Its group now maps to a role that is not there.
    mapping = find(found, "okta.group_role_mapping", "aws#EmergencyAccess_Role1_RO#123456789012")
    assert (mapping.status, mapping.detail) == (
        FAIL,
        f"Maps to {ROLE1_RO}, which does not exist in AWS.",
    )
    assert readiness.exit_status(readiness.overall_status(found)) == 1


def test_missing_workload_role(plan, drift, okta_ready):
    client = drift.iam(A2)
    role = drift.plan.workload_roles_of(A2)[1]
    drift.change(
        lambda: awsworld.delete_role(client, role.role_name),
        lambda: awsworld.create_workload_role(client, role),
    )

    missing = find(results(okta=False), "aws.workload_role", role.role_arn)

    assert missing.status == FAIL
    assert missing.detail == (
        "The role EmergencyAccess_Ops does not exist in prod-data (222222222222): "
        "Ops access there is impossible."
    )
    assert "workload-accounts.template.json" in missing.fix


def test_wrong_emergency_trust_names_the_difference(plan, drift):
    client = drift.iam(E)
    role = drift.plan.emergency_roles[0]
    wrong = iam.emergency_role_trust_policy(
        f"arn:aws:iam::{E}:saml-provider/SomethingElse", ["https://signin.aws.amazon.com/saml"]
    )
    drift.change(
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(wrong)
        ),
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(role.trust_policy)
        ),
    )

    trust = find(results(okta=False), "aws.emergency_role_trust", ROLE1_RO)

    assert trust.status == FAIL
    assert trust.detail.startswith("The trust policy differs from the plan: missing: Allow ")
    assert "sts:assumerolewithsaml for Federated " + PROVIDER in trust.detail
    assert "not in the plan: Allow" in trust.detail and "SomethingElse" in trust.detail


def test_same_trust_written_differently_passes(plan, drift):
    """Statement order and single-vs-list values do not matter: IAM reads them the same."""
    client = drift.iam(E)
    role = drift.plan.emergency_roles[0]
    reordered = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Principal": {"Federated": [PROVIDER]},
                "Effect": "Allow",
                "Action": ["sts:SetSourceIdentity"],
            },
            {
                "Effect": "Allow",
                "Action": ["sts:TagSession", "sts:AssumeRoleWithSAML"],
                "Principal": {"Federated": PROVIDER},
                "Condition": {"StringEquals": {"SAML:aud": ["https://signin.aws.amazon.com/saml"]}},
            },
        ],
    }
    drift.change(
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(reordered)
        ),
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(role.trust_policy)
        ),
    )

    assert find(results(okta=False), "aws.emergency_role_trust", ROLE1_RO).status == PASS


def test_older_guide_trust_form_is_a_warning(plan, drift):
    client = drift.iam(E)
    role = drift.plan.emergency_roles[0]
    legacy = iam.legacy_emergency_role_trust_policy(
        PROVIDER, ["https://signin.aws.amazon.com/saml"]
    )
    drift.change(
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(legacy)
        ),
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(role.trust_policy)
        ),
    )

    trust = find(results(okta=False), "aws.emergency_role_trust", ROLE1_RO)

    assert trust.status == WARN
    assert "older one-statement form" in trust.detail


def test_wrong_workload_trust_root_instead_of_the_emergency_role(plan, drift):
    client = drift.iam(A1)
    role = drift.plan.workload_roles_of(A1)[0]
    root = iam.workload_role_trust_policy(f"arn:aws:iam::{E}:root")
    drift.change(
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(root)
        ),
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(role.trust_policy)
        ),
    )

    trust = find(results(okta=False), "aws.workload_role_trust", WORKLOAD1_RO)

    assert trust.status == FAIL
    assert trust.detail == (
        "The trust policy differs from the plan: missing: Allow sts:assumerole for AWS "
        f"{ROLE1_RO}; not in the plan: Allow sts:assumerole for AWS arn:aws:iam::{E}:root"
    )


def test_plan_choosing_root_trust_accepts_root(plan, drift):
    plan.emergency.workload_trust = "account_root"
    plan.emergency.save()
    client = drift.iam(A1)
    role = drift.plan.workload_roles_of(A1)[0]
    root = iam.workload_role_trust_policy(f"arn:aws:iam::{E}:root")
    drift.change(
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(root)
        ),
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(role.trust_policy)
        ),
    )

    found = results(okta=False)

    assert find(found, "aws.workload_role_trust", WORKLOAD1_RO).status == PASS
    # The other workload roles still trust only their emergency role: not the plan now.
    assert find(found, "aws.workload_role_trust", f"arn:aws:iam::{A2}:role/EmergencyAccess_RO")
    assert {
        r.status for r in found if r.name == "aws.workload_role_trust" and r.subject != WORKLOAD1_RO
    } == {FAIL}


def test_trust_left_with_a_deleted_roles_unique_id(plan, drift):
    """AWS replaces a deleted trusted role by its unique id: the switch fails silently."""
    client = drift.iam(A1)
    role = drift.plan.workload_roles_of(A1)[0]
    orphaned = iam.workload_role_trust_policy("AROAQXY2EXAMPLE4ROLE1")
    drift.change(
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(orphaned)
        ),
        lambda: client.update_assume_role_policy(
            RoleName=role.role_name, PolicyDocument=json.dumps(role.trust_policy)
        ),
    )

    trust = find(results(okta=False), "aws.workload_role_trust", WORKLOAD1_RO)

    assert trust.status == FAIL
    assert "AROAQXY2EXAMPLE4ROLE1" in trust.detail and "was deleted" in trust.detail
    assert trust.fix.startswith("Redeploy workload-accounts.template.json to 111111111111")


def test_missing_managed_policy_on_a_workload_role(plan, drift):
    client = drift.iam(A1)
    role = drift.plan.workload_roles_of(A1)[0]
    drift.change(
        lambda: client.detach_role_policy(
            RoleName=role.role_name, PolicyArn=role.managed_policy_arn
        ),
        lambda: client.attach_role_policy(
            RoleName=role.role_name, PolicyArn=role.managed_policy_arn
        ),
    )

    policy = find(results(okta=False), "aws.workload_role_policy", WORKLOAD1_RO)

    assert policy.status == FAIL
    assert policy.detail == (
        "Permissions differ from the plan: arn:aws:iam::aws:policy/ReadOnlyAccess is not attached"
    )


def test_extra_managed_policy_on_a_workload_role(plan, drift):
    client = drift.iam(A1)
    role = drift.plan.workload_roles_of(A1)[0]
    extra = "arn:aws:iam::aws:policy/AdministratorAccess"
    drift.change(
        lambda: client.attach_role_policy(RoleName=role.role_name, PolicyArn=extra),
        lambda: client.detach_role_policy(RoleName=role.role_name, PolicyArn=extra),
    )

    policy = find(results(okta=False), "aws.workload_role_policy", WORKLOAD1_RO)

    assert policy.status == FAIL
    assert f"managed policies attached that the plan does not have: ['{extra}']" in policy.detail


def test_missing_permissions_policy_on_an_emergency_role(plan, drift):
    client = drift.iam(E)
    role = drift.plan.emergency_roles[0]
    drift.change(
        lambda: client.delete_role_policy(RoleName=role.role_name, PolicyName="AssumeWorkloadRole"),
        lambda: client.put_role_policy(
            RoleName=role.role_name,
            PolicyName="AssumeWorkloadRole",
            PolicyDocument=json.dumps(role.permissions_policy),
        ),
    )

    permissions = find(results(okta=False), "aws.emergency_role_permissions", ROLE1_RO)

    assert permissions.status == FAIL
    assert permissions.detail == (
        "Permissions differ from the plan: it has no permissions policy: it cannot switch to "
        "the workload role"
    )


def test_emergency_role_reaching_the_wrong_account(plan, drift):
    client = drift.iam(E)
    role = drift.plan.emergency_roles[0]
    wrong = iam.emergency_role_permissions_policy([f"arn:aws:iam::{A2}:role/EmergencyAccess_Ops"])
    drift.change(
        lambda: client.put_role_policy(
            RoleName=role.role_name,
            PolicyName="AssumeWorkloadRole",
            PolicyDocument=json.dumps(wrong),
        ),
        lambda: client.put_role_policy(
            RoleName=role.role_name,
            PolicyName="AssumeWorkloadRole",
            PolicyDocument=json.dumps(role.permissions_policy),
        ),
    )

    permissions = find(results(okta=False), "aws.emergency_role_permissions", ROLE1_RO)

    assert permissions.status == FAIL
    assert f"missing: Allow sts:assumerole on {WORKLOAD1_RO}" in permissions.detail
    assert "not in the plan: Allow sts:assumerole on arn:aws:iam::222222222222:role/" in (
        permissions.detail
    )


def test_missing_saml_provider(plan, drift):
    client = drift.iam(E)
    document = client.get_saml_provider(SAMLProviderArn=PROVIDER)["SAMLMetadataDocument"]
    drift.change(
        lambda: client.delete_saml_provider(SAMLProviderArn=PROVIDER),
        lambda: client.create_saml_provider(Name="Okta", SAMLMetadataDocument=document),
    )

    provider = find(results(okta=False), "aws.saml_provider", PROVIDER)

    assert provider.status == FAIL
    assert "does not exist: nobody can sign in" in provider.detail


@pytest.mark.parametrize(
    ("days", "status", "words"),
    [(10, WARN, "in 9 days"), (-1, FAIL, "AWS rejects every SAML sign-in")],
)
def test_signing_certificate_expiry(plan, drift, days, status, words):
    client = drift.iam(E)
    document = client.get_saml_provider(SAMLProviderArn=PROVIDER)["SAMLMetadataDocument"]
    drift.change(
        lambda: client.update_saml_provider(
            SAMLProviderArn=PROVIDER, SAMLMetadataDocument=awsworld.metadata(cert_days=days)
        ),
        lambda: client.update_saml_provider(
            SAMLProviderArn=PROVIDER, SAMLMetadataDocument=document
        ),
    )

    certificate = find(results(okta=False), "aws.saml_certificate", PROVIDER)

    assert certificate.status == status
    assert words in certificate.detail


def test_aws_unreachable_is_could_not_check(plan, aws, settings, okta_ready):
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port

    found = results()

    access = [r for r in found if r.name == "aws.access"]
    assert [r.status for r in access] == [UNKNOWN, UNKNOWN, UNKNOWN]
    assert access[0].detail.startswith(
        f"could not check the emergency account: cannot assume the audit role "
        f"arn:aws:iam::{E}:role/EmergencyAccessAudit"
    )
    assert "AuditPrincipalArn" in access[0].fix
    # Okta was still checked, and its mapping notes AWS could not be asked.
    mapping = find(found, "okta.group_role_mapping", "aws#EmergencyAccess_Role1_RO#123456789012")
    assert mapping.status == PASS and "could not be checked" in mapping.detail
    assert readiness.exit_status(readiness.overall_status(found)) == 2
