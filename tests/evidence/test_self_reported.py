"""The engineer's own "I have signed out": the service, the API call and the page button."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.audit import events_for
from portal.core.errors import InvalidTransition, NotAllowed
from requests_app import services
from requests_app.evidence import SELF_REPORTED, sign_out_status
from tests.api.conftest import as_user

pytestmark = pytest.mark.django_db


def test_the_requester_says_they_signed_out(grant, engineer):
    req = grant(engineer)
    services.confirm_signed_out(req, engineer)
    status = sign_out_status(req)
    assert (status.signed_out, status.how) == (True, SELF_REPORTED)
    event = events_for(req).get(action="request.signed_out")
    assert event.actor_label == "engineer"
    # Pressing it again changes nothing.
    services.confirm_signed_out(req, engineer)
    assert events_for(req).filter(action="request.signed_out").count() == 1


def test_nobody_else_can_say_it_for_them(grant, engineer, approver, auditor):
    req = grant(engineer)
    for other in (approver, auditor):
        with pytest.raises(NotAllowed):
            services.confirm_signed_out(req, other)
    assert not events_for(req).filter(action="request.signed_out").exists()


def test_a_request_never_granted_has_nothing_to_sign_out_of(
    plan, fake_idp, open_failover, engineer
):
    req = services.file_request(
        requester=engineer, role=plan.roles[("prod-payments", "RO")],
        justification="Need to look at the logs of payments", ticket="INC-1",
        duration_minutes=30,
    )  # fmt: skip
    with pytest.raises(InvalidTransition):
        services.confirm_signed_out(req, engineer)


def test_the_api_call(grant, engineer, approver):
    req = grant(engineer)
    response = as_user(engineer).post(f"/requests/{req.pk}/signed-out")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["request_id"] == req.pk
    assert body["signed_out"] is True and body["how"] == "self-reported"
    assert body["last_sign_in"] is None and body["at"]
    # Someone else's request: 403 from the service (approvers can see it) ...
    refused = as_user(approver).post(f"/requests/{req.pk}/signed-out")
    assert refused.status_code == 403
    assert "Only the person who held the access" in refused.json()["detail"]


def test_the_api_hides_requests_you_cannot_see(grant, engineer, oncall):
    req = grant(engineer)
    assert as_user(oncall).post(f"/requests/{req.pk}/signed-out").status_code == 404


def test_the_button_on_the_request_page(grant, engineer, approver):
    req = grant(engineer)
    client = Client()
    client.force_login(engineer)
    page = client.get(reverse("request-detail", args=[req.pk])).content.decode()
    assert "I have signed out of AWS" in page
    assert "Not signed in" in page  # no sign-in seen yet
    url = reverse("request-action", args=[req.pk, "signed-out"])
    response = client.post(url, {"comment": ""}, follow=True)
    content = response.content.decode()
    assert "Thank you: your sign-out is recorded." in content
    assert "they said so in the portal" in content
    assert "I have signed out of AWS" not in content
    # Approvers see the evidence, not the button.
    approver_client = Client()
    approver_client.force_login(approver)
    page = approver_client.get(reverse("request-detail", args=[req.pk])).content.decode()
    assert "Signed out" in page and "I have signed out of AWS" not in page
    assert approver_client.post(url, {"comment": ""}).status_code == 403
