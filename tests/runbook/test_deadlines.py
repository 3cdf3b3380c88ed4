"""Deadlines hold at decision time, not only when the sweeps run (finding 5 of issue 10).

A request past its lapse time cannot be approved or denied even though the lapse
sweep has not reached it yet; an extension cannot bring back a grant whose end has
passed, even though the expiry sweep has not ended it yet. Each is a clear 409.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from portal.core.errors import Conflict
from portal.models import AuditEvent
from requests_app import extensions, services
from requests_app.models import AccessRequest, Extension, Status
from tests.api.conftest import as_user

pytestmark = pytest.mark.django_db


def _last_seq():
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()


def _age(req, minutes):
    AccessRequest.objects.filter(pk=req.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


@pytest.mark.parametrize(
    "decide",
    [
        lambda req, actor: services.approve(req, actor=actor),
        lambda req, actor: services.deny(req, actor=actor, reason="Too late."),
    ],
    ids=["approve", "deny"],
)
def test_a_request_past_its_lapse_time_cannot_be_decided(
    pending, engineer, approver, settings, decide
):
    settings.REQUEST_LAPSE_MINUTES = 60
    req = pending(engineer)
    _age(req, 61)
    before = _last_seq()
    with pytest.raises(Conflict, match=f"Request #{req.pk} lapsed"):
        decide(req, approver)
    req.refresh_from_db()
    assert req.status == Status.PENDING and not req.approvals.exists()
    assert _last_seq() == before


def test_just_in_time_is_in_time(pending, engineer, approver, settings, monkeypatch):
    monkeypatch.setattr("requests_app.queue.provision_grant", lambda pk: None)
    settings.REQUEST_LAPSE_MINUTES = 60
    req = pending(engineer)
    _age(req, 59)
    assert services.approve(req, actor=approver).status == Status.APPROVED


def test_the_api_answers_409(pending, engineer, approver, settings):
    settings.REQUEST_LAPSE_MINUTES = 60
    req = pending(engineer)
    _age(req, 90)
    response = as_user(approver).post(f"/requests/{req.pk}/approve", {})
    assert response.status_code == 409
    assert "lapsed" in response.json()["detail"]


def _past_end(req, minutes=2):
    AccessRequest.objects.filter(pk=req.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=minutes)
    )
    req.refresh_from_db()


def test_an_extension_approved_after_the_end_does_not_revive_the_grant(
    grant, engineer, approver, approver2, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    with django_capture_on_commit_callbacks(execute=False):
        ext = extensions.request_extension(
            req, actor=engineer, minutes=30, justification="More time to finish the fix."
        )
    _past_end(req)
    ended_at = req.expires_at
    before = _last_seq()
    with pytest.raises(Conflict, match="cannot be extended"):
        extensions.approve_extension(ext, actor=approver)
    req.refresh_from_db()
    assert req.expires_at == ended_at
    assert Extension.objects.get(pk=ext.pk).status == "pending"
    assert _last_seq() == before


def test_an_extension_cannot_be_asked_after_the_end(grant, engineer):
    req = grant(engineer)
    _past_end(req)
    with pytest.raises(Conflict, match="cannot be extended"):
        extensions.request_extension(
            req, actor=engineer, minutes=30, justification="More time to finish the fix."
        )
