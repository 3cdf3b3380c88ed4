"""Auditors read everything and change nothing: every write endpoint answers 403."""

from __future__ import annotations

import pytest

from portal.api import api
from requests_app.models import AccessRequest, Status

pytestmark = pytest.mark.django_db

# Every unsafe operation of the API, with a body that would be accepted from an approver.
WRITES = {
    "/requests": {
        "role": "{role}",
        "justification": "Auditing things in production now.",
        "ticket": "AUD-1",
        "duration_minutes": 30,
    },
    "/requests/{request_id}/approve": {"comment": "ok"},
    "/requests/{request_id}/deny": {"reason": "no"},
    "/requests/{request_id}/cancel": {"reason": "no"},
    "/requests/{request_id}/revoke": {"reason": "no"},
    "/requests/{request_id}/signed-out": {},
    "/failover": {"reason": "Identity Center is down", "drill": True},
    "/failover/close": {"reason": "back to normal"},
    "/failover/return": {"override_reason": "IdC is fine"},
    "/failover/remind": {},
    "/failover/confirm": {},
    "/requests/batch": {
        "roles": ["{role}"],
        "justification": "Auditing things in production now.",
        "ticket": "AUD-1",
        "duration_minutes": 30,
    },
    "/requests/{request_id}/extend": {"minutes": 10, "justification": "I need more time, really."},
    "/requests/{request_id}/extensions/{extension_id}/approve": {"comment": "ok"},
    "/requests/{request_id}/extensions/{extension_id}/deny": {"reason": "no"},
    "/requests/{request_id}/extensions/{extension_id}/cancel": {},
    "/readiness/run": {},
    "/requests/{request_id}/break-glass": {"confirmation": "break glass #1", "ticket": "INC-1"},
    "/requests/{request_id}/review": {"verdict": "accept"},
    "/requests/approve": {"ids": "{request_ids}", "comment": "all of them"},
}
# Not a user's endpoint: EventBridge's, authenticated with the connection secret only (no
# user token or session is accepted, so no portal role can write through it).
MACHINE_ENDPOINTS = {"/aws-events"}


@pytest.fixture
def pending(file_as, as_engineer, ro_role):
    return file_as(as_engineer, ro_role)


def test_the_list_covers_every_write_endpoint():
    schema = api.get_openapi_schema(path_prefix="")
    unsafe = {
        path
        for path, operations in schema["paths"].items()
        for method in operations
        if method.upper() not in {"GET", "HEAD", "OPTIONS"}
    }
    assert unsafe == set(WRITES) | MACHINE_ENDPOINTS


@pytest.mark.parametrize("path", list(WRITES))
@pytest.mark.parametrize("valid_body", [True, False], ids=["valid-body", "garbage-body"])
def test_auditors_get_403_on_every_write(as_auditor, pending, ro_role, snapshot, path, valid_body):
    url = path.format(request_id=pending["id"], extension_id=1)
    body = {
        k: ro_role.pk
        if v == "{role}"
        else [ro_role.pk]
        if v == ["{role}"]
        else [pending["id"]]
        if v == "{request_ids}"
        else v
        for k, v in WRITES[path].items()
    }
    before = snapshot()
    response = as_auditor.post(url, body if valid_body else None, raw=None if valid_body else "{x")
    assert response.status_code == 403, response.content
    assert "read-only" in response.json()["detail"]
    before.assert_nothing_written()
    assert AccessRequest.objects.get(pk=pending["id"]).status == Status.PENDING


def test_auditors_with_a_session_get_403_too(auditor, pending, client, snapshot):
    client.force_login(auditor)
    before = snapshot()
    response = client.post(
        f"/api/v1/requests/{pending['id']}/deny", "{}", content_type="application/json"
    )
    assert response.status_code == 403
    before.assert_nothing_written()


def test_auditors_read_everything(as_auditor, pending):
    assert as_auditor.get("/requests").json()["count"] == 1
    assert as_auditor.get(f"/requests/{pending['id']}").status_code == 200
    assert as_auditor.get("/roles").status_code == 200
    assert as_auditor.get("/failover").json()["failover"] is not None


@pytest.mark.parametrize("path", sorted(MACHINE_ENDPOINTS))
def test_auditors_token_and_session_get_401_on_machine_endpoints(
    as_auditor, auditor, client, snapshot, path
):
    before = snapshot()
    assert as_auditor.post(path, {"id": "x"}).status_code == 401
    client.force_login(auditor)
    response = client.post(f"/api/v1{path}", "{}", content_type="application/json")
    assert response.status_code == 401
    before.assert_nothing_written()
