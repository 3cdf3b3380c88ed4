"""Helpers for the JSON API tests: a client that speaks JSON with a Bearer token."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client

from portal.accounts.tokens import create_token
from portal.models import AuditEvent
from requests_app.models import AccessRequest

API = "/api/v1"
JUSTIFICATION = "Identity Center is down and payments are failing for customers."


@dataclass
class ApiClient:
    """Calls /api/v1 as one user through a personal token (or anonymously)."""

    token: str | None = None
    client: Client = field(default_factory=Client)

    def call(self, method: str, path: str, body: Any = None, *, raw: str | bytes | None = None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(
            method, API + path, data=data, content_type="application/json", headers=headers
        )

    def get(self, path: str, **params: Any):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.get(API + path, params, headers=headers)

    def post(self, path: str, body: Any = None, *, raw: str | bytes | None = None):
        return self.call("POST", path, body, raw=raw)


def as_user(user) -> ApiClient:
    _, raw = create_token(user, "tests", user)
    return ApiClient(token=raw)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Unit tests never publish to a real broker: a task that runs must be patched."""

    def refuse(name: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{name} was sent to the broker; patch its queue.py function")

    monkeypatch.setattr("portal.celery.app.send_task", refuse)


@pytest.fixture
def anon() -> ApiClient:
    return ApiClient()


@pytest.fixture
def as_engineer(engineer) -> ApiClient:
    return as_user(engineer)


@pytest.fixture
def as_approver(approver) -> ApiClient:
    return as_user(approver)


@pytest.fixture
def as_approver2(approver2) -> ApiClient:
    return as_user(approver2)


@pytest.fixture
def as_auditor(auditor) -> ApiClient:
    return as_user(auditor)


@pytest.fixture
def ro_role(plan):
    return plan.roles[("prod-payments", "RO")]


@pytest.fixture
def ops_role(plan):
    return plan.roles[("prod-payments", "Ops")]


def request_body(role, /, **overrides: Any) -> dict[str, Any]:
    return {
        "role": role.pk,
        "justification": JUSTIFICATION,
        "ticket": "INC-4242",
        "duration_minutes": 60,
        **overrides,
    }


@pytest.fixture
def file_as(fake_idp, open_failover):
    """File a request through the API as the given client; returns the JSON."""

    def file(client: ApiClient, role, **overrides: Any) -> dict[str, Any]:
        response = client.post("/requests", request_body(role, **overrides))
        assert response.status_code == 201, response.content
        return response.json()

    return file


class Snapshot:
    """What the database held before a refused call: nothing may be written after it."""

    def __init__(self) -> None:
        self.requests = AccessRequest.objects.count()
        self.last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    def assert_nothing_written(self) -> None:
        assert AccessRequest.objects.count() == self.requests
        last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
        assert last == self.last_event, "an audit event was written by a refused call"


@pytest.fixture
def snapshot():
    return Snapshot
