"""The dashboard's monitors: Identity Center health (state, since, rule, evidence, 24 h
timeline) and the emergency users of the open failover with their sign-out evidence."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from federation.models import (
    EvidenceKind,
    HealthSample,
    HealthSource,
    HealthStateChange,
    OutsideChangeAlert,
    SignInEvidence,
)
from federation.monitor import health
from requests_app import services
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitored(settings):
    settings.IDENTITY_CENTER_REGION = "eu-west-1"
    settings.AWS_ACCESS_PORTAL_URL = "https://d-1234567890.awsapps.com/start"
    now = timezone.now()
    for minutes in (2, 1, 0):
        for source in HealthSource:
            HealthSample.objects.create(
                source=source,
                ok=True,
                latency_ms=80,
                recorded_at=now - dt.timedelta(minutes=minutes),
            )
    health.evaluate(now=now)
    return now


def test_the_health_card_shows_state_rule_evidence_and_timeline(as_engineer, monitored):
    content = as_engineer.get(reverse("dashboard")).content.decode()
    card = content.split('id="health-card"')[1].split("</section>")[0]
    assert "HEALTHY" in card
    assert "sso-admin ListInstances: ok, 80 ms" in card
    assert "DISRUPTED: an active probe" in card  # the rule, written out
    assert "<svg" in card and card.count("<rect") > 4 * 96
    assert 'hx-get="/monitor/health/"' in card


def test_the_health_partial_is_served_alone(as_engineer, monitored):
    response = as_engineer.get(reverse("health-card"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="health-card"')
    assert "<html" not in content


def test_a_disruption_shows_a_banner_suggesting_to_declare_it(as_approver, settings):
    settings.IDENTITY_CENTER_REGION = "eu-west-1"
    HealthStateChange.objects.create(state="DISRUPTED", at=timezone.now())
    content = as_approver.get(reverse("dashboard")).content.decode()
    banner = content.split("</header>")[1].split("<main")[0]
    assert "IAM Identity Center looks disrupted since" in banner
    assert reverse("failover") in banner


def test_no_banner_once_a_failover_is_open(as_approver, open_failover):
    HealthStateChange.objects.create(state="DISRUPTED", at=timezone.now())
    content = as_approver.get(reverse("dashboard")).content.decode()
    assert "looks disrupted" not in content.split("<main")[0]


def test_approvers_see_every_emergency_user_with_sign_out_evidence(
    as_approver, engineer, oncall, file_request
):
    signed_in = file_request(engineer)
    quiet = file_request(oncall, "prod-data")
    approver = signed_in.failover.opened_by
    for req in (signed_in, quiet):
        services.approve(req, actor=approver)
        services.activate(req.pk, okta_user_id=f"00u{req.pk}")
    at = timezone.now()
    SignInEvidence.objects.create(
        failover=signed_in.failover, login="engineer@example.com", kind=EvidenceKind.SIGN_IN,
        at=at, source="okta-system-log", source_id="evt-1",
    )  # fmt: skip
    content = as_approver.get(reverse("dashboard")).content.decode()
    users = content.split('id="emergency-users"')[1].split("</section>")[0]
    assert "engineer" in users and "oncall" in users
    assert "<strong>Signed in</strong>" in users
    assert "Not signed in" in users
    assert "EmergencyAccess_Role1_RO" in users
    assert "SessionDuration (60 min)" in users
    services.confirm_signed_out(signed_in, engineer)
    partial = as_approver.get(reverse("emergency-users"), headers=HTMX).content.decode()
    assert partial.lstrip().startswith('<section id="emergency-users"')
    assert "they said so in the portal" in partial


def test_engineers_do_not_see_other_peoples_sessions(as_engineer, open_failover):
    content = as_engineer.get(reverse("dashboard")).content.decode()
    assert 'id="emergency-users"' not in content
    assert as_engineer.get(reverse("emergency-users")).status_code == 403


def test_auditors_see_the_emergency_users(as_auditor, open_failover):
    assert as_auditor.get(reverse("emergency-users")).status_code == 200


def test_changes_behind_the_portals_back_are_on_the_dashboard(as_approver, open_failover):
    OutsideChangeAlert.objects.create(
        event_uuid="u1", event_type="group.user_membership.add", actor="okta-admin@example.com",
        target="aws#EmergencyAccess_Role1_Ops#123456789012", published=timezone.now(),
        failover=open_failover, detail={"user": "oncall@example.com"},
    )  # fmt: skip
    content = as_approver.get(reverse("dashboard")).content.decode()
    assert "Changed in Okta behind the portal" in content
    assert "okta-admin@example.com" in content and "oncall@example.com" in content


def test_the_emergency_users_poll_stays_cheap(
    as_approver, approver, plan, open_failover, django_assert_max_num_queries
):
    from django.contrib.auth import get_user_model

    from requests_app.models import AccessRequest

    role = plan.roles[("prod-payments", "RO")]
    for n in range(20):
        user = get_user_model().objects.create_user(f"eng{n}", f"eng{n}@example.com", "pw")
        req = AccessRequest.objects.create(
            requester=user, role=role, failover=open_failover, justification="a b c d",
            ticket=f"INC-{n}", duration_minutes=30, okta_login=user.email,
        )  # fmt: skip
        services.approve(req, actor=approver)
        services.activate(req.pk, okta_user_id=f"00u{n}")
    with django_assert_max_num_queries(12):
        response = as_approver.get(reverse("emergency-users"), headers=HTMX)
    assert response.content.decode().count('data-label="Person"') == 20
