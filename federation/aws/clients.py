"""boto3 clients for what the federation asks AWS (health probes, evidence, session
denies): the portal's one factory (``portal.core.aws``, timeouts and endpoint override)
with Identity Center's Region and the credentials for the emergency account.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from portal.core import aws

# Whatever answers AWS gives, these mean "we cannot tell" rather than "it is down".
NOT_AUTHORISED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SubscriptionRequiredException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
    }
)


def client(service: aws.Service, region: str | None = None, **credentials: Any) -> Any:
    """A client for a probe or a sweep: one attempt, the probe timeout (never hangs a worker)."""
    region = region or settings.IDENTITY_CENTER_REGION or "us-east-1"
    return aws.client(service, use="probe", region=region, **credentials)


def emergency_account_client(service: aws.Service, region: str | None = None) -> Any:
    """A client acting in the emergency account: through ``AWS_EMERGENCY_IAM_ROLE_ARN``
    when set (the portal runs elsewhere), else with the process's own credentials."""
    role_arn = settings.AWS_EMERGENCY_IAM_ROLE_ARN
    if not role_arn:
        return client(service, region)
    creds = client("sts", region).assume_role(
        RoleArn=role_arn, RoleSessionName="emergency-access-portal"
    )["Credentials"]
    return client(
        service,
        region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
