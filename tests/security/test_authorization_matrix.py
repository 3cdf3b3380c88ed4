"""The authorization matrix: every URL and every API operation, as every kind of user.

Generated from the URL resolver (the walker of tests/web/test_auditor_read_only.py) and
from the OpenAPI document; the expected answers are written down once, below. A new URL
or API operation without a row fails ``test_every_route_has_a_row``. On every refusal
nothing is written: no audit event, no new or changed row in the tables that matter.

Roles: anonymous, engineer (no group), approver, auditor, staff (is_staff, no group)
and an auditor who is also staff. The admin (admin/) and allauth's sign-in pages
(accounts/) have their own tests and are not walked; static files are not views.

To re-record after a deliberate change: MATRIX_RECORD=1 pytest this file -s, then read
every changed answer before pasting it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db.models import Max
from django.test import Client

from federation.models import Failover
from portal.accounts.tokens import create_token
from portal.core.access import APPROVERS, AUDITORS
from portal.models import ApiToken, AuditEvent, ChainVerification, NotificationLog, SlackIdentity
from requests_app.models import AccessRequest, Approval, Extension
from tests.conftest import make_user
from tests.web.test_auditor_read_only import ROUTES, url_for

pytestmark = pytest.mark.django_db

ROLES = ("anon", "engineer", "approver", "auditor", "staff", "auditor_staff")
RECORD = os.environ.get("MATRIX_RECORD") == "1"
LOGIN = "/accounts/login/"
FORM = {"comment": "x", "reason": "Identity Center is down", "confirm": "on", "name": ""}

# Route name -> (answers to GET, answers to POST), one status per role in ROLES order.
# "L" is a redirect to the sign-in page; any other 3xx is written as the number.
WEB: dict[str, tuple[str, str]] = {
    # route: (GET, POST)       anon eng  appr aud  staff aud+staff
    "approvals": ("L 403 200 403 403 403", "405 405 405 405 405 405"),
    "approvals-approve": ("405 405 405 405 405 405", "L 403 302 403 403 403"),
    "audit-log": ("L 403 200 200 403 200", "405 405 405 405 405 405"),
    # demo only, staff only; an auditor who is staff may look but not play (unknown action: 404)
    "demo-action": ("405 405 405 405 405 405", "L 403 403 403 404 403"),
    "demo-controls": ("L 403 403 403 200 200", "405 405 405 405 405 405"),
    "auditor-account": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-audit-export": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-failovers": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-history": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-history-export": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-integrity": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-integrity-verify": ("L 403 405 405 403 405", "L 403 302 302 403 302"),
    "auditor-person": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "auditor-request": ("L 403 200 200 403 200", "L 403 405 403 403 403"),
    "csp-report": ("405 405 405 405 405 405", "400 400 400 400 400 400"),
    "dashboard": ("L 200 200 200 200 200", "405 405 405 405 405 405"),
    "emergency-users": ("L 403 200 200 403 200", "405 405 405 405 405 405"),
    "extension-action": ("405 405 405 405 405 405", "L 404 404 403 404 403"),
    "failover": ("L 403 200 403 403 403", "405 405 405 405 405 405"),
    "failover-close": ("405 405 405 405 405 405", "L 403 302 403 403 403"),
    "failover-confirm": ("405 405 405 405 405 405", "L 403 302 403 403 403"),
    "failover-open": ("405 405 405 405 405 405", "L 403 302 403 403 403"),
    "failover-report": ("L 403 200 200 403 200", "405 405 405 405 405 405"),
    "failover-report-json": ("L 403 200 200 403 200", "405 405 405 405 405 405"),
    "failover-return": ("L 403 200 200 403 200", "405 405 405 405 405 405"),
    "failover-return-close": ("405 405 405 405 405 405", "L 403 400 403 403 403"),
    "failover-return-remind": ("405 405 405 405 405 405", "L 403 302 403 403 403"),
    "failover-return-start": ("405 405 405 405 405 405", "L 403 400 403 403 403"),
    "health-card": ("L 200 200 200 200 200", "405 405 405 405 405 405"),
    "healthz": ("200 200 200 200 200 200", "200 200 200 200 200 200"),
    "plan": ("L 403 200 200 200 200", "405 405 405 405 405 405"),
    "plan-file": ("L 403 200 200 200 200", "405 405 405 405 405 405"),
    # public like /healthz (load balancers, compose); no worker or beat runs here: 503
    "readyz": ("503 503 503 503 503 503", "405 405 405 405 405 405"),
    "readiness": ("L 403 200 200 200 200", "405 405 405 405 405 405"),
    "readiness-run": ("405 405 405 405 405 405", "L 403 302 403 403 403"),
    "request-action": ("405 405 405 405 405 405", "L 404 302 403 404 403"),
    "request-break-glass": ("L 404 403 403 404 403", "L 404 403 403 404 403"),
    "request-detail": ("L 404 200 200 404 200", "405 405 405 405 405 405"),
    "request-extend": ("405 405 405 405 405 405", "L 404 400 403 404 403"),
    "request-list": ("L 200 200 200 200 200", "405 405 405 405 405 405"),
    "request-new": ("L 200 200 403 200 403", "L 200 200 403 200 403"),
    "request-review": ("405 405 405 405 405 405", "L 404 400 403 404 403"),
    "request-status": ("L 404 200 200 404 200", "405 405 405 405 405 405"),
    "slack-interactivity": ("405 405 405 405 405 405", "404 404 404 404 404 404"),
    "token-revoke": ("405 405 405 405 405 405", "L 302 404 404 404 404"),
    "tokens": ("L 200 200 200 200 200", "L 400 400 400 400 400"),
}

# "METHOD /api/v1/path" -> one status per role in ROLES order (anonymous: no token).
API: dict[str, str] = {
    "GET /api/v1/failover": "401 200 200 200 200 200",
    "GET /api/v1/failovers/{failover_id}/report": "401 403 200 200 403 200",
    "GET /api/v1/readiness": "401 403 200 200 200 200",
    "GET /api/v1/requests": "401 200 200 200 200 200",
    "GET /api/v1/requests/{request_id}": "401 404 200 200 404 200",
    "GET /api/v1/roles": "401 200 200 200 200 200",
    # EventBridge's connection secret, never a person's token or session
    "POST /api/v1/aws-events": "401 401 401 401 401 401",
    "POST /api/v1/failover": "401 403 201 403 403 403",
    "POST /api/v1/failover/close": "401 403 409 403 403 403",
    "POST /api/v1/failover/confirm": "401 403 409 403 403 403",
    "POST /api/v1/failover/remind": "401 403 409 403 403 403",
    "POST /api/v1/failover/return": "401 403 400 403 403 403",
    "POST /api/v1/readiness/run": "401 403 202 403 403 403",
    "POST /api/v1/requests": "401 400 400 403 400 403",
    "POST /api/v1/requests/approve": "401 400 400 403 400 403",
    "POST /api/v1/requests/batch": "401 400 400 403 400 403",
    "POST /api/v1/requests/{request_id}/approve": "401 404 409 403 404 403",
    "POST /api/v1/requests/{request_id}/break-glass": "401 400 400 403 400 403",
    "POST /api/v1/requests/{request_id}/cancel": "401 404 403 403 404 403",
    "POST /api/v1/requests/{request_id}/deny": "401 404 409 403 404 403",
    "POST /api/v1/requests/{request_id}/extend": "401 404 403 403 404 403",
    "POST /api/v1/requests/{request_id}/extensions/{extension_id}/approve": (
        "401 404 404 403 404 403"
    ),
    "POST /api/v1/requests/{request_id}/extensions/{extension_id}/cancel": (
        "401 404 404 403 404 403"
    ),
    "POST /api/v1/requests/{request_id}/extensions/{extension_id}/deny": (
        "401 404 404 403 404 403"
    ),
    "POST /api/v1/requests/{request_id}/review": "401 400 400 403 400 403",
    "POST /api/v1/requests/{request_id}/revoke": "401 404 409 403 404 403",
    "POST /api/v1/requests/{request_id}/signed-out": "401 404 403 403 404 403",
}


def _users() -> dict[str, Any]:
    users: dict[str, Any] = {"anon": None}
    users["engineer"] = make_user("m-engineer", "m-engineer@example.com")
    users["approver"] = make_user("m-approver", "m-approver@example.com", APPROVERS)
    users["auditor"] = make_user("m-auditor", "m-auditor@example.com", AUDITORS)
    users["staff"] = make_user("m-staff", "m-staff@example.com", mfa=True)
    users["auditor_staff"] = make_user("m-auditstaff", "m-auditstaff@example.com", AUDITORS)
    for name in ("staff", "auditor_staff"):
        users[name].is_staff = True
        users[name].save(update_fields=["is_staff"])
    Group.objects.get_or_create(name=APPROVERS)
    return users


def snapshot() -> tuple:
    """What a refusal must leave as it was."""
    return (
        AuditEvent.objects.aggregate(Max("seq"))["seq__max"],
        list(AccessRequest.objects.order_by("pk").values_list("pk", "status", "expires_at")),
        list(Failover.objects.order_by("pk").values_list("pk", "status")),
        list(Extension.objects.order_by("pk").values_list("pk", "status")),
        Approval.objects.count(),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        ChainVerification.objects.count(),
        NotificationLog.objects.count(),
        SlackIdentity.objects.count(),
    )


def _code(response) -> str:
    if response.status_code in (301, 302) and response["Location"].startswith(LOGIN):
        return "L"
    return str(response.status_code)


REFUSALS = {"L", "400", "401", "403", "404", "405", "409"}


@pytest.fixture
def world(archive, monkeypatch):
    """The auditor fixtures' archive, every kind of user, and no task ever sent."""
    for name in ("portal.queue", "requests_app.queue", "federation.queue"):
        module = __import__(name, fromlist=["*"])
        for attr in dir(module):
            value = getattr(module, attr)
            if callable(value) and getattr(value, "__module__", "") == name:
                monkeypatch.setattr(f"{name}.{attr}", lambda *a, **k: None)
    users = _users()
    token = ApiToken.objects.create(
        user=users["engineer"], name="mine", token_hash="0" * 64, hint="eap_x"
    )
    failover = Failover.objects.order_by("pk").first()
    ids = {
        "pk": archive.r2.pk,
        "ext_id": 1,
        "token": token.pk,
        "failover": failover.pk,
        "person": archive.r2.requester_id,
        "account": archive.r2.role.workload_account_id,
    }
    return users, ids


