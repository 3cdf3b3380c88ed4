"""The port's readiness reads through the real okta adapter, over HTTP to the sandbox org."""

from __future__ import annotations

import pytest

from federation.idp import IdpNotFound, IdpPermanentError, IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider
from federation.idp.okta import OktaIdentityProvider
from federation.sandbox import DEFAULT_APP_ID, SandboxServer


@pytest.fixture
def idp(sandbox: SandboxServer) -> OktaIdentityProvider:
    return OktaIdentityProvider()


def test_get_app_settings(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    sandbox.set_app_settings(DEFAULT_APP_ID, sessionDuration=7200, identityProviderArn="arn:x")

    found = idp.get_app_settings(DEFAULT_APP_ID)

    assert found.group_filter == r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$"
    assert found.role_value_pattern == (
        "arn:aws:iam::${accountid}:saml-provider/Okta,arn:aws:iam::${accountid}:role/${role}"
    )
    assert (found.session_duration, found.identity_provider_arn) == (7200, "arn:x")
    assert (found.use_group_mapping, found.app_filter) == (True, "okta")
    assert found.raw["awsEnvironmentType"] == "aws.amazon"


def test_get_app_settings_errors(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    with pytest.raises(IdpNotFound):
        idp.get_app_settings("0oanosuchapp")
    sandbox.fail_next("GET", "/api/v1/apps/", status=503, count=5)
    with pytest.raises(IdpRetryableError):
        idp.get_app_settings(DEFAULT_APP_ID)


def test_rate_limits_read_okta_headers(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    sandbox.add_faults(rate_limits={"groups": 50})

    limits = {limit.bucket: limit for limit in idp.rate_limits(DEFAULT_APP_ID)}

    assert set(limits) == {"apps", "users", "groups", "logs"}
    assert (limits["groups"].limit, limits["groups"].remaining) == (50, 49)
    assert limits["apps"].limit == 100
    assert limits["apps"].reset_at is not None


def test_refused_token_is_permanent_with_its_status(sandbox: SandboxServer, settings) -> None:
    settings.OKTA_API_TOKEN = "revoked-token"

    with pytest.raises(IdpPermanentError) as raised:
        OktaIdentityProvider().get_app(DEFAULT_APP_ID)

    assert raised.value.status == 401


def test_memory_fake_agrees() -> None:
    InMemoryIdentityProvider.reset(DEFAULT_APP_ID)
    fake = InMemoryIdentityProvider()

    settings_found = fake.get_app_settings(DEFAULT_APP_ID)
    assert settings_found.session_duration == 3600
    assert settings_found.group_filter.startswith(r"^aws\#")
    assert {limit.bucket for limit in fake.rate_limits(DEFAULT_APP_ID)} == {
        "apps",
        "users",
        "groups",
        "logs",
    }
    with pytest.raises(IdpNotFound):
        fake.get_app_settings("0oanosuchapp")
