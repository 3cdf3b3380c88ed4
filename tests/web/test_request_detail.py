"""The request page: everything about it, the buttons each user may use, the live status."""

from __future__ import annotations

import re

from django.urls import reverse

from requests_app import services
from tests.web.conftest import HTMX


def detail(client, req):
    return client.get(reverse("request-detail", args=[req.pk]))


def forms_on(content: str) -> set[str]:
    """The actions whose forms or buttons the page offers."""
    return set(re.findall(r"/requests/\d+/(approve|deny|cancel|revoke)/", content))


def test_the_requester_sees_everything_and_can_cancel(as_engineer, engineer, file_request):
    req = file_request(engineer)
    response = detail(as_engineer, req)
    content = response.content.decode()
    assert response.status_code == 200
    for text in [
        "prod-payments", "111111111111", "EmergencyAccess_Role1_RO",
        "aws#EmergencyAccess_Role1_RO#123456789012", "INC-1234", "60 minutes",
        "Pending approval", "0 of 1 approval", "Still needed: 1", "Filed the request",
    ]:  # fmt: skip
        assert text in content, text
    assert forms_on(content) == {"cancel"}


def test_engineers_get_404_for_someone_else_s_request(as_engineer, oncall, file_request):
    req = file_request(oncall)
    assert detail(as_engineer, req).status_code == 404
    assert as_engineer.get(reverse("request-status", args=[req.pk])).status_code == 404
    assert as_engineer.get(reverse("request-detail", args=[999999])).status_code == 404


def test_approvers_get_approve_and_deny_but_not_on_their_own(
    as_approver, approver, engineer, file_request
):
    theirs = file_request(engineer)
    own = file_request(approver, "prod-data")
    assert forms_on(detail(as_approver, theirs).content.decode()) == {"approve", "deny"}
    assert forms_on(detail(as_approver, own).content.decode()) == {"cancel"}


def test_auditors_see_but_get_no_buttons(as_auditor, engineer, file_request):
    req = file_request(engineer)
    response = detail(as_auditor, req)
    assert response.status_code == 200
    assert forms_on(response.content.decode()) == set()


def test_approved_and_active_requests_offer_revoke_to_approvers(
    as_approver, as_engineer, approver, engineer, file_request
):
    req = file_request(engineer)
    services.approve(req, actor=approver, comment="go ahead")
    content = detail(as_approver, req).content.decode()
    assert "Approved, being granted" in content
    assert "Granting in Okta" in content
    assert "go ahead" in content
    assert forms_on(content) == {"revoke"}
    services.activate(req.pk, okta_user_id="00u1")
    content = detail(as_approver, req).content.decode()
    assert "Active" in content
    assert "Access granted in Okta" in content
    assert "Expires" in content
    assert forms_on(detail(as_engineer, req).content.decode()) == set()


def test_a_failed_request_shows_its_error(as_engineer, approver, engineer, file_request):
    req = file_request(engineer)
    services.approve(req, actor=approver)
    services.fail(req.pk, error="Okta refused: group not found")
    content = detail(as_engineer, req).content.decode()
    assert "Failed" in content
    assert "Okta refused: group not found" in content


def test_status_fragment_renders_and_polls_while_open(as_engineer, engineer, file_request):
    req = file_request(engineer)
    response = as_engineer.get(reverse("request-status", args=[req.pk]), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="request-status"' in content
    assert 'hx-trigger="every 3s"' in content
    assert 'id="request-timeline" hx-swap-oob="true"' in content
    assert "Pending approval" in content


def test_status_fragment_answers_204_until_something_changes(
    as_engineer, approver, engineer, file_request
):
    req = file_request(engineer)
    url = reverse("request-status", args=[req.pk])
    version = as_engineer.get(url).context["version"]
    assert as_engineer.get(url, {"v": version}, headers=HTMX).status_code == 204
    services.approve(req, actor=approver)
    changed = as_engineer.get(url, {"v": version}, headers=HTMX)
    assert changed.status_code == 200
    assert "Approved, being granted" in changed.content.decode()


def test_polling_stops_in_a_final_state(as_engineer, engineer, file_request):
    req = file_request(engineer)
    services.cancel(req, actor=engineer)
    content = as_engineer.get(reverse("request-status", args=[req.pk])).content.decode()
    assert "Cancelled" in content
    assert "hx-trigger" not in content


def test_a_revoked_grant_polls_until_okta_confirms_removal(
    as_engineer, approver, engineer, file_request
):
    req = file_request(engineer)
    services.approve(req, actor=approver)
    services.activate(req.pk, okta_user_id="00u1")
    services.revoke(req, actor=approver, reason="done")
    url = reverse("request-status", args=[req.pk])
    assert "hx-trigger" in as_engineer.get(url).content.decode()
    services.confirm_membership_removed(req.pk, detail="removed from the Okta group")
    content = as_engineer.get(url).content.decode()
    assert "Revoked" in content
    assert "Membership removed" in content
    assert "hx-trigger" not in content
