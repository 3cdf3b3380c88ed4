"""The access-request part of the JSON API: roles, requests, extensions.

Every endpoint is thin: it finds what the caller may see (``visible_to``), calls
one service, and returns the result; ``portal.api`` mounts this router.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from ninja import Field, Query, Router
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.responses import Status

from federation.models import EmergencyRole
from portal.core.schemas import ERRORS, ErrorOut, PathId
from portal.core.types import ApiRequest
from requests_app import break_glass, eligibility, extensions, services
from requests_app.evidence import sign_out_status
from requests_app.models import AccessRequest, BreakGlassReview, Extension
from requests_app.schemas import (
    ApproveIn,
    BatchIn,
    BatchOut,
    BreakGlassIn,
    BulkApproveIn,
    BulkApproveOut,
    ExtendIn,
    ExtensionOut,
    ReasonIn,
    RequestFilters,
    RequestIn,
    RequestOut,
    ReviewIn,
    ReviewOut,
    RoleOut,
    SignOutOut,
)

router = Router()

# --- Access plan ------------------------------------------------------------------------


@router.get("/roles", response={200: list[RoleOut], 401: ErrorOut}, tags=["roles"])
def list_roles(request: ApiRequest) -> QuerySet[EmergencyRole]:
    """The emergency roles the caller may request: the plan's eligibility, as on the
    new-request page (an auditor may request none)."""
    roles: QuerySet[EmergencyRole] = eligibility.requestable_roles(request.auth)
    return roles


# --- Access requests -------------------------------------------------------------------


# Deeper than any real list; beyond it the database would be asked for an absurd offset.
MAX_OFFSET = 1_000_000


class RequestPagination(LimitOffsetPagination):
    class Input(LimitOffsetPagination.Input):
        limit: int = Field(default=50, ge=1, le=200)
        offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


def _visible(request: ApiRequest) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.visible_to(request.auth)
        .with_related()
        .select_related("decided_by")
        .prefetch_related(
            "extensions__approvals__approver", "extensions__requested_by", "extensions__decided_by"
        )
    )


def _get_visible(request: ApiRequest, request_id: PathId) -> AccessRequest:
    req = _visible(request).filter(pk=request_id).first()
    if req is None:
        raise Http404(f"Request #{request_id} does not exist or you cannot see it.")
    return req


@router.post("/requests", response={201: RequestOut, **ERRORS}, tags=["requests"])
def file_request(request: ApiRequest, payload: RequestIn) -> Status[AccessRequest]:
    """File a request for an emergency role; only while a failover is open."""
    role = EmergencyRole.objects.requestable().filter(pk=payload.role).first()
    if role is None:
        raise DjangoValidationError(
            {"role": [f"There is no emergency role with id {payload.role} (see GET /roles)."]}
        )
    req = services.file_request(
        requester=request.auth,
        role=role,
        justification=payload.justification,
        ticket=payload.ticket,
        duration_minutes=payload.duration_minutes,
    )
    return Status(201, _get_visible(request, req.pk))


# Before /requests/{request_id}: ninja matches that path parameter as a string.
@router.post("/requests/batch", response={201: BatchOut, **ERRORS}, tags=["requests"])
def file_batch(request: ApiRequest, payload: BatchIn) -> Status[dict[str, Any]]:
    """File one request per role with one justification: each gets its own decision."""
    found = {
        role.pk: role for role in EmergencyRole.objects.requestable().filter(pk__in=payload.roles)
    }
    missing = [str(pk) for pk in payload.roles if pk not in found]
    if missing:
        raise DjangoValidationError(
            {"roles": [f"No emergency role with id {', '.join(missing)} (see GET /roles)."]}
        )
    filed = services.file_requests(
        requester=request.auth,
        roles=[found[pk] for pk in payload.roles],
        justification=payload.justification,
        ticket=payload.ticket,
        duration_minutes=payload.duration_minutes,
    )
    requests = list(_visible(request).filter(pk__in=[r.pk for r in filed]).order_by("pk"))
    batch = str(filed[0].batch) if filed[0].batch else None
    return Status(201, {"batch": batch, "requests": requests})


# Before /requests/{request_id}, like /requests/batch.
@router.post("/requests/approve", response={200: BulkApproveOut, **ERRORS}, tags=["requests"])
def approve_requests(request: ApiRequest, payload: BulkApproveIn) -> dict[str, Any]:
    """Approve many requests at once (an incident surge). Each is decided and audited on its
    own: your own requests and ones no longer pending are refused in their result, without
    stopping the others. 403 if you are not an approver."""
    outcomes = services.approve_many(payload.ids, actor=request.auth, comment=payload.comment)
    return {"results": [vars(outcome) for outcome in outcomes]}


@router.get("/requests", response={200: list[RequestOut], **ERRORS}, tags=["requests"])
@paginate(RequestPagination)
def list_requests(request: ApiRequest, filters: Query[RequestFilters]) -> QuerySet[AccessRequest]:
    """Requests you can see, newest first: your own, or all of them for approvers and auditors."""
    found = _visible(request)
    if filters.status is not None:
        found = found.filter(status=filters.status)
    if filters.mine:
        found = found.filter(requester=request.auth)
    return found


@router.get("/requests/{request_id}", response={200: RequestOut, **ERRORS}, tags=["requests"])
def get_request(request: ApiRequest, request_id: PathId) -> AccessRequest:
    """One request, with its approvals; 404 when it is not yours to see."""
    return _get_visible(request, request_id)


def _act(
    request: ApiRequest, request_id: PathId, action: Callable[..., Any], **kwargs: str
) -> AccessRequest:
    action(_get_visible(request, request_id), actor=request.auth, **kwargs)
    return _get_visible(request, request_id)


@router.post(
    "/requests/{request_id}/approve", response={200: RequestOut, **ERRORS}, tags=["requests"]
)
def approve_request(
    request: ApiRequest, request_id: PathId, payload: ApproveIn | None = None
) -> AccessRequest:
    """Add your approval; the request is approved once its level has enough approvers."""
    return _act(request, request_id, services.approve, comment=(payload or ApproveIn()).comment)


@router.post("/requests/{request_id}/deny", response={200: RequestOut, **ERRORS}, tags=["requests"])
def deny_request(
    request: ApiRequest, request_id: PathId, payload: ReasonIn | None = None
) -> AccessRequest:
    """Turn a pending request down; the reason is shown to the requester."""
    return _act(request, request_id, services.deny, reason=(payload or ReasonIn()).reason)


@router.post(
    "/requests/{request_id}/cancel", response={200: RequestOut, **ERRORS}, tags=["requests"]
)
def cancel_request(
    request: ApiRequest, request_id: PathId, payload: ReasonIn | None = None
) -> AccessRequest:
    """Withdraw your own pending request."""
    return _act(request, request_id, services.cancel, reason=(payload or ReasonIn()).reason)


@router.post(
    "/requests/{request_id}/revoke", response={200: RequestOut, **ERRORS}, tags=["requests"]
)
def revoke_request(
    request: ApiRequest, request_id: PathId, payload: ReasonIn | None = None
) -> AccessRequest:
    """End granted access early; the member is removed from the Okta group."""
    return _act(request, request_id, services.revoke, reason=(payload or ReasonIn()).reason)


@router.post(
    "/requests/{request_id}/signed-out", response={200: SignOutOut, **ERRORS}, tags=["requests"]
)
def confirm_signed_out(request: ApiRequest, request_id: PathId) -> dict[str, Any]:
    """Say you have signed out of the AWS console (your own granted requests only).

    The answer is the sign-out evidence the portal now holds for the grant.
    """
    req = services.confirm_signed_out(_get_visible(request, request_id), request.auth)
    status = sign_out_status(req)
    return {
        "request_id": req.pk,
        "signed_out": status.signed_out,
        "how": status.how,
        "at": status.at,
        "last_sign_in": status.last_sign_in,
        "console_session_ends_by": status.console_session_ends_by,
    }


# --- Several roles at once, extensions ---------------------------------------------------


def _extension(request: ApiRequest, request_id: PathId, extension_id: PathId) -> Any:
    req = _get_visible(request, request_id)
    ext = Extension.objects.filter(pk=extension_id, request=req).first()
    if ext is None:
        raise Http404(f"Request #{request_id} has no extension #{extension_id}.")
    return ext


def _extension_out(ext_id: int) -> Any:
    return (
        Extension.objects.select_related("requested_by", "decided_by")
        .prefetch_related("approvals__approver")
        .get(pk=ext_id)
    )


@router.post(
    "/requests/{request_id}/extend", response={201: ExtensionOut, **ERRORS}, tags=["requests"]
)
def extend_request(request: ApiRequest, request_id: PathId, payload: ExtendIn) -> Status[Any]:
    """Ask for more time on your active grant; one approver decides; the level's maximum
    bounds the total."""
    ext = extensions.request_extension(
        _get_visible(request, request_id),
        actor=request.auth,
        minutes=payload.minutes,
        justification=payload.justification,
    )
    return Status(201, _extension_out(ext.pk))


@router.post(
    "/requests/{request_id}/extensions/{extension_id}/approve",
    response={200: ExtensionOut, **ERRORS},
    tags=["requests"],
)
def approve_extension(
    request: ApiRequest, request_id: PathId, extension_id: PathId, payload: ApproveIn | None = None
) -> Any:
    """Approve an extension: the grant's end moves by its minutes."""
    ext = _extension(request, request_id, extension_id)
    extensions.approve_extension(ext, actor=request.auth, comment=(payload or ApproveIn()).comment)
    return _extension_out(ext.pk)


