"""The failover and readiness part of the JSON API; ``portal.api`` mounts this router."""

from typing import Any

from django.http import Http404
from ninja import Router
from ninja.responses import Status

from federation.failover import checklist as return_checklist
from federation.failover import services as failover_services
from federation.failover.report import build_report
from federation.models import Failover
from federation.readiness import checks as readiness
from federation.schemas import (
    FailoverCloseIn,
    FailoverOpenIn,
    FailoverReturnIn,
    FailoverStateOut,
    ReadinessStateOut,
    RemindOut,
)
from portal.core.access import can_read_audit, can_read_plan, can_see_all_requests
from portal.core.errors import NotAllowed
from portal.core.schemas import ERRORS, ErrorOut, PathId
from portal.core.types import ApiRequest

router = Router()

# --- Failover --------------------------------------------------------------------------


def _state(failover: Failover | None, user: Any = None) -> dict[str, Any]:
    checklist = None
    if failover is not None and user is not None and can_see_all_requests(user):
        checklist = return_checklist.checklist(failover).as_dict()
    return {"failover": failover, "checklist": checklist}


@router.get("/failover", response={200: FailoverStateOut, 401: ErrorOut}, tags=["failover"])
def current_failover(request: ApiRequest) -> dict[str, Failover | None]:
    """The failover (disruption or drill) that is not closed yet, or null; approvers and
    auditors also get its return-to-normal checklist."""
    return _state(Failover.objects.select_related("opened_by").current(), request.auth)


@router.post("/failover", response={201: FailoverStateOut, **ERRORS}, tags=["failover"])
def open_failover(request: ApiRequest, payload: FailoverOpenIn) -> Status[dict[str, Any]]:
    """Declare a disruption (or start a drill): the federation app is activated."""
    failover = failover_services.open_failover(
        actor=request.auth, reason=payload.reason, drill=payload.drill
    )
    return Status(201, _state(failover))


@router.post("/failover/close", response={200: FailoverStateOut, **ERRORS}, tags=["failover"])
def close_failover(
    request: ApiRequest, payload: FailoverCloseIn | None = None
) -> dict[str, Failover | None]:
    """Step 4 of the return to normal: every request ends, the app is deactivated, every
    group emptied and the users' Okta sessions ended — now or at ``deactivate_at``.

    Waits for every emergency user to have signed out (409 with their names) unless
    ``force``, which needs a ``reason``; ``force`` also closes a failover whose return to
    normal was not started. A proposed (unconfirmed) failover is withdrawn.
    """
    payload = payload or FailoverCloseIn()
    failover = failover_services.close_failover(
        actor=request.auth,
        reason=payload.reason,
        force=payload.force,
        deactivate_at=payload.deactivate_at,
    )
    return _state(Failover.objects.filter(pk=failover.pk).first(), request.auth)


@router.post("/failover/return", response={200: FailoverStateOut, **ERRORS}, tags=["failover"])
def start_return(request: ApiRequest, payload: FailoverReturnIn | None = None) -> dict[str, Any]:
    """Steps 1 and 2 of the return to normal: Identity Center must be HEALTHY (or give
    ``override_reason``); every emergency user is told to sign out; new requests are
    refused from now on and pending ones lapse."""
    reason = (payload or FailoverReturnIn()).override_reason
    failover = failover_services.start_return(actor=request.auth, override_reason=reason)
    return _state(failover, request.auth)


@router.post("/failover/remind", response={200: RemindOut, **ERRORS}, tags=["failover"])
def remind_signed_in(request: ApiRequest) -> dict[str, list[str]]:
    """Step 3: remind everyone still signed in, now (beat also does every few minutes)."""
    return {"reminded": failover_services.remind_now(actor=request.auth)}


@router.post("/failover/confirm", response={200: FailoverStateOut, **ERRORS}, tags=["failover"])
def confirm_failover(request: ApiRequest) -> dict[str, Any]:
    """A second, different approver confirms a proposed real failover (when
    REQUIRE_FAILOVER_CONFIRMATION is on): the federation app is then activated."""
    return _state(failover_services.confirm_failover(actor=request.auth), request.auth)


@router.get(
    "/failovers/{failover_id}/report", response={200: dict[str, Any], **ERRORS}, tags=["failover"]
)
def failover_report(request: ApiRequest, failover_id: PathId) -> dict[str, Any]:
    """The failover's report: timeline, who had access to what and for how long, every
    approval, what was done outside the portal and, for a drill, what it proved."""
    if not can_read_audit(request.auth):
        raise NotAllowed("Only approvers and auditors can read failover reports.")
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None:
        raise Http404(f"Failover #{failover_id} does not exist.")
    return build_report(failover)


# --- Readiness (AWS and Okta checked against the access plan) ---------------------------


@router.get(
    "/readiness",
    response={200: ReadinessStateOut, 401: ErrorOut, 403: ErrorOut},
    tags=["readiness"],
)
def readiness_state(request: ApiRequest) -> dict[str, Any]:
    """The last readiness check (each check's result and fix) and one still running."""
    if not can_read_plan(request.auth):
        raise NotAllowed("Only approvers, auditors and admins can see readiness results.")
    return {"last": readiness.latest_finished(), "running": readiness.running()}


@router.post("/readiness/run", response={202: ReadinessStateOut, **ERRORS}, tags=["readiness"])
def readiness_run(request: ApiRequest) -> Status[dict[str, Any]]:
    """Queue a readiness check now (approvers; one at a time: 409 while one runs)."""
    run = readiness.request_run(actor=request.auth)
    return Status(202, {"last": readiness.latest_finished(), "running": run})
