"""The demo's AWS: a correct emergency-access set-up in a moto server, built from the
rendered plan (what deploying the two CloudFormation templates creates), so the
readiness checks pass in ``make demo`` and can be made to fail by changing it.

Every account is reached the way readiness reaches it: ``sts.assume_role`` into the
account's audit role (moto hands out credentials of that account whether or not the
role exists), so seeding works for any account id. Demo and tests only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation.plan import iam

AUDIT_ROLE_NAME = "EmergencyAccessAudit"

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def certificate(days: int) -> str:
    """A self-signed signing certificate valid for ``days`` more days, base64 DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox-okta-signing")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def metadata(cert_days: int = 365) -> str:
    """IdP metadata as Okta's AWS app publishes it (shape only; > 1000 chars as IAM wants)."""
    sso = "https://sandbox.okta.com/app/amazon_aws/exk0sandbox0aws0fed01/sso/saml"
    bindings = "urn:oasis:names:tc:SAML:2.0:bindings"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    entityID="http://www.okta.com/exk0sandbox0aws0fed01">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data>
          <ds:X509Certificate>{certificate(cert_days)}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="{bindings}:HTTP-POST" Location="{sso}"/>
    <md:SingleSignOnService Binding="{bindings}:HTTP-Redirect" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


def iam_of(endpoint: str, account_id: str) -> Any:
    """An IAM client acting in ``account_id`` (through its audit role, as readiness does)."""
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        # Explicit: the calling process's environment stays without AWS credentials.
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 -- moto's fixed demo credentials
    )
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{AUDIT_ROLE_NAME}",
        RoleSessionName="demo-seeding",
    )["Credentials"]
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def seed(endpoint: str, plan: iam.RenderedPlan, *, cert_days: int = 365) -> None:
    """What deploying the two CloudFormation templates creates (without CloudFormation)."""
    emergency = iam_of(endpoint, plan.emergency_account_id)
    emergency.create_saml_provider(
        Name=plan.saml_provider_name, SAMLMetadataDocument=metadata(cert_days)
    )
    for role in plan.emergency_roles:
        create_emergency_role(emergency, role)
    for account_id in dict.fromkeys(role.account_id for role in plan.workload_roles):
        client = iam_of(endpoint, account_id)
        for workload_role in plan.workload_roles_of(account_id):
            create_workload_role(client, workload_role)


def create_emergency_role(client: Any, role: iam.EmergencyRoleDocs) -> None:
    client.create_role(
        RoleName=role.role_name,
        AssumeRolePolicyDocument=json.dumps(role.trust_policy),
        MaxSessionDuration=role.max_session_duration,
    )
    client.put_role_policy(
        RoleName=role.role_name,
        PolicyName="AssumeWorkloadRole",
        PolicyDocument=json.dumps(role.permissions_policy),
    )


def create_workload_role(client: Any, role: iam.WorkloadRoleDocs) -> None:
    client.create_role(
        RoleName=role.role_name, AssumeRolePolicyDocument=json.dumps(role.trust_policy)
    )
    client.attach_role_policy(RoleName=role.role_name, PolicyArn=role.managed_policy_arn)


def delete_role(client: Any, name: str) -> None:
    """Delete a role with its policies (IAM refuses to delete a role that has any)."""
    for policy in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        client.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy in client.list_role_policies(RoleName=name)["PolicyNames"]:
        client.delete_role_policy(RoleName=name, PolicyName=policy)
    client.delete_role(RoleName=name)


# --- Drift for the demo controls: one workload role goes missing, then comes back ----------


def _drifting_role(plan: iam.RenderedPlan) -> iam.WorkloadRoleDocs:
    return plan.workload_roles[-1]


def break_readiness(endpoint: str, plan: iam.RenderedPlan) -> str:
    """Delete one workload role (as a careless change in AWS would); returns its ARN."""
    role = _drifting_role(plan)
    client = iam_of(endpoint, role.account_id)
    if role.role_name in {r["RoleName"] for r in client.list_roles()["Roles"]}:
        delete_role(client, role.role_name)
    return role.role_arn


def repair_readiness(endpoint: str, plan: iam.RenderedPlan) -> str:
    role = _drifting_role(plan)
    client = iam_of(endpoint, role.account_id)
    if role.role_name not in {r["RoleName"] for r in client.list_roles()["Roles"]}:
        create_workload_role(client, role)
    return role.role_arn
