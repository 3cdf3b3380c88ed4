"""The demo controls' AWS drift (issue 12): readiness passes against the demo's seeded
AWS, fails once a workload role is deleted, and passes again once it is re-created."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from federation.readiness import checks
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def failing(results) -> set[str]:
    return {f"{r.name} {r.subject}" for r in results if r.status == "fail"}


def test_break_and_repair_readiness_from_the_demo_controls(aws, plan, settings):
    settings.AWS_ENDPOINT_URL = aws
    staff = make_user("admin", "admin@example.com", mfa=True)  # staff: MFA is mandatory
    staff.is_staff = True
    staff.save()
    client = Client()
    client.force_login(staff)
    assert "Delete a workload role" in client.get(reverse("demo-controls")).content.decode()
    before = failing(checks.run_checks(okta=False))
    client.post(reverse("demo-action", args=["aws"]), {"drift": "1"})
    broken = failing(checks.run_checks(okta=False)) - before
    assert any("EmergencyAccess_Ops" in line for line in broken), broken
    client.post(reverse("demo-action", args=["aws"]), {"drift": "0"})
    assert failing(checks.run_checks(okta=False)) == before
