"""HTTP front of the sandbox org: Okta's Management API subset plus a control plane.

Routes, status codes, headers (``X-Rate-Limit-*``, ``X-Okta-Request-Id``,
``Date``, ``Link``) and error bodies follow Okta, so the real okta SDK can be
pointed at it. ``/__sandbox__/...`` is the test control plane: unauthenticated,
answered only to loopback clients.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from . import oidc
from .auth import OAuthError
from .events import Caller
from .faults import FaultRule, RateStatus
from .org import LogQuery, OktaError, SandboxOrg
from .seed import DEFAULT_TOKEN, load_seed

logger = logging.getLogger("federation.sandbox")

_STATUS_ERRORS = {
    400: ("E0000001", "Api validation failed: request"),
    401: ("E0000011", "Invalid token provided"),
    403: ("E0000006", "You do not have permission to perform the requested action"),
    404: ("E0000007", "Not found: Resource not found"),
    429: ("E0000047", "API call exceeded rate limit due to too many requests."),
    500: ("E0000009", "Internal Server Error"),
    502: ("E0000009", "Bad Gateway"),
    503: ("E0000009", "Service Unavailable"),
    504: ("E0000009", "Gateway Timeout"),
}


def status_error(status: int) -> OktaError:
    code, summary = _STATUS_ERRORS.get(status, ("E0000009", "Internal Server Error"))
    return OktaError(status, code, summary)


@dataclass
class Request:
    org: SandboxOrg
    caller: Caller
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    base: str


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    next_cursor: str | None = None
    paged: bool = False
    headers: dict[str, str] = field(default_factory=dict)


# --- JSON renderings (the org keeps records without links; links depend on the Host) ---


def _host_port(server: socketserver.BaseServer) -> tuple[str, int]:
    """Where ``server`` listens (typeshed allows a bytes host; a TCP server's is text)."""
    address = server.server_address
    if not isinstance(address, tuple):
        raise TypeError(f"the sandbox listens on TCP, not {address!r}")
    host, port = address[:2]
    return (host.decode() if isinstance(host, bytes | bytearray) else str(host)), int(port)


def _href(base: str, path: str) -> dict[str, str]:
    return {"href": f"{base}{path}"}


def render_user(user: dict[str, Any], base: str) -> dict[str, Any]:
    return {**user, "_links": {"self": _href(base, f"/api/v1/users/{user['id']}")}}


def render_group(group: dict[str, Any], base: str) -> dict[str, Any]:
    gid = group["id"]
    logo = "https://ok12static.oktacdn.com/assets/img/logos/groups/okta-"
    return {
        **group,
        "_links": {
            "logo": [
                {"name": "medium", "href": f"{logo}medium.png", "type": "image/png"},
                {"name": "large", "href": f"{logo}large.png", "type": "image/png"},
            ],
            "users": _href(base, f"/api/v1/groups/{gid}/users"),
            "apps": _href(base, f"/api/v1/groups/{gid}/apps"),
        },
    }


def render_app(app: dict[str, Any], base: str) -> dict[str, Any]:
    aid = app["id"]
    toggle = "deactivate" if app["status"] == "ACTIVE" else "activate"
    return {
        **app,
        "_links": {
            "self": _href(base, f"/api/v1/apps/{aid}"),
            "users": _href(base, f"/api/v1/apps/{aid}/users"),
            "groups": _href(base, f"/api/v1/apps/{aid}/groups"),
            toggle: _href(base, f"/api/v1/apps/{aid}/lifecycle/{toggle}"),
            "metadata": {
                "href": f"{base}/api/v1/apps/{aid}/sso/saml/metadata",
                "type": "application/xml",
            },
        },
    }


def render_assignment(app_id: str, assignment: dict[str, Any], base: str) -> dict[str, Any]:
    gid = assignment["id"]
    return {
        **assignment,
        "_links": {
            "app": _href(base, f"/api/v1/apps/{app_id}"),
            "self": _href(base, f"/api/v1/apps/{app_id}/groups/{gid}"),
            "group": _href(base, f"/api/v1/groups/{gid}"),
        },
    }


# --- API handlers ----------------------------------------------------------------------


def _get_user(r: Request) -> Reply:
    return Reply(body=render_user(r.org.user(r.params["id"]), r.base))


def _list_users(r: Request) -> Reply:
    q = r.query
    users, cursor = r.org.list_users(
        search=q.get("search"),
        filter=q.get("filter"),
        q=q.get("q"),
        after=q.get("after"),
        limit=q.get("limit"),
    )
    return Reply(body=[render_user(u, r.base) for u in users], next_cursor=cursor, paged=True)


def _revoke_sessions(r: Request) -> Reply:
    r.org.revoke_sessions(r.params["uid"], r.caller)
    return Reply(204)


def _list_groups(r: Request) -> Reply:
    q = r.query
    groups, cursor = r.org.list_groups(
        search=q.get("search"),
        filter=q.get("filter"),
        q=q.get("q"),
        after=q.get("after"),
        limit=q.get("limit"),
    )
    return Reply(body=[render_group(g, r.base) for g in groups], next_cursor=cursor, paged=True)


def _create_group(r: Request) -> Reply:
    profile = r.body.get("profile") if isinstance(r.body, dict) else None
    return Reply(body=render_group(r.org.create_group(profile or {}, r.caller), r.base))


def _get_group(r: Request) -> Reply:
    return Reply(body=render_group(r.org.group(r.params["gid"]), r.base))


def _list_members(r: Request) -> Reply:
    users, cursor = r.org.list_members(
        r.params["gid"], after=r.query.get("after"), limit=r.query.get("limit")
    )
    return Reply(body=[render_user(u, r.base) for u in users], next_cursor=cursor, paged=True)


def _add_member(r: Request) -> Reply:
    r.org.add_member(r.params["gid"], r.params["uid"], r.caller)
    return Reply(204)


def _remove_member(r: Request) -> Reply:
    r.org.remove_member(r.params["gid"], r.params["uid"], r.caller)
    return Reply(204)


def _get_app(r: Request) -> Reply:
    return Reply(body=render_app(r.org.app(r.params["aid"]), r.base))


def _lifecycle(r: Request) -> Reply:
    r.org.set_app_status(r.params["aid"], r.params["action"] == "activate", r.caller)
    return Reply(body={})


def _list_app_groups(r: Request) -> Reply:
    aid = r.params["aid"]
    items, cursor = r.org.list_app_groups(
        aid, after=r.query.get("after"), limit=r.query.get("limit")
    )
    return Reply(
        body=[render_assignment(aid, a, r.base) for a in items], next_cursor=cursor, paged=True
    )


def _get_app_group(r: Request) -> Reply:
    aid = r.params["aid"]
    return Reply(body=render_assignment(aid, r.org.app_group(aid, r.params["gid"]), r.base))


def _assign_app_group(r: Request) -> Reply:
    aid = r.params["aid"]
    assignment = r.org.assign_group(aid, r.params["gid"], r.caller)
    return Reply(body=render_assignment(aid, assignment, r.base))


def _unassign_app_group(r: Request) -> Reply:
    r.org.unassign_group(r.params["aid"], r.params["gid"], r.caller)
    return Reply(204)


def _list_logs(r: Request) -> Reply:
    q = r.query
    page = r.org.read_logs(
        LogQuery(
            since=q.get("since"),
            until=q.get("until"),
            after=q.get("after"),
            filter=q.get("filter"),
            q=q.get("q"),
            limit=q.get("limit"),
            sort_order=q.get("sortOrder"),
        )
    )
    return Reply(body=page.events, next_cursor=page.next_cursor, paged=True)


Handler = Callable[[Request], Reply]
# "METHOD path" with {name} placeholders, the OAuth scope Okta requires, the handler.
# A ".manage" scope implies the matching ".read".
_ROUTE_TABLE: list[tuple[str, str, Handler]] = [
    ("GET /api/v1/users", "okta.users.read", _list_users),
    ("GET /api/v1/users/{id}", "okta.users.read", _get_user),
    ("DELETE /api/v1/users/{uid}/sessions", "okta.users.manage", _revoke_sessions),
    ("GET /api/v1/groups", "okta.groups.read", _list_groups),
    ("POST /api/v1/groups", "okta.groups.manage", _create_group),
    ("GET /api/v1/groups/{gid}", "okta.groups.read", _get_group),
    ("GET /api/v1/groups/{gid}/users", "okta.groups.read", _list_members),
    ("PUT /api/v1/groups/{gid}/users/{uid}", "okta.groups.manage", _add_member),
    ("DELETE /api/v1/groups/{gid}/users/{uid}", "okta.groups.manage", _remove_member),
    ("GET /api/v1/apps/{aid}", "okta.apps.read", _get_app),
    ("POST /api/v1/apps/{aid}/lifecycle/{action}", "okta.apps.manage", _lifecycle),
    ("GET /api/v1/apps/{aid}/groups", "okta.apps.read", _list_app_groups),
    ("GET /api/v1/apps/{aid}/groups/{gid}", "okta.apps.read", _get_app_group),
    ("PUT /api/v1/apps/{aid}/groups/{gid}", "okta.apps.manage", _assign_app_group),
    ("DELETE /api/v1/apps/{aid}/groups/{gid}", "okta.apps.manage", _unassign_app_group),
    ("GET /api/v1/logs", "okta.logs.read", _list_logs),
]
_PLACEHOLDER = {"action": "(?P<action>activate|deactivate)"}
ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = [
    (
        line.split(" ")[0],
        re.compile(
            re.sub(
                r"\{(\w+)\}",
                lambda m: _PLACEHOLDER.get(m[1], f"(?P<{m[1]}>[^/]+)"),
                line.split(" ")[1],
            )
            + "$"
        ),
        scope,
        handler,
    )
    for line, scope, handler in _ROUTE_TABLE
]


def _route(method: str, path: str) -> tuple[str, Handler, dict[str, str]]:
    path_known = False
    for route_method, pattern, scope, handler in ROUTES:
        match = pattern.match(path)
        if match:
            path_known = True
            if route_method == method:
                return scope, handler, {k: unquote(v) for k, v in match.groupdict().items()}
    if path_known:
        raise OktaError(405, "E0000022", "The endpoint does not support the provided HTTP method")
    raise OktaError(404, "E0000007", f"Not found: Resource not found: {path} (Path)")


def _insufficient_scope(path: str) -> str:
    return (
        'Bearer realm="IdpMyAccountAPI", error="insufficient_scope", error_description="The '
        f'access token provided does not contain the required scopes.", resource="{path}"'
    )


def _has_scope(granted: frozenset[str], required: str) -> bool:
    return required in granted or required.replace(".read", ".manage") in granted


def rate_bucket(path: str) -> str:
    """Okta counts limits per endpoint family; the sandbox keeps one bucket per family."""
    for bucket in ("users", "groups", "apps", "logs"):
        if path.startswith(f"/api/v1/{bucket}"):
            return bucket
    return "default"


# --- HTTP plumbing ---------------------------------------------------------------------


OIDC_PATHS = frozenset(
    {
        "/.well-known/openid-configuration",
        "/oauth2/v1/authorize",
        "/oauth2/v1/token",
        "/oauth2/v1/userinfo",
        "/oauth2/v1/keys",
    }
)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections of a client still open must not block shutdown.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], org: SandboxOrg) -> None:
        self.oidc = oidc.OidcProvider()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.org = org
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "sandbox-okta"
    # The API call being answered: (received at, method, path), for the call log.
    _api_call: tuple[float, str, str] | None = None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line is logged, never headers (they carry the token).
        logger.debug("%s " + format, self.client_address[0], *args)

    # --- dispatch -------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith("/__sandbox__/"):
            self._control(method, url.path, raw)
        elif url.path in OIDC_PATHS:
            self._oidc(method, url.path, query, raw)
        elif url.path == "/oauth2/v1/token" and method == "POST":
            self._token(raw)
        else:
            self._api(method, url.path, query, raw)

    def _api(self, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        org = self.server.org
        org.count_request(method, path)
        # Answered in _send, which writes it to the call log.
        self._api_call = (time.time(), method, path)
        if org.latency_ms:
            time.sleep(org.latency_ms / 1000)
        bucket = rate_bucket(path)
        fault = org.throttle.take_fault(method, path)
        if fault is not None:
            self._send_fault(fault, bucket)
            return
        try:
            scope, handler, params = _route(method, path)
            caller, rate = self._authorize(path, scope, bucket)
            body = self._json(raw) if raw else None
            reply = handler(Request(org, caller, params, query, body, self._base()))
        except OktaError as error:
            self._send_error(error, org.throttle.peek(bucket))
            return
        except Exception:
            logger.exception("sandbox handler failed for %s %s", method, path)
            self._send_error(status_error(500), org.throttle.peek(bucket))
            return
        links = self._links(path, query, reply.next_cursor) if reply.paged else []
        self._send(reply.status, reply.body, self._rate_headers(rate), links)

    def _authorize(self, path: str, scope: str, bucket: str) -> tuple[Caller, RateStatus]:
        """Who is calling (401 if nobody we know), within rate limits (429) and scopes (403)."""
        org = self.server.org
        auth = org.credentials.caller_for(self.headers.get("Authorization", ""))
        if auth is None:
            raise status_error(401)
        caller, scopes = auth
        rate = org.throttle.take(bucket)
        if rate.exceeded:
            raise status_error(429)
        if scopes is not None and not _has_scope(scopes, scope):
            raise OktaError(
                403,
                "E0000006",
                "You do not have permission to perform the requested action",
                headers={"WWW-Authenticate": _insufficient_scope(path)},
            )
        caller.request_id = secrets.token_urlsafe(18)
        caller.path, caller.ip = path, self.client_address[0]
        caller.user_agent = self.headers.get("User-Agent", "unknown")
        return caller, rate

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise OktaError(
                400, "E0000003", "The request body was not well-formed.", ["Could not parse JSON"]
            ) from None

    def _base(self) -> str:
        host, port = _host_port(self.server)
        return f"http://{self.headers.get('Host') or f'{host}:{port}'}"

    def _links(self, path: str, query: dict[str, str], cursor: str | None) -> list[str]:
        """``self`` before ``next``: the okta SDK keeps only the last Link header."""
        base = self._base() + path

        def url(params: dict[str, str]) -> str:
            return base + ("?" + urlencode(params, quote_via=quote) if params else "")

        links = [f'<{url(query)}>; rel="self"']
        if cursor is not None:
            links.append(f'<{url({**query, "after": cursor})}>; rel="next"')
        return links

    # --- responses ------------------------------------------------------------------

    @staticmethod
    def _rate_headers(rate: RateStatus) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(rate.limit),
            "X-Rate-Limit-Remaining": str(rate.remaining),
            "X-Rate-Limit-Reset": str(rate.reset),
        }

    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str],
        links: Sequence[str] = (),
        *,
        with_date: bool = True,
    ) -> None:
        payload = b"" if status == 204 else json.dumps(body).encode()
        call = getattr(self, "_api_call", None)
        if call is not None:
            # Logged before the answer leaves: a client that has it and reads the call
            # log at once (benchmarks, tests) finds the call there.
            self._api_call = None
            self.server.org.call_log.record(call[0], time.time(), call[1], call[2], status)
        self.send_response_only(status)
        if with_date:
            self.send_header("Date", formatdate(usegmt=True))
        self.send_header("X-Okta-Request-Id", secrets.token_urlsafe(18))
        self.send_header("Cache-Control", "no-cache, no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        for link in links:
            self.send_header("Link", link)
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_error(self, error: OktaError, rate: RateStatus) -> None:
        headers = {**self._rate_headers(rate), **error.headers}
        if error.status == 429:
            headers["X-Rate-Limit-Remaining"] = "0"
        self._send(error.status, error.body(), headers)

    def _send_fault(self, fault: FaultRule, bucket: str) -> None:
        rate = self.server.org.throttle.peek(bucket)
        if fault.status == 429 or fault.status >= 500:
            # A reset close by, so the SDK's own retry (reset - Date + 1 s) stays short.
            rate = RateStatus(
                rate.limit,
                0 if fault.status == 429 else rate.remaining,
                int(time.time()) + fault.reset_in,
                True,
            )
        error = status_error(fault.status)
        headers = self._rate_headers(rate) if fault.rate_headers else {}
        self._send(fault.status, error.body(), headers, with_date=fault.rate_headers)

    # --- OAuth token endpoint -------------------------------------------------------

    def _token(self, raw: bytes) -> None:
        form = dict(parse_qsl(raw.decode(errors="replace")))
        try:
            body, status = self.server.org.credentials.issue_token(form), 200
        except OAuthError as error:
            body, status = (
                {"error": error.error, "error_description": error.description},
                error.status,
            )
        self._send(status, body, {})

    # --- OpenID Connect: "Sign in with Okta" (federation/sandbox/oidc.py) ----------------

    def _oidc(self, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        provider = self.server.oidc
        base = self._base()
        form = dict(parse_qsl(raw.decode(errors="replace"))) if raw else {}
        try:
            if path == "/.well-known/openid-configuration":
                self._send(200, provider.discovery(base), {})
            elif path == "/oauth2/v1/keys":
                self._send(200, provider.jwks(), {})
            elif path == "/oauth2/v1/userinfo":
                self._send(200, provider.userinfo(self.headers.get("Authorization", "")), {})
            elif path == "/oauth2/v1/authorize" and method == "GET":
                provider.check_authorize(query)
                users = self.server.org.list_users(limit="200")[0]
                users = [u for u in users if u.get("status") == "ACTIVE"]
                self._send_html(200, provider.sign_in_page(query, users))
            elif path == "/oauth2/v1/authorize" and method == "POST":
                user = self.server.org.user(form.pop("login", ""))
                groups = self.server.org.group_names_of(user["id"])
                self._redirect(provider.issue_code(form, user, groups))
            elif path == "/oauth2/v1/token" and form.get("grant_type") == "authorization_code":
                basic = oidc.parse_basic(self.headers.get("Authorization", ""))
                self._send(200, provider.exchange(form, basic, base), {})
            else:
                self._token(raw)
        except oidc.OidcError as error:
            body = {"error": error.error, "error_description": error.description}
            self._send(error.status, body, {})
        except OktaError as error:
            self._send(400, {"error": "invalid_request", "error_description": error.summary}, {})

    def _send_html(self, status: int, page: str) -> None:
        payload = page.encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def _redirect(self, location: str) -> None:
        self.send_response_only(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- control plane --------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes) -> None:
        host = self.client_address[0]
        if not (host.startswith("127.") or host in {"::1", "::ffff:127.0.0.1"}):
            self._send(403, {"error": "the control plane answers loopback clients only"}, {})
            return
        try:
            body = json.loads(raw) if raw else {}
            status, reply = control(self.server.org, method, path, body, self._base())
        except OktaError as error:
            status, reply = error.status, {"error": error.summary, "errorCode": error.code}
        except (KeyError, TypeError, ValueError) as error:
            status, reply = 400, {"error": f"bad control request: {error}"}
        self._send(status, reply, {})


def control(org: SandboxOrg, method: str, path: str, body: Any, base: str) -> tuple[int, Any]:
    """The ``/__sandbox__/`` endpoints; returns (status, JSON body)."""
    parts = [unquote(p) for p in path.removeprefix("/__sandbox__/").strip("/").split("/")]
    match method, parts:
        case "POST", ["reset"]:
            org.reset()
            return 200, {"reset": True}
        case "GET", ["state"]:
            return 200, org.snapshot()
        case "GET", ["faults"]:
            return 200, org.faults()
        case "POST", ["faults"]:
            rules = body.get("rules", [])
            if "status" in body:  # one rule given inline
                rules = [
                    *rules,
                    {k: v for k, v in body.items() if k not in {"latency_ms", "rate_limits"}},
                ]
            return 200, org.add_faults(
                [FaultRule(**rule) for rule in rules],
                latency_ms=body.get("latency_ms"),
                rate_limits=body.get("rate_limits"),
            )
        case "DELETE", ["faults"]:
            org.clear_faults()
            return 200, org.faults()
        case "POST", ["users"]:
            user = org.create_user(
                body["login"],
                body.get("firstName", ""),
                body.get("lastName", ""),
                body.get("status", "ACTIVE"),
            )
            return 201, render_user(user, base)
        case (("POST" | "DELETE"), ["groups", group, "users", user]):
            change = (
                org.add_member_behind_the_back
                if method == "POST"
                else org.remove_member_behind_the_back
            )
            return 200, {"changed": change(group, user), "members": org.member_logins(group)}
        case "POST", ["apps", app_id, "lifecycle", ("activate" | "deactivate") as action]:
            changed = org.set_app_status_behind_the_back(app_id, active=action == "activate")
            return 200, {"changed": changed, "status": org.app_status(app_id)}
        case "POST", ["apps", app_id, "settings"]:
            return 200, org.set_app_settings(app_id, **body)
        case "POST", ["logs"]:
            event = org.inject_event(
                body["eventType"],
                body["user"],
                published=body.get("published"),
                outcome=body.get("outcome", "SUCCESS"),
                external_session_id=body.get("externalSessionId"),
                app_id=body.get("appId"),
                targets=body.get("target"),
                display_message=body.get("displayMessage", ""),
            )
            return 201, event
        case "GET", ["logs"]:
            return 200, org.events()
        # A simulated IAM Identity Center access portal for the demo's health monitor
        # (AWS_ACCESS_PORTAL_URL points here): 200 while healthy, 503 while disrupted.
        case "GET", ["identity-center", *_]:
            healthy = org.identity_center_healthy
            return (200 if healthy else 503), {"healthy": healthy}
        case "POST", ["identity-center"]:
            org.identity_center_healthy = bool(body["healthy"])
            return 200, {"healthy": org.identity_center_healthy}
        case "GET", ["calls"]:
            # [received, answered (epoch seconds), method, path, status] per API call.
            return 200, {"calls": org.call_log.calls(float(body.get("since", 0)))}
    return 404, {"error": f"no control endpoint {method} /__sandbox__/{'/'.join(parts)}"}


# --- starting and stopping -------------------------------------------------------------


class SandboxServer:
    """A running sandbox: ``.url``, ``.org``, ``.shutdown()``; a context manager."""

    def __init__(self, org: SandboxOrg, host: str = "127.0.0.1", port: int = 0) -> None:
        self.org = org
        self._httpd = _HTTPServer((host, port), org)
        # A short poll interval so shutdown() returns promptly (default: 0.5 s).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="sandbox-okta", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = _host_port(self._httpd)
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __getattr__(self, name: str) -> Any:
        # Tests drive the org through the server object: server.reset(), server.fail_next()...
        if name.startswith("_") or name == "org":
            raise AttributeError(name)
        return getattr(self.org, name)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str = DEFAULT_TOKEN,
    seed: dict[str, Any] | str | Path | None = None,
    latency_ms: int = 0,
    rate_limits: dict[str, int] | None = None,
    bearer_tokens: tuple[str, ...] = (),
) -> SandboxServer:
    """Start a sandbox org in a daemon thread (``port=0`` picks a free port)."""
    if isinstance(seed, str | Path):
        seed = load_seed(seed)
    org = SandboxOrg(
        seed,
        token=token,
        bearer_tokens=bearer_tokens,
        rate_limits=rate_limits,
        latency_ms=latency_ms,
    )
    return SandboxServer(org, host, port).start()
