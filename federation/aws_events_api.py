"""``POST /api/v1/aws-events``: EventBridge's API destination delivers emergency-role uses.

Not a person's endpoint: no API token or session is accepted, only the connection
secret EventBridge sends in ``settings.AWS_EVENTS_HEADER`` (the CloudFormation
templates' ``AWS::Events::Connection``). The secret is compared as a SHA-256 digest in
constant time; the settings may hold only that digest (``AWS_EVENTS_SECRET_SHA256``).
Each event is recorded once (CloudTrail's ``eventID``): a redelivery answers 200 and
changes nothing. See docs/aws-alarms.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import AuthenticationError
from ninja.security import APIKeyHeader
from pydantic import ConfigDict

from federation.evidence_models import AwsRoleUse
from federation.monitor import role_use
from portal.core.schemas import ERRORS

router = Router(tags=["aws-events"])

# What authentication returns: the caller is AWS, not a portal user.
AWS_CALLER = "aws-eventbridge"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def secret_digest() -> bytes | None:
    """The connection secret's SHA-256, from whichever setting holds it (None: not set)."""
    if settings.AWS_EVENTS_SECRET_SHA256:
        return bytes.fromhex(settings.AWS_EVENTS_SECRET_SHA256)
    if settings.AWS_EVENTS_SECRET:
        return _digest(settings.AWS_EVENTS_SECRET)
    return None


class ConnectionSecretAuth(APIKeyHeader):
    """The EventBridge connection's API-key header; never logged, compared in constant time."""

    param_name = settings.AWS_EVENTS_HEADER

    def authenticate(self, request: HttpRequest, key: str | None) -> Any | None:
        expected = secret_digest()
        if expected is None:
            raise AuthenticationError(
                message="AWS events are not configured here (AWS_EVENTS_SECRET is not set)."
            )
        # Digests of equal length: the comparison time says nothing about the secret.
        if not key or not hmac.compare_digest(_digest(key), expected):
            raise AuthenticationError(
                message=f"Send the EventBridge connection secret in {self.param_name}."
            )
        return AWS_CALLER


class CloudTrailDetail(Schema):
    """The CloudTrail record EventBridge carries in ``detail`` (fields the portal reads;
    any other field is kept as it came)."""

    model_config = ConfigDict(extra="allow")

    eventID: str = Field(min_length=1, max_length=200)
    eventName: str = Field(min_length=1, max_length=64)
    eventTime: dt.datetime
    eventSource: str = Field(min_length=1, max_length=128)
    awsRegion: str = Field(default="", max_length=32)
    recipientAccountId: str = Field(default="", pattern=r"^(\d{12})?$")
    sourceIPAddress: str = Field(default="", max_length=256)
    errorCode: str | None = None
    userIdentity: dict[str, Any] = Field(default_factory=dict)
    requestParameters: dict[str, Any] | None = None
    responseElements: dict[str, Any] | None = None


class AwsEventIn(Schema):
    """An EventBridge event (its envelope) whose ``detail`` is a CloudTrail record."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: str = Field(min_length=1, max_length=8)
    id: str = Field(min_length=1, max_length=200)
    detail_type: Literal["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"] = (
        Field(alias="detail-type")
    )
    source: str = Field(pattern=r"^aws\.[a-z0-9-]+$")
    account: str = Field(pattern=r"^\d{12}$")
    time: dt.datetime
    region: str = Field(min_length=1, max_length=32)
    resources: list[str] = Field(default_factory=list)
    detail: CloudTrailDetail


class AwsEventOut(Schema):
    result: str = Field(
        description="recorded | duplicate (seen before: nothing changed) | "
        "ignored (not a successful use of an emergency role)"
    )
    alert: str = Field(description="'' (matched a grant), unmatched or no_failover")
    grant_id: int | None = None


@router.post(
    "/aws-events",
    response={200: AwsEventOut, **ERRORS},
    auth=ConnectionSecretAuth(),
)
def receive_aws_event(request: HttpRequest, payload: AwsEventIn) -> dict[str, Any]:
    """EventBridge delivers one CloudTrail record of an emergency role being used
    (``AssumeRoleWithSAML``, ``ConsoleLogin``, ``AssumeRole``). It is matched to an
    active grant; an unmatched use, or any use with no failover open, raises an alert.
    Authenticated with the connection secret, not a user's token; replay-safe."""
    record = payload.detail.model_dump(mode="python")
    if not record.get("recipientAccountId"):
        record["recipientAccountId"] = payload.account
    use = role_use.from_cloudtrail(record)
    if use is None:
        return {"result": "ignored", "alert": "", "grant_id": None}
    row = role_use.record_use(
        use,
        source=role_use.EVENTBRIDGE,
        detail={"eventbridge_id": payload.id, "detail_type": payload.detail_type},
    )
    if row is None:
        row = AwsRoleUse.objects.get(event_id=use.event_id[:200])
        return {"result": "duplicate", "alert": row.alert, "grant_id": row.grant_id}
    return {"result": "recorded", "alert": row.alert, "grant_id": row.grant_id}
