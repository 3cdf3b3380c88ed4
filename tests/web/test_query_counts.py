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
    services.activate(req.pk, okta_user_id="00u1")  # a grant: its sign-out evidence too
    url = reverse("request-status", args=[req.pk])
    small = _queries(as_engineer, url, headers=HTMX)
    _file_many(file_request, 20, 200)
    assert _queries(as_engineer, url, headers=HTMX) == small
    # A changed poll (a surge's 100 grants a minute each answer one): the sign-out
    # evidence once, not for the version and again for the page; the granted minutes
    # once; no failover banner lookup for a fragment (20 queries before, issue 13).
    with django_assert_max_num_queries(16):
        as_engineer.get(url, headers=HTMX)


def test_an_unchanged_poll_is_decided_by_the_version_alone(
    as_engineer, engineer, approver, file_request, django_assert_max_num_queries
):
    """Issue 13 (the surge): 300 requesters poll every 3 s; while nothing changed the
    answer is a 204 decided from the version, not from the whole page's context (14
    queries before, 8 now)."""
    req = file_request(engineer)
    services.approve(req, actor=approver)
    services.activate(req.pk, okta_user_id="00u1")  # a grant: its sign-out evidence too
    url = reverse("request-status", args=[req.pk])
    version = as_engineer.get(url, headers=HTMX).context["version"]
    # The session, the user, the session policy, the user's roles (4); then the request
    # with its failover, its newest event, and the grant's sign-in evidence (4).
    with django_assert_max_num_queries(8):
        response = as_engineer.get(url, {"v": version}, headers=HTMX)
    assert response.status_code == 204


def test_the_request_page_and_the_dashboard(
    as_approver, approver, file_request, django_assert_max_num_queries
):
    """Issue 13: the request page and the dashboard do not grow with the history."""
    Group.objects.get_or_create(name=APPROVERS)
    req, held = _file_many(file_request, 2, 300)
    services.approve(held, actor=approver)  # the lists are not empty to begin with
    detail, dashboard = reverse("request-detail", args=[req.pk]), reverse("dashboard")
    small = (_queries(as_approver, detail), _queries(as_approver, dashboard))
    for other in _file_many(file_request, 20, 400)[:10]:
        services.approve(other, actor=approver)
    assert (_queries(as_approver, detail), _queries(as_approver, dashboard)) == small


def test_the_audit_log_counts_by_its_head_not_by_count(as_auditor, approver, file_request):
    from portal import audit
    from portal.views import known_actions

    _file_many(file_request, 3, 500)
    with CaptureQueriesContext(connection) as captured:
        response = as_auditor.get(reverse("audit-log"))
    assert response.context["page_obj"].paginator.count == audit.head()[0]
    sql = " ".join(q["sql"] for q in captured).upper()
    assert 'COUNT(*) AS "__COUNT" FROM "PORTAL_AUDITEVENT"' not in sql
    assert "SELECT DISTINCT" not in sql
    from portal.models import AuditEvent

    expected = sorted(set(AuditEvent.objects.values_list("action", flat=True)))
    assert known_actions() == expected and expected


def test_a_long_filtered_list_is_counted_only_so_far(as_auditor, archive, monkeypatch):
    from portal.core.web import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "CAP", 3)
    response = as_auditor.get(reverse("auditor-history"))
    paginator = response.context["page_obj"].paginator
    assert paginator.capped and paginator.count == 4  # CAP + 1: "more than 3"
    assert "more than 3: narrow the filter" not in response.content.decode()  # one page
    monkeypatch.setattr("portal.auditor.views.PAGE_SIZE", 2)
    content = as_auditor.get(reverse("auditor-history")).content.decode()
    assert "more than 3: narrow the filter" in content


def _counts(client, url: str) -> tuple[int, bool]:
    """How many COUNT queries the page ran, and whether it said "more than CAP"."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    counts = sum("COUNT(*)" in q["sql"].upper() for q in captured.captured_queries)
    return counts, response.context["page_obj"].paginator.capped


def test_a_count_past_the_cap_is_remembered_for_that_filter(as_auditor, archive, monkeypatch):
    """Counting 10,001 rows of a broad filter cost more than the page (issue 13): once a
    filter is known to match more than CAP rows, its next pages do not count again."""
    from portal.core.web import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "CAP", 3)
    url = reverse("auditor-history")
    assert _counts(as_auditor, url) == (1, True)
    assert _counts(as_auditor, url) == (0, True)
    assert _counts(as_auditor, f"{url}?page=2") == (0, True)
    # Another filter is counted on its own; one under the cap is counted every time
    # (a new request must show up in "N in all").
    narrow = f"{url}?kind=real"
    assert _counts(as_auditor, narrow) == (1, False)
    assert _counts(as_auditor, narrow) == (1, False)


def test_the_count_survives_the_cache_being_down(as_auditor, archive, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from portal.core import web

    def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(web.CappedPaginator, "CAP", 3)
    monkeypatch.setattr(web.cache, "get", down)
    monkeypatch.setattr(web.cache, "set", down)
    url = reverse("auditor-history")
    assert _counts(as_auditor, url) == (1, True)
    assert _counts(as_auditor, url) == (1, True)


def test_the_history_filters_lists_are_plain_queries(as_auditor, archive):
    """Django reads a model choice list with iterator(): on PostgreSQL a server-side
    cursor (declare, fetch, close) for the account and level lists of every history page."""
    with CaptureQueriesContext(connection) as captured:
        response = as_auditor.get(reverse("auditor-history"))
    assert response.status_code == 200
    assert 'name="account"' in response.content.decode()
    assert not [q["sql"] for q in captured.captured_queries if "DECLARE" in q["sql"]]
