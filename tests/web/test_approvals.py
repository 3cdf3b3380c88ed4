"""The approvers' queue: oldest first, inline approve/deny over htmx, failures shown."""

from __future__ import annotations

from django.urls import reverse

from requests_app import services
from requests_app.models import Status
from tests.web.conftest import HTMX

URL = reverse("approvals")


def test_pending_requests_oldest_first(as_approver, engineer, oncall, file_request):
    first = file_request(engineer)
    second = file_request(oncall, "prod-data")
    content = as_approver.get(URL).content.decode()
    assert content.index(f'id="queue-request-{first.pk}"') < content.index(
        f'id="queue-request-{second.pk}"'
    )
    assert "Waiting for a decision (2)" in content
    assert f'hx-post="{reverse("request-action", args=[first.pk, "approve"])}"' in content


def test_own_requests_are_listed_without_buttons(as_approver, approver, file_request):
    own = file_request(approver)
    content = as_approver.get(URL).content.decode()
    assert "Your own request: another approver decides." in content
    assert reverse("request-action", args=[own.pk, "approve"]) not in content


def test_inline_approve_replaces_the_row(as_approver, engineer, file_request):
    req = file_request(engineer)
    response = as_approver.post(
        reverse("request-action", args=[req.pk, "approve"]), {"comment": "ok"}, headers=HTMX
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith(f'<tr id="queue-request-{req.pk}"')
    assert "<html" not in content
    assert "Okta access is being granted" in content
    req.refresh_from_db()
    assert req.status == Status.APPROVED


def test_inline_self_approval_is_403_with_the_reason(as_approver, approver, file_request):
    req = file_request(approver)
    response = as_approver.post(reverse("request-action", args=[req.pk, "approve"]), headers=HTMX)
    assert response.status_code == 403
    assert "Nobody can approve their own request." in response.content.decode()


def test_granting_and_failed_requests_are_shown(
    as_approver, approver, engineer, oncall, file_request
):
    granting = file_request(engineer)
    services.approve(granting, actor=approver)
    failed = file_request(oncall)
    services.approve(failed, actor=approver)
    services.fail(failed.pk, error="Okta refused: the group is missing")
    content = as_approver.get(URL).content.decode()
    assert "Approved — granting in Okta…" in content
    assert f'id="queue-request-{granting.pk}" class="row-granting"' in content
    assert "Failed — Okta did not grant these (1)" in content
    assert f'id="queue-request-{failed.pk}" class="row-failed"' in content
    assert "the group is missing" in content


def test_the_queue_polls_with_204_until_it_changes(as_approver, engineer, oncall, file_request):
    file_request(engineer)
    version = as_approver.get(URL).context["version"]
    assert as_approver.get(URL, {"v": version}, headers=HTMX).status_code == 204
    file_request(oncall)
    response = as_approver.get(URL, {"v": version}, headers=HTMX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="approvals-queue"')
    assert "Waiting for a decision (2)" in response.content.decode()


def test_the_queue_is_for_approvers_only(as_engineer, as_auditor, plan):
    assert as_engineer.get(URL).status_code == 403
    assert as_auditor.get(URL).status_code == 403
