"""The shapes of the JSON API (``/api/v1``): what goes in, what comes out.

Inputs are strict (a number must be a JSON number, unknown fields are refused)
so a typo in an automation script fails loudly with a 400 instead of doing
something else. Outputs read straight from the model instances.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import ConfigDict, StrictBool, StrictInt, StrictStr, StringConstraints

from federation.models import EmergencyRole, Failover, FailoverStatus
from requests_app.models import AccessRequest, Status

Text = Annotated[StrictStr, StringConstraints(max_length=5000)]
ShortText = Annotated[StrictStr, StringConstraints(max_length=2000)]
NonBlank = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]


class StrictInput(Schema):
    model_config = ConfigDict(extra="forbid")


# --- Errors ----------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str = Field(description="What went wrong, for a person to read.")
    errors: dict[str, list[str]] | None = Field(
        None,
        description='Field name -> messages; "__all__" for errors not tied to one field.',
    )


# --- The access plan -------------------------------------------------------------------


def _account_id(role: EmergencyRole) -> str:
    return role.workload_account.account_id


def _account_name(role: EmergencyRole) -> str:
    return role.workload_account.name


def _level(role: EmergencyRole) -> str:
    return role.level.name


def _okta_group(role: EmergencyRole) -> str:
    return role.okta_group_name


class RequestRoleOut(Schema):
    """The role a request is for."""

    id: int
    role_name: str = Field(description="The IAM role in the emergency account.")
    okta_group: str = Field(description="The Okta group that grants the role.")
    account_id: str = Field(description="The 12-digit workload account id.")
    account_name: str
    level: str = Field(description="The access level, e.g. RO or Ops.")

    resolve_okta_group = staticmethod(_okta_group)
    resolve_account_id = staticmethod(_account_id)
    resolve_account_name = staticmethod(_account_name)
    resolve_level = staticmethod(_level)


class RoleOut(RequestRoleOut):
    """An emergency role that can be requested: one workload account at one level."""

    max_duration_minutes: int
    approvals_required: int

    @staticmethod
    def resolve_max_duration_minutes(obj: EmergencyRole) -> int:
        return obj.level.max_duration_minutes

    @staticmethod
    def resolve_approvals_required(obj: EmergencyRole) -> int:
        return obj.level.approvals_required


# --- Access requests -------------------------------------------------------------------


class UserOut(Schema):
    username: str
    email: str


class ApprovalOut(Schema):
    approver: str
    comment: str
    at: dt.datetime


class RequestOut(Schema):
    id: int
    status: Status
    status_label: str
    requester: UserOut
    role: RequestRoleOut
    justification: str
    ticket: str
    duration_minutes: int
    approvals: list[ApprovalOut]
    approvals_required: int
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None = Field(description="Username of the approver who decided.")
    decision_comment: str
    activated_at: dt.datetime | None = Field(description="When Okta confirmed the membership.")
    expires_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str
    last_error: str = Field(description="The last Okta error while granting, if any.")
    failover_id: int

    @staticmethod
    def resolve_status_label(obj: AccessRequest) -> str:
        return obj.get_status_display()

    @staticmethod
    def resolve_approvals(obj: AccessRequest) -> list[dict[str, Any]]:
        return [
            {"approver": a.approver.get_username(), "comment": a.comment, "at": a.created_at}
            for a in obj.approvals.all()
        ]

    @staticmethod
    def resolve_approvals_required(obj: AccessRequest) -> int:
        return obj.role.level.approvals_required

    @staticmethod
    def resolve_decided_by(obj: AccessRequest) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by is not None else None


class RequestIn(StrictInput):
    role: StrictInt = Field(description="The id of an emergency role (see GET /roles).")
    justification: Text = Field(description="Why you need emergency access (a sentence).")
    ticket: Annotated[StrictStr, StringConstraints(max_length=128)] = Field(
        description="The ticket or incident reference."
    )
    duration_minutes: StrictInt = Field(description="At most the level's maximum.")


class ApproveIn(StrictInput):
    comment: ShortText = ""


class ReasonIn(StrictInput):
    reason: ShortText = ""


class RequestFilters(Schema):
    status: Status | None = Field(None, description="Only requests in this state.")
    mine: bool = Field(False, description="Only requests I filed.")


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


class FailoverOpenIn(StrictInput):
    reason: Annotated[NonBlank, StringConstraints(max_length=2000)] = Field(
        description="Why federation is switched on (incident reference)."
    )
    drill: StrictBool = Field(False, description="A periodic test of the plumbing.")


class FailoverCloseIn(StrictInput):
    reason: ShortText = ""
