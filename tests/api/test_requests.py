"""POST/GET /requests and the four decisions, through the API."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.contrib.auth import get_user_model

from portal.audit import events_for
from requests_app.models import AccessRequest, Status
from tests.api.conftest import JUSTIFICATION, as_user, request_body

pytestmark = pytest.mark.django_db


# --- Filing ---------------------------------------------------------------------------


def test_file_a_request(as_engineer, engineer, ro_role, fake_idp, open_failover):
    response = as_engineer.post("/requests", request_body(ro_role, duration_minutes=90))

    assert response.status_code == 201, response.content
    body = response.json()
    req = AccessRequest.objects.get()
    assert body["id"] == req.pk
    assert body["status"] == "pending"
    assert body["requester"] == {"username": "engineer", "email": "engineer@example.com"}
    assert body["role"] == {
        "id": ro_role.pk,
        "role_name": "EmergencyAccess_Role1_RO",
        "okta_group": "aws#EmergencyAccess_Role1_RO#123456789012",
        "account_id": "111111111111",
        "account_name": "prod-payments",
        "level": "RO",
    }
    assert body["justification"] == JUSTIFICATION
    assert body["ticket"] == "INC-4242"
    assert body["duration_minutes"] == 90
    assert body["approvals"] == []
    assert body["approvals_required"] == 1
    assert body["failover_id"] == open_failover.pk
    for key in ("decided_at", "decided_by", "activated_at", "expires_at", "ended_at"):
        assert body[key] is None
    assert body["end_reason"] == "" and body["last_error"] == ""
    assert [e.action for e in events_for(req)] == ["request.filed"]
    assert events_for(req).get().actor == engineer


BAD_BODIES = [
    pytest.param({"role": 999999}, {"role"}, id="unknown-role"),
    pytest.param({"duration_minutes": 241}, {"duration_minutes"}, id="duration-above-max"),
    pytest.param({"duration_minutes": 0}, {"duration_minutes"}, id="duration-zero"),
    pytest.param({"duration_minutes": -5}, {"duration_minutes"}, id="duration-negative"),
    pytest.param({"justification": ""}, {"justification"}, id="empty-justification"),
    pytest.param({"justification": "   "}, {"justification"}, id="blank-justification"),
    pytest.param({"justification": "need access"}, {"justification"}, id="short-justification"),
    pytest.param({"ticket": "  "}, {"ticket"}, id="blank-ticket"),
    pytest.param({"ticket": "T" * 129}, {"ticket"}, id="ticket-too-long"),
    pytest.param({"role": "abc"}, {"role"}, id="role-not-a-number"),
    pytest.param({"role": None}, {"role"}, id="role-null"),
    pytest.param({"duration_minutes": "60"}, {"duration_minutes"}, id="duration-a-string"),
    pytest.param({"duration_minutes": 60.5}, {"duration_minutes"}, id="duration-a-fraction"),
    pytest.param({"duration_minutes": True}, {"duration_minutes"}, id="duration-a-boolean"),
    pytest.param({"justification": 12345}, {"justification"}, id="justification-a-number"),
    pytest.param({"ticket": ["INC-1"]}, {"ticket"}, id="ticket-a-list"),
    pytest.param({"durations": 60}, {"durations"}, id="unknown-field"),
]


@pytest.mark.parametrize(("overrides", "fields"), BAD_BODIES)
def test_bad_input_is_a_400_with_field_errors_and_writes_nothing(
    as_engineer, ro_role, fake_idp, open_failover, snapshot, overrides, fields
):
    before = snapshot()
    response = as_engineer.post("/requests", request_body(ro_role, **overrides))

    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body["errors"]) == fields
    assert all(
        messages and all(isinstance(m, str) for m in messages)
        for messages in body["errors"].values()
    )
    assert body["detail"]
    before.assert_nothing_written()


@pytest.mark.parametrize("missing", ["role", "justification", "ticket", "duration_minutes"])
def test_a_missing_field_is_named(as_engineer, ro_role, fake_idp, open_failover, snapshot, missing):
    before = snapshot()
    body = request_body(ro_role)
    del body[missing]
    response = as_engineer.post("/requests", body)
    assert response.status_code == 400
    assert response.json()["errors"] == {missing: ["This field is required."]}
    before.assert_nothing_written()


def test_an_empty_body_names_every_field(as_engineer, fake_idp, open_failover, snapshot):
    before = snapshot()
    response = as_engineer.post("/requests", {})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"role", "justification", "ticket", "duration_minutes"}
    before.assert_nothing_written()


@pytest.mark.parametrize("raw", ['{"role": 1,', "not json at all", b"\xff\xfe{}", '{"role": 1}}'])
def test_malformed_json_is_a_clear_400(as_engineer, fake_idp, open_failover, snapshot, raw):
    before = snapshot()
    response = as_engineer.post("/requests", raw=raw)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("The request body is not valid JSON")
    assert body["errors"] == {"__all__": [body["detail"]]}
    before.assert_nothing_written()


@pytest.mark.parametrize("raw", ["[1, 2]", '"a string"', "42", "null"])
def test_a_body_that_is_not_an_object_is_a_400(as_engineer, fake_idp, open_failover, snapshot, raw):
    before = snapshot()
    response = as_engineer.post("/requests", raw=raw)
    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    before.assert_nothing_written()


def test_a_user_without_an_okta_account_gets_a_400(ro_role, fake_idp, open_failover, snapshot):
    stranger = get_user_model().objects.create_user("stranger", "stranger@example.com", "x")
    client = as_user(stranger)
    before = snapshot()
    response = client.post("/requests", request_body(ro_role))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["__all__"]
    assert "stranger@example.com" in errors["__all__"][0]
    assert response.json()["detail"] == errors["__all__"][0]
    before.assert_nothing_written()


def test_filing_without_an_open_failover_is_a_409(as_engineer, ro_role, fake_idp, snapshot):
    before = snapshot()
    response = as_engineer.post("/requests", request_body(ro_role))
    assert response.status_code == 409
    assert "No failover is open" in response.json()["detail"]
    before.assert_nothing_written()


def test_a_duplicate_open_request_is_a_409(as_engineer, ro_role, file_as, snapshot):
    first = file_as(as_engineer, ro_role)
    before = snapshot()
    response = as_engineer.post("/requests", request_body(ro_role))
    assert response.status_code == 409
    assert f"#{first['id']}" in response.json()["detail"]
    before.assert_nothing_written()


# --- Reading --------------------------------------------------------------------------


@pytest.fixture
def three_requests(file_as, as_engineer, plan, oncall):
    """Two requests by the engineer, one by someone else."""
    mine = [
        file_as(as_engineer, plan.roles[("prod-payments", "RO")]),
        file_as(as_engineer, plan.roles[("prod-data", "RO")]),
    ]
    theirs = file_as(as_user(oncall), plan.roles[("prod-data", "Ops")])
    return mine, theirs


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_engineers_list_only_their_own(as_engineer, three_requests):
    mine, _ = three_requests
    response = as_engineer.get("/requests")
    assert ids(response) == [mine[1]["id"], mine[0]["id"]]  # newest first
    assert response.json()["count"] == 2


def test_approvers_and_auditors_list_everything(as_approver, as_auditor, three_requests):
    assert len(ids(as_approver.get("/requests"))) == 3
    assert len(ids(as_auditor.get("/requests"))) == 3


def test_list_filters_and_pagination(as_approver, as_engineer, three_requests):
    mine, theirs = three_requests
    as_engineer.post(f"/requests/{mine[0]['id']}/cancel")

    assert ids(as_approver.get("/requests", status="cancelled")) == [mine[0]["id"]]
    assert ids(as_approver.get("/requests", status="pending")) == [theirs["id"], mine[1]["id"]]
    assert ids(as_engineer.get("/requests", mine="true")) == [mine[1]["id"], mine[0]["id"]]
    assert ids(as_approver.get("/requests", mine="true")) == []

    page = as_approver.get("/requests", limit=1, offset=1)
    assert ids(page) == [mine[1]["id"]]
    assert page.json()["count"] == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"mine": "perhaps"}, "mine"),
    ],
)
def test_bad_list_parameters_are_400(as_engineer, params, field):
    response = as_engineer.get("/requests", **params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_listing_does_not_query_per_row(as_approver, three_requests, django_assert_max_num_queries):
    # auth (token lookup + groups) + count + rows + approvals and extensions prefetches
    with django_assert_max_num_queries(7):
        assert len(ids(as_approver.get("/requests"))) == 3


def test_get_one_request(as_engineer, three_requests):
    mine, _ = three_requests
    response = as_engineer.get(f"/requests/{mine[0]['id']}")
    assert response.status_code == 200
    assert response.json() == mine[0]


def test_someone_elses_request_is_a_404(as_engineer, three_requests):
    _, theirs = three_requests
    response = as_engineer.get(f"/requests/{theirs['id']}")
    assert response.status_code == 404
    assert f"#{theirs['id']}" in response.json()["detail"]
    assert as_engineer.get("/requests/999999").status_code == 404


# --- Decisions -------------------------------------------------------------------------


def test_approval_grants_and_queues_provisioning(
    as_engineer, as_approver, approver, ro_role, file_as, django_capture_on_commit_callbacks
):
    req = file_as(as_engineer, ro_role)
    with (
        mock.patch("requests_app.queue.provision_grant") as delay,
        mock.patch("portal.queue.send_email") as email,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = as_approver.post(f"/requests/{req['id']}/approve", {"comment": "go"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["decided_by"] == "approver1"
    assert body["decided_at"] is not None
    assert [(a["approver"], a["comment"]) for a in body["approvals"]] == [("approver1", "go")]
    delay.assert_called_once_with(req["id"])
    email.assert_called_once()  # the requester is told
    assert [e.action for e in events_for(AccessRequest.objects.get())] == [
        "request.filed",
        "request.approval_added",
        "request.approved",
    ]


def test_approve_without_a_body(
    as_engineer, as_approver, ro_role, file_as, django_capture_on_commit_callbacks
):
    req = file_as(as_engineer, ro_role)
    with django_capture_on_commit_callbacks(execute=False):
        response = as_approver.post(f"/requests/{req['id']}/approve")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"


def test_nobody_approves_their_own_request(as_approver, ro_role, file_as, snapshot):
    req = file_as(as_approver, ro_role)
    before = snapshot()
    response = as_approver.post(f"/requests/{req['id']}/approve")
    assert response.status_code == 403
    assert "own request" in response.json()["detail"]
    before.assert_nothing_written()


def test_ops_needs_two_distinct_approvers(
    as_engineer,
    as_approver,
    as_approver2,
    ops_role,
    file_as,
    snapshot,
    django_capture_on_commit_callbacks,
):
    req = file_as(as_engineer, ops_role)
    first = as_approver.post(f"/requests/{req['id']}/approve", {"comment": "one"})
    assert first.status_code == 200
    assert first.json()["status"] == "pending"
    assert first.json()["approvals_required"] == 2

    before = snapshot()
    again = as_approver.post(f"/requests/{req['id']}/approve", {"comment": "me again"})
    assert again.status_code == 403
    assert "already approved" in again.json()["detail"]
    before.assert_nothing_written()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        second = as_approver2.post(f"/requests/{req['id']}/approve")
    assert second.status_code == 200
    assert second.json()["status"] == "approved"
    assert [a["approver"] for a in second.json()["approvals"]] == ["approver1", "approver2"]
    assert callbacks  # provisioning (and the email) queued on commit


def test_approve_after_cancel_is_a_409(as_engineer, as_approver, ro_role, file_as, snapshot):
    req = file_as(as_engineer, ro_role)
    cancelled = as_engineer.post(f"/requests/{req['id']}/cancel", {"reason": "fixed itself"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["end_reason"] == "fixed itself"

    before = snapshot()
    response = as_approver.post(f"/requests/{req['id']}/approve")
    assert response.status_code == 409
    assert "cancelled" in response.json()["detail"]
    before.assert_nothing_written()


def test_deny(as_engineer, as_approver, ro_role, file_as):
    req = file_as(as_engineer, ro_role)
    response = as_approver.post(f"/requests/{req['id']}/deny", {"reason": "use the runbook"})
    assert response.status_code == 200
    assert response.json()["status"] == "denied"
    assert response.json()["decision_comment"] == "use the runbook"
    assert response.json()["decided_by"] == "approver1"


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "   "}])
def test_deny_and_revoke_without_a_reason_are_400_with_a_field_error(
    as_engineer, as_approver, ro_role, ops_role, file_as, snapshot, body
):
    """The reason rule is the service's: the API keeps it as the pages do."""
    waiting = file_as(as_engineer, ops_role)
    approved = file_as(as_engineer, ro_role)
    with mock.patch("requests_app.queue.provision_grant"):
        as_approver.post(f"/requests/{approved['id']}/approve")
    for req, action, message in [
        (waiting, "deny", "Give a reason for the denial: the engineer is told it."),
        (approved, "revoke", "Give a reason for revoking: the engineer is told it."),
    ]:
        before = snapshot()
        response = as_approver.post(f"/requests/{req['id']}/{action}", body)
        assert response.status_code == 400, response.content
        assert response.json()["errors"] == {"reason": [message]}
        before.assert_nothing_written()
    statuses = AccessRequest.objects.order_by("pk").values_list("status", flat=True)
    assert list(statuses) == [Status.PENDING, Status.APPROVED]


