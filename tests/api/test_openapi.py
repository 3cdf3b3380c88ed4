"""The OpenAPI document: served at /api/v1/openapi.json, valid, complete."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

EXPECTED = {
    "/api/v1/roles": {"get"},
    "/api/v1/requests": {"get", "post"},
    "/api/v1/requests/{request_id}": {"get"},
    "/api/v1/requests/{request_id}/approve": {"post"},
    "/api/v1/requests/{request_id}/deny": {"post"},
    "/api/v1/requests/{request_id}/cancel": {"post"},
    "/api/v1/requests/{request_id}/revoke": {"post"},
    "/api/v1/requests/{request_id}/signed-out": {"post"},
    "/api/v1/failover": {"get", "post"},
    "/api/v1/failover/close": {"post"},
    "/api/v1/failover/return": {"post"},
    "/api/v1/failover/remind": {"post"},
    "/api/v1/failover/confirm": {"post"},
    "/api/v1/failovers/{failover_id}/report": {"get"},
    "/api/v1/requests/batch": {"post"},
    "/api/v1/requests/approve": {"post"},
    "/api/v1/requests/{request_id}/extend": {"post"},
    "/api/v1/requests/{request_id}/extensions/{extension_id}/approve": {"post"},
    "/api/v1/requests/{request_id}/extensions/{extension_id}/deny": {"post"},
    "/api/v1/requests/{request_id}/extensions/{extension_id}/cancel": {"post"},
    "/api/v1/readiness": {"get"},
    "/api/v1/readiness/run": {"post"},
}


@pytest.fixture
def document():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_it_lists_every_path_and_method(document):
    assert {path: set(ops) for path, ops in document["paths"].items()} == EXPECTED


def test_it_documents_bearer_auth_and_error_bodies(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiTokenAuth"] == {"type": "http", "scheme": "bearer"}
    filing = document["paths"]["/api/v1/requests"]["post"]
    assert {"201", "400", "401", "403", "409"} <= set(filing["responses"])
    assert filing["security"]


def test_docs_never_load_assets_from_the_internet(engineer, settings):
    client = Client()
    client.force_login(engineer)
    response = client.get("/api/v1/docs")
    if "ninja" not in settings.INSTALLED_APPS:
        # ninja would fall back to a CDN, so the docs page is switched off.
        assert response.status_code == 404
        return
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
