"""Readiness on real parts: the worker process runs the check, the real okta SDK reads the
sandbox org over HTTP, boto3 reads a moto server over HTTP (both shared with the worker)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from federation.models import ReadinessRun
from federation.readiness import checks as readiness
from federation.readiness.checks import FAIL, PASS
from tests.harness import wait_for
from tests.readiness.conftest import name_approvers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RO1 = "aws#EmergencyAccess_Role1_RO#123456789012"


def not_passing(run: ReadinessRun) -> list[tuple[str, str, str]]:
    return [(r["name"], r["subject"], r["detail"]) for r in run.results if r["status"] != PASS]


def finished(run_id: int) -> ReadinessRun | None:
    run = ReadinessRun.objects.get(pk=run_id)
    return run if run.is_finished else None


def test_run_now_through_the_worker(integration, prepared_plan, aws, approver):
    name_approvers()
    run = readiness.request_run(actor=approver)  # commits, then queues the real task

    done = wait_for(lambda: finished(run.pk), timeout=90, what="the worker's readiness run")

    assert not_passing(done) == []
    assert done.status == PASS
    assert done.counts["pass"] >= 40
    names = {r["name"] for r in done.results}
    assert {"aws.emergency_role_trust", "okta.group_role_mapping", "okta.rate_limit"} <= names


def test_drift_in_the_sandbox_org_is_found(integration, prepared_plan, aws):
    sandbox = integration
    app_id = settings.OKTA_AWS_APP_ID
    sandbox.set_app_status(app_id, True, _admin())
    sandbox.add_member_behind_the_back(RO1, "oncall@example.com")
    sandbox.set_app_settings(app_id, sessionDuration=43200)

    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_readiness", stdout=out)

    assert exited.value.code == 1
    run = ReadinessRun.objects.get()
    failing = {(r["name"], r["subject"]) for r in run.results if r["status"] == FAIL}
    assert failing == {
        ("okta.app_status", f"app {app_id}"),
        ("okta.group_members", RO1),
        ("okta.session_duration", f"app {app_id}"),
    }
    text = out.getvalue()
    assert "FAIL okta.group_members" in text and "oncall@example.com" in text


def test_fix_creates_the_groups_in_the_sandbox(integration, aws, plan):
    """A plan whose groups were never created: --fix creates and assigns them over HTTP."""
    sandbox = integration
    assert sandbox.group_by_name(RO1) is None

    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_readiness", "--fix", stdout=out)

    assert exited.value.code == 0, out.getvalue()
    assert f"fixed: created the Okta group {RO1}" in out.getvalue()
    group = sandbox.group_by_name(RO1)
    assert group["type"] == "OKTA_GROUP"
    assert group["id"] in sandbox.snapshot()["apps"][0]["group_ids"]


def _admin():
    from federation.sandbox.auth import ADMIN_ACTOR
    from federation.sandbox.events import Caller

    return Caller(dict(ADMIN_ACTOR), "102SandboxAdminConsole000001")
