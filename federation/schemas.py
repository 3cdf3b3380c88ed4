"""The JSON API's shapes for readiness (``GET /api/v1/readiness``)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


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
    requested_by: str | None = Field(None, alias="requested_by.username")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict[str, int]
    exit_status: int | None = Field(
        description="What manage.py verify_readiness exits with: 0 pass, 1 fail, 2 unknown."
    )
    results: list[ReadinessCheckOut]

    @staticmethod
    def resolve_exit_status(run: object) -> int | None:
        from federation.readiness.checks import exit_status

        status = getattr(run, "status", "running")
        return None if status == "running" else exit_status(status)


class ReadinessStateOut(Schema):
    last: ReadinessRunOut | None = Field(description="The last finished check, or null.")
    running: ReadinessRunOut | None = Field(description="A check in progress, or null.")
