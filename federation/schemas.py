"""The JSON API's shapes for the failover and readiness (``/api/v1/failover``, ``/readiness``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema
from pydantic import AwareDatetime, StrictBool

from federation.models import Failover, FailoverStatus
from federation.readiness.checks import exit_status
from portal.core.schemas import NonBlank, ShortText, StrictInput
from requests_app.models import Status


class ReadinessCheckOut(Schema):
    name: str = Field(description="The check, e.g. aws.emergency_role_trust or okta.group_members.")
    status: str = Field(description="pass | warn | fail | unknown (could not check)")
    area: str
    subject: str = Field(description="What was checked: a role ARN, a group name, the app.")
    detail: str
    fix: str = Field(description="What to do when it does not pass.")


class ReadinessRunOut(Schema):
    id: int
    status: str = Field(description="running | pass | warn | fail | unknown")
    trigger: str = Field(description="schedule | manual | command")
    requested_by: str | None = Field(default=None, alias="requested_by.username")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict[str, int]
    exit_status: int | None = Field(
        description="What manage.py verify_readiness exits with: 0 pass, 1 fail, 2 unknown."
    )
    results: list[ReadinessCheckOut]

    @staticmethod
    def resolve_exit_status(run: object) -> int | None:
        status = getattr(run, "status", "running")
        return None if status == "running" else exit_status(status)


class ReadinessStateOut(Schema):
    last: ReadinessRunOut | None = Field(description="The last finished check, or null.")
    running: ReadinessRunOut | None = Field(description="A check in progress, or null.")


# --- Failover --------------------------------------------------------------------------


class FailoverOut(Schema):
    id: int
    status: FailoverStatus
    drill: bool
    reason: str
    opened_by: str
    opened_at: dt.datetime
    app_activated_at: dt.datetime | None
    close_requested_at: dt.datetime | None
    closed_at: dt.datetime | None
    last_error: str
    active_grants: int = Field(description="Requests whose access is live now.")

    @staticmethod
    def resolve_drill(obj: Failover) -> bool:
        return obj.is_drill

    @staticmethod
    def resolve_opened_by(obj: Failover) -> str:
        return obj.opened_by.get_username()

    @staticmethod
    def resolve_active_grants(obj: Failover) -> int:
        return obj.requests.filter(status=Status.ACTIVE).count()


class FailoverStateOut(Schema):
    failover: FailoverOut | None = Field(description="The failover not yet closed, or null.")
    checklist: dict[str, Any] | None = Field(
        default=None,
        description="The return-to-normal checklist (approvers and auditors): Identity "
        "Center health, the five steps with their state, every emergency user with their "
        "sign-out evidence, the scheduled deactivation.",
    )


class FailoverOpenIn(StrictInput):
    reason: NonBlank = Field(description="Why federation is switched on (incident reference).")
    drill: StrictBool = Field(default=False, description="A periodic test of the plumbing.")


class FailoverCloseIn(StrictInput):
    reason: ShortText = ""
    force: StrictBool = Field(
        default=False,
        description="Close without waiting for every emergency user to sign out (or without "
        "the return to normal); a reason is required.",
    )
    deactivate_at: AwareDatetime | None = Field(
        default=None,
        description="Deactivate the app and empty the groups at this time (ISO 8601 with a "
        "time zone) instead of now; the guide prefers after working hours.",
    )


class FailoverReturnIn(StrictInput):
    override_reason: ShortText = Field(
        default="", description="Required when Identity Center is not HEALTHY: why return anyway."
    )


class RemindOut(Schema):
    reminded: list[str] = Field(description="Usernames still signed in who were reminded.")
