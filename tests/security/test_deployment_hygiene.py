"""Deployment hygiene (finding 9 of issue 10): API docs behind sign-in in production, the
audit's client address from the trusted proxy's X-Forwarded-For entry, never a spoofed one."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse

from portal.accounts.tokens import create_token
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_docs(settings):
    settings.API_DOCS_PUBLIC = False


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs"])
def test_anonymous_visitors_get_no_docs_in_production(client, private_docs, path):
    response = client.get(path)
    if path.endswith(".json"):
        assert response.status_code == 401
        assert "paths" not in response.content.decode()
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/api/v1/docs"])
def test_signed_in_users_and_tokens_get_the_docs(client, engineer, private_docs, path):
    _, raw = create_token(engineer, "docs", engineer)
    assert client.get(path, headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    assert client.get(path, headers={"Authorization": "Bearer eap_wrong"}).status_code != 200
    client.force_login(engineer)
    assert client.get(path).status_code == 200


def test_the_demo_keeps_them_public(client):
    assert client.get("/api/v1/openapi.json").status_code == 200


def _request(remote: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, headers=headers)


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "10.0.0.2"),  # no proxy declared: the header is anyone's
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own entry is ignored
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (1, None, "10.0.0.2"),
        (2, "203.0.113.7", "10.0.0.2"),  # fewer entries than proxies: the peer
        (1, "not-an-address", None),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip(settings, hops, forwarded, expected):
    from portal.audit import client_ip

    settings.TRUSTED_PROXY_COUNT = hops
    assert client_ip(_request("10.0.0.2", forwarded)) == expected


def test_the_audit_event_records_the_clients_address(client, engineer, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.force_login(engineer)
    client.post(
        reverse("tokens"),
        {"name": "laptop"},
        REMOTE_ADDR="10.0.0.2",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"},
    )
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.client_ip == "203.0.113.7"
