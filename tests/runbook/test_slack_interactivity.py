"""Slack's Approve / Deny buttons: signature checks, user mapping, the portal's rules."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client

from portal.models import AuditEvent, NotificationLog, SlackIdentity
from requests_app.models import ExtensionStatus, Status

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
URL = "/slack/interactivity"


@pytest.fixture(autouse=True)
def _slack_app(settings, monkeypatch):
    settings.SLACK_SIGNING_SECRET = SECRET
    settings.SLACK_TEAM_IDS = ["T1"]
    monkeypatch.setattr("portal.queue.send_email", lambda *a, **k: None)
    monkeypatch.setattr("requests_app.queue.provision_grant", lambda *a, **k: None)


# Each request a timestamp of its own: Slack never sends the same one twice, and the
# portal refuses a replayed timestamp + signature.
_AGES = itertools.count()


def signed(body: str, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    at = int(time.time()) - next(_AGES) % 200 if at is None else at
    base = f"v0:{at}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(at), "X-Slack-Signature": f"v0={digest}"}


def press(
    action_id: str,
    value: str,
    *,
    user: dict | None = None,
    team="T1",
    headers=None,
    capture=None,
    reason: str | None = None,
):
    """Press a button; ``reason``: what was typed in the message's reason box first."""
    payload = {
        "type": "block_actions",
        "user": user or {"id": "U0APPROVER1", "username": "approver1", "team_id": team},
        "team": {"id": team},
        "actions": [{"action_id": action_id, "value": value, "block_id": "b"}],
        "response_url": "https://hooks.slack.com/actions/T1/1/xyz",
    }
    if reason is not None:  # Slack sends the state of the message's inputs with the press
        box = {"reason": {"type": "plain_text_input", "value": reason}}
        payload["state"] = {"values": {f"reason-request-{value}": box}}
    body = urlencode({"payload": json.dumps(payload)})
    headers = headers if headers is not None else signed(body)
    client = Client()
    if capture is None:
        return client.post(
            URL, body, content_type="application/x-www-form-urlencoded", headers=headers
        )
    with capture(execute=False) as queued:
        response = client.post(
            URL, body, content_type="application/x-www-form-urlencoded", headers=headers
        )
    response.queued = queued
    return response


@pytest.fixture
def linked(approver):
    return SlackIdentity.objects.create(user=approver, slack_user_id="U0APPROVER1", team_id="T1")


