"""Bulk approval on the approvers' queue: tick many, or "Approve all RO", in one POST."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit import events_for
from requests_app.models import AccessRequest, Status

QUEUE = reverse("approvals")
URL = reverse("approvals-approve")
pytestmark = pytest.mark.django_db


def _messages(response) -> str:
    return response.content.decode()


def test_the_queue_offers_checkboxes_and_approve_all_ro(
    as_approver, approver, engineer, oncall, file_request
):
    ro = file_request(engineer)
    ops = file_request(oncall, level="Ops")
    own = file_request(approver, "prod-data")
    content = as_approver.get(QUEUE).content.decode()
    assert f'id="pick-{ro.pk}" name="ids" value="{ro.pk}" form="bulk-approve"' in content
    assert f'id="pick-{ops.pk}"' in content
    assert f'id="pick-{own.pk}"' not in content  # nobody approves their own
    assert f'<input type="hidden" name="ro_ids" value="{ro.pk}">' in content
    assert f'name="ro_ids" value="{ops.pk}"' not in content
    assert "Approve all RO (1)" in content


def test_approve_selected_decides_each_and_reports(
    as_approver, approver, engineer, oncall, file_request
):
    first = file_request(engineer)
    second = file_request(oncall)
    own = file_request(approver, "prod-data")
    response = as_approver.post(
        URL,
        {"scope": "selected", "ids": [first.pk, second.pk, own.pk], "comment": "surge"},
        follow=True,
    )
    assert response.status_code == 200
    page = _messages(response)
    assert f"Approved 2 requests: #{first.pk}, #{second.pk}." in page
    assert f"#{own.pk}: Nobody can approve their own request." in page
    for req in (first, second):
        req.refresh_from_db()
        assert req.status == Status.APPROVED and req.decision_comment == "surge"
        assert [e.action for e in events_for(req)][-2:] == [
            "request.approval_added",
            "request.approved",
        ]
    assert AccessRequest.objects.get(pk=own.pk).status == Status.PENDING


def test_approve_all_ro_takes_the_ro_ids_shown(as_approver, engineer, oncall, file_request):
    ro = file_request(engineer)
    ops = file_request(oncall, level="Ops")
    response = as_approver.post(
        URL, {"scope": "ro", "ro_ids": [ro.pk], "ids": [ops.pk]}, follow=True
    )
    assert f"Approved 1 request: #{ro.pk}." in _messages(response)
    assert AccessRequest.objects.get(pk=ro.pk).status == Status.APPROVED
    assert not AccessRequest.objects.get(pk=ops.pk).approvals.exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"scope": "selected"}, "Select at least one request to approve."),
        ({"scope": "ro"}, "Select at least one request to approve."),
        ({"scope": "selected", "ids": ["x"]}, "x is not one of the available choices"),
        ({"scope": "everything", "ids": ["1"]}, "everything is not one of the available choices"),
    ],
)
def test_bad_forms_say_why(as_approver, data, message):
    response = as_approver.post(URL, data, follow=True)
    assert response.status_code == 200
    assert message in _messages(response)


def test_engineers_and_auditors_are_refused(as_engineer, as_auditor, oncall, file_request):
    req = file_request(oncall)
    for client in (as_engineer, as_auditor):
        response = client.post(URL, {"scope": "selected", "ids": [req.pk]})
        assert response.status_code == 403
    assert not AccessRequest.objects.get(pk=req.pk).approvals.exists()


def test_get_is_not_allowed(as_approver):
    assert as_approver.get(URL).status_code == 405
