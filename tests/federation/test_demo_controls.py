"""The demo controls (issue 12): staff in the demo flip the sandbox's simulated Identity
Center (which the health monitor probes), play an engineer's AWS sign-in, and take Okta
down and up -- all through the sandbox org's control plane over HTTP."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from federation.monitor import health
from federation.sandbox import SandboxServer
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    user = make_user("admin", "admin@example.com", mfa=True)  # staff: MFA is mandatory
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr("federation.queue.poll_health", lambda: calls.append("health"))
    monkeypatch.setattr("federation.queue.poll_system_log", lambda: calls.append("log"))
    return calls


def test_identity_center_flips_and_the_monitor_sees_it(
    sandbox: SandboxServer, staff, queued, settings
):
    settings.AWS_ACCESS_PORTAL_URL = f"{sandbox.url}/__sandbox__/identity-center/start"
    assert health.probe_access_portal().ok is True
    page = staff.get(reverse("demo-controls")).content.decode()
    assert "Disrupt Identity Center" in page
    staff.post(reverse("demo-action", args=["identity-center"]), {"healthy": "0"})
    assert health.probe_access_portal().ok is False
    assert queued == ["health"]
    assert (
        "Make Identity Center healthy again" in staff.get(reverse("demo-controls")).content.decode()
    )
    staff.post(reverse("demo-action", args=["identity-center"]), {"healthy": "1"})
    assert health.probe_access_portal().ok is True


def test_an_engineer_signs_in_to_aws(sandbox: SandboxServer, staff, queued):
    staff.post(reverse("demo-action", args=["sign-in"]), {"login": "engineer@example.com"})
    [event] = [e for e in sandbox.events() if e["eventType"] == "user.authentication.sso"]
    assert event["actor"]["alternateId"] == "engineer@example.com"
    assert queued == ["log"]


def test_okta_goes_down_and_comes_back(sandbox: SandboxServer, staff, queued):
    staff.post(reverse("demo-action", args=["okta"]), {"down": "1"})
    assert "Okta is back" in staff.get(reverse("demo-controls")).content.decode()
    assert sandbox.faults()["rules"]
    staff.post(reverse("demo-action", args=["okta"]), {"down": "0"})
    assert not sandbox.faults()["rules"]


def test_only_staff_and_only_in_the_demo(sandbox: SandboxServer, staff, engineer, settings):
    someone = Client()
    someone.force_login(engineer)
    assert someone.get(reverse("demo-controls")).status_code == 403
    assert someone.post(reverse("demo-action", args=["okta"]), {"down": "1"}).status_code == 403
    assert not sandbox.faults()["rules"]
    settings.PRODUCTION = True
    assert staff.get(reverse("demo-controls")).status_code == 404
