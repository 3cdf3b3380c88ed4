import pytest
from django.urls import reverse
from requests_app import services
from tests.browser.conftest import PHONE
pytestmark = [pytest.mark.django_db(transaction=True)]

def test_screens(plan, fake_idp, engineer, oncall, approver, approver2, auditor, live_server, browser, monkeypatch):
    from portal.celery import app
    monkeypatch.setattr(app, "send_task", lambda *a, **k: None)
    from celery.app.task import Task
    monkeypatch.setattr(Task, "apply_async", lambda *a, **k: None)
    from federation.services import open_failover
    from django.test.utils import override_settings
    fo = open_failover(actor=approver, reason="Quarterly drill of the emergency path", drill=True)
    def f(user, acc="prod-payments", lvl="RO", j="Payments are failing; I need to read the CloudWatch logs of the workers."):
        return services.file_request(requester=user, role=plan.roles[(acc,lvl)], justification=j, ticket="INC-42", duration_minutes=60)
    a = f(engineer); b = f(oncall, "prod-data", "Ops"); services.approve(b, actor=approver2, comment="ok")
    c = f(engineer, "prod-data", "RO"); services.approve(c, actor=approver); services.activate(c.pk, okta_user_id="00u1")
    d = f(oncall); services.approve(d, actor=approver2); services.fail(d.pk, error="Okta refused: E0000007 Not found: Resource not found: aws#EmergencyAccess_Role1_RO#123456789012 (Group)")
    e = f(approver, "prod-payments", "Ops")
    g = f(engineer, "prod-payments", "Ops"); services.approve(g, actor=approver2)
    import os
    os.makedirs("/tmp/screens/qa", exist_ok=True)
    def shot(user, path, name, vp):
        ctx = browser.new_context(base_url=live_server.url, viewport=vp)
        page = ctx.new_page()
        page.goto("/accounts/login/")
        if name.startswith("login"):
            page.screenshot(path=f"/tmp/screens/qa/{name}.png", full_page=True); ctx.close(); return
        page.get_by_label("Username or email").fill(user.username)
        page.get_by_label("Password").fill("demo-password-123")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server.url + "/")
        page.goto(path)
        if name.startswith("new-errors"):
            page.get_by_label("Account and level").select_option(index=3)
            page.get_by_label("Justification").fill("broken")
            page.get_by_label("Duration (minutes)").fill("500")
            page.evaluate("document.getElementById('id_duration_minutes').removeAttribute('max')")
            page.get_by_role("button", name="File the request").click()
        page.wait_for_timeout(300)
        page.screenshot(path=f"/tmp/screens/qa/{name}.png", full_page=True)
        ctx.close()
    desk = {"width": 1280, "height": 800}
    for vp, tag in [(PHONE, "phone"), (desk, "desk")]:
        shot(approver, "/", f"dash-approver-{tag}", vp)
        shot(approver, "/approvals/", f"approvals-{tag}", vp)
        shot(approver, "/failover/", f"failover-{tag}", vp)
        shot(auditor, "/audit/", f"audit-{tag}", vp)
        shot(approver, "/requests/", f"list-{tag}", vp)
        shot(approver, f"/requests/{b.pk}/", f"detail-pending-approver-{tag}", vp)
        shot(engineer, "/requests/new/", f"new-errors-{tag}", vp)
        shot(engineer, "/", f"login-{tag}", vp)