def _client(users: dict[str, Any], role: str) -> Client:
    client = Client()
    if users[role] is not None:
        client.force_login(users[role])
    return client


def _web_url(pattern, ids: dict[str, int]) -> str:
    if pattern.name.startswith("failover-report"):
        return url_for(pattern, {**ids, "pk": ids["failover"]})
    if pattern.name == "plan-file":
        return "/plan/files/plan.toml"
    own = {"auditor-person": "person", "auditor-account": "account", "token-revoke": "token"}
    if pattern.name in own:
        return url_for(pattern, {**ids, "pk": ids[own[pattern.name]]})
    return url_for(pattern, ids)


WEB_ROUTES = [(p, r) for p, r in ROUTES]
WEB_CASES = [(r.name, i) for _, r in WEB_ROUTES for i in range(2)]


def _api_document() -> dict[str, Any]:
    return Client().get("/api/v1/openapi.json").json()


def _api_operations() -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, operations in _api_document()["paths"].items()
        for method in operations
    ]


@pytest.fixture(scope="module")
def recorded():
    table: dict[str, dict[str, str]] = {}
    yield table
    if RECORD and table:
        print("\nRECORDED", json.dumps(table, indent=1, sort_keys=True))


def test_every_route_has_a_row(db):
    assert {r.name for _, r in WEB_ROUTES} == set(WEB), "a URL without a row in WEB"
    assert set(_api_operations()) == set(API), "an API operation without a row in API"


