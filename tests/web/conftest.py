"""Helpers for the page tests: a signed-in browser per actor, and requests filed for real."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from requests_app import services
from requests_app.models import AccessRequest

JUSTIFICATION = "Payments are failing and I need to read the CloudWatch logs to find out why."
HTMX = {"HX-Request": "true"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_engineer(engineer) -> Client:
    return signed_in(engineer)


@pytest.fixture
def as_approver(approver) -> Client:
    return signed_in(approver)


@pytest.fixture
def as_approver2(approver2) -> Client:
    return signed_in(approver2)


@pytest.fixture
def as_auditor(auditor) -> Client:
    return signed_in(auditor)


@pytest.fixture
def file_request(plan, fake_idp, open_failover) -> Callable[..., AccessRequest]:
    """File a request through the service, as the page would."""

    def _file(user, account: str = "prod-payments", level: str = "RO", minutes: int = 60):
        return services.file_request(
            requester=user,
            role=plan.roles[(account, level)],
            justification=JUSTIFICATION,
            ticket="INC-1234",
            duration_minutes=minutes,
        )

    return _file
