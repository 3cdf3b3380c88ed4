"""Filing a request through the form: success, every kind of bad input, and no failover."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal.models import AuditEvent
from requests_app.models import AccessRequest
from tests.web.conftest import JUSTIFICATION, signed_in

URL = reverse("request-new")


def form_data(plan, **overrides):
    data = {
        "role": plan.roles[("prod-payments", "RO")].pk,
        "justification": JUSTIFICATION,
        "ticket": "INC-1234",
        "duration_minutes": 60,
    }
    data.update(overrides)
    return data


def assert_nothing_written():
    assert AccessRequest.objects.count() == 0
    assert not AuditEvent.objects.filter(action="request.filed").exists()


def test_the_form_lists_roles_with_their_limits(as_engineer, plan, open_failover):
    content = as_engineer.get(URL).content.decode()
    assert "prod-payments (111111111111) — RO, max 240 min, 1 approval" in content
    assert "prod-data (222222222222) — Ops, max 120 min, 2 approvals" in content
    assert 'data-max-minutes="120"' in content
    assert "<fieldset >" in content or "<fieldset>" in content  # enabled


def test_filing_creates_the_request_and_shows_it(
    as_engineer, engineer, plan, fake_idp, open_failover
):
    response = as_engineer.post(URL, form_data(plan))
    req = AccessRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("request-detail", args=[req.pk])
    assert req.requester == engineer
    assert req.role == plan.roles[("prod-payments", "RO")]
    assert req.status == "pending"
    assert req.duration_minutes == 60
    page = as_engineer.get(response["Location"]).content.decode()
    assert f"Request #{req.pk} filed" in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"justification": ""}, "justification", "Say why you need emergency access."),
        ({"justification": "it is broken"}, "justification", "at least a sentence"),
        ({"duration_minutes": 241}, "duration_minutes", "at most 240 minutes"),
        ({"duration_minutes": 0}, "duration_minutes", "Ask for at least 1 minute."),
        ({"duration_minutes": "soon"}, "duration_minutes", "whole number of minutes"),
        ({"role": 999999}, "role", "That emergency role does not exist"),
        ({"role": ""}, "role", "Choose the account and access level"),
        ({"ticket": "  "}, "ticket", "Give the ticket or incident reference"),
    ],
)
def test_bad_input_shows_field_errors_and_writes_nothing(
    as_engineer, plan, fake_idp, open_failover, overrides, field, message
):
    response = as_engineer.post(URL, form_data(plan, **overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert_nothing_written()


def test_ops_duration_limit_is_per_level(as_engineer, plan, fake_idp, open_failover):
    ops = plan.roles[("prod-data", "Ops")].pk
    response = as_engineer.post(URL, form_data(plan, role=ops, duration_minutes=180))
    assert "at most 120 minutes" in " ".join(response.context["form"].errors["duration_minutes"])
    assert_nothing_written()


def test_without_an_open_failover_the_form_is_disabled_and_refused(as_engineer, plan, fake_idp):
    page = as_engineer.get(URL).content.decode()
    assert "No failover is open." in page
    assert "<fieldset disabled>" in page
    response = as_engineer.post(URL, form_data(plan))
    assert response.status_code == 200
    assert "No failover is open" in " ".join(response.context["form"].non_field_errors())
    assert_nothing_written()


def test_a_user_without_an_okta_account_is_told_so(plan, fake_idp, open_failover):
    stranger = get_user_model().objects.create_user("stranger", "stranger@example.com", "pw")
    response = signed_in(stranger).post(URL, form_data(plan))
    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "no Okta account with the login stranger@example.com" in errors
    assert_nothing_written()


def test_a_second_open_request_for_the_same_role_is_a_conflict(
    as_engineer, plan, fake_idp, open_failover
):
    as_engineer.post(URL, form_data(plan))
    response = as_engineer.post(URL, form_data(plan))
    assert response.status_code == 200
    assert "already have request" in " ".join(response.context["form"].non_field_errors())
    assert AccessRequest.objects.count() == 1


def test_auditors_cannot_open_the_form(as_auditor, plan, open_failover):
    assert as_auditor.get(URL).status_code == 403
    assert as_auditor.post(URL, form_data(plan)).status_code == 403
    assert_nothing_written()