@pytest.mark.parametrize("route", [r.name for _, r in WEB_ROUTES])
@pytest.mark.parametrize("method", ["get", "post"])
def test_web(world, route, method, recorded, settings):
    users, ids = world
    pattern = dict((r.name, r) for _, r in WEB_ROUTES)[route]
    url = _web_url(pattern, ids)
    got = []
    for role in ROLES:
        before = snapshot()
        client = _client(users, role)
        response = client.get(url) if method == "get" else client.post(url, FORM)
        code = _code(response)
        got.append(code)
        if code in REFUSALS:
            assert snapshot() == before, (route, method, role, code)
    if RECORD:
        recorded.setdefault(route, {})[method] = " ".join(got)
        return
    expected = WEB[route][0 if method == "get" else 1]
    assert " ".join(got) == expected, (route, method, dict(zip(ROLES, got, strict=True)))


def _api_body(path: str) -> dict[str, Any]:
    if path.endswith("/extend"):
        return {"minutes": 30, "justification": "more time"}
    if path.endswith("/failover"):
        return {"reason": "Identity Center is down"}
    if path.endswith("/requests/batch"):
        return {"roles": [1], "justification": "x", "ticket": "T", "duration_minutes": 60}
    if path.endswith("/requests"):
        return {"role": 1, "justification": "x", "ticket": "T", "duration_minutes": 60}
    return {}


@pytest.mark.parametrize("operation", _api_operations())
def test_api(world, operation, recorded):
    users, ids = world
    method, path = operation.split(" ", 1)
    url = path.format(request_id=ids["pk"], extension_id=1, failover_id=ids["failover"])
    got = []
    for role in ROLES:
        headers = {}
        if users[role] is not None:
            _, raw = create_token(users[role], f"matrix-{role}", users[role])
            headers["Authorization"] = f"Bearer {raw}"
        before = snapshot()
        client = Client()
        if method == "GET":
            response = client.get(url, headers=headers)
        else:
            response = client.generic(
                method,
                url,
                json.dumps(_api_body(path)),
                content_type="application/json",
                headers=headers,
            )
        code = _code(response)
        got.append(code)
        if code in REFUSALS:
            assert snapshot() == before, (operation, role, code)
    if RECORD:
        recorded.setdefault("API", {})[operation] = " ".join(got)
        return
    assert " ".join(got) == API[operation], (operation, dict(zip(ROLES, got, strict=True)))
