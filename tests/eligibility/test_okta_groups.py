"""Portal groups from the Okta sign-in's groups claim, mapped by the plan's [okta_groups]."""

from __future__ import annotations

import jwt
import pytest
from django.test import Client

from federation.sandbox.auth import ADMIN_ACTOR
from federation.sandbox.events import Caller
from federation.sandbox.oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider
from portal.accounts.portal_groups import sync_from_okta
from portal.models import AuditEvent
from tests.conftest import make_user
from tests.eligibility.conftest import join
from tests.security.test_okta_sign_in import okta_sign_in


def names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


@pytest.fixture
def mapped(plan):
    plan.emergency.okta_groups = {"okta-sre": "sre", "okta-leads": "sre-leads"}
    plan.emergency.save()
    return plan


def test_mapped_groups_are_added_and_removed_and_audited(mapped, engineer):
    join(engineer, "hand-made", "sre-leads")
    added, removed = sync_from_okta(engineer, ["okta-sre", "Everyone"])
    assert (added, removed) == ({"sre"}, {"sre-leads"})
    # Groups the mapping does not name are left alone.
    assert names(engineer) == {"sre", "hand-made"}
    event = AuditEvent.objects.get(action="groups.synced")
    assert event.payload == {
        "user": "engineer",
        "added": ["sre"],
        "removed": ["sre-leads"],
        "okta_groups": ["okta-sre"],
    }
    # Nothing changes, nothing is recorded.
    assert sync_from_okta(engineer, ["okta-sre"]) == (set(), set())
    assert AuditEvent.objects.filter(action="groups.synced").count() == 1


def test_no_claim_or_no_mapping_changes_nothing(plan, mapped, engineer):
    join(engineer, "sre")
    assert sync_from_okta(engineer, None) == (set(), set())
    assert names(engineer) == {"sre"}
    mapped.emergency.okta_groups = {}
    mapped.emergency.save()
    assert sync_from_okta(engineer, []) == (set(), set())
    assert names(engineer) == {"sre"}


def test_the_mapping_never_grants_a_portal_role(plan, engineer):
    # Even a mapping written straight into the database (not through the plan's checks).
    plan.emergency.okta_groups = {"okta-admins": "approvers"}
    plan.emergency.save()
    sync_from_okta(engineer, ["okta-admins"])
    assert names(engineer) == set()


def test_the_sandbox_sends_the_groups_claim():
    provider = OidcProvider()
    form = {
        "client_id": CLIENT_ID,
        "redirect_uri": "http://127.0.0.1/cb",
        "response_type": "code",
        "scope": "openid",
    }
    user = {"id": "00u1", "profile": {"login": "engineer@example.com"}}
    location = provider.issue_code(form, user, ["okta-sre"])
    code = location.split("code=")[1].split("&")[0]
    answer = provider.exchange(
        {"code": code, "redirect_uri": form["redirect_uri"]}, (CLIENT_ID, CLIENT_SECRET), "http://x"
    )
    claims = jwt.decode(answer["id_token"], options={"verify_signature": False})
    assert claims["groups"] == ["okta-sre"]


@pytest.mark.integration
@pytest.mark.real_sign_in
def test_signing_in_with_okta_fills_the_mapped_groups(mapped, settings, sandbox_org):
    sandbox_org.reset()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "okta",
                    "name": "Okta",
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {
                        "server_url": sandbox_org.url,
                        "token_auth_method": "client_secret_post",
                    },
                }
            ],
        }
    }
    org = sandbox_org.org
    org.create_group({"name": "okta-sre"}, Caller(dict(ADMIN_ACTOR), "102test"))
    org.add_member_behind_the_back("okta-sre", "engineer@example.com")
    engineer = make_user("engineer", "engineer@example.com")

    response = okta_sign_in(Client(HTTP_HOST="127.0.0.1"), "engineer@example.com")

    assert response.status_code == 302, response.content[:500]
    assert names(engineer) == {"sre"}
    assert AuditEvent.objects.get(action="groups.synced").payload["added"] == ["sre"]
