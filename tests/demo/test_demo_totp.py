"""The demo's seeded TOTP secrets and ``manage.py demo_totp USERNAME``."""

from __future__ import annotations

from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from portal.accounts.demo_totp import demo_secret
from tests.conftest import totp_code

pytestmark = [pytest.mark.django_db, pytest.mark.real_sign_in]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_gives_every_demo_account_a_totp_and_the_command_prints_its_code():
    run("seed_demo", "--no-okta")
    run("seed_demo", "--no-okta")  # idempotent: one authenticator each
    assert Authenticator.objects.filter(type="totp").count() == 7  # every demo user

    out = run("demo_totp", "approver1")

    assert out.split()[0] == totp_code(demo_secret("approver1"))


@pytest.mark.parametrize("username,message", [("nobody", "No user"), ("engineer", "no auth")])
def test_demo_totp_explains_what_is_wrong(username, message):
    get_user_model().objects.create_user("engineer", "engineer@example.com", "pw")
    with pytest.raises(CommandError, match=message):
        run("demo_totp", username)


def test_demo_totp_refuses_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        run("demo_totp", "approver1")


def test_a_demo_approver_signs_in_with_password_and_the_printed_code():
    run("seed_demo", "--no-okta")
    client = Client()
    response = client.post(
        "/accounts/login/", {"login": "approver1", "password": "demo-password-123"}
    )
    assert response["Location"] == "/accounts/2fa/authenticate/"
    code = run("demo_totp", "approver1").split()[0]
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert client.get("/approvals/").status_code == 200
