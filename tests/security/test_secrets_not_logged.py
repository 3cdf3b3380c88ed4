"""Secrets never reach the logs, even at DEBUG (finding 7 of issue 10, and a CI gate).

Everything is captured at DEBUG while the portal does what leaks secrets in other
projects: botocore sends a request with an AWS session token, the okta SDK sends the
SSWS token, a client calls the API with a bearer token, a browser signs in and
carries its session cookie. None of them may appear in any log record.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import BotoCoreError
from django.urls import reverse

from federation.idp import IdpError
from federation.idp.okta import OktaIdentityProvider
from portal.accounts import tokens
from portal.core import aws

AWS_SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontokenSECRET0123456789"
OKTA_TOKEN = "00okta-api-token-SECRET-0123456789"
CLOSED_PORT = "http://127.0.0.1:9"


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(str(r.args) for r in caplog.records)


def test_botocore_never_logs_the_aws_session_token(settings, caplog):
    settings.AWS_ENDPOINT_URL = CLOSED_PORT
    caplog.set_level(logging.DEBUG)
    sts = aws.client(
        "sts",
        use="probe",
        region="us-east-1",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
        aws_secret_access_key="secret-access-key-SECRET",
        aws_session_token=AWS_SESSION_TOKEN,
    )
    with pytest.raises(BotoCoreError):
        sts.get_caller_identity()
    logged = _logged(caplog)
    assert AWS_SESSION_TOKEN not in logged
    assert "secret-access-key-SECRET" not in logged


def test_the_okta_sdk_never_logs_its_token(settings, caplog):
    settings.OKTA_ORG_URL = CLOSED_PORT
    settings.OKTA_API_TOKEN = OKTA_TOKEN
    settings.OKTA_SDK_MAX_RETRIES = 0
    settings.OKTA_REQUEST_TIMEOUT = 2
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IdpError):
        OktaIdentityProvider().find_user("engineer@example.com")
    assert OKTA_TOKEN not in _logged(caplog)


@pytest.mark.django_db
def test_api_tokens_and_session_ids_never_logged(client, engineer, caplog):
    caplog.set_level(logging.DEBUG)
    _, raw = tokens.create_token(engineer, "ci", engineer)
    assert client.get("/api/v1/requests", headers={"Authorization": f"Bearer {raw}"}).status_code
    bad = raw[:-4] + "XXXX"
    assert client.get("/api/v1/requests", headers={"Authorization": f"Bearer {bad}"}).status_code
    client.post(reverse("account_login"), {"login": "engineer", "password": "demo-password-123"})
    session_id = client.cookies["sessionid"].value
    client.get(reverse("dashboard"))
    logged = _logged(caplog)
    assert caplog.records  # DEBUG logging really was on
    assert raw not in logged and bad not in logged
    assert session_id not in logged
