"""services.approve_many: each request decided on its own, in its own transaction."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError

from federation.models import Failover, FailoverStatus
from portal.audit import events_for, verify_chain
from portal.core.errors import NotAllowed
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.unit.test_state_machine import make_request


@pytest.fixture
def three(engineer, oncall, approver, plan):
    # Created directly: opening one through its service would queue a task.
    failover = Failover.objects.create(
        opened_by=approver, reason="Identity Center is down", status=FailoverStatus.ACTIVE
    )
    role = plan.roles[("prod-payments", "RO")]
    return [
        make_request(engineer, role, failover),
        make_request(oncall, role, failover),
        make_request(approver, plan.roles[("prod-data", "RO")], failover),
    ]


def test_each_is_approved_and_audited_own_refused(
    three, approver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        outcomes = services.approve_many([r.pk for r in three], actor=approver, comment="go")
    assert [(o.id, o.approved, o.status) for o in outcomes] == [
        (three[0].pk, True, Status.APPROVED),
        (three[1].pk, True, Status.APPROVED),
        (three[2].pk, False, Status.PENDING),
    ]
    assert outcomes[2].error == "Nobody can approve their own request."
    for req in three[:2]:
        assert [e.action for e in events_for(req)] == ["request.approval_added", "request.approved"]
    assert not events_for(three[2]).exists()
    assert verify_chain() is None


@pytest.mark.parametrize("who", ["engineer", "auditor"])
def test_only_approvers(three, who, request):
    with pytest.raises(NotAllowed):
        services.approve_many([three[0].pk], actor=request.getfixturevalue(who))
    assert AccessRequest.objects.get(pk=three[0].pk).status == Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_one_failure_does_not_block_the_others(three, approver):
    """A database error on one request: the ones before and after are committed."""
    real = services.approve

    def approve(req, **kwargs):
        if req.pk == three[1].pk:
            raise OperationalError("deadlock detected")
        return real(req, **kwargs)

    with (
        mock.patch.object(services, "approve", approve),
        mock.patch("requests_app.queue.provision_grant"),
        mock.patch("portal.queue.send_email"),
    ):
        outcomes = services.approve_many([three[0].pk, three[1].pk, three[0].pk], actor=approver)
    assert [o.approved for o in outcomes] == [True, False]  # the repeated id counted once
    assert "database error" in outcomes[1].error
    assert AccessRequest.objects.get(pk=three[0].pk).status == Status.APPROVED
    assert AccessRequest.objects.get(pk=three[1].pk).status == Status.PENDING
