"""The Plan and Readiness pages, the API, stored runs, the task, the beat entry, the commands."""

from __future__ import annotations

import json
import tomllib
from io import StringIO
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from federation import tasks
from federation.models import ReadinessRun, ReadinessStatus
from federation.readiness import checks as readiness
from federation.readiness.checks import FAIL, PASS, UNKNOWN, WARN, CheckResult
from portal.models import AuditEvent
from tests.api.conftest import as_user
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_user(db):
    user = make_user("admin", "admin@example.com", mfa=True)  # staff need a second factor
    user.is_staff = True
    user.save()
    return user


def stored(status_by_name: dict[str, str], trigger=ReadinessRun.Trigger.SCHEDULE) -> ReadinessRun:
    run = readiness.start_run(trigger)
    results = [
        CheckResult(
            name,
            status,
            f"{name} is {status}",
            "do this" if status != PASS else "",
            "AWS emergency account",
            "arn:aws:iam::123456789012:role/X",
        )
        for name, status in status_by_name.items()
    ]
    return readiness.finish_run(run.pk, results)


# --- the Plan page ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "auditor", "admin_user"])
def test_plan_page_shows_every_document(request, plan, who):
    response = signed_in(request.getfixturevalue(who)).get("/plan/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "EmergencyAccess_Role2_Ops" in page
    assert "sts:AssumeRoleWithSAML" in page and "sts:SetSourceIdentity" in page
    assert "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_RO" in page  # least privilege
    assert "Why least privilege:" in page
    assert "emergency-account.template.json" in page and "workload-accounts.template.json" in page
    assert r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$" in page
    assert page.count('data-copy="') >= 4 + 4 + 4 + 2 + 2


def test_plan_page_refuses_engineers(plan, engineer):
    assert signed_in(engineer).get("/plan/").status_code == 403
    assert signed_in(engineer).get("/plan/files/okta.json").status_code == 403


def test_plan_page_without_a_plan(approver):
    response = signed_in(approver).get("/plan/")

    assert response.status_code == 200
    assert "There is no access plan to render" in response.content.decode()
    assert signed_in(approver).get("/plan/files/okta.json").status_code == 404


def test_plan_downloads(plan, auditor):
    client = signed_in(auditor)

    template = client.get("/plan/files/emergency-account.template.json")
    assert template.status_code == 200
    assert template["Content-Disposition"] == (
        'attachment; filename="emergency-account.template.json"'
    )
    body = json.loads(template.content)
    assert body["Resources"]["SamlProvider"]["Type"] == "AWS::IAM::SAMLProvider"

    trust = client.get(
        "/plan/files/workload-account-111111111111/EmergencyAccess_RO.trust-policy.json"
    )
    assert json.loads(trust.content)["Statement"][0]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_RO"
    }
    text = client.get("/plan/files/okta-settings.txt")
    assert text["Content-Type"] == "text/plain; charset=utf-8"
    assert client.get("/plan/files/../settings.py").status_code == 404
    assert client.get("/plan/files/nothing.json").status_code == 404


def test_plan_toml_download_round_trips(plan, approver):
    response = signed_in(approver).get("/plan/files/plan.toml")

    data = tomllib.loads(response.content.decode())
    assert data["emergency_account"] == {
        "id": "123456789012",
        "saml_provider": "Okta",
        "workload_trust": "emergency_role",
        "session_duration_seconds": 3600,
        "saml_audiences": ["https://signin.aws.amazon.com/saml"],
    }


def test_root_trust_plan_says_why(plan, approver):
    plan.emergency.workload_trust = "account_root"
    plan.emergency.save()

    page = signed_in(approver).get("/plan/").content.decode()

    assert "Why root trust:" in page
    assert "every principal in the emergency account" in page


# --- the Readiness page, run now ----------------------------------------------------------


def test_readiness_page_before_any_run(plan, approver):
    page = signed_in(approver).get("/readiness/").content.decode()

    assert "No check has run yet." in page
    assert "Run the checks now" in page


def test_readiness_page_shows_the_last_run(plan, auditor):
    stored({"aws.emergency_role": FAIL, "okta.app_status": PASS})

    response = signed_in(auditor).get("/readiness/")

    page = response.content.decode()
    assert "Failing" in page and "aws.emergency_role is fail" in page and "Fix: do this" in page
    assert "Run the checks now" not in page  # auditors change nothing


