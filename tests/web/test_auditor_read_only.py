"""Auditors change nothing: every page of the site answers a write from an auditor with a
refusal and writes nothing. The auditor pages answer 403 to any method but GET/HEAD.

The JSON API has its own test (tests/api/test_auditor.py); the admin and the sign-in pages
(allauth: auditors sign out and manage their own password) are not walked here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Max
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from federation.models import Failover
from portal.models import ApiToken, AuditEvent
from requests_app.models import AccessRequest

SKIP_PREFIXES = ("admin/", "accounts/", "api/v1/", "static/")
UNSAFE = ["post", "put", "patch", "delete"]
# Auditors may manage their own API tokens (a token is as read-only as its owner):
# these routes answer a bad form with 400, still writing nothing.
OWN_CREDENTIALS = {"tokens", "token-revoke"}
# Answers every method the same, reading only (the load balancer's probe).
METHOD_BLIND = {"healthz"}
# Starts work that changes no evidence (a chain verification): a POST with CSRF that
# auditors may make; every other method is 405 (tests/security/test_verify_now.py).
AUDITOR_ACTIONS = {"auditor-integrity-verify"}
# Browsers post CSP reports here without credentials; it logs and writes nothing.
REPORT_SINKS = {"csp-report"}


def _walk(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found += _walk(entry, prefix + str(entry.pattern))
        else:
            found.append((prefix + str(entry.pattern), entry))
    return found


ROUTES = [
    (path, pattern)
    for path, pattern in _walk(get_resolver())
    if pattern.name and not path.startswith(SKIP_PREFIXES)
]
AUDITOR_ROUTES = [
    (p, r) for p, r in ROUTES if r.name.startswith("auditor-") and r.name not in AUDITOR_ACTIONS
]


def _sample(name: str, converter: Any, ids: dict[str, int]) -> Any:
    regex = converter.regex
    if "|" in regex:
        return regex.split("|")[0].strip("()")
    if regex in {"[0-9]+", "\\d+"}:
        return ids.get(name, ids["pk"])
    return "x"


def url_for(pattern: URLPattern, ids: dict[str, int]) -> str:
    converters = getattr(pattern.pattern, "converters", {})
    kwargs = {name: _sample(name, c, ids) for name, c in converters.items()}
    return reverse(pattern.name, kwargs=kwargs)


def snapshot() -> tuple:
    return (
        AccessRequest.objects.count(),
        list(AccessRequest.objects.order_by("pk").values_list("status", flat=True)),
        AuditEvent.objects.aggregate(Max("seq"))["seq__max"],
        Failover.objects.count(),
        ApiToken.objects.count(),
    )


@pytest.fixture
def ids(archive, auditor):
    token = ApiToken.objects.create(user=auditor, name="mine", token_hash="0" * 64, hint="eap_x")
    return {"pk": archive.r2.pk, "ext_id": 1, "token": token.pk}


def test_the_walk_finds_the_auditor_pages():
    names = {r.name for _, r in AUDITOR_ROUTES}
    assert {"auditor-history", "auditor-request", "auditor-audit-export"} <= names
    assert len(ROUTES) > len(AUDITOR_ROUTES) > 5


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("route", AUDITOR_ROUTES, ids=[p for p, _ in AUDITOR_ROUTES])
def test_auditor_pages_answer_403_to_every_write(as_auditor, ids, route, method):
    before = snapshot()
    response = getattr(as_auditor, method)(url_for(route[1], ids), {"comment": "x"})
    assert response.status_code == 403
    assert "read-only" in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("route", AUDITOR_ROUTES, ids=[p for p, _ in AUDITOR_ROUTES])
def test_approvers_get_405_there(as_approver, ids, route):
    response = as_approver.post(url_for(route[1], ids))
    assert response.status_code == 405


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("route", ROUTES, ids=[p for p, _ in ROUTES])
def test_no_page_of_the_site_lets_an_auditor_write(as_auditor, ids, route, method):
    path, pattern = route
    before = snapshot()
    response = getattr(as_auditor, method)(
        url_for(pattern, ids),
        {"comment": "x", "reason": "Identity Center is down", "confirm": "on", "name": ""},
    )
    allowed = {403, 405}
    if pattern.name in METHOD_BLIND:
        allowed |= {200}
    if pattern.name in AUDITOR_ACTIONS and method == "post":
        allowed |= {302}
    if pattern.name in REPORT_SINKS:
        allowed |= {400}
    if pattern.name in OWN_CREDENTIALS:
        allowed |= {400, 404}
    # Endpoints for other systems (Slack) refuse the unsigned call in their own way.
    if path.startswith("slack/"):
        allowed |= {400, 401, 404}
    assert response.status_code in allowed, (path, response.status_code)
    assert snapshot() == before, path
