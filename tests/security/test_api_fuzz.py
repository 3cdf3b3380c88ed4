"""schemathesis over /api/v1/openapi.json, with an API token per role (CI security gate).

Every operation gets generated requests (valid ones, and invalid ones the schema
forbids), sent as anonymous, engineer, approver, auditor and staff. No answer may be a
5xx; every answer's status must be one the document lists for the operation, with a
body matching its schema. Bounded (a few examples per operation, derandomized) so it
runs in well under two minutes; marked ``slow`` so a quick local run can skip it with
``-m "not slow"``; CI runs it.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from portal.accounts.tokens import create_token
from portal.core.access import APPROVERS, AUDITORS
from tests.conftest import make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(db):
    # As Django's test client does: a request must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Valid requests and invalid ones (schemathesis' default: both generation modes).
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(plan, open_failover, monkeypatch) -> dict[str, str | None]:
    for name in ("requests_app.queue", "federation.queue", "portal.queue"):
        monkeypatch.setattr(f"{name}.send_on_commit", lambda *a, **k: None, raising=False)
    monkeypatch.setattr("portal.celery.app.send_task", lambda *a, **k: None)
    users = {
        "engineer": make_user("f-engineer", "f-engineer@example.com"),
        "approver": make_user("f-approver", "f-approver@example.com", APPROVERS),
        "auditor": make_user("f-auditor", "f-auditor@example.com", AUDITORS),
        "staff": make_user("f-staff", "f-staff@example.com"),
    }
    users["staff"].is_staff = True
    users["staff"].save(update_fields=["is_staff"])
    found: dict[str, str | None] = {"anonymous": None}
    for role, user in users.items():
        found[role] = create_token(user, "fuzz", user)[1]
    return found


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_answer_as_documented(case, tokens):
    for role, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS)
        except AssertionError as exc:
            raise AssertionError(f"as {role}: {exc}") from exc
