"""Eligibility on the pages and the API: only eligible choices offered, refusals are 403."""

from __future__ import annotations

from django.urls import reverse

from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.api.conftest import as_user
from tests.eligibility.conftest import JUSTIFICATION, Written, join
from tests.web.conftest import signed_in


def file(user, role):
    return services.file_request(
        requester=user, role=role, justification=JUSTIFICATION, ticket="INC-7", duration_minutes=60
    )


def test_the_new_request_page_offers_only_eligible_roles(
    restricted, fake_idp, open_failover, engineer
):
    content = signed_in(engineer).get(reverse("request-new")).content.decode()
    assert "prod-data (222222222222)" in content
    assert "prod-payments (111111111111)" not in content
    assert 'id="no-eligible-roles"' not in content
    join(engineer, "sre")
    content = signed_in(engineer).get(reverse("request-new")).content.decode()
    assert "prod-payments (111111111111)" in content


def test_someone_eligible_for_nothing_is_told_so(restricted, fake_idp, open_failover, engineer):
    data = restricted.accounts["prod-data"]
    data.requesters = ["data-team"]
    data.save()
    content = signed_in(engineer).get(reverse("request-new")).content.decode()
    assert 'id="no-eligible-roles"' in content


def test_posting_an_ineligible_role_is_403_and_writes_nothing(
    restricted, fake_idp, open_failover, engineer
):
    written = Written()
    response = signed_in(engineer).post(
        reverse("request-new"),
        {
            "role": [restricted.roles[("prod-payments", "RO")].pk],
            "justification": JUSTIFICATION,
            "ticket": "INC-7",
            "duration_minutes": 30,
        },
    )
    assert response.status_code == 403
    assert "not eligible to request EmergencyAccess_Role1_RO" in response.content.decode()
    written.assert_nothing()


def test_the_queue_shows_only_what_the_approver_may_decide(
    restricted, fake_idp, open_failover, engineer, approver
):
    ro = file(engineer, restricted.roles[("prod-data", "RO")])
    ops = file(engineer, restricted.roles[("prod-data", "Ops")])
    content = signed_in(approver).get(reverse("approvals")).content.decode()
    assert f'id="queue-request-{ro.pk}"' in content
    assert f'id="queue-request-{ops.pk}"' not in content
    # The request page shows no buttons either, and pressing one anyway is a 403.
    page = signed_in(approver).get(reverse("request-detail", args=[ops.pk])).content.decode()
    assert reverse("request-action", args=[ops.pk, "approve"]) not in page
    written = Written()
    response = signed_in(approver).post(reverse("request-action", args=[ops.pk, "approve"]))
    assert response.status_code == 403
    assert "not eligible to approve" in response.content.decode()
    written.assert_nothing()
    join(approver, "sre-leads")
    content = signed_in(approver).get(reverse("approvals")).content.decode()
    assert f'id="queue-request-{ops.pk}"' in content


def test_api_filing_outside_eligibility_is_403_and_writes_nothing(
    restricted, fake_idp, open_failover, engineer
):
    client = as_user(engineer)  # creating the token is audited
    written = Written()
    response = client.post(
        "/requests",
        {
            "role": restricted.roles[("prod-payments", "Ops")].pk,
            "justification": JUSTIFICATION,
            "ticket": "INC-7",
            "duration_minutes": 30,
        },
    )
    assert response.status_code == 403, response.content
    assert "not eligible to request" in response.json()["detail"]
    written.assert_nothing()


def test_api_decisions_outside_eligibility_are_403_and_write_nothing(
    restricted, fake_idp, open_failover, engineer, approver
):
    req = file(engineer, restricted.roles[("prod-data", "Ops")])
    client = as_user(approver)
    written = Written()
    for action in ("approve", "deny"):
        response = client.post(f"/requests/{req.pk}/{action}", {})
        assert response.status_code == 403, response.content
        assert f"not eligible to {action}" in response.json()["detail"]
    written.assert_nothing()
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING


def test_api_roles_lists_only_what_the_caller_may_request(restricted, engineer, auditor):
    """GET /roles offers what the new-request page offers: the plan's eligibility."""
    as_engineer = as_user(engineer)
    listed = {r["id"] for r in as_engineer.get("/roles").json()}
    assert listed == {
        restricted.roles[("prod-data", "RO")].pk,
        restricted.roles[("prod-data", "Ops")].pk,
    }
    join(engineer, "sre")
    listed = {r["id"] for r in as_engineer.get("/roles").json()}
    assert listed == {role.pk for role in restricted.roles.values()}
    # An auditor may request nothing, so nothing is listed (still 200: reading is allowed).
    response = as_user(auditor).get("/roles")
    assert response.status_code == 200
    assert response.json() == []
