"""Pages polled during a surge run a constant number of SQL queries, whatever the data size."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from federation.idp.memory import InMemoryIdentityProvider
from portal.core.access import APPROVERS
from requests_app import services
from tests.conftest import make_user
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db


def _queries(client, url: str, **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(captured)


def _file_many(file_request, count: int, start: int) -> list:
    for i in range(start, start + count):
        InMemoryIdentityProvider.add_user(f"person{i}@example.com")
    people = [
        make_user(f"person{i}", f"person{i}@example.com") for i in range(start, start + count)
    ]
    return [
        file_request(p, "prod-data" if i % 2 else "prod-payments") for i, p in enumerate(people)
    ]


def test_the_approvals_queue(as_approver, approver, file_request, django_assert_max_num_queries):
    Group.objects.get_or_create(name=APPROVERS)
    few = _file_many(file_request, 2, 0)
    services.approve(few[0], actor=approver)
    small = _queries(as_approver, reverse("approvals"))
    more = _file_many(file_request, 20, 100)
    for req in more[:5]:
        services.approve(req, actor=approver)
    assert _queries(as_approver, reverse("approvals")) == small
    # +2 the session policy and MFA check (issue 9), +1 eligibility (14), +1 the menu badge (12)
    with django_assert_max_num_queries(16):
        as_approver.get(reverse("approvals"), headers=HTMX)


def test_the_requesters_live_status(
    as_engineer, engineer, approver, file_request, django_assert_max_num_queries
):
    req = file_request(engineer)
    services.approve(req, actor=approver)
    url = reverse("request-status", args=[req.pk])
    small = _queries(as_engineer, url, headers=HTMX)
    _file_many(file_request, 20, 200)
    assert _queries(as_engineer, url, headers=HTMX) == small
    with django_assert_max_num_queries(20):
        as_engineer.get(url, headers=HTMX)
