"""The request list: who sees what, the status filter, pagination and a bounded query count."""

from __future__ import annotations

from django.urls import reverse

from requests_app import services
from requests_app.models import AccessRequest

URL = reverse("request-list")


def test_engineers_see_only_their_own(as_engineer, engineer, oncall, file_request):
    mine = file_request(engineer)
    other = file_request(oncall)
    content = as_engineer.get(URL).content.decode()
    assert "My requests" in content
    assert reverse("request-detail", args=[mine.pk]) in content
    assert reverse("request-detail", args=[other.pk]) not in content


def test_approvers_and_auditors_see_everyone_s(
    as_approver, as_auditor, engineer, oncall, file_request
):
    requests = [file_request(engineer), file_request(oncall)]
    for client in (as_approver, as_auditor):
        content = client.get(URL).content.decode()
        assert "All requests" in content
        for req in requests:
            assert reverse("request-detail", args=[req.pk]) in content


def test_only_mine_for_approvers(as_approver, approver, engineer, file_request):
    theirs = file_request(engineer)
    own = file_request(approver, "prod-data")
    content = as_approver.get(URL, {"mine": "1"}).content.decode()
    assert reverse("request-detail", args=[own.pk]) in content
    assert reverse("request-detail", args=[theirs.pk]) not in content


def test_status_filter(as_approver, approver, engineer, oncall, file_request):
    denied = file_request(engineer)
    services.deny(denied, actor=approver, reason="not needed")
    pending = file_request(oncall)
    content = as_approver.get(URL, {"status": "denied"}).content.decode()
    assert reverse("request-detail", args=[denied.pk]) in content
    assert reverse("request-detail", args=[pending.pk]) not in content
    # An unknown status is ignored rather than an error.
    assert as_approver.get(URL, {"status": "bogus"}).status_code == 200


def test_pagination_and_bounded_queries(
    as_approver, approver, plan, open_failover, django_assert_max_num_queries
):
    from django.contrib.auth import get_user_model

    role = plan.roles[("prod-payments", "RO")]
    for n in range(30):
        user = get_user_model().objects.create_user(f"eng{n}", f"eng{n}@example.com", "pw")
        AccessRequest.objects.create(
            requester=user, role=role, failover=open_failover, justification="a b c d",
            ticket=f"INC-{n}", duration_minutes=30, okta_login=user.email,
        )  # fmt: skip
    with django_assert_max_num_queries(12):
        response = as_approver.get(URL)
    page = response.context["page_obj"]
    assert page.paginator.count == 30
    assert len(page.object_list) == 25
    assert "Page 1 of 2" in response.content.decode()
    with django_assert_max_num_queries(12):
        second = as_approver.get(URL, {"page": 2})
    assert len(second.context["page_obj"].object_list) == 5
