"""Grants people need: extensions (service, API, page), several roles at once, escalation
of unanswered requests and the "ending soon" notice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from federation.failover import services as failover_services
from portal.audit import events_for
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from requests_app import extensions, reminders, services
from requests_app.models import AccessRequest, ExtensionStatus, Status
from tests.api.conftest import as_user
from tests.runbook.conftest import JUSTIFICATION

MORE = "The restart is taking longer than planned, I need to watch it."


def extend(req, minutes=30, capture=None):
    if capture is None:
        return extensions.request_extension(
            req, actor=req.requester, minutes=minutes, justification=MORE
        )
    with capture(execute=False):
        return extensions.request_extension(
            req, actor=req.requester, minutes=minutes, justification=MORE
        )


# --- Extensions -------------------------------------------------------------------------


def test_an_approved_extension_moves_the_end_and_shows_in_the_timeline(
    engineer, approver, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer, minutes=60)
    before = req.expires_at
    ext = extend(req, 30, django_capture_on_commit_callbacks)
    assert ext.status == ExtensionStatus.PENDING
    with django_capture_on_commit_callbacks(execute=False):
        extensions.approve_extension(ext, actor=approver, comment="fine")
    req.refresh_from_db()
    ext.refresh_from_db()
    assert req.expires_at == before + dt.timedelta(minutes=30)
    assert ext.status == ExtensionStatus.APPROVED
    assert (ext.previous_expires_at, ext.new_expires_at) == (before, req.expires_at)
    assert extensions.granted_minutes(req) == 90
    actions = [e.action for e in events_for(req)]
    assert actions[-3:] == [
        "request.extension_requested",
        "request.extension_approval_added",
        "request.extended",
    ]
    extended = events_for(req).get(action="request.extended")
    assert extended.payload["minutes"] == 30 and extended.payload["granted_minutes"] == 90


def test_the_level_maximum_bounds_the_total(
    engineer, approver, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer, minutes=200)  # RO: at most 240
    with pytest.raises(ValidationError, match="between 1 and 40"):
        extend(req, 41)
    ext = extend(req, 40, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        extensions.approve_extension(ext, actor=approver)
    with pytest.raises(ValidationError, match="already has the RO maximum"):
        extend(req, 1)


def test_extension_rules(
    engineer, oncall, approver, auditor, grant, pending, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    with pytest.raises(NotAllowed):
        extensions.request_extension(req, actor=oncall, minutes=10, justification=MORE)
    with pytest.raises(ValidationError, match="in a sentence"):
        extensions.request_extension(req, actor=engineer, minutes=10, justification="more")
    with pytest.raises(InvalidTransition):
        extend(pending(oncall, account="prod-data"), 10)
    ext = extend(req, 10, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict, match="already waiting"):
        extend(req, 10)
    with pytest.raises(NotAllowed, match="Only approvers"):
        extensions.approve_extension(ext, actor=engineer)
    with pytest.raises(NotAllowed):
        extensions.approve_extension(ext, actor=auditor)
    with django_capture_on_commit_callbacks(execute=False):
        extensions.deny_extension(ext, actor=approver, reason="finish tomorrow")
    ext.refresh_from_db()
    assert ext.status == ExtensionStatus.DENIED
    with pytest.raises(InvalidTransition):
        extensions.approve_extension(ext, actor=approver)
    # Withdrawing your own.
    again = extend(req, 5, django_capture_on_commit_callbacks)
    extensions.cancel_extension(again, actor=engineer)
    again.refresh_from_db()
    assert again.status == ExtensionStatus.CANCELLED


def test_an_extension_of_a_grant_that_ended_lapses(
    engineer, approver, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    ext = extend(req, 10, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        services.revoke(req, actor=approver, reason="done")
    with pytest.raises(Conflict, match="no longer active"):
        extensions.approve_extension(ext, actor=approver)
    ext.refresh_from_db()
    assert ext.status == ExtensionStatus.LAPSED


def test_no_extensions_while_returning_to_normal(
    engineer, approver, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    ext = extend(req, 10, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        failover_services.start_return(actor=approver, override_reason="test")
    with pytest.raises(Conflict, match="returning to normal"):
        extensions.approve_extension(ext, actor=approver)


def test_extension_api(engineer, approver, grant, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("portal.queue.send_email", lambda *a: None)
    req = grant(engineer)
    mine, theirs = as_user(engineer), as_user(approver)
    with django_capture_on_commit_callbacks(execute=True):
        response = mine.post(f"/requests/{req.pk}/extend", {"minutes": 15, "justification": MORE})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["minutes"] == 15
    bad = mine.post(f"/requests/{req.pk}/extend", {"minutes": 1000, "justification": MORE})
    assert bad.status_code == 409  # one pending at a time
    with django_capture_on_commit_callbacks(execute=True):
        response = theirs.post(f"/requests/{req.pk}/extensions/{body['id']}/approve", {})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert response.json()["approvals"][0]["approver"] == "approver1"
    detail = mine.get(f"/requests/{req.pk}").json()
    assert detail["granted_minutes"] == 75
    assert detail["extensions"][0]["new_expires_at"] is not None
    assert theirs.post(f"/requests/{req.pk}/extensions/999/approve", {}).status_code == 404
    invalid = mine.post(f"/requests/{req.pk}/extend", {"minutes": "ten", "justification": MORE})
    assert invalid.status_code == 400 and "minutes" in invalid.json()["errors"]


def test_extension_on_the_request_page(
    engineer, approver, grant, django_capture_on_commit_callbacks, client, monkeypatch
):
    monkeypatch.setattr("portal.queue.send_email", lambda *a: None)
    req = grant(engineer)
    client.force_login(engineer)
    page = client.get(reverse("request-detail", args=[req.pk])).content.decode()
    assert "Ask for more time" in page and "Up to 180 more minutes" in page
    response = client.post(
        reverse("request-extend", args=[req.pk]), {"minutes": 0, "justification": "x"}
    )
    assert response.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("request-extend", args=[req.pk]),
            {"minutes": 20, "justification": MORE},
            follow=True,
        )
    page = response.content.decode()
    assert "Asked for 20 more minutes" in page
    assert "Ask for more time" not in page  # one at a time
    ext = req.extensions.get()
    client.force_login(approver)
    page = client.get(reverse("request-detail", args=[req.pk])).content.decode()
    assert "Approve extension" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("extension-action", args=[req.pk, ext.pk, "approve"]),
            {"comment": "ok"},
            follow=True,
        )
    assert "Extension approved" in response.content.decode()
    assert "Access extended" in response.content.decode()  # the timeline


# --- Several roles at once -------------------------------------------------------------------


def test_several_roles_one_justification_one_decision_each(
    engineer, approver, plan, fake_idp, open_failover, django_capture_on_commit_callbacks
):
    roles = [plan.roles[("prod-payments", "RO")], plan.roles[("prod-data", "RO")]]
    with django_capture_on_commit_callbacks(execute=False):
        filed = services.file_requests(
            requester=engineer, roles=roles, justification=JUSTIFICATION, ticket="INC-3",
            duration_minutes=30,
        )  # fmt: skip
    assert len(filed) == 2
    assert filed[0].batch is not None and filed[0].batch == filed[1].batch
    assert {r.role for r in filed} == set(roles)
    with django_capture_on_commit_callbacks(execute=False):
        services.approve(filed[0], actor=approver)
        services.deny(filed[1], actor=approver, reason="not that one")
    assert [r.status for r in AccessRequest.objects.order_by("pk")] == [
        Status.APPROVED,
        Status.DENIED,
    ]


def test_a_batch_is_all_or_nothing(
    engineer, plan, fake_idp, open_failover, django_capture_on_commit_callbacks
):
    ro = plan.roles[("prod-payments", "RO")]
    ops = plan.roles[("prod-payments", "Ops")]
    with pytest.raises(ValidationError, match="between 1 and 120 minutes for Ops"):
        services.file_requests(
            requester=engineer, roles=[ro, ops], justification=JUSTIFICATION, ticket="INC-3",
            duration_minutes=200,
        )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        services.file_request(
            requester=engineer, role=ro, justification=JUSTIFICATION, ticket="INC-3",
            duration_minutes=30,
        )  # fmt: skip
    with pytest.raises(Conflict, match="already have request"):
        services.file_requests(
            requester=engineer, roles=[ops, ro], justification=JUSTIFICATION, ticket="INC-3",
            duration_minutes=30,
        )  # fmt: skip
    assert AccessRequest.objects.count() == 1


def test_batch_api(engineer, plan, fake_idp, open_failover, django_capture_on_commit_callbacks):
    client = as_user(engineer)
    ids = [plan.roles[("prod-payments", "RO")].pk, plan.roles[("prod-data", "Ops")].pk]
    body = {"roles": ids, "justification": JUSTIFICATION, "ticket": "INC-5", "duration_minutes": 60}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/requests/batch", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["batch"] and [r["role"]["id"] for r in data["requests"]] == ids
    assert {r["batch"] for r in data["requests"]} == {data["batch"]}
    bad = client.post("/requests/batch", {**body, "roles": [999999]})
    assert bad.status_code == 400 and "roles" in bad.json()["errors"]
    empty = client.post("/requests/batch", {**body, "roles": []})
    assert empty.status_code == 400


def test_several_roles_from_the_form(
    engineer, plan, fake_idp, open_failover, client, django_capture_on_commit_callbacks
):
    client.force_login(engineer)
    page = client.get(reverse("request-new")).content.decode()
    assert 'type="checkbox" name="role"' in page
    ids = [plan.roles[("prod-payments", "RO")].pk, plan.roles[("prod-data", "RO")].pk]
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("request-new"),
            {
                "role": ids,
                "justification": JUSTIFICATION,
                "ticket": "INC-1",
                "duration_minutes": 30,
            },
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("request-list") + "?mine=1"
    assert AccessRequest.objects.filter(batch__isnull=False).count() == 2


# --- Escalation and "ending soon" ---------------------------------------------------------------


def test_escalation_re_notifies_approvers_once_per_interval(
    engineer,
    approver,
    approver2,
    pending,
    settings,
    deliver_now,
    django_capture_on_commit_callbacks,
):
    settings.ESCALATION_MINUTES = 15
    req = pending(engineer)
    now = timezone.now()
    assert reminders.escalate_pending(now + dt.timedelta(minutes=10)) == []
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders.escalate_pending(now + dt.timedelta(minutes=16)) == [req.pk]
    [message] = mail.outbox
    assert set(message.to) == {"approver1@example.com", "approver2@example.com"}
    assert "still waiting" in message.subject
    assert reminders.escalate_pending(now + dt.timedelta(minutes=20)) == []
    assert reminders.escalate_pending(now + dt.timedelta(minutes=32)) == [req.pk]
    req.refresh_from_db()
    assert req.escalations == 2
    assert events_for(req).filter(action="request.escalated").count() == 2


def test_ending_soon_is_sent_once_per_end_time(
    engineer, approver, grant, deliver_now, django_capture_on_commit_callbacks
):
    req = grant(engineer, minutes=60)
    now = timezone.now()
    assert reminders.warn_ending(now) == []
    soon = req.expires_at - dt.timedelta(minutes=9)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders.warn_ending(soon) == [req.pk]
    assert mail.outbox[0].to == ["engineer@example.com"]
    assert "ends at" in mail.outbox[0].subject
    assert reminders.warn_ending(soon) == []
    # An extension moves the end: the warning comes again before the new end.
    ext = extend(req, 30, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        extensions.approve_extension(ext, actor=approver)
    req.refresh_from_db()
    assert reminders.warn_ending(soon) == []
    assert reminders.warn_ending(req.expires_at - dt.timedelta(minutes=5)) == [req.pk]


def test_nobody_approves_their_own_extension(
    approver, approver2, grant, django_capture_on_commit_callbacks
):
    req = grant(approver2)  # an approver holding access themselves
    ext = extend(req, 10, django_capture_on_commit_callbacks)
    with pytest.raises(NotAllowed, match="own extension"):
        extensions.approve_extension(ext, actor=approver2)
    with django_capture_on_commit_callbacks(execute=False):
        extensions.approve_extension(ext, actor=approver)


def test_the_approvals_queue_lists_extensions(
    engineer, approver, grant, client, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    client.force_login(approver)
    before = client.get(reverse("approvals"), headers={"HX-Request": "true"})
    version = before.content.decode().split("?v=", 1)[1].split('"', 1)[0]
    ext = extend(req, 25, django_capture_on_commit_callbacks)
    page = client.get(reverse("approvals")).content.decode()
    assert "More time asked (1)" in page and "+25 min" in page
    assert f"#extension-{ext.pk}" in page
    changed = client.get(reverse("approvals") + f"?v={version}", headers={"HX-Request": "true"})
    assert changed.status_code == 200  # the poll picks it up
