"""The demo controls for issue 14: an AWS-side use of an emergency role (the alarm), and the
sandbox PagerDuty's card (who is on call, what it was paged with), over https."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from federation.evidence_models import AwsRoleUse
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    user = make_user("admin", "admin@example.com", mfa=True)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_a_simulated_aws_use_without_a_grant_is_an_alarm(staff, plan, monkeypatch):
    monkeypatch.setattr("portal.celery.app.send_task", lambda *a, **k: None)
    role = plan.roles[("prod-payments", "Ops")]
    page = staff.get(reverse("demo-controls")).content.decode()
    assert "Use the role in AWS" in page and role.role_name in page

    response = staff.post(
        reverse("demo-action", args=["aws-use"]),
        {"login": "contractor@example.com", "role": role.pk},
        follow=True,
    )

    use = AwsRoleUse.objects.get()
    assert use.alert and use.role == role
    assert "ALERT: contractor@example.com used EmergencyAccess_Role1_Ops" in (
        response.content.decode()
    )


@pytest.mark.parametrize("bad", [{"login": "", "role": "1"}, {"login": "a@b.c", "role": "x"}])
def test_a_simulated_aws_use_needs_a_login_and_a_role(staff, plan, bad):
    response = staff.post(reverse("demo-action", args=["aws-use"]), bad, follow=True)
    assert "Choose a role and who uses it" in response.content.decode()
    assert not AwsRoleUse.objects.exists()


def test_the_pagerduty_card_sets_who_is_on_call_and_shows_the_pages(staff, plan, pd):
    page = staff.get(reverse("demo-controls")).content.decode()
    assert "PagerDuty (sandbox)" in page and "Nobody has been paged yet." in page

    staff.post(reverse("demo-action", args=["oncall"]), {"email": "oncall@example.com"})
    entries = pd.state.list_oncalls({"include[]": ["users"], "schedule_ids[]": ["PSCHED1"]})
    assert [e["user"]["email"] for e in entries] == ["oncall@example.com"]

    pd.state.enqueue(
        {
            "routing_key": "sandbox-approvers-routing-key",
            "event_action": "trigger",
            "dedup_key": "emergency-access-failover-1",
            "payload": {
                "summary": "2 requests waiting",
                "source": "portal",
                "severity": "critical",
            },
        }
    )
    page = staff.get(reverse("demo-controls")).content.decode()
    assert "emergency-access-failover-1" in page and "2 requests waiting" in page


def test_without_the_sandbox_pagerduty_there_is_no_card(staff, plan, settings):
    settings.PAGERDUTY_API_URL = "https://api.pagerduty.com"
    assert "PagerDuty (sandbox)" not in staff.get(reverse("demo-controls")).content.decode()
    assert staff.post(reverse("demo-action", args=["oncall"]), {"email": ""}).status_code == 404
