"""Policies are compared as policies: order, single-vs-list and text do not matter."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from federation.plan import iam

PROVIDER = "arn:aws:iam::123456789012:saml-provider/Okta"
ROLE = "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_RO"
TRUST = iam.emergency_role_trust_policy(PROVIDER, ["https://signin.aws.amazon.com/saml"])


def statement(**fields):
    return {"Effect": "Allow", **fields}


def doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


EQUIVALENT = {
    "statement order": doc(*reversed(TRUST["Statement"])),
    "single values as lists": doc(
        statement(
            Principal={"Federated": [PROVIDER]},
            Action=["sts:AssumeRoleWithSAML", "sts:TagSession"],
            Condition={"StringEquals": {"SAML:aud": ["https://signin.aws.amazon.com/saml"]}},
        ),
        statement(Principal={"Federated": [PROVIDER]}, Action=["sts:SetSourceIdentity"]),
    ),
    "a statement split in two": doc(
        statement(
            Principal={"Federated": PROVIDER},
            Action="sts:AssumeRoleWithSAML",
            Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
        ),
        statement(
            Principal={"Federated": PROVIDER},
            Action="sts:TagSession",
            Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
        ),
        statement(Principal={"Federated": PROVIDER}, Action="sts:SetSourceIdentity"),
    ),
    "list order, action case, condition-key case, Sids": doc(
        {
            "Sid": "SamlSignIn",
            "Action": ["STS:TagSession", "sts:assumerolewithsaml"],
            "Condition": {"StringEquals": {"saml:AUD": "https://signin.aws.amazon.com/saml"}},
            "Principal": {"Federated": PROVIDER},
            "Effect": "Allow",
        },
        {
            "Sid": "SourceIdentity",
            "Effect": "Allow",
            "Principal": {"Federated": PROVIDER},
            "Action": "sts:SetSourceIdentity",
            "Condition": {},
        },
    ),
    "a repeated statement": doc(*TRUST["Statement"], TRUST["Statement"][1]),
}


@pytest.mark.parametrize("name", EQUIVALENT)
def test_equivalent_forms(name):
    assert iam.policies_equivalent(TRUST, EQUIVALENT[name])
    assert iam.policy_differences(TRUST, EQUIVALENT[name]) == []


DIFFERENT = {
    "an action missing": (
        doc(
            statement(
                Principal={"Federated": PROVIDER},
                Action="sts:AssumeRoleWithSAML",
                Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            ),
            statement(Principal={"Federated": PROVIDER}, Action="sts:SetSourceIdentity"),
        ),
        [
            f"missing: Allow sts:tagsession for Federated {PROVIDER} when StringEquals saml:aud "
            "in ['https://signin.aws.amazon.com/saml']"
        ],
    ),
    "the condition dropped": (
        doc(
            statement(
                Principal={"Federated": PROVIDER},
                Action=["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
            )
        ),
        [
            f"missing: Allow sts:assumerolewithsaml for Federated {PROVIDER} when StringEquals "
            "saml:aud in ['https://signin.aws.amazon.com/saml']",
            f"missing: Allow sts:tagsession for Federated {PROVIDER} when StringEquals saml:aud "
            "in ['https://signin.aws.amazon.com/saml']",
            f"not in the plan: Allow sts:assumerolewithsaml for Federated {PROVIDER}",
            f"not in the plan: Allow sts:tagsession for Federated {PROVIDER}",
        ],
    ),
    "a Deny instead of an Allow": (
        doc(
            {**TRUST["Statement"][0], "Effect": "Deny"},
            TRUST["Statement"][1],
        ),
        None,
    ),
    "another version": (doc(*TRUST["Statement"], version="2008-10-17"), None),
}


@pytest.mark.parametrize("name", DIFFERENT)
def test_different_policies(name):
    actual, lines = DIFFERENT[name]

    assert not iam.policies_equivalent(TRUST, actual)
    differences = iam.policy_differences(TRUST, actual)
    assert differences
    if lines is not None:
        assert sorted(differences) == sorted(lines)


def test_missing_version_means_the_old_language():
    without = {"Statement": TRUST["Statement"]}

    assert not iam.policies_equivalent(TRUST, without)
    assert iam.policy_differences(TRUST, without) == ["Version is 2008-10-17, not 2012-10-17"]


def test_single_statement_object_and_json_text():
    policy = iam.emergency_role_permissions_policy(["arn:aws:iam::111111111111:role/X"])
    as_object = {"Version": "2012-10-17", "Statement": policy["Statement"][0]}

    assert iam.policies_equivalent(policy, as_object)
    assert iam.policies_equivalent(policy, json.dumps(as_object))
    # IAM's API returns documents URL-encoded.
    assert iam.policies_equivalent(policy, quote(json.dumps(policy)))


def test_bare_account_id_principal_is_the_accounts_root():
    root = iam.workload_role_trust_policy("arn:aws:iam::123456789012:root")
    bare = iam.workload_role_trust_policy("123456789012")

    assert iam.policies_equivalent(root, bare)
    assert not iam.policies_equivalent(root, iam.workload_role_trust_policy(ROLE))


def test_resources_keep_their_case():
    lower = iam.emergency_role_permissions_policy([ROLE.lower()])

    assert not iam.policies_equivalent(iam.emergency_role_permissions_policy([ROLE]), lower)


def test_not_elements_stay_whole():
    a = doc(statement(NotAction=["iam:*", "sts:*"], Resource="*"))
    b = doc(statement(NotAction=["sts:*", "iam:*"], Resource=["*"]))
    c = doc(statement(NotAction="iam:*", Resource="*"), statement(NotAction="sts:*", Resource="*"))

    assert iam.policies_equivalent(a, b)
    # Two NotAction statements allow far more than one with both: not the same policy.
    assert not iam.policies_equivalent(a, c)


def test_condition_values_of_other_types():
    a = doc(statement(Action="s3:GetObject", Resource="*", Condition={"Bool": {"aws:X": True}}))
    b = doc(statement(Action="s3:GetObject", Resource="*", Condition={"Bool": {"aws:X": [True]}}))

    assert iam.policies_equivalent(a, b)


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", {"Version": "2012-10-17"}, {"Statement": 3}])
def test_not_a_policy(bad):
    assert not iam.policies_equivalent(TRUST, bad)
    assert iam.policy_differences(TRUST, bad)[0].startswith("cannot be read as a policy")


def test_unique_ids_left_by_deleted_roles():
    orphaned = iam.workload_role_trust_policy("AROAQXY2EXAMPLE4ROLE1")

    assert iam.unresolved_principals(orphaned) == ["AROAQXY2EXAMPLE4ROLE1"]
    assert iam.unresolved_principals(iam.workload_role_trust_policy(ROLE)) == []
