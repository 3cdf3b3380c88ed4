"""boto3 clients for what the portal itself asks AWS (health probes, evidence, session denies).

One place sets the timeouts (a probe must never hang a worker), the endpoint
override (``AWS_ENDPOINT_URL``: a moto server in tests and the demo) and the
credentials for the emergency account.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from django.conf import settings

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


def _config() -> Config:
    timeout = settings.HEALTH_PROBE_TIMEOUT_SECONDS
    # One attempt: the next poll is the retry, and a probe's latency must be its own.
    return Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})


def client(service: str, region: str | None = None, **credentials: Any) -> Any:
    """A boto3 client with the portal's timeouts and endpoint override."""
    return boto3.session.Session().client(
        service,
        region_name=region or settings.IDENTITY_CENTER_REGION or "us-east-1",
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
        config=_config(),
        **credentials,
    )


def emergency_account_client(service: str, region: str | None = None) -> Any:
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
