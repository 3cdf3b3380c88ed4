"""Personal API tokens: the service, the /tokens/ page and the management command."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from portal.accounts.tokens import authenticate, create_token, revoke_token
from portal.audit import events_for, verify_chain
from portal.core.errors import InvalidTransition, NotAllowed
from portal.models import ApiToken, hash_token
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

# --- The service -----------------------------------------------------------------------


def test_create_token_stores_only_the_hash_and_audits(engineer):
    token, raw = create_token(engineer, "  incident bot ", engineer)
    assert raw.startswith(ApiToken.PREFIX) and len(raw) > 40
    assert token.name == "incident bot"
    assert token.token_hash == hash_token(raw)
    assert token.hint == raw[:12]
    event = events_for(token).get()
    assert event.action == "api_token.created"
    assert event.actor == engineer
    assert event.payload == {
        "owner": "engineer",
        "name": "incident bot",
        "hint": token.hint,
        "expires_at": token.expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "read_only": False,
    }
    assert verify_chain() is None
    assert authenticate(raw) == engineer


def test_two_tokens_differ(engineer):
    assert create_token(engineer, "a", engineer)[1] != create_token(engineer, "b", engineer)[1]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_token_needs_a_sensible_name(engineer, name):
    with pytest.raises(ValidationError) as exc:
        create_token(engineer, name, engineer)
    assert "name" in exc.value.message_dict
    assert not ApiToken.objects.exists()


def test_nobody_creates_tokens_for_someone_else(engineer, approver):
    with pytest.raises(NotAllowed):
        create_token(engineer, "sneaky", approver)
    assert not ApiToken.objects.exists()


def test_revoke_token(engineer):
    token, raw = create_token(engineer, "ci", engineer)
    revoke_token(token, engineer)
    assert authenticate(raw) is None
    assert [e.action for e in events_for(token)] == ["api_token.created", "api_token.revoked"]
    with pytest.raises(InvalidTransition):
        revoke_token(token, engineer)


def test_only_the_owner_revokes(engineer, approver):
    token, raw = create_token(engineer, "ci", engineer)
    with pytest.raises(NotAllowed):
        revoke_token(token, approver)
    assert authenticate(raw) == engineer


# --- The page ---------------------------------------------------------------------------

page_urls = pytest.mark.urls("tests.api.urls")


@page_urls
def test_the_page_needs_a_login(client):
    response = client.get(reverse("tokens"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@page_urls
def test_the_page_lists_my_tokens_only(client, engineer, approver):
    create_token(engineer, "my laptop", engineer)
    create_token(approver, "their bot", approver)
    client.force_login(engineer)
    response = client.get(reverse("tokens"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "my laptop" in html
    assert "their bot" not in html
    assert "never" in html  # not used yet


@page_urls
def test_a_new_token_is_shown_once(client, engineer):
    client.force_login(engineer)
    response = client.post(reverse("tokens"), {"name": "incident bot"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=engineer)
    raw = response.context["new_raw"]
    assert hash_token(raw) == token.token_hash
    html = response.content.decode()
    assert raw in html
    assert "shown only this once" in html
    assert "no-store" in response["Cache-Control"]
    assert ApiClient(token=raw).get("/requests").status_code == 200

    again = client.get(reverse("tokens"))
    assert raw not in again.content.decode()
    assert token.hint in again.content.decode()


@page_urls
def test_a_blank_name_is_a_form_error(client, engineer):
    client.force_login(engineer)
    response = client.post(reverse("tokens"), {"name": "   "})
    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()


@page_urls
def test_revoke_from_the_page(client, engineer):
    token, raw = create_token(engineer, "ci", engineer)
    client.force_login(engineer)
    response = client.post(reverse("token-revoke", args=[token.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("tokens")
    assert "revoked" in response.content.decode()
    assert authenticate(raw) is None

    again = client.post(reverse("token-revoke", args=[token.pk]), follow=True)
    assert "already revoked" in again.content.decode()


@page_urls
def test_revoke_needs_post(client, engineer):
    token, _ = create_token(engineer, "ci", engineer)
    client.force_login(engineer)
    assert client.get(reverse("token-revoke", args=[token.pk])).status_code == 405


@page_urls
def test_nobody_revokes_someone_elses_token(client, engineer, approver):
    token, raw = create_token(approver, "bot", approver)
    client.force_login(engineer)
    assert client.post(reverse("token-revoke", args=[token.pk])).status_code == 404
    assert authenticate(raw) == approver


@page_urls
def test_auditors_get_read_only_tokens(client, auditor, plan):
    client.force_login(auditor)
    response = client.post(reverse("tokens"), {"name": "evidence export"})
    assert response.status_code == 200
    assert "read-only" in response.content.decode()
    auditor_api = ApiClient(token=response.context["new_raw"])
    assert auditor_api.get("/roles").status_code == 200
    assert auditor_api.post("/failover", {"reason": "x"}).status_code == 403


# --- manage.py create_api_token ---------------------------------------------------------


def test_the_command_prints_a_working_token(engineer, capsys):
    call_command("create_api_token", "engineer", "--name", "chat bot")
    out, err = capsys.readouterr()
    raw = out.strip()
    assert "\n" not in raw
    assert authenticate(raw) == engineer
    token = ApiToken.objects.get()
    assert token.name == "chat bot"
    assert "shown only this once" in err
    assert events_for(token).get().actor_label == "manage.py create_api_token"
    assert ApiClient(token=raw).get("/roles").status_code == 200


def test_the_command_has_a_default_name(engineer, capsys):
    call_command("create_api_token", "engineer")
    assert ApiToken.objects.get().name == "command line"


def test_the_command_refuses_an_unknown_user(db, capsys):
    with pytest.raises(CommandError, match="no portal user named 'ghost'") as exc:
        call_command("create_api_token", "ghost")
    assert exc.value.returncode == 1  # manage.py exits with it
    assert capsys.readouterr().out == ""
    assert not ApiToken.objects.exists()


def test_the_command_refuses_a_blank_name(engineer):
    with pytest.raises(CommandError, match="name"):
        call_command("create_api_token", "engineer", "--name", " ")
