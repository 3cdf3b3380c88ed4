"""The failover page: open (real or drill), close with confirmation, history."""

from __future__ import annotations

from django.urls import reverse

from federation.models import Failover, FailoverStatus
from requests_app import services
from requests_app.models import Status


def test_open_a_drill(as_approver, plan, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = as_approver.post(
            reverse("failover-open"), {"reason": "Quarterly drill", "drill": "on"}
        )
    assert response.status_code == 302
    failover = Failover.objects.get()
    assert failover.is_drill
    assert failover.status == FailoverStatus.ACTIVE
    assert callbacks, "activation of the Okta app is queued after commit"
    page = as_approver.get(response["Location"]).content.decode()
    assert f"Drill #{failover.pk} opened." in page
    assert f"Drill #{failover.pk} in progress" in page  # the banner


def test_open_needs_a_reason(as_approver, plan):
    response = as_approver.post(reverse("failover-open"), {"reason": "  "})
    assert response.status_code == 200
    assert "Say why the failover is opened." in response.content.decode()
    assert not Failover.objects.exists()


def test_a_second_failover_is_a_conflict_message(as_approver, open_failover):
    response = as_approver.post(reverse("failover-open"), {"reason": "again"}, follow=True)
    assert "is not closed yet" in response.content.decode()
    assert Failover.objects.count() == 1


def test_close_needs_confirmation(as_approver, open_failover):
    response = as_approver.post(reverse("failover-close"), {"reason": "IdC healthy"})
    assert response.status_code == 200
    assert "Tick the box to confirm" in response.content.decode()
    open_failover.refresh_from_db()
    assert open_failover.status == FailoverStatus.ACTIVE


def test_close_revokes_everything(as_approver, approver, engineer, oncall, file_request):
    active = file_request(engineer)
    services.approve(active, actor=approver)
    services.activate(active.pk, okta_user_id="00u1")
    pending = file_request(oncall)
    page = as_approver.get(reverse("failover")).content.decode()
    assert "Closing lapses the 1 pending request, revokes the 1 grant" in page
    response = as_approver.post(
        reverse("failover-close"), {"reason": "IdC healthy again", "confirm": "on"}, follow=True
    )
    assert "is closing" in response.content.decode()
    active.refresh_from_db()
    pending.refresh_from_db()
    assert active.status == Status.REVOKED
    assert pending.status == Status.LAPSED
    assert Failover.objects.get().status == FailoverStatus.CLOSING


def test_closing_when_nothing_is_open_is_a_message(as_approver, plan):
    response = as_approver.post(
        reverse("failover-close"), {"reason": "x", "confirm": "on"}, follow=True
    )
    assert "No open failover to close." in response.content.decode()


def test_history_lists_past_failovers(as_approver, open_failover):
    content = as_approver.get(reverse("failover")).content.decode()
    assert "History" in content
    assert f"#{open_failover.pk}" in content
    assert "Return to normal" in content


def test_engineers_cannot_open_or_close(as_engineer, plan, open_failover):
    assert as_engineer.post(reverse("failover-open"), {"reason": "x"}).status_code == 403
    assert (
        as_engineer.post(reverse("failover-close"), {"reason": "x", "confirm": "on"}).status_code
        == 403
    )
    open_failover.refresh_from_db()
    assert open_failover.status == FailoverStatus.ACTIVE
