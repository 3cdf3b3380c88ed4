"""The shapes of the JSON API (``/api/v1``): what goes in, what comes out.

Inputs are strict (a number must be a JSON number, unknown fields are refused)
so a typo in an automation script fails loudly with a 400 instead of doing
something else. Outputs read straight from the model instances.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from annotated_types import Len
from ninja import Field, Schema

from federation.models import EmergencyRole
from portal.core.schemas import Id, Line, Minutes, ShortText, StrictInput, Text
from requests_app.models import AccessRequest, Status

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


class ExtensionOut(Schema):
    id: int
    request_id: int
    status: str
    minutes: int
    justification: str
    requested_by: str
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_comment: str
    approvals: list[ApprovalOut]
    new_expires_at: dt.datetime | None

    @staticmethod
    def resolve_requested_by(obj: Any) -> str:
        name: str = obj.requested_by.get_username()
        return name

    @staticmethod
    def resolve_decided_by(obj: Any) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by is not None else None

    @staticmethod
    def resolve_approvals(obj: Any) -> list[dict[str, Any]]:
        return [
            {"approver": a.approver.get_username(), "comment": a.comment, "at": a.created_at}
            for a in obj.approvals.all()
        ]


class RequestOut(Schema):
    id: int
    status: Status
    status_label: str
    requester: UserOut
    okta_login: str = Field(description="The Okta account that receives the access.")
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
    batch: str | None = Field(default=None, description="Shared by requests filed together.")
    granted_minutes: int = Field(
        default=0, description="The requested duration plus every approved extension."
    )
    extensions: list[ExtensionOut] = Field(default_factory=list)
    break_glass: bool = Field(
        default=False, description="Activated by the requester through break-glass."
    )

    @staticmethod
    def resolve_batch(obj: AccessRequest) -> str | None:
        return str(obj.batch) if obj.batch else None

    @staticmethod
    def resolve_granted_minutes(obj: AccessRequest) -> int:
        return obj.duration_minutes + sum(
            x.minutes for x in obj.extensions.all() if x.status == "approved"
        )

    @staticmethod
    def resolve_extensions(obj: AccessRequest) -> list[Any]:
        return list(obj.extensions.all())

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
    role: Id = Field(description="The id of an emergency role (see GET /roles).")
    justification: Text = Field(description="Why you need emergency access (a sentence).")
    ticket: Line = Field(description="The ticket or incident reference.")
    duration_minutes: Minutes = Field(description="At most the level's maximum.")


class ApproveIn(StrictInput):
    comment: ShortText = ""


class ReasonIn(StrictInput):
    reason: ShortText = ""


class RequestFilters(Schema):
    status: Status | None = Field(default=None, description="Only requests in this state.")
    mine: bool = Field(default=False, description="Only requests I filed.")


class SignOutOut(Schema):
    """Whether the grant's holder has signed out of AWS, and what that rests on."""

    request_id: int
    signed_out: bool
    how: str = Field(
        description='"self-reported", "okta-session-ended", "session-expired", '
        '"sessions-revoked", or "" while there is no sign-out evidence.'
    )
    at: dt.datetime | None = Field(description="When they signed out, by that evidence.")
    last_sign_in: dt.datetime | None = Field(
        description="The last sign-in to AWS seen (Okta System Log or CloudTrail)."
    )
    console_session_ends_by: dt.datetime | None = Field(
        description="The latest an open console session can last: last sign-in plus the "
        "plan's SAML SessionDuration."
    )


# --- Several roles at once, extensions ------------------------------------------------


class BatchIn(StrictInput):
    roles: Annotated[list[Id], Len(min_length=1, max_length=20)] = Field(
        description="Ids of emergency roles (see GET /roles); one request per role."
    )
    justification: Text = Field(description="Why you need emergency access (a sentence).")
    ticket: Line = Field(description="The ticket or incident reference.")
    duration_minutes: Minutes = Field(description="At most each level's maximum.")


class BatchOut(Schema):
    batch: str | None = Field(description="Groups the requests filed together.")
    requests: list[RequestOut]


class ExtendIn(StrictInput):
    minutes: Minutes = Field(
        description="How many more minutes (the level's maximum bounds the total)."
    )
    justification: Text = Field(description="Why you need more time (a sentence).")


# --- Break-glass ----------------------------------------------------------------------


class BreakGlassIn(StrictInput):
    confirmation: Line = Field(description='The phrase "break glass #<request id>", typed out.')
    ticket: Line = Field(description="The ticket or incident reference.")


class ReviewIn(StrictInput):
    verdict: Literal["accept", "flag"] = Field(
        description="accept, or flag (with a comment saying what is wrong)."
    )
    comment: ShortText = ""


class VerdictOut(Schema):
    reviewer: str
    verdict: str
    comment: str
    at: dt.datetime


class ReviewOut(Schema):
    """The post-hoc review of a break-glass grant."""

    request_id: int
    status: str = Field(description="open, accepted or flagged.")
    opened_at: dt.datetime
    due_at: dt.datetime
    closed_at: dt.datetime | None
    verdicts: list[VerdictOut]

    @staticmethod
    def resolve_verdicts(obj: Any) -> list[dict[str, Any]]:
        return [
            {
                "reviewer": v.reviewer.get_username(),
                "verdict": v.verdict,
                "comment": v.comment,
                "at": v.created_at,
            }
            for v in obj.verdicts.all()
        ]


# --- Bulk approval (an incident surge) ----------------------------------------------------


class BulkApproveIn(StrictInput):
    ids: Annotated[list[Id], Len(min_length=1, max_length=500)] = Field(
        description="Ids of the requests to approve (at most 500); each is decided on its own."
    )
    comment: ShortText = ""


class BulkApproveResultOut(Schema):
    id: int
    approved: bool = Field(description="Your approval was recorded.")
    status: str = Field(description='The request\'s status afterwards ("" if it does not exist).')
    error: str = Field(description="Why it was refused, when it was.")


class BulkApproveOut(Schema):
    results: list[BulkApproveResultOut]
