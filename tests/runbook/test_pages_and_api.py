"""The return to normal through the JSON API and the wizard pages; the report."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from federation.failover import services as failover_services
from federation.models import Failover, FailoverStatus
from federation.tasks import close_federation
from tests.api.conftest import as_user
from tests.runbook.conftest import seen_signing_in, signs_out

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _no_side_tasks(monkeypatch):
    for seam in (
        "portal.queue.send_email",
        "portal.queue.send_slack",
        "requests_app.queue.provision_grant",
        "requests_app.queue.deprovision_grant",
        "federation.queue.activate_federation_app",
        "federation.queue.close_federation",
    ):
        monkeypatch.setattr(seam, lambda *a, **k: None)


# --- API ------------------------------------------------------------------------------------


def test_the_api_runs_the_return_to_normal(
    approver, engineer, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    seen_signing_in(req)
    api = as_user(approver)
    state = api.get("/failover").json()
    assert state["failover"]["status"] == "active"
    assert [s["key"] for s in state["checklist"]["steps"]] == [
        "health",
        "announce",
        "signouts",
        "deactivate",
        "close",
    ]
    assert state["checklist"]["health"]["state"] == "UNKNOWN"

    refused = api.post("/failover/return", {})
    assert refused.status_code == 400
    assert "override_reason" in refused.json()["errors"]
    with django_capture_on_commit_callbacks(execute=True):
        started = api.post("/failover/return", {"override_reason": "AWS Health is green"})
    assert started.status_code == 200, started.content
    body = started.json()
    assert body["failover"]["status"] == "returning"
    assert body["checklist"]["still_signed_in"] == ["engineer"]
    [user] = body["checklist"]["users"]
    assert user["username"] == "engineer" and user["last_sign_in"] and not user["signed_out"]

    blocked = api.post("/failover/close", {"reason": "done"})
    assert blocked.status_code == 409
    assert "Still signed in: engineer" in blocked.json()["detail"]
    assert api.post("/failover/close", {"force": True}).status_code == 400
    assert api.post("/failover/remind").json() == {"reminded": ["engineer"]}

    signs_out(req, django_capture_on_commit_callbacks)
    at = (timezone.now() + dt.timedelta(hours=2)).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        scheduled = api.post(
            "/failover/close", {"reason": "after hours", "deactivate_at": at.isoformat()}
        )
    assert scheduled.status_code == 200, scheduled.content
    assert scheduled.json()["failover"]["status"] == "returning"
    assert scheduled.json()["checklist"]["deactivate_at"].startswith(at.strftime("%Y-%m-%dT%H:%M"))
    with django_capture_on_commit_callbacks(execute=True):
        now = api.post("/failover/close", {"reason": "now after all"})
    assert now.json()["failover"]["status"] == "closing"


def test_engineers_and_auditors_cannot_run_it(
    engineer, auditor, approver, open_failover, django_capture_on_commit_callbacks
):
    assert as_user(engineer).post("/failover/return", {"override_reason": "x"}).status_code == 403
    assert as_user(auditor).post("/failover/return", {"override_reason": "x"}).status_code == 403
    assert as_user(engineer).post("/failover/remind").status_code == 403
    assert as_user(engineer).get("/failover").json()["checklist"] is None
    assert as_user(auditor).get("/failover").json()["checklist"] is not None
    assert Failover.objects.get().status == FailoverStatus.ACTIVE


def test_the_report_api(
    approver, engineer, auditor, grant, fake_idp, django_capture_on_commit_callbacks
):
    from federation.failover import services

    req = grant(engineer)
    failover = Failover.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        services.close_failover(actor=approver, force=True, reason="test close")
    close_federation.apply(args=[failover.pk])
    from portal.audit import integrity

    integrity.run("test")  # the report shows the stored verification, not a fresh re-hash
    report = as_user(auditor).get(f"/failovers/{failover.pk}/report").json()
    assert report["failover"]["status"] == "closed"
    assert report["return_to_normal"]["forced"] is True
    [access] = report["access"]
    assert access["request_id"] == req.pk and access["requester"] == "engineer"
    assert access["status"] == "revoked" and access["held_minutes"] >= 0
    assert [a["by"] for a in report["approvals"]] == ["approver1"]
    assert "failover.closed" in [e["action"] for e in report["timeline"]]
    assert report["audit_chain"]["intact"] is True
    assert "drill" not in report
    assert as_user(engineer).get(f"/failovers/{failover.pk}/report").status_code == 403
    assert as_user(auditor).get("/failovers/999999/report").status_code == 404


def test_outside_changes_are_in_the_report(approver, engineer, grant, fake_idp):
    from django.db import transaction

    from portal import audit

    grant(engineer)
    failover = Failover.objects.get()
    role = failover.requests.get().role
    with transaction.atomic():
        audit.record(
            "okta.unexpected_member_removed",
            role,
            system="reconciler",
            payload={"okta_group": role.okta_group_name, "login": "oncall@example.com"},
        )
    report = as_user(approver).get(f"/failovers/{failover.pk}/report").json()
    assert [e["action"] for e in report["outside_portal"]] == ["okta.unexpected_member_removed"]


# --- Pages ------------------------------------------------------------------------------------


def test_the_wizard_page(approver, engineer, grant, client, django_capture_on_commit_callbacks):
    req = grant(engineer)
    seen_signing_in(req)
    client.force_login(approver)
    page = client.get(reverse("failover-return")).content.decode()
    assert "Start: tell everyone to sign out" in page
    assert 'id="id_override_reason"' in page  # health is not HEALTHY here

    response = client.post(reverse("failover-return-start"), {"override_reason": ""})
    assert response.status_code == 400
    assert "not HEALTHY" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("failover-return-start"), {"override_reason": "AWS says resolved"}, follow=True
        )
    page = response.content.decode()
    assert "Return to normal started: 1 emergency user(s) told to sign out" in page
    assert "Still signed in: engineer." in page
    assert 'id="emergency-users"' in page
    assert "Deactivate now</button>" in page and "disabled" in page
    # htmx poll: nothing changed -> 204; then a sign-out changes the checklist.
    live = client.get(reverse("failover-return"), headers=HTMX)
    assert live.status_code == 200
    version = live.content.decode().split("?v=", 1)[1].split('"', 1)[0]
    assert client.get(reverse("failover-return") + f"?v={version}", headers=HTMX).status_code == 204
    signs_out(req, django_capture_on_commit_callbacks)
    changed = client.get(reverse("failover-return") + f"?v={version}", headers=HTMX)
    assert changed.status_code == 200
    assert "Everyone has signed out." in changed.content.decode()


def test_the_wizard_close_forms(
    approver, engineer, grant, client, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        failover_services.start_return(actor=approver, override_reason="ok")
    client.force_login(approver)
    url = reverse("failover-return-close")
    force = client.post(url, {"mode": "force", "reason": ""})
    assert force.status_code == 400
    assert "Say why you close" in force.content.decode()
    assert "Tick the box" in force.content.decode()
    past = client.post(url, {"mode": "schedule", "deactivate_at": "2001-01-01T01:00"})
    assert past.status_code == 400 and "in the future" in past.content.decode()
    blocked = client.post(url, {"mode": "now"}, follow=True)
    assert "Still signed in: engineer" in blocked.content.decode()
    signs_out(req, django_capture_on_commit_callbacks)
    later = (timezone.localtime() + dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
    with django_capture_on_commit_callbacks(execute=True):
        scheduled = client.post(url, {"mode": "schedule", "deactivate_at": later}, follow=True)
    assert "Deactivation scheduled for" in scheduled.content.decode()
    assert "Reschedule" in scheduled.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"mode": "now"}, follow=True)
    assert "Closing: grants were revoked" in done.content.decode()
    assert Failover.objects.get().status == FailoverStatus.CLOSING


def test_auditors_see_the_wizard_without_buttons_engineers_not_at_all(
    auditor, engineer, open_failover, client
):
    client.force_login(auditor)
    page = client.get(reverse("failover-return")).content.decode()
    assert "Return to normal" in page and "Start: tell everyone" not in page
    assert (
        client.post(reverse("failover-return-start"), {"override_reason": "x"}).status_code == 403
    )
    client.force_login(engineer)
    assert client.get(reverse("failover-return")).status_code == 403
    assert client.post(reverse("failover-return-close"), {"mode": "now"}).status_code == 403


def test_the_report_page_and_json(
    approver, engineer, grant, fake_idp, client, django_capture_on_commit_callbacks
):
    from federation.failover import services

    grant(engineer)
    failover = Failover.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        services.close_failover(actor=approver, force=True, reason="test close")
    close_federation.apply(args=[failover.pk])
    from portal.audit import integrity

    integrity.run("test")  # the report shows the stored verification
    client.force_login(approver)
    page = client.get(reverse("failover-return")).content.decode()
    assert "Read the report" in page  # the closed failover's completed checklist
    report = client.get(reverse("failover-report", args=[failover.pk])).content.decode()
    assert "Who had access to what" in report and "engineer" in report
    assert "forced" in report and "Intact" in report
    raw = client.get(reverse("failover-report-json", args=[failover.pk]))
    assert raw["Content-Type"] == "application/json"
    assert raw.json()["failover"]["id"] == failover.pk
    client.force_login(engineer)
    assert client.get(reverse("failover-report", args=[failover.pk])).status_code == 403


def test_the_failover_page_links_to_the_wizard(approver, open_failover, client):
    client.force_login(approver)
    page = client.get(reverse("failover")).content.decode()
    assert reverse("failover-return") in page
    assert "Close immediately, skipping the checklist" in page


def test_the_wizard_does_not_query_per_user(
    approver, grant, fake_idp, client, django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    """The live checklist polls every 3 s: its cost must not grow with the users."""
    from federation.failover import services as failover_services
    from tests.conftest import make_user

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("failover-return"), headers=HTMX).status_code == 200
        return len(captured)

    for n in range(10):
        fake_idp.add_user(f"user{n}@example.com")
    grant(make_user("user0", "user0@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        failover_services.start_return(actor=approver, override_reason="ok")
    client.force_login(approver)
    one = queries()
    failover = Failover.objects.get()
    Failover.objects.filter(pk=failover.pk).update(status=FailoverStatus.ACTIVE)
    for n in range(1, 10):
        grant(make_user(f"user{n}", f"user{n}@example.com"))
    Failover.objects.filter(pk=failover.pk).update(status=FailoverStatus.RETURNING)
    ten = queries()
    assert ten == one, f"{one} queries for one user, {ten} for ten"
    print(f"\nwizard poll: {one} queries with 1 user, {ten} with 10")
    with django_assert_max_num_queries(30):
        client.get(reverse("failover-return"), headers=HTMX)


def test_a_state_change_reloads_the_whole_wizard(approver, open_failover, client):
    client.force_login(approver)
    url = reverse("failover-return")
    same = client.get(url + "?v=stale&s=active", headers=HTMX)
    assert same.status_code == 200 and "HX-Refresh" not in same
    Failover.objects.filter(pk=open_failover.pk).update(status=FailoverStatus.RETURNING)
    moved = client.get(url + "?v=stale&s=active", headers=HTMX)
    assert moved["HX-Refresh"] == "true"
