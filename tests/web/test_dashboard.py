"""The dashboard: the failover, who holds access, counts, the user's own requests."""

from __future__ import annotations

from django.urls import reverse

from federation.models import Failover
from requests_app import services
from tests.web.conftest import HTMX


def test_normal_operation_says_so_and_is_honest_about_identity_center(as_engineer, plan):
    response = as_engineer.get(reverse("dashboard"))
    content = response.content.decode()
    assert "Normal operation." in content
    # Health is UNKNOWN, and says why, until a source is configured (see tests/health/).
    assert "Identity Center health" in content
    assert "UNKNOWN" in content
    assert "No source configured" in content
    assert "banner" not in content.split("<main")[0].split("</header>")[1]


def test_open_failover_shows_state_and_banner(as_approver, open_failover):
    content = as_approver.get(reverse("dashboard")).content.decode()
    assert f"Failover #{open_failover.pk} open since" in content
    assert "Real disruption" in content
    assert "Activation pending" in content
    assert "Identity Center is down in eu-west-1" in content


def test_app_activation_and_okta_errors_are_shown(as_approver, open_failover):
    Failover.objects.filter(pk=open_failover.pk).update(last_error="Okta answered 503")
    from federation.failover import services as federation_services

    federation_services.confirm_app_activated(open_failover.pk)
    content = as_approver.get(reverse("dashboard")).content.decode()
    assert "Activation confirmed at" in content
    assert "Okta answered 503" in content


def test_approvers_see_who_holds_access_and_counts(as_approver, engineer, oncall, file_request):
    active = file_request(engineer)
    pending = file_request(oncall, "prod-data", "Ops")
    approver = active.failover.opened_by
    services.approve(active, actor=approver)
    services.activate(active.pk, okta_user_id="00u1")
    content = as_approver.get(reverse("dashboard")).content.decode()
    holding = content.split("Who holds emergency access now")[1].split("Your open requests")[0]
    assert "engineer" in holding
    assert "EmergencyAccess_Role1_RO" in holding
    assert "111111111111" in holding
    assert "oncall" not in holding  # still pending, holds nothing
    assert pending.status == "pending"
    assert "waiting for you" in content


def test_engineers_see_only_their_own_requests(as_engineer, engineer, oncall, file_request):
    mine = file_request(engineer)
    other = file_request(oncall, "prod-data")
    content = as_engineer.get(reverse("dashboard")).content.decode()
    assert "Who holds emergency access now" not in content
    assert reverse("request-detail", args=[mine.pk]) in content
    assert reverse("request-detail", args=[other.pk]) not in content


def test_htmx_refresh_returns_only_the_live_part(as_approver, open_failover):
    response = as_approver.get(reverse("dashboard"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="dashboard-live"')
    assert "<html" not in content
    assert 'hx-trigger="every 5s"' in content


def test_the_polled_fragment_stays_cheap(
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
    # +2: session policy, MFA check; +1: AWS alarms; +1: the worker/beat heartbeats;
    # +1: open break-glass reviews counted apart from the live statuses (both by index,
    # instead of one aggregate over every request ever filed)
    with django_assert_max_num_queries(19):
        response = as_approver.get(reverse("dashboard"), headers=HTMX)
    assert response.content.decode().count('data-label="Person"') == 20
