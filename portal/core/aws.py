"""The one boto3 client factory: every AWS client the portal makes comes from here, with
the timeouts and retries of its use and the endpoint override (``AWS_ENDPOINT_URL``:
a moto server in tests and the demo).

In the kernel because the audit log's checkpoints (a cross-cutting part) write to S3
too; what the federation asks AWS goes through ``federation.aws.clients``.
"""

from __future__ import annotations

from typing import Any, Literal

import boto3
from botocore.config import Config
from django.conf import settings

# probe: health probes, evidence and session denies -- one attempt with the probe timeout,
#   the next poll or sweep is the retry (and a probe's latency must be its own);
# readiness: a daily check can afford a few retries (a transient error must not read as drift);
# checkpoint: the audit checkpoint store, retried by AWS's standard mode and then by the task.
Use = Literal["probe", "readiness", "checkpoint"]
# The AWS services the portal talks to (boto3-stubs checks the names).
Service = Literal[
    "iam", "sts", "sso-admin", "identitystore", "health", "cloudtrail", "s3", "events"
]


def _config(use: Use) -> Config:
    if use == "probe":
        timeout = settings.HEALTH_PROBE_TIMEOUT_SECONDS
        return Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}
        )
    return Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard"})


def client(service: Service, *, use: Use, region: str | None = None, **credentials: Any) -> Any:
    """A boto3 client for ``service`` configured for ``use``."""
    return boto3.session.Session().client(
        service,
        region_name=region,  # None: boto3's own chain (AWS_DEFAULT_REGION, profile)
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
        config=_config(use),
        **credentials,
    )