def test_run_now_queues_the_task_once(plan, approver, django_capture_on_commit_callbacks):
    client = signed_in(approver)
    with (
        mock.patch("federation.queue.verify_readiness") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        first = client.post("/readiness/run/")
        second = client.post("/readiness/run/", follow=True)

    run = ReadinessRun.objects.get()
    assert first.status_code == 302
    delay.assert_called_once_with(run.pk)
    assert (run.trigger, run.requested_by, run.status) == ("manual", approver, "running")
    assert "is still running" in second.content.decode()
    assert AuditEvent.objects.filter(action="readiness.requested").count() == 1
    # While it runs the page polls; the partial alone for htmx.
    live = client.get("/readiness/", headers=HTMX).content.decode()
    assert 'hx-trigger="every 3s"' in live and "<html" not in live


@pytest.mark.parametrize("who", ["engineer", "auditor"])
def test_only_approvers_run_the_checks(request, plan, who):
    response = signed_in(request.getfixturevalue(who)).post("/readiness/run/")

    assert response.status_code == 403
    assert not ReadinessRun.objects.exists()


def test_a_lost_run_does_not_block_a_new_one(plan, approver, django_capture_on_commit_callbacks):
    lost = readiness.start_run(ReadinessRun.Trigger.MANUAL, actor=approver)
    ReadinessRun.objects.filter(pk=lost.pk).update(
        started_at=lost.started_at - readiness.STALE_RUN * 2
    )

    with (
        mock.patch("federation.queue.verify_readiness"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        readiness.request_run(actor=approver)

    assert ReadinessRun.objects.count() == 2


# --- stored runs, notifications, the task, the schedule -----------------------------------


def test_finished_run_is_audited_and_failures_mail_the_admins(
    plan, admin_user, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with (
        mock.patch("portal.queue.send_email") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = stored({"aws.emergency_role": FAIL, "okta.rate_limit": WARN})

    assert (run.status, run.counts) == (FAIL, {"pass": 0, "warn": 1, "fail": 1, "unknown": 0})
    event = AuditEvent.objects.get(action="readiness.checked")
    assert event.payload["status"] == "fail"
    assert event.payload["failing"] == ["aws.emergency_role arn:aws:iam::123456789012:role/X"]
    subject, body, recipients = send.call_args.args[:3]
    assert subject == "[Emergency access] Emergency access is not ready: 1 check failing"
    assert "aws.emergency_role" in body and "Fix: do this" in body and "/readiness/" in body
    assert recipients == ["admin@example.com"]


def test_passing_and_warning_runs_mail_nobody(plan, admin_user, django_capture_on_commit_callbacks):
    with (
        mock.patch("portal.queue.send_email") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stored({"a": PASS, "b": WARN})

    send.assert_not_called()


def test_could_not_check_mails_the_admins_too(plan, admin_user, django_capture_on_commit_callbacks):
    with (
        mock.patch("portal.queue.send_email") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stored({"aws.access": UNKNOWN})

    assert send.call_args.args[0].endswith("readiness could not be checked")


def test_finish_is_idempotent(plan):
    run = stored({"a": PASS})

    again = readiness.finish_run(run.pk, [CheckResult("b", FAIL, "later")])

    assert again.status == PASS and again.results[0]["name"] == "a"
    assert AuditEvent.objects.filter(action="readiness.checked").count() == 1


def test_task_runs_a_queued_run_and_the_daily_one(plan, okta_ready, settings):
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"
    queued = readiness.start_run(ReadinessRun.Trigger.MANUAL)

    assert tasks.verify_readiness.run(queued.pk) == UNKNOWN  # AWS unreachable here
    assert tasks.verify_readiness.run(queued.pk) == UNKNOWN  # already finished: left alone
    assert tasks.verify_readiness.run() == UNKNOWN

    runs = ReadinessRun.objects.order_by("pk")
    assert [(r.trigger, r.status) for r in runs] == [("manual", "unknown"), ("schedule", "unknown")]
    assert runs[0].finished_at is not None


def test_daily_beat_entry():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["verify-readiness"]
    assert entry["task"] == "federation.verify_readiness"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({6}, {30})


# --- the API ------------------------------------------------------------------------------


def test_api_readiness_last_run(plan, auditor):
    run = stored({"aws.emergency_role": FAIL, "okta.app": PASS})

    response = as_user(auditor).get("/readiness")

    assert response.status_code == 200
    body = response.json()
    assert body["running"] is None
    assert body["last"]["id"] == run.pk
    assert body["last"]["status"] == "fail"
    assert body["last"]["exit_status"] == 1
    assert body["last"]["results"][0] == {
        "name": "aws.emergency_role",
        "status": "fail",
        "area": "AWS emergency account",
        "subject": "arn:aws:iam::123456789012:role/X",
        "detail": "aws.emergency_role is fail",
        "fix": "do this",
    }


def test_api_readiness_refuses_engineers_and_anonymous(plan, engineer):
    assert as_user(engineer).get("/readiness").status_code == 403
    assert Client().get("/api/v1/readiness").status_code == 401


def test_api_run_now(plan, approver, auditor, django_capture_on_commit_callbacks):
    as_approver = as_user(approver)  # outside: creating a token emails its owner on commit
    with (
        mock.patch("federation.queue.verify_readiness") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = as_approver.post("/readiness/run")
        conflict = as_approver.post("/readiness/run")
    refused = as_user(auditor).post("/readiness/run")

    assert response.status_code == 202
    assert response.json()["running"]["status"] == "running"
    delay.assert_called_once()
    assert conflict.status_code == 409
    assert refused.status_code == 403


# --- the dashboard card -------------------------------------------------------------------


def test_dashboard_card(plan, approver, engineer):
    assert "Never checked" in signed_in(approver).get("/").content.decode()
    stored({"aws.emergency_role": FAIL})

    page = signed_in(approver).get("/").content.decode()

    assert 'id="readiness-card"' in page and "1 failing" in page
    assert 'id="readiness-card"' not in signed_in(engineer).get("/").content.decode()


# --- the commands -------------------------------------------------------------------------


def run_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_readiness", *args, stdout=out)
    return exited.value.code, out.getvalue()


def test_verify_readiness_exit_statuses(plan, aws, okta_ready, settings):
    code, out = run_command()
    assert code == 0, out
    assert "Readiness: pass" in out

    okta_ready.activate_app(settings.OKTA_AWS_APP_ID)
    code, out = run_command()
    assert code == 1
    assert "FAIL okta.app_status" in out

    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"
    okta_ready.deactivate_app(settings.OKTA_AWS_APP_ID)
    code, out = run_command("--json")
    assert code == 2
    assert json.loads(out)["status"] == "unknown"
    assert set(ReadinessRun.objects.values_list("trigger", flat=True)) == {"command"}
    assert ReadinessRun.objects.filter(status=ReadinessStatus.RUNNING).count() == 0


def test_fix_prints_the_cloudformation_for_aws_and_never_changes_aws(plan, drift, okta_ready):
    client = drift.iam("111111111111")
    role = drift.plan.workload_roles_of("111111111111")[0]
    drift.change(
        lambda: client.detach_role_policy(
            RoleName=role.role_name, PolicyArn=role.managed_policy_arn
        ),
        lambda: client.attach_role_policy(
            RoleName=role.role_name, PolicyArn=role.managed_policy_arn
        ),
    )

    code, out = run_command("--fix")

    assert code == 1
    assert "AWS is not changed by --fix" in out
    assert "# --- workload-accounts.template.json" in out
    assert "# --- emergency-account.template.json" not in out
    assert client.list_attached_role_policies(RoleName=role.role_name)["AttachedPolicies"] == []


def test_render_plan_command(plan, tmp_path):
    out = StringIO()
    call_command("render_plan", "--format", "cloudformation", "--out", str(tmp_path), stdout=out)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "emergency-account.template.json",
        "workload-accounts.template.json",
    ]
    out = StringIO()
    call_command("render_plan", "--format", "json", stdout=out)
    assert '"EmergencyAccess_Role1_RO"' in out.getvalue()
    call_command("render_plan", "--format", "okta", "--out", str(tmp_path / "okta"))
    assert (tmp_path / "okta" / "okta-settings.txt").read_text().startswith("Okta: Applications")
    call_command("render_plan", "--out", str(tmp_path / "json"))
    assert (
        tmp_path
        / "json"
        / "emergency-account-123456789012"
        / "EmergencyAccess_Role1_RO.trust-policy.json"
    ).exists()


def test_render_plan_without_a_plan_or_from_a_file(db, tmp_path, settings):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no access plan in the database"):
        call_command("render_plan")
    out = StringIO()
    demo = str(settings.BASE_DIR / "plans" / "demo.toml")
    call_command("render_plan", "--plan", demo, "--format", "okta", stdout=out)
    assert "aws#EmergencyAccess_Role2_Ops#123456789012" in out.getvalue()
    bad = tmp_path / "bad.toml"
    bad.write_text('[emergency_account]\nid = "1"\n')
    with pytest.raises(CommandError, match=r"emergency_account\.id"):
        call_command("render_plan", "--plan", str(bad))


def test_mail_outbox_untouched():
    assert mail.outbox == []