def test_approve_from_slack_applies_the_portal_rules(
    linked, approver, engineer, pending, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    response = press("approve_request", str(req.pk), capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    assert "approver1 approved request" in response.json()["text"]
    req.refresh_from_db()
    assert req.status == Status.APPROVED
    assert req.decided_by == approver
    event = AuditEvent.objects.get(action="request.approved")
    assert event.actor == approver  # the audit log names the portal user
    # The answer is also posted back to Slack's response_url, by a worker.
    assert NotificationLog.objects.filter(event="slack.response").exists()
    # Pressing again: the same refusal as in the portal.
    again = press("approve_request", str(req.pk), capture=django_capture_on_commit_callbacks)
    assert again.json()["text"].startswith("Refused:")


def test_nobody_approves_their_own_request_from_slack(
    linked, approver, pending, django_capture_on_commit_callbacks
):
    req = pending(approver)
    response = press("approve_request", str(req.pk), capture=django_capture_on_commit_callbacks)
    assert response.json()["text"] == "Refused: Nobody can approve their own request."
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_deny_from_slack_with_the_reason_typed_in_the_message(
    linked, engineer, pending, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    response = press(
        "deny_request", str(req.pk), reason=" Use the read-only role. ",
        capture=django_capture_on_commit_callbacks,
    )  # fmt: skip
    assert "denied" in response.json()["text"]
    req.refresh_from_db()
    assert req.status == Status.DENIED and req.decision_comment == "Use the read-only role."


@pytest.mark.parametrize("typed", [None, "", "   "], ids=["no-box", "empty", "blank"])
def test_deny_from_slack_without_a_reason_is_refused_with_a_clear_answer(
    typed, linked, engineer, pending, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    response = press(
        "deny_request", str(req.pk), reason=typed, capture=django_capture_on_commit_callbacks
    )
    assert response.json() == {
        "text": "Refused: Give a reason for the denial: the engineer is told it. "
        "Type it in the reason box, then press Deny again.",
        "response_type": "ephemeral",
        "replace_original": False,
    }
    req.refresh_from_db()
    assert req.status == Status.PENDING
    assert not AuditEvent.objects.filter(action="request.denied").exists()


def test_the_slack_message_has_a_reason_box_above_the_buttons(settings):
    from portal.notify import slack_message

    blocks = slack_message("s", "t", "https://portal/x", decide=("request", "7"))["blocks"]
    box, buttons = blocks[-2:]
    assert box["type"] == "input" and box["element"]["type"] == "plain_text_input"
    assert box["element"]["action_id"] == "reason" and box["optional"] is True
    assert [b["action_id"] for b in buttons["elements"]] == ["approve_request", "deny_request"]


def test_an_engineer_linked_in_slack_cannot_approve(
    oncall, engineer, pending, django_capture_on_commit_callbacks
):
    SlackIdentity.objects.create(user=oncall, slack_user_id="U0ONCALL")
    req = pending(engineer)
    response = press(
        "approve_request", str(req.pk), user={"id": "U0ONCALL"},
        capture=django_capture_on_commit_callbacks,
    )  # fmt: skip
    assert response.json()["text"] == "Refused: Only approvers can approve requests."
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_an_unknown_slack_user_is_refused(engineer, pending, django_capture_on_commit_callbacks):
    req = pending(engineer)
    response = press(
        "approve_request", str(req.pk), user={"id": "U0STRANGER"},
        capture=django_capture_on_commit_callbacks,
    )  # fmt: skip
    assert "not linked to a portal user" in response.json()["text"]
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_the_email_in_the_payload_links_nobody(
    approver, engineer, pending, django_capture_on_commit_callbacks
):
    """Only an admin links a Slack user: an approver's email in a payload is no proof."""
    req = pending(engineer)
    user = {"id": "U0NEW", "email": "APPROVER1@example.com", "team_id": "T1"}
    response = press(
        "approve_request", str(req.pk), user=user, capture=django_capture_on_commit_callbacks
    )
    assert "not linked to a portal user" in response.json()["text"]
    assert not SlackIdentity.objects.filter(slack_user_id="U0NEW").exists()
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_another_workspace_is_refused(
    linked, engineer, pending, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    before = AuditEvent.objects.count(), NotificationLog.objects.count()
    response = press(
        "approve_request", str(req.pk), team="T-OTHER", capture=django_capture_on_commit_callbacks
    )
    assert response.status_code == 403
    assert (AuditEvent.objects.count(), NotificationLog.objects.count()) == before
    req.refresh_from_db()
    assert req.status == Status.PENDING


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=00"},
        "wrong-secret",
        "stale",
    ],
    ids=["unsigned", "garbage", "wrong-secret", "older-than-5-minutes"],
)
def test_bad_signatures_are_refused_before_anything_happens(linked, engineer, pending, headers):
    req = pending(engineer)
    payload = {
        "type": "block_actions",
        "user": {"id": "U0APPROVER1"},
        "actions": [{"action_id": "approve_request", "value": str(req.pk)}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    if headers == "wrong-secret":
        headers = signed(body, secret="not-the-secret")
    elif headers == "stale":
        headers = signed(body, at=int(time.time()) - 6 * 60)
    response = Client().post(
        URL, body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert response.status_code == 401
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_a_tampered_body_is_refused(linked):
    body = urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})})
    headers = signed(body)
    tampered = body.replace("block_actions", "block_actionz")
    response = Client().post(
        URL, tampered, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert response.status_code == 401


def test_without_a_signing_secret_the_endpoint_does_not_exist(settings, db):
    settings.SLACK_SIGNING_SECRET = ""
    assert Client().post(URL, {"payload": "{}"}).status_code == 404


def test_bad_payloads_are_400_not_500(linked):
    body = urlencode({"payload": "{not json"})
    response = Client().post(
        URL, body, content_type="application/x-www-form-urlencoded", headers=signed(body)
    )
    assert response.status_code == 400
    assert press("approve_request", "not-a-number").json()["text"].startswith("That button")


def test_approve_an_extension_from_slack(
    linked, approver, engineer, grant, django_capture_on_commit_callbacks
):
    from requests_app import extensions

    req = grant(engineer)
    with django_capture_on_commit_callbacks(execute=False):
        ext = extensions.request_extension(
            req, actor=engineer, minutes=15, justification="The restart takes longer than planned."
        )
    response = press(
        "approve_extension", f"{req.pk}:{ext.pk}", capture=django_capture_on_commit_callbacks
    )
    assert "15 more minutes" in response.json()["text"]
    ext.refresh_from_db()
    assert ext.status == ExtensionStatus.APPROVED


# --- Which levels Slack may approve (SLACK_APPROVAL_LEVELS, default RO) -------------------


def test_ops_is_not_approved_in_slack_by_default(
    linked, approver, engineer, pending, django_capture_on_commit_callbacks
):
    """A Slack session is no fresh second factor: SystemAdministrator waits for the portal."""
    req = pending(engineer, level="Ops")
    response = press("approve_request", str(req.pk), capture=django_capture_on_commit_callbacks)
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(f"Refused: Request #{req.pk} for Ops access is approved")
    assert f"/requests/{req.pk}/" in answer["text"]
    req.refresh_from_db()
    assert req.status == Status.PENDING and not req.approvals.exists()
    assert not AuditEvent.objects.filter(action="request.approved").exists()


def test_ops_may_be_denied_in_slack(linked, engineer, pending, django_capture_on_commit_callbacks):
    req = pending(engineer, level="Ops")
    press(
        "deny_request", str(req.pk), reason="Read-only will do.",
        capture=django_capture_on_commit_callbacks,
    )  # fmt: skip
    req.refresh_from_db()
    assert req.status == Status.DENIED


def test_a_setting_lets_slack_approve_every_level(
    settings, linked, approver, engineer, pending, django_capture_on_commit_callbacks
):
    settings.SLACK_APPROVAL_LEVELS = ["all"]
    req = pending(engineer, level="Ops")
    response = press("approve_request", str(req.pk), capture=django_capture_on_commit_callbacks)
    assert "needs 1 more approval" in response.json()["text"]
    assert req.approvals.filter(approver=approver).exists()


def test_an_extension_of_ops_is_not_approved_in_slack_by_default(
    linked, engineer, grant, django_capture_on_commit_callbacks
):
    from requests_app import extensions

    req = grant(engineer, level="Ops")
    with django_capture_on_commit_callbacks(execute=False):
        ext = extensions.request_extension(
            req, actor=engineer, minutes=15, justification="The restart takes longer than planned."
        )
    response = press(
        "approve_extension", f"{req.pk}:{ext.pk}", capture=django_capture_on_commit_callbacks
    )
    assert response.json()["text"].startswith(f"Refused: More time on #{req.pk} for Ops access")
    ext.refresh_from_db()
    assert ext.status == ExtensionStatus.PENDING
