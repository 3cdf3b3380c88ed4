"""GET /roles and the failover endpoints."""

from __future__ import annotations

import pytest

from federation.models import Failover, FailoverStatus
from portal.audit import events_for
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_roles_lists_the_requestable_plan(as_engineer, plan):
    response = as_engineer.get("/roles")
    assert response.status_code == 200
    roles = response.json()
    assert len(roles) == 4
    ops = next(r for r in roles if r["id"] == plan.roles[("prod-data", "Ops")].pk)
    assert ops == {
        "id": plan.roles[("prod-data", "Ops")].pk,
        "account_id": "222222222222",
        "account_name": "prod-data",
        "level": "Ops",
        "role_name": "EmergencyAccess_Role2_Ops",
        "okta_group": "aws#EmergencyAccess_Role2_Ops#123456789012",
        "max_duration_minutes": 120,
        "approvals_required": 2,
    }


def test_roles_do_not_query_per_role(as_engineer, plan, django_assert_max_num_queries):
    # The token, the caller's roles and groups, the plan's roles once for eligibility, the
    # list: a constant, whatever the number of roles.
    with django_assert_max_num_queries(6):
        assert len(as_engineer.get("/roles").json()) == 4


def test_no_failover_is_null(as_engineer, db):
    response = as_engineer.get("/failover")
    assert response.status_code == 200
    assert response.json() == {"failover": None, "checklist": None}


def test_current_failover_state(as_engineer, open_failover):
    response = as_engineer.get("/failover")
    assert response.status_code == 200
    state = response.json()["failover"]
    assert state["id"] == open_failover.pk
    assert state["status"] == "active"
    assert state["drill"] is False
    assert state["reason"] == "Identity Center is down in eu-west-1"
    assert state["opened_by"] == "approver1"
    assert state["opened_at"]
    assert state["app_activated_at"] is None
    assert state["close_requested_at"] is None
    assert state["closed_at"] is None
    assert state["last_error"] == ""
    assert state["active_grants"] == 0


def test_approver_opens_a_drill(as_approver, approver, db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = as_approver.post("/failover", {"reason": "Quarterly drill", "drill": True})
    assert response.status_code == 201, response.content
    state = response.json()["failover"]
    assert state["drill"] is True
    assert state["status"] == "active"
    failover = Failover.objects.get()
    assert state["id"] == failover.pk
    assert events_for(failover).get().action == "failover.opened"
    assert callbacks  # the federation app activation is queued on commit


def test_opening_a_second_failover_is_409(as_approver, open_failover, snapshot):
    before = snapshot()
    response = as_approver.post("/failover", {"reason": "again"})
    assert response.status_code == 409
    assert "not closed" in response.json()["detail"]
    before.assert_nothing_written()
    assert Failover.objects.count() == 1


def test_engineers_cannot_open_a_failover(as_engineer, db, snapshot):
    before = snapshot()
    response = as_engineer.post("/failover", {"reason": "let me in"})
    assert response.status_code == 403
    before.assert_nothing_written()
    assert not Failover.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": 3}, "reason"),
        ({"reason": "x", "drill": "yes"}, "drill"),
        ({"reason": "x", "dril": True}, "dril"),
    ],
)
def test_bad_failover_bodies_are_400(as_approver, db, snapshot, body, field):
    before = snapshot()
    response = as_approver.post("/failover", body)
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    before.assert_nothing_written()
    assert not Failover.objects.exists()


def test_close_the_failover(as_approver, open_failover, django_capture_on_commit_callbacks):
    # Straight from ACTIVE (the return to normal not started) a close must be forced.
    with django_capture_on_commit_callbacks(execute=False):
        response = as_approver.post(
            "/failover/close", {"reason": "IdC healthy again", "force": True}
        )
    assert response.status_code == 200, response.content
    state = response.json()["failover"]
    assert state["status"] == FailoverStatus.CLOSING
    assert state["close_requested_at"] is not None
    assert AuditEvent.objects.order_by("-seq").first().action == "failover.closing"
    # Still current until the worker confirms the app is off and groups are empty.
    assert as_approver.get("/failover").json()["failover"]["status"] == "closing"


def test_close_without_a_body_asks_for_the_return_to_normal(as_approver, open_failover, snapshot):
    before = snapshot()
    response = as_approver.post("/failover/close")
    assert response.status_code == 409
    assert "Start the return to normal first" in response.json()["detail"]
    before.assert_nothing_written()


def test_closing_when_nothing_is_open_is_409(as_approver, db, snapshot):
    before = snapshot()
    response = as_approver.post("/failover/close", {"reason": "tidy up"})
    assert response.status_code == 409
    before.assert_nothing_written()


def test_engineers_cannot_close(as_engineer, open_failover, snapshot):
    before = snapshot()
    assert as_engineer.post("/failover/close").status_code == 403
    before.assert_nothing_written()
    open_failover.refresh_from_db()
    assert open_failover.status == FailoverStatus.ACTIVE
