"""The JSON API, mounted at ``/api/v1/`` (OpenAPI document at ``/api/v1/openapi.json``).

Authentication: ``Authorization: Bearer <personal API token>`` (tokens are made on
the portal's /tokens/ page or with ``manage.py create_api_token``), or the
browser's portal session, which must send the CSRF token on unsafe methods.

Every endpoint is thin: it finds what the caller may see (``visible_to``), calls
one service, and returns the result. The services check who may do what and
are the only code that changes state or writes the audit log; their refusals
become HTTP statuses in the exception handlers below.
"""

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.responses import Status
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from federation.failover import services as failover_services
from federation.models import EmergencyRole, Failover
from federation.schemas import ReadinessStateOut
from portal.accounts import tokens
from portal.core.access import can_read_audit, can_read_plan, can_see_all_requests, can_write
from portal.core.errors import DomainError, NotAllowed
from requests_app import services
from requests_app.models import AccessRequest
from requests_app.schemas import (
    ApproveIn,
    BatchIn,
    BatchOut,
    BulkApproveIn,
    BulkApproveOut,
    ErrorOut,
    ExtendIn,
    ExtensionOut,
    FailoverCloseIn,
    FailoverOpenIn,
    FailoverReturnIn,
    FailoverStateOut,
    ReasonIn,
    RemindOut,
    RequestFilters,
    RequestIn,
    RequestOut,
    RoleOut,
    SignOutOut,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# --- Authentication --------------------------------------------------------------------


def _authorize(request: HttpRequest, user: Any) -> Any:
    """Read-only portal roles (auditors) get a 403 on every unsafe method, whatever the body."""
    if request.method not in SAFE_METHODS and not can_write(user):
        raise NotAllowed("Your portal role is read-only: it cannot change anything.")
    return user


class ApiTokenAuth(HttpBearer):
    """``Authorization: Bearer eap_…``: a personal API token, acting as its owner."""

    def __call__(self, request: HttpRequest) -> Any | None:
        # ninja's own __call__ logs the whole header in DEBUG; a token must never be logged.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        user = tokens.authenticate(token)
        if user is None:
            raise AuthenticationError(message="The API token is invalid or has been revoked.")
        return _authorize(request, user)


class SessionCsrfAuth(APIKeyCookie):
    """The browser's portal session; unsafe methods must carry Django's CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # CSRF is checked in authenticate(), and only for a logged-in user, so a
        # client without any credentials gets a 401 rather than a CSRF 403.
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise HttpError(
                403,
                "CSRF check failed: send the X-CSRFToken header with the session, "
                "or use an API token.",
            )
        return _authorize(request, user)


api = NinjaAPI(
    title="Emergency Access Portal",
    version="1",
    description=(
        "Request, approve and end emergency AWS access during an IAM Identity Center "
        "disruption. Authenticate with `Authorization: Bearer <token>`; create a personal "
        "token on the portal's API tokens page. A token has exactly its owner's permissions."
    ),
    openapi_url="/openapi.json",
    # The document is public (it holds no data). Swagger UI is served from ninja's
    # bundled static files, never a CDN; without "ninja" in INSTALLED_APPS ninja
    # would fall back to a CDN, so the docs page is off then.
    docs_url="/docs" if "ninja" in settings.INSTALLED_APPS else None,
    auth=[ApiTokenAuth(), SessionCsrfAuth()],
)

# --- Errors: one JSON shape, {"detail": "...", "errors": {"field": ["message"]}} --------

ERRORS: dict[int, Any] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}
_SOURCES = {"body", "query", "path", "header", "cookie", "form"}
_PARAMS = {"payload", "filters"}  # the parameter names the endpoints below use
_FRIENDLY = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
    "model_attributes_type": "The body must be a JSON object.",
    "dict_type": "The body must be a JSON object.",
}


def _error(
    request: HttpRequest, status: int, detail: str, errors: dict[str, list[str]] | None = None
) -> HttpResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return api.create_response(request, body, status=status)


def _field_name(loc: list[Any] | tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    if parts and parts[0] in _PARAMS:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "__all__"


def _summary(errors: dict[str, list[str]]) -> str:
    """One line for ``detail``; the field-by-field messages are in ``errors``."""
    if "__all__" in errors:
        return errors["__all__"][0]
    if len(errors) == 1:
        [(field, messages)] = errors.items()
        return f"{field}: {' '.join(messages)}"
    return f"Invalid input in {', '.join(errors)}; see errors."


@api.exception_handler(NinjaValidationError)
def _invalid_input(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for err in exc.errors:
        message = _FRIENDLY.get(err.get("type", ""), err.get("msg", "Invalid value."))
        errors.setdefault(_field_name(err.get("loc", ())), []).append(message)
    return _error(request, 400, _summary(errors), errors)


@api.exception_handler(DjangoValidationError)
def _invalid_for_domain(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return _error(request, 400, _summary(errors), errors)


@api.exception_handler(DomainError)
def _refused(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _error(request, exc.http_status, str(exc))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = exc.message
    if detail == "Unauthorized":  # ninja's default: no credentials at all
        detail = "Authentication required: send 'Authorization: Bearer <API token>'."
    response = _error(request, 401, detail)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, ValueError):
        # ninja could not parse the body (json.JSONDecodeError, UnicodeDecodeError).
        reason = str(cause) if isinstance(cause, json.JSONDecodeError) else "not UTF-8"
        message = f"The request body is not valid JSON ({reason})."
        return _error(request, 400, message, {"__all__": [message]})
    return _error(request, exc.status_code, exc.message)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "Not found.")


# --- Access plan ------------------------------------------------------------------------


@api.get("/roles", response={200: list[RoleOut], 401: ErrorOut}, tags=["roles"])
def list_roles(request: HttpRequest) -> QuerySet[EmergencyRole]:
    """The emergency roles that can be requested."""
    return EmergencyRole.objects.requestable()


# --- Access requests -------------------------------------------------------------------


class RequestPagination(LimitOffsetPagination):
    class Input(LimitOffsetPagination.Input):
        limit: int = Field(50, ge=1, le=200)
        offset: int = Field(0, ge=0)


def _visible(request: HttpRequest) -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.visible_to(request.auth)
        .with_related()
        .select_related("decided_by")
        .prefetch_related(
            "extensions__approvals__approver", "extensions__requested_by", "extensions__decided_by"
        )
    )


def _get_visible(request: HttpRequest, request_id: int) -> AccessRequest:
    req = _visible(request).filter(pk=request_id).first()
    if req is None:
        raise Http404(f"Request #{request_id} does not exist or you cannot see it.")
    return req


@api.post("/requests", response={201: RequestOut, **ERRORS}, tags=["requests"])
def file_request(request: HttpRequest, payload: RequestIn) -> Status[AccessRequest]:
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
@api.post("/requests/batch", response={201: BatchOut, **ERRORS}, tags=["requests"])
def file_batch(request: HttpRequest, payload: BatchIn) -> Status[dict[str, Any]]:
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


@api.get("/requests", response={200: list[RequestOut], **ERRORS}, tags=["requests"])
@paginate(RequestPagination)
def list_requests(request: HttpRequest, filters: Query[RequestFilters]) -> QuerySet[AccessRequest]:
    """Requests you can see, newest first: your own, or all of them for approvers and auditors."""
    found = _visible(request)
    if filters.status is not None:
        found = found.filter(status=filters.status)
    if filters.mine:
        found = found.filter(requester=request.auth)
    return found


# {int:...}: POST /requests/approve (at the end of this module) must not match it.
@api.get("/requests/{int:request_id}", response={200: RequestOut, **ERRORS}, tags=["requests"])
def get_request(request: HttpRequest, request_id: int) -> AccessRequest:
    """One request, with its approvals; 404 when it is not yours to see."""
    return _get_visible(request, request_id)


def _act(
    request: HttpRequest, request_id: int, action: Callable[..., Any], **kwargs: str
) -> AccessRequest:
    action(_get_visible(request, request_id), actor=request.auth, **kwargs)
    return _get_visible(request, request_id)


@api.post("/requests/{request_id}/approve", response={200: RequestOut, **ERRORS}, tags=["requests"])
def approve_request(
    request: HttpRequest, request_id: int, payload: ApproveIn | None = None
) -> AccessRequest:
    """Add your approval; the request is approved once its level has enough approvers."""
    return _act(request, request_id, services.approve, comment=(payload or ApproveIn()).comment)


@api.post("/requests/{request_id}/deny", response={200: RequestOut, **ERRORS}, tags=["requests"])
def deny_request(
    request: HttpRequest, request_id: int, payload: ReasonIn | None = None
) -> AccessRequest:
    """Turn a pending request down; the reason is shown to the requester."""
    return _act(request, request_id, services.deny, reason=(payload or ReasonIn()).reason)


@api.post("/requests/{request_id}/cancel", response={200: RequestOut, **ERRORS}, tags=["requests"])
def cancel_request(
    request: HttpRequest, request_id: int, payload: ReasonIn | None = None
) -> AccessRequest:
    """Withdraw your own pending request."""
    return _act(request, request_id, services.cancel, reason=(payload or ReasonIn()).reason)


@api.post("/requests/{request_id}/revoke", response={200: RequestOut, **ERRORS}, tags=["requests"])
def revoke_request(
    request: HttpRequest, request_id: int, payload: ReasonIn | None = None
) -> AccessRequest:
    """End granted access early; the member is removed from the Okta group."""
    return _act(request, request_id, services.revoke, reason=(payload or ReasonIn()).reason)


@api.post(
    "/requests/{request_id}/signed-out", response={200: SignOutOut, **ERRORS}, tags=["requests"]
)
def confirm_signed_out(request: HttpRequest, request_id: int) -> dict[str, Any]:
    """Say you have signed out of the AWS console (your own granted requests only).

    The answer is the sign-out evidence the portal now holds for the grant.
    """
    from requests_app.evidence import sign_out_status

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


# --- Failover --------------------------------------------------------------------------


def _state(failover: Failover | None, user: Any = None) -> dict[str, Any]:
    checklist = None
    if failover is not None and user is not None and can_see_all_requests(user):
        from federation.failover.runbook import checklist as runbook_checklist

        checklist = runbook_checklist(failover).as_dict()
    return {"failover": failover, "checklist": checklist}


@api.get("/failover", response={200: FailoverStateOut, 401: ErrorOut}, tags=["failover"])
def current_failover(request: HttpRequest) -> dict[str, Failover | None]:
    """The failover (disruption or drill) that is not closed yet, or null; approvers and
    auditors also get its return-to-normal checklist."""
    return _state(Failover.objects.select_related("opened_by").current(), request.auth)


@api.post("/failover", response={201: FailoverStateOut, **ERRORS}, tags=["failover"])
def open_failover(request: HttpRequest, payload: FailoverOpenIn) -> Status[dict[str, Any]]:
    """Declare a disruption (or start a drill): the federation app is activated."""
    failover = failover_services.open_failover(
        actor=request.auth, reason=payload.reason, drill=payload.drill
    )
    return Status(201, _state(failover))


@api.post("/failover/close", response={200: FailoverStateOut, **ERRORS}, tags=["failover"])
def close_failover(
    request: HttpRequest, payload: FailoverCloseIn | None = None
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


@api.post("/failover/return", response={200: FailoverStateOut, **ERRORS}, tags=["failover"])
def start_return(request: HttpRequest, payload: FailoverReturnIn | None = None) -> dict[str, Any]:
    """Steps 1 and 2 of the return to normal: Identity Center must be HEALTHY (or give
    ``override_reason``); every emergency user is told to sign out; new requests are
    refused from now on and pending ones lapse."""
    from federation.failover.runbook import start_return as start

    reason = (payload or FailoverReturnIn()).override_reason
    failover = start(actor=request.auth, override_reason=reason)
    return _state(failover, request.auth)


@api.post("/failover/remind", response={200: RemindOut, **ERRORS}, tags=["failover"])
def remind_signed_in(request: HttpRequest) -> dict[str, list[str]]:
    """Step 3: remind everyone still signed in, now (beat also does every few minutes)."""
    from federation.failover.runbook import remind_now

    return {"reminded": remind_now(actor=request.auth)}


@api.post("/failover/confirm", response={200: FailoverStateOut, **ERRORS}, tags=["failover"])
def confirm_failover(request: HttpRequest) -> dict[str, Any]:
    """A second, different approver confirms a proposed real failover (when
    REQUIRE_FAILOVER_CONFIRMATION is on): the federation app is then activated."""
    return _state(failover_services.confirm_failover(actor=request.auth), request.auth)


@api.get(
    "/failovers/{failover_id}/report", response={200: dict[str, Any], **ERRORS}, tags=["failover"]
)
def failover_report(request: HttpRequest, failover_id: int) -> dict[str, Any]:
    """The failover's report: timeline, who had access to what and for how long, every
    approval, what was done outside the portal and, for a drill, what it proved."""
    from federation.failover.report import build_report

    if not can_read_audit(request.auth):
        raise NotAllowed("Only approvers and auditors can read failover reports.")
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None:
        raise Http404(f"Failover #{failover_id} does not exist.")
    return build_report(failover)


# --- Several roles at once, extensions ---------------------------------------------------


def _extension(request: HttpRequest, request_id: int, extension_id: int) -> Any:
    from requests_app.models import Extension

    req = _get_visible(request, request_id)
    ext = Extension.objects.filter(pk=extension_id, request=req).first()
    if ext is None:
        raise Http404(f"Request #{request_id} has no extension #{extension_id}.")
    return ext


def _extension_out(ext_id: int) -> Any:
    from requests_app.models import Extension

    return (
        Extension.objects.select_related("requested_by", "decided_by")
        .prefetch_related("approvals__approver")
        .get(pk=ext_id)
    )


@api.post(
    "/requests/{request_id}/extend", response={201: ExtensionOut, **ERRORS}, tags=["requests"]
)
def extend_request(request: HttpRequest, request_id: int, payload: ExtendIn) -> Status[Any]:
    """Ask for more time on your active grant; one approver decides; the level's maximum
    bounds the total."""
    from requests_app import extensions

    ext = extensions.request_extension(
        _get_visible(request, request_id),
        actor=request.auth,
        minutes=payload.minutes,
        justification=payload.justification,
    )
    return Status(201, _extension_out(ext.pk))


@api.post(
    "/requests/{request_id}/extensions/{extension_id}/approve",
    response={200: ExtensionOut, **ERRORS},
    tags=["requests"],
)
def approve_extension(
    request: HttpRequest, request_id: int, extension_id: int, payload: ApproveIn | None = None
) -> Any:
    """Approve an extension: the grant's end moves by its minutes."""
    from requests_app import extensions

    ext = _extension(request, request_id, extension_id)
    extensions.approve_extension(ext, actor=request.auth, comment=(payload or ApproveIn()).comment)
    return _extension_out(ext.pk)


@api.post(
    "/requests/{request_id}/extensions/{extension_id}/deny",
    response={200: ExtensionOut, **ERRORS},
    tags=["requests"],
)
def deny_extension(
    request: HttpRequest, request_id: int, extension_id: int, payload: ReasonIn | None = None
) -> Any:
    """Turn an extension down; the grant ends at its current time."""
    from requests_app import extensions

    ext = _extension(request, request_id, extension_id)
    extensions.deny_extension(ext, actor=request.auth, reason=(payload or ReasonIn()).reason)
    return _extension_out(ext.pk)


@api.post(
    "/requests/{request_id}/extensions/{extension_id}/cancel",
    response={200: ExtensionOut, **ERRORS},
    tags=["requests"],
)
def cancel_extension(request: HttpRequest, request_id: int, extension_id: int) -> Any:
    """Withdraw your own pending extension."""
    from requests_app import extensions

    ext = _extension(request, request_id, extension_id)
    extensions.cancel_extension(ext, actor=request.auth)
    return _extension_out(ext.pk)


# --- Readiness (AWS and Okta checked against the access plan) ---------------------------


@api.get(
    "/readiness",
    response={200: ReadinessStateOut, 401: ErrorOut, 403: ErrorOut},
    tags=["readiness"],
)
def readiness_state(request: HttpRequest) -> dict[str, Any]:
    """The last readiness check (each check's result and fix) and one still running."""
    from federation.readiness import checks as readiness

    if not can_read_plan(request.auth):
        raise NotAllowed("Only approvers, auditors and admins can see readiness results.")
    return {"last": readiness.latest_finished(), "running": readiness.running()}


@api.post("/readiness/run", response={202: ReadinessStateOut, **ERRORS}, tags=["readiness"])
def readiness_run(request: HttpRequest) -> Status[dict[str, Any]]:
    """Queue a readiness check now (approvers; one at a time: 409 while one runs)."""
    from federation.readiness import checks as readiness

    run = readiness.request_run(actor=request.auth)
    return Status(202, {"last": readiness.latest_finished(), "running": run})


# --- Bulk approval ------------------------------------------------------------------------


@api.post("/requests/approve", response={200: BulkApproveOut, **ERRORS}, tags=["requests"])
def approve_requests(request: HttpRequest, payload: BulkApproveIn) -> dict[str, Any]:
    """Approve many requests at once (an incident surge). Each is decided and audited on its
    own: your own requests and ones no longer pending are refused in their result, without
    stopping the others. 403 if you are not an approver."""
    outcomes = services.approve_many(payload.ids, actor=request.auth, comment=payload.comment)
    return {"results": [vars(outcome) for outcome in outcomes]}
