"""Slack's buttons, hardened (findings 4 and 6 of issue 10): malformed headers are 401,
replays are refused, the timestamp is within 5 minutes either way, only allowed
workspaces, odd payloads are 400, answers go only to Slack's own hooks host."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client

from portal.models import AuditEvent, NotificationLog, SlackIdentity
from requests_app.models import Status
from tests.runbook.test_slack_interactivity import URL, press, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _slack_app(settings, monkeypatch):
    settings.SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
    settings.SLACK_TEAM_IDS = ["T1"]
    monkeypatch.setattr("portal.queue.send_email", lambda *a, **k: None)
    monkeypatch.setattr("requests_app.queue.provision_grant", lambda *a, **k: None)


@pytest.fixture
def linked(approver):
    return SlackIdentity.objects.create(user=approver, slack_user_id="U0APPROVER1", team_id="T1")


def post(body: str, headers: dict[str, str]):
    return Client().post(
        URL, body, content_type="application/x-www-form-urlencoded", headers=headers
    )


def approve_body(req, **extra) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0APPROVER1", "team_id": "T1"},
        "team": {"id": "T1"},
        "actions": [{"action_id": "approve_request", "value": str(req.pk)}],
        **extra,
    }
    return urlencode({"payload": json.dumps(payload)})


def written():
    return AuditEvent.objects.count(), NotificationLog.objects.count()


def test_a_replayed_request_is_refused(
    linked, engineer, pending, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    body = approve_body(req)
    headers = signed(body)
    with django_capture_on_commit_callbacks(execute=False):
        assert post(body, headers).status_code == 200
    before = written()
    replay = post(body, headers)
    assert replay.status_code == 401
    assert replay.json() == {"error": "replayed request"}
    assert written() == before


@pytest.mark.parametrize(
    ("offset", "status"), [(-301, 401), (-290, 200), (290, 200), (301, 401), (10**9, 401)]
)
def test_the_timestamp_window_is_five_minutes_either_way(
    linked, engineer, pending, django_capture_on_commit_callbacks, offset, status
):
    req = pending(engineer)
    body = approve_body(req)
    with django_capture_on_commit_callbacks(execute=False):
        response = post(body, signed(body, at=int(time.time()) + offset))
    assert response.status_code == status


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "-5", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "١٢٣", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=é"},
        {"X-Slack-Request-Timestamp": str(int(time.time()))},
        {"X-Slack-Signature": "v0=00"},
    ],
    ids=["words", "float", "negative", "huge", "arabic-digits", "non-ascii-sig", "no-sig", "no-ts"],
)
def test_malformed_headers_are_401_not_500(linked, engineer, pending, headers):
    req = pending(engineer)
    before = written()
    response = post(approve_body(req), headers)
    assert response.status_code == 401
    assert written() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "team": {"id": "T1"}, "actions": ["approve_request"]},
        {"type": "block_actions", "team": {"id": "T1"}, "actions": [["x"]]},
        {"type": "block_actions", "team": {"id": "T1"}, "actions": "approve_request"},
        {"type": "block_actions", "team": "T1", "actions": []},
        {"type": "block_actions", "team": {"id": "T1"}, "user": "U1", "actions": []},
        ["block_actions"],
        "block_actions",
        42,
    ],
)
def test_a_signed_payload_of_the_wrong_shape_is_400(linked, payload):
    body = urlencode({"payload": json.dumps(payload)})
    before = written()
    response = post(body, signed(body))
    assert response.status_code == 400
    assert written() == before


def test_another_workspace_is_refused_even_with_an_approvers_identity(linked, engineer, pending):
    req = pending(engineer)
    body = approve_body(req, team={"id": "T-OTHER"}, user={"id": "U0APPROVER1"})
    before = written()
    assert post(body, signed(body)).status_code == 403
    assert written() == before
    req.refresh_from_db()
    assert req.status == Status.PENDING


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/actions/T1/1/xyz",
        "http://hooks.slack.com/actions/T1/1/xyz",
        "https://hooks.slack.com.evil.example/actions",
        "https://user@hooks.slack.com/actions",
        "https://hooks.slack.com:8443/actions",
        "https://hooks.slack.com:99999999/actions",
    ],
)
def test_answers_go_only_to_slacks_hooks_host(
    linked, engineer, pending, django_capture_on_commit_callbacks, url
):
    req = pending(engineer)
    body = approve_body(req, response_url=url)
    with django_capture_on_commit_callbacks(execute=False):
        response = post(body, signed(body))
    assert response.status_code == 200
    assert "approved" in response.json()["text"]
    assert not NotificationLog.objects.filter(event="slack.response").exists()


def test_slacks_own_hooks_host_gets_the_answer(
    linked, engineer, pending, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    response = press("approve_request", str(req.pk), capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert NotificationLog.objects.filter(event="slack.response").exists()