def test_only_approvers_decide(as_engineer, ro_role, file_as, oncall, snapshot):
    req = file_as(as_user(oncall), ro_role)
    # An engineer cannot even see someone else's request.
    before = snapshot()
    assert as_engineer.post(f"/requests/{req['id']}/deny").status_code == 404
    assert as_engineer.post(f"/requests/{req['id']}/approve").status_code == 404
    before.assert_nothing_written()


def test_only_the_requester_cancels(as_engineer, as_approver, ro_role, file_as, snapshot):
    req = file_as(as_engineer, ro_role)
    before = snapshot()
    response = as_approver.post(f"/requests/{req['id']}/cancel")
    assert response.status_code == 403
    assert "requester" in response.json()["detail"]
    before.assert_nothing_written()


def test_revoke_a_grant(
    as_engineer, as_approver, ro_role, file_as, django_capture_on_commit_callbacks
):
    req = file_as(as_engineer, ro_role)
    with django_capture_on_commit_callbacks(execute=False):
        as_approver.post(f"/requests/{req['id']}/approve")
    with (
        mock.patch("requests_app.queue.deprovision_grant") as delay,
        mock.patch("portal.queue.send_email") as email,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = as_approver.post(f"/requests/{req['id']}/revoke", {"reason": "done"})
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["end_reason"] == "done"
    assert response.json()["ended_at"] is not None
    delay.assert_called_once_with(req["id"])
    email.assert_called_once()  # the requester is told their access ended


def test_revoking_a_pending_request_is_a_409(as_engineer, as_approver, ro_role, file_as):
    req = file_as(as_engineer, ro_role)
    assert as_approver.post(f"/requests/{req['id']}/revoke").status_code == 409
    assert AccessRequest.objects.get().status == Status.PENDING


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("approve", {"comment": 5}),
        ("approve", {"reason": "wrong field"}),
        ("deny", {"reason": "x" * 2001}),
        ("cancel", {"reason": ["a"]}),
        ("revoke", {"because": "typo"}),
    ],
)
def test_bad_decision_bodies_are_400(
    as_engineer, as_approver, ro_role, file_as, snapshot, action, body
):
    req = file_as(as_engineer, ro_role)
    client = as_engineer if action == "cancel" else as_approver
    before = snapshot()
    response = client.post(f"/requests/{req['id']}/{action}", body)
    assert response.status_code == 400
    assert response.json()["errors"]
    before.assert_nothing_written()


def test_a_malformed_decision_body_is_400(as_engineer, as_approver, ro_role, file_as):
    req = file_as(as_engineer, ro_role)
    response = as_approver.post(f"/requests/{req['id']}/approve", raw="{oops")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    assert json.loads(as_engineer.get(f"/requests/{req['id']}").content)["status"] == "pending"
