"""POST /requests/approve: many approvals in one call, each decided on its own."""

from __future__ import annotations

import pytest

from portal.audit import events_for
from requests_app.models import AccessRequest, Status
from tests.api.conftest import as_user

pytestmark = pytest.mark.django_db


def test_approves_each_and_reports_per_id(
    as_engineer, as_approver, approver, oncall, ro_role, ops_role, file_as,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    ro = file_as(as_engineer, ro_role)
    ops = file_as(as_engineer, ops_role)
    own = file_as(as_approver, ro_role)
    cancelled = file_as(as_user(oncall), ro_role)
    as_user(oncall).post(f"/requests/{cancelled['id']}/cancel")
    ids = [ro["id"], ops["id"], own["id"], cancelled["id"], 999999, ro["id"]]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = as_approver.post("/requests/approve", {"ids": ids, "comment": "surge"})

    assert response.status_code == 200, response.content
    results = {r["id"]: r for r in response.json()["results"]}
    assert list(results) == [ro["id"], ops["id"], own["id"], cancelled["id"], 999999]
    assert results[ro["id"]] == {
        "id": ro["id"],
        "approved": True,
        "status": "approved",
        "error": "",
    }
    # Ops needs a second approver: recorded, still pending.
    assert results[ops["id"]]["approved"] and results[ops["id"]]["status"] == "pending"
    assert not results[own["id"]]["approved"] and "own request" in results[own["id"]]["error"]
    assert results[own["id"]]["status"] == "pending"
    assert results[cancelled["id"]]["status"] == "cancelled"
    assert "cannot be approved" in results[cancelled["id"]]["error"]
    assert results[999999] == {
        "id": 999999, "approved": False, "status": "", "error": "Request #999999 does not exist."
    }  # fmt: skip
    # Each request decided and audited individually, with the comment.
    req = AccessRequest.objects.get(pk=ro["id"])
    assert req.status == Status.APPROVED and req.decided_by == approver
    assert req.decision_comment == "surge"
    assert [e.action for e in events_for(req)] == [
        "request.filed", "request.approval_added", "request.approved",
    ]  # fmt: skip
    assert [e.action for e in events_for(AccessRequest.objects.get(pk=own["id"]))] == [
        "request.filed"
    ]
    assert len(callbacks) >= 1  # provisioning queued on commit of the approved one


def test_non_approvers_get_a_403_and_nothing_changes(
    as_engineer, as_auditor, ro_role, file_as, snapshot
):
    req = file_as(as_engineer, ro_role)
    before = snapshot()
    for client in (as_engineer, as_auditor):
        response = client.post("/requests/approve", {"ids": [req["id"]]})
        assert response.status_code == 403, response.content
    before.assert_nothing_written()
    assert AccessRequest.objects.get(pk=req["id"]).status == Status.PENDING


def test_anonymous_is_a_401(anon):
    assert anon.post("/requests/approve", {"ids": [1]}).status_code == 401


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ids": []}, "ids"),
        ({"ids": ["1"]}, "ids"),
        ({"ids": list(range(1, 502))}, "ids"),
        ({}, "ids"),
        ({"ids": [1], "comment": "x" * 2001}, "comment"),
        ({"ids": [1], "extra": 1}, "extra"),
    ],
)
def test_bad_bodies_are_400s_with_field_errors(as_approver, body, field):
    response = as_approver.post("/requests/approve", body)
    assert response.status_code == 400, response.content
    assert field in {name.split(".")[0] for name in response.json()["errors"]}


def test_get_one_request_still_works(as_engineer, ro_role, file_as):
    req = file_as(as_engineer, ro_role)
    assert as_engineer.get(f"/requests/{req['id']}").json()["id"] == req["id"]
    assert as_engineer.get("/requests/approve").status_code in (404, 405)
