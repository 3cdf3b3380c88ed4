"""The JSON API, mounted at ``/api/v1/`` (OpenAPI document at ``/api/v1/openapi.json``).

Authentication: ``Authorization: Bearer <personal API token>`` (tokens are made on
the portal's /tokens/ page or with ``manage.py create_api_token``), or the
browser's portal session, which must send the CSRF token on unsafe methods.

Each app contributes one router (``requests_app.api``, ``federation.api``); this
module assembles them into one ``NinjaAPI`` with the authentication and the one
error shape. The endpoints are thin: they call one service each; the services'
refusals become HTTP statuses in the exception handlers below.
"""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.operation import Operation
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from federation.api import router as federation_router
from federation.aws_events_api import router as aws_events_router
from portal import audit
from portal.accounts import tokens
from portal.core.access import can_write
from portal.core.errors import DomainError, NotAllowed
from portal.core.schemas import CONTROL_CHARACTERS_REFUSED
from requests_app.api import router as requests_router

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
        found = tokens.authenticate_token(token, audit.client_ip(request))
        if found is None:
            raise AuthenticationError(message="The API token is invalid, expired or revoked.")
        if found.read_only and request.method not in SAFE_METHODS:
            raise NotAllowed("This API token is read-only: it cannot change anything.")
        return _authorize(request, found.user)


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


def _docs_for_signed_in_users(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.API_DOCS_PUBLIC or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and tokens.authenticate(token.strip()) is not None:
            return view(request, *args, **kwargs)
        if request.path.endswith(".json"):
            response = JsonResponse({"detail": "Sign in or send an API token."}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        return redirect_to_login(request.get_full_path())

    return wrapper


class PortalAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # Operation ids are public (clients are generated from them): they keep the
        # names they had when every endpoint lived in requests_app/api.py.
        return f"requests_app_api_{operation.view_func.__name__}"


api = PortalAPI(
    title="Emergency Access Portal",
    version="1",
    description=(
        "Request, approve and end emergency AWS access during an IAM Identity Center "
        "disruption. Authenticate with `Authorization: Bearer <token>`; create a personal "
        "token on the portal's API tokens page. A token has exactly its owner's permissions."
    ),
    openapi_url="/openapi.json",
    # In production the document and the docs page are for signed-in users (or a valid
    # API token): they map the whole attack surface. Swagger UI is served from ninja's
    # bundled static files, never a CDN; without "ninja" in INSTALLED_APPS ninja
    # would fall back to a CDN, so the docs page is off then.
    docs_url="/docs" if "ninja" in settings.INSTALLED_APPS else None,
    docs_decorator=_docs_for_signed_in_users,
    auth=[ApiTokenAuth(), SessionCsrfAuth()],
)

# --- Errors: one JSON shape, {"detail": "...", "errors": {"field": ["message"]}} --------

_SOURCES = {"body", "query", "path", "header", "cookie", "form"}
_PARAMS = {"payload", "filters"}  # the parameter names the endpoints below use
_FRIENDLY = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
    "model_attributes_type": "The body must be a JSON object.",
    "dict_type": "The body must be a JSON object.",
    # The only patterns are SafeText's (portal.core.schemas).
    "string_pattern_mismatch": CONTROL_CHARACTERS_REFUSED,
    "timezone_aware": "Give a time zone (e.g. 2026-05-01T18:00:00+00:00).",
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
        kind: str = err.get("type", "")
        message = _FRIENDLY.get(kind, str(err.get("msg", "Invalid value.")))
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


api.add_router("", requests_router)
api.add_router("", federation_router)
# EventBridge, authenticated with its connection secret (its own auth, not a user's).
api.add_router("", aws_events_router)
