"""Who is calling: Bearer tokens, the browser session with CSRF, and 401s."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from portal.accounts.tokens import authenticate, create_token, revoke_token
from portal.models import ApiToken, AuditEvent
from tests.api.conftest import API, ApiClient

pytestmark = pytest.mark.django_db


def test_no_credentials_is_a_json_401(anon):
    response = anon.get("/requests")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert "Bearer" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer eap_not-a-real-token",
        "Bearer ",
        "Bearer " + "x" * 5000,
        "Token eap_whatever",
        "Basic ZW5naW5lZXI6ZGVtbw==",
    ],
)
def test_bad_credentials_are_refused_with_401(engineer, header):
    response = Client().get(f"{API}/requests", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_bad_token_on_a_write_is_401_not_a_csrf_403(plan):
    response = ApiClient(token="eap_nope").post("/failover", {"reason": "x"})
    assert response.status_code == 401
    assert response.json()["detail"] == "The API token is invalid, expired or revoked."


def test_a_valid_token_authenticates_as_its_owner(engineer, as_engineer):
    response = as_engineer.get("/requests")
    assert response.status_code == 200
    assert response.json() == {"items": [], "count": 0}


def test_a_revoked_token_is_refused(engineer):
    token, raw = create_token(engineer, "ci", engineer)
    assert ApiClient(token=raw).get("/roles").status_code == 200
    revoke_token(token, engineer)
    response = ApiClient(token=raw).get("/roles")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_deactivated_users_token_is_refused(engineer):
    _, raw = create_token(engineer, "ci", engineer)
    engineer.is_active = False
    engineer.save()
    assert ApiClient(token=raw).get("/roles").status_code == 401


def test_tokens_are_stored_hashed_and_never_in_the_audit_log(engineer):
    token, raw = create_token(engineer, "ci", engineer)
    token.refresh_from_db()
    assert token.token_hash != raw
    assert len(token.token_hash) == 64
    assert raw.startswith(token.hint) and len(token.hint) < len(raw) // 3
    for row in ApiToken.objects.values():
        assert raw not in str(row)
    for event in AuditEvent.objects.all():
        assert raw not in str(event.payload)


def test_last_used_is_written_at_most_once_a_minute(engineer, django_assert_num_queries):
    token, raw = create_token(engineer, "ci", engineer)
    assert token.last_used_at is None
    assert authenticate(raw) == engineer
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None

    with django_assert_num_queries(1):  # the lookup only, no UPDATE
        assert authenticate(raw) == engineer
    token.refresh_from_db()
    assert token.last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at > first - dt.timedelta(seconds=1)
    assert token.last_used_at <= timezone.now()


def test_the_browser_session_can_read(engineer, plan):
    client = Client()
    client.force_login(engineer)
    response = client.get(f"{API}/roles")
    assert response.status_code == 200
    assert len(response.json()) == 4


def test_a_session_write_needs_the_csrf_token(approver, plan):
    client = Client(enforce_csrf_checks=True)
    client.force_login(approver)
    body = '{"reason": "Identity Center is down", "drill": true}'

    refused = client.post(f"{API}/failover", body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    csrf = "s3cr3t" * 5 + "ab"  # a 32-character CSRF secret, as the cookie would hold
    client.cookies["csrftoken"] = csrf
    accepted = client.post(
        f"{API}/failover", body, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert accepted.status_code == 201, accepted.content


def test_a_bearer_token_needs_no_csrf(approver, plan, django_capture_on_commit_callbacks):
    _, raw = create_token(approver, "bot", approver)
    client = ApiClient(token=raw, client=Client(enforce_csrf_checks=True))
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/failover", {"reason": "Identity Center is down", "drill": True})
    assert response.status_code == 201
