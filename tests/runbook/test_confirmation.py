"""REQUIRE_FAILOVER_CONFIRMATION: a real failover waits for a second, different approver."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from federation.failover import services
from federation.models import Failover, FailoverStatus
from portal.audit import events_for
from portal.core.errors import Conflict, NotAllowed
from requests_app import services as request_services
from tests.runbook.conftest import JUSTIFICATION


@pytest.fixture
def confirmation_on(settings):
    settings.REQUIRE_FAILOVER_CONFIRMATION = True


def test_off_by_default_a_real_failover_opens_at_once(
    approver, plan, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        failover = services.open_failover(actor=approver, reason="IdC down")
    assert failover.status == FailoverStatus.ACTIVE
    assert queued  # the app activation


def test_a_real_failover_is_proposed_then_confirmed_by_someone_else(
    approver, approver2, engineer, plan, fake_idp, confirmation_on,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False) as queued:
        failover = services.open_failover(actor=approver, reason="IdC down in eu-west-1")
    assert failover.status == FailoverStatus.PROPOSED
    assert not any("activate_federation_app" in repr(q) for q in queued)
    # Nothing can be requested yet.
    with pytest.raises(Conflict, match="second approver"):
        request_services.file_request(
            requester=engineer, role=plan.roles[("prod-payments", "RO")],
            justification=JUSTIFICATION, ticket="INC-1", duration_minutes=30,
        )  # fmt: skip
    with pytest.raises(NotAllowed, match="second, different approver"):
        services.confirm_failover(actor=approver)
    with pytest.raises(NotAllowed):
        services.confirm_failover(actor=engineer)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        confirmed = services.confirm_failover(actor=approver2)
    assert confirmed.status == FailoverStatus.ACTIVE
    assert confirmed.confirmed_by == approver2
    assert len(queued) >= 1
    assert [e.action for e in events_for(failover)] == [
        "failover.proposed",
        "failover.confirmed",
        "failover.opened",
    ]
    with pytest.raises(Conflict):
        services.confirm_failover(actor=approver2)


def test_drills_need_no_confirmation(
    approver, plan, confirmation_on, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        failover = services.open_failover(actor=approver, reason="Quarterly drill", drill=True)
    assert failover.status == FailoverStatus.ACTIVE


def test_the_page_offers_confirm_to_the_other_approver(
    approver, approver2, plan, confirmation_on, client, django_capture_on_commit_callbacks
):
    services.open_failover(actor=approver, reason="IdC down")
    client.force_login(approver)
    page = client.get(reverse("failover")).content.decode()
    assert "another approver must confirm" in page
    assert "Confirm the failover" not in page
    client.force_login(approver2)
    page = client.get(reverse("failover")).content.decode()
    assert "Confirm the failover" in page
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("failover-confirm"), follow=True)
    assert "confirmed" in response.content.decode()
    assert Failover.objects.get().status == FailoverStatus.ACTIVE


def test_one_unclosed_failover_whatever_its_state(approver, plan):
    """The constraint holds across proposed/active/returning/closing, not per state."""
    Failover.objects.create(opened_by=approver, reason="a", status=FailoverStatus.PROPOSED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Failover.objects.create(opened_by=approver, reason="b", status=FailoverStatus.ACTIVE)
    Failover.objects.create(opened_by=approver, reason="c", status=FailoverStatus.CLOSED)