@router.post(
    "/requests/{request_id}/extensions/{extension_id}/deny",
    response={200: ExtensionOut, **ERRORS},
    tags=["requests"],
)
def deny_extension(
    request: ApiRequest, request_id: PathId, extension_id: PathId, payload: ReasonIn | None = None
) -> Any:
    """Turn an extension down; the grant ends at its current time."""
    ext = _extension(request, request_id, extension_id)
    extensions.deny_extension(ext, actor=request.auth, reason=(payload or ReasonIn()).reason)
    return _extension_out(ext.pk)


@router.post(
    "/requests/{request_id}/extensions/{extension_id}/cancel",
    response={200: ExtensionOut, **ERRORS},
    tags=["requests"],
)
def cancel_extension(request: ApiRequest, request_id: PathId, extension_id: PathId) -> Any:
    """Withdraw your own pending extension."""
    ext = _extension(request, request_id, extension_id)
    extensions.cancel_extension(ext, actor=request.auth)
    return _extension_out(ext.pk)


# --- Break-glass ----------------------------------------------------------------------------


@router.post(
    "/requests/{request_id}/break-glass", response={200: RequestOut, **ERRORS}, tags=["requests"]
)
def break_glass_request(request: ApiRequest, request_id: int, payload: BreakGlassIn) -> Any:
    """Nobody decided your pending request in time: activate it yourself (only while a
    failover is active, on a level whose plan allows it, after its wait). Every approver is
    alerted, the grant is time-capped, and two approvers review it afterwards."""
    break_glass.activate(
        _get_visible(request, request_id),
        actor=request.auth,
        confirmation=payload.confirmation,
        ticket=payload.ticket,
    )
    return _get_visible(request, request_id)


@router.post(
    "/requests/{request_id}/review", response={200: ReviewOut, **ERRORS}, tags=["requests"]
)
def review_break_glass(request: ApiRequest, request_id: int, payload: ReviewIn) -> Any:
    """Accept or flag a break-glass grant (approvers other than the requester; two accepts
    accept it, one flag flags it and alerts staff)."""
    review = break_glass.review(
        _get_visible(request, request_id),
        actor=request.auth,
        verdict=payload.verdict,
        comment=payload.comment,
    )
    return BreakGlassReview.objects.prefetch_related("verdicts__reviewer").get(pk=review.pk)
