"""Break-glass on the pages (step-up, the phrase, the button) and the API (refusals are
clear and write nothing)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from requests_app import break_glass, services
from requests_app.models import AccessRequest, BreakGlassReview, ReviewStatus, Status
from tests.api.conftest import as_user
from tests.conftest import give_authenticator, stepped_up
from tests.eligibility.conftest import JUSTIFICATION, Written
from tests.web.conftest import signed_in


@pytest.fixture
def provisioned(monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr("requests_app.queue.provision_grant", queued.append)
    return queued


def waiting(plan, engineer, level="RO", minutes=31) -> AccessRequest:
    req = services.file_request(
        requester=engineer,
        role=plan.roles[("prod-payments", level)],
        justification=JUSTIFICATION,
        ticket="INC-9",
        duration_minutes=60,
    )
    AccessRequest.objects.filter(pk=req.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=minutes)
    )
    return AccessRequest.objects.get(pk=req.pk)


def test_the_detail_page_offers_it_only_after_the_wait(plan, fake_idp, open_failover, engineer):
    early = waiting(plan, engineer, minutes=1)
    page = signed_in(engineer).get(reverse("request-detail", args=[early.pk])).content.decode()
    assert reverse("request-break-glass", args=[early.pk]) not in page
    assert 'id="break-glass-opens"' in page
    AccessRequest.objects.filter(pk=early.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=31)
    )
    page = signed_in(engineer).get(reverse("request-detail", args=[early.pk])).content.decode()
    assert reverse("request-break-glass", args=[early.pk]) in page


def test_the_page_activates_with_the_phrase(
    plan, fake_idp, open_failover, engineer, approver, provisioned
):
    req = waiting(plan, engineer)
    client = signed_in(engineer)
    url = reverse("request-break-glass", args=[req.pk])
    form = client.get(url).content.decode()
    assert f"break glass #{req.pk}" in form

    wrong = client.post(url, {"confirmation": "ok", "ticket": "INC-9"})
    assert wrong.status_code == 400
    assert f"Type &quot;break glass #{req.pk}&quot; to confirm." in wrong.content.decode()
    assert AccessRequest.objects.get(pk=req.pk).status == Status.PENDING

    done = client.post(url, {"confirmation": f"Break Glass #{req.pk}", "ticket": "INC-9"})
    assert done.status_code == 302
    assert AccessRequest.objects.get(pk=req.pk).status == Status.APPROVED
    assert provisioned == [req.pk]
    page = signed_in(approver).get(reverse("request-detail", args=[req.pk])).content.decode()
    assert 'id="break-glass-mark"' in page and "Accept this use" in page
    dashboard = signed_in(approver).get("/").content.decode()
    assert 'id="break-glass-card"' in dashboard and "Break-glass</span>" in dashboard


@pytest.mark.real_sign_in
def test_the_page_needs_a_fresh_sign_in(plan, fake_idp, open_failover, engineer, provisioned):
    give_authenticator(engineer)
    req = waiting(plan, engineer)
    client = Client()
    client.force_login(engineer)  # signed in long ago, as far as the session knows
    url = reverse("request-break-glass", args=[req.pk])
    written = Written()

    response = client.post(url, {"confirmation": f"break glass #{req.pk}", "ticket": "INC-9"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    written.assert_nothing()
    session = client.session
    stepped_up(session, engineer)
    session.save()
    response = client.post(url, {"confirmation": f"break glass #{req.pk}", "ticket": "INC-9"})
    assert response.status_code == 302
    assert AccessRequest.objects.get(pk=req.pk).break_glass


def test_someone_else_gets_403_on_the_page(plan, fake_idp, open_failover, engineer, approver):
    req = waiting(plan, engineer)
    written = Written()
    response = signed_in(approver).post(
        reverse("request-break-glass", args=[req.pk]),
        {"confirmation": f"break glass #{req.pk}", "ticket": "INC-9"},
    )
    assert response.status_code == 403
    assert "Only the requester" in response.content.decode()
    written.assert_nothing()


def test_review_on_the_page(
    plan, fake_idp, open_failover, engineer, approver, approver2, provisioned
):
    req = waiting(plan, engineer)
    break_glass.activate(req, actor=engineer, confirmation=f"break glass #{req.pk}", ticket="I")
    url = reverse("request-review", args=[req.pk])
    assert signed_in(engineer).post(url, {"verdict": "accept"}).status_code == 403
    assert signed_in(approver).post(url, {"verdict": "accept"}).status_code == 302
    assert signed_in(approver2).post(url, {"verdict": "accept"}).status_code == 302
    assert BreakGlassReview.objects.get(request=req).status == ReviewStatus.ACCEPTED


def test_api_break_glass_and_review(
    plan, fake_idp, open_failover, engineer, approver, approver2, provisioned
):
    req = waiting(plan, engineer)
    engineer_api, approver_api = as_user(engineer), as_user(approver)
    written = Written()

    early = approver_api.post(
        f"/requests/{req.pk}/break-glass", {"confirmation": f"break glass #{req.pk}", "ticket": "I"}
    )
    assert early.status_code == 403, early.content
    assert "Only the requester" in early.json()["detail"]
    bad = engineer_api.post(f"/requests/{req.pk}/break-glass", {"confirmation": "x", "ticket": ""})
    assert bad.status_code == 400, bad.content
    written.assert_nothing()

    ok = engineer_api.post(
        f"/requests/{req.pk}/break-glass", {"confirmation": f"break glass #{req.pk}", "ticket": "I"}
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "approved" and ok.json()["break_glass"] is True
    assert ok.json()["duration_minutes"] == 60

    mine = engineer_api.post(f"/requests/{req.pk}/review", {"verdict": "accept"})
    assert mine.status_code == 403
    garbage = approver_api.post(f"/requests/{req.pk}/review", {"verdict": "maybe"})
    assert garbage.status_code == 400
    first = approver_api.post(f"/requests/{req.pk}/review", {"verdict": "accept"})
    assert first.status_code == 200 and first.json()["status"] == "open"
    second = as_user(approver2).post(f"/requests/{req.pk}/review", {"verdict": "accept"})
    assert second.json()["status"] == "accepted"
    assert [v["reviewer"] for v in second.json()["verdicts"]] == ["approver1", "approver2"]


def test_api_break_glass_on_a_level_without_it_is_409(plan, fake_idp, open_failover, engineer):
    req = waiting(plan, engineer, level="Ops", minutes=500)
    client = as_user(engineer)
    written = Written()
    response = client.post(
        f"/requests/{req.pk}/break-glass", {"confirmation": f"break glass #{req.pk}", "ticket": "I"}
    )
    assert response.status_code == 409
    assert "allows no break-glass for Ops" in response.json()["detail"]
    written.assert_nothing()


def test_reviews_are_read_only_in_the_admin(
    plan, fake_idp, open_failover, engineer, approver, admin_client, provisioned
):
    req = waiting(plan, engineer)
    break_glass.activate(req, actor=engineer, confirmation=f"break glass #{req.pk}", ticket="I")
    break_glass.review(req, actor=approver, verdict="accept")
    review = BreakGlassReview.objects.get(request=req)
    listing = admin_client.get(reverse("admin:requests_app_breakglassreview_changelist"))
    assert listing.status_code == 200 and f"#{req.pk}" in listing.content.decode()
    change = reverse("admin:requests_app_breakglassreview_change", args=[review.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.post(change, {"status": "accepted"}).status_code == 403
    assert admin_client.get(reverse("admin:requests_app_breakglassreview_add")).status_code == 403
    review.refresh_from_db()
    assert review.status == ReviewStatus.OPEN
