"""Approve / deny / cancel / revoke through the pages: the services decide, the pages explain."""

from __future__ import annotations

import pytest
from django.urls import reverse

from requests_app import services
from requests_app.models import AccessRequest, Approval, Status
from tests.web.conftest import HTMX


def act(client, req, action, **data):
    return client.post(reverse("request-action", args=[req.pk, action]), data)


def test_approving_redirects_with_a_message(as_approver, engineer, file_request):
    req = file_request(engineer)
    response = act(as_approver, req, "approve", comment="looks right")
    assert response.status_code == 302
    assert response["Location"] == reverse("request-detail", args=[req.pk])
    req.refresh_from_db()
    assert req.status == Status.APPROVED
    assert req.decision_comment == "looks right"
    page = as_approver.get(response["Location"]).content.decode()
    assert f"Request #{req.pk} approved; Okta access is being granted." in page


def test_ops_needs_a_second_approver(as_approver, as_approver2, engineer, file_request):
    req = file_request(engineer, "prod-data", "Ops")
    act(as_approver, req, "approve")
    req.refresh_from_db()
    assert req.status == Status.PENDING
    page = as_approver.get(reverse("request-detail", args=[req.pk])).content.decode()
    assert "it needs 1 more approval(s)" in page
    # The same approver cannot approve twice: the button is gone and the service refuses.
    assert f"/requests/{req.pk}/approve/" not in page.split("<h3>Actions</h3>")[1]
    assert act(as_approver, req, "approve").status_code == 403
    act(as_approver2, req, "approve")
    req.refresh_from_db()
    assert req.status == Status.APPROVED


def test_self_approval_is_refused_through_the_page(as_approver, approver, file_request):
    req = file_request(approver)
    response = act(as_approver, req, "approve")
    assert response.status_code == 403
    assert "Nobody can approve their own request." in response.content.decode()
    assert not Approval.objects.exists()
    req.refresh_from_db()
    assert req.status == Status.PENDING


@pytest.mark.parametrize("action", ["approve", "deny", "cancel", "revoke"])
def test_auditors_posts_are_403(as_auditor, engineer, file_request, action):
    req = file_request(engineer)
    assert act(as_auditor, req, action).status_code == 403
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_engineers_cannot_act_on_other_people_s_requests(as_engineer, oncall, file_request):
    req = file_request(oncall)
    assert act(as_engineer, req, "approve").status_code == 404
    assert act(as_engineer, req, "cancel").status_code == 404


def test_engineers_cannot_approve_or_revoke_even_their_own(as_engineer, engineer, file_request):
    req = file_request(engineer)
    response = act(as_engineer, req, "approve")
    assert response.status_code == 403
    assert "Only approvers can approve requests." in response.content.decode()


def test_the_requester_cancels(as_engineer, engineer, file_request):
    req = file_request(engineer)
    response = act(as_engineer, req, "cancel")
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.status == Status.CANCELLED


def test_deny_with_a_reason(as_approver, engineer, file_request):
    req = file_request(engineer)
    act(as_approver, req, "deny", comment="use the read-only role")
    req.refresh_from_db()
    assert req.status == Status.DENIED
    assert req.decision_comment == "use the read-only role"


def test_revoke_an_active_grant(
    as_approver, approver, engineer, file_request, django_capture_on_commit_callbacks
):
    req = file_request(engineer)
    services.approve(req, actor=approver)
    services.activate(req.pk, okta_user_id="00u1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = act(as_approver, req, "revoke", comment="incident over")
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.status == Status.REVOKED
    assert req.end_reason == "incident over"
    assert callbacks, "removal from the Okta group is queued after commit"


def test_an_invalid_transition_is_a_message_not_an_error(
    as_approver, approver, engineer, file_request
):
    req = file_request(engineer)
    services.deny(req, actor=approver, reason="Use the read-only role.")
    response = act(
        as_approver,
        req,
        "approve",
    )
    assert response.status_code == 302
    page = as_approver.get(response["Location"]).content.decode()
    assert "it cannot be approved" in page


def test_htmx_invalid_transition_is_409_with_the_row(as_approver, approver, engineer, file_request):
    req = file_request(engineer)
    services.deny(req, actor=approver, reason="Use the read-only role.")
    response = as_approver.post(reverse("request-action", args=[req.pk, "approve"]), headers=HTMX)
    assert response.status_code == 409
    content = response.content.decode()
    assert content.lstrip().startswith(f'<tr id="queue-request-{req.pk}"')
    assert "it cannot be approved" in content


def test_get_is_not_allowed_and_unknown_actions_do_not_exist(as_approver, engineer, file_request):
    req = file_request(engineer)
    assert as_approver.get(reverse("request-action", args=[req.pk, "approve"])).status_code == 405
    assert as_approver.post(f"/requests/{req.pk}/activate/").status_code == 404
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING


def test_csrf_is_enforced(approver, engineer, file_request):
    from django.test import Client

    req = file_request(engineer)
    client = Client(enforce_csrf_checks=True)
    client.force_login(approver)
    assert client.post(reverse("request-action", args=[req.pk, "approve"])).status_code == 403
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING


def test_a_too_long_comment_is_refused(as_approver, engineer, file_request):
    req = file_request(engineer)
    assert act(as_approver, req, "approve", comment="x" * 2001).status_code == 400
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING


def test_next_only_redirects_inside_the_portal(as_approver, engineer, file_request):
    req = file_request(engineer)
    response = act(as_approver, req, "approve", next="https://evil.example.com/")
    assert response["Location"] == reverse("request-detail", args=[req.pk])
    other = file_request(engineer, "prod-data")
    response = act(as_approver, other, "deny", next=reverse("approvals"))
    assert response["Location"] == reverse("approvals")
