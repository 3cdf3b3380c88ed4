"""The real okta adapter, through the real okta SDK, over HTTP against the sandbox org."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from federation.idp import (
    IdpNotFound,
    IdpPermanentError,
    IdpRetryableError,
    IdpUser,
    get_identity_provider,
)
from federation.idp import okta as okta_adapter
from federation.idp.okta import SDK_LOGGER, OktaIdentityProvider
from federation.sandbox import DEFAULT_APP_ID, SandboxServer

RO = "aws#111111111111#RO"
LOGINS = [
    "engineer@example.com",
    "approver1@example.com",
    "approver2@example.com",
    "auditor@example.com",
    "oncall@example.com",
]


@pytest.fixture
def idp(sandbox: SandboxServer) -> OktaIdentityProvider:
    return OktaIdentityProvider()


def user_id(sandbox: SandboxServer, login: str) -> str:
    return sandbox.user(login)["id"]


# --- every method -------------------------------------------------------------------------


def test_get_identity_provider_builds_the_okta_adapter(sandbox: SandboxServer, settings) -> None:
    settings.IDENTITY_PROVIDER = "federation.idp.okta.OktaIdentityProvider"
    assert isinstance(get_identity_provider(), OktaIdentityProvider)


def test_find_user(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    user = idp.find_user("engineer@example.com")

    assert user == IdpUser(user_id(sandbox, "engineer@example.com"), "engineer@example.com")
    with pytest.raises(IdpNotFound) as raised:
        idp.find_user("nobody@example.com")
    assert (raised.value.status, raised.value.code) == (404, "E0000007")


def test_ensure_group_creates_once_and_find_group_is_exact(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    with pytest.raises(IdpNotFound):
        idp.find_group(RO)

    created = idp.ensure_group(RO, "read-only emergency access")
    again = idp.ensure_group(RO)

    assert created == again == idp.find_group(RO)
    assert (created.name, created.type) == (RO, "OKTA_GROUP")
    assert sandbox.group(created.id)["profile"]["description"] == "read-only emergency access"
    assert len(sandbox.snapshot()["groups"]) == 1
    with pytest.raises(IdpNotFound):
        idp.find_group("aws#111111111111")  # a prefix is not the group
    with pytest.raises(IdpNotFound):
        idp.find_group(RO.upper())  # Okta's eq ignores case; the portal's names do not


def test_ensure_group_when_someone_else_created_it_meanwhile(
    idp: OktaIdentityProvider, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = idp.ensure_group(RO)
    real_find = OktaIdentityProvider.find_group
    calls = []

    def find_once_missing(self: OktaIdentityProvider, name: str):
        calls.append(name)
        if len(calls) == 1:
            raise IdpNotFound("not yet")
        return real_find(self, name)

    monkeypatch.setattr(OktaIdentityProvider, "find_group", find_once_missing)

    assert idp.ensure_group(RO) == existing  # the 400 duplicate is resolved by a re-read


def test_membership_is_idempotent(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    group = idp.ensure_group(RO)
    engineer = user_id(sandbox, "engineer@example.com")

    idp.add_group_member(group.id, engineer)
    idp.add_group_member(group.id, engineer)
    assert [m.login for m in idp.list_group_members(group.id)] == ["engineer@example.com"]
    idp.remove_group_member(group.id, engineer)
    idp.remove_group_member(group.id, engineer)

    assert idp.list_group_members(group.id) == []
    adds = [e for e in sandbox.events() if e["eventType"].startswith("group.user_membership")]
    assert len(adds) == 2


def test_membership_errors(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    group = idp.ensure_group(RO)

    with pytest.raises(IdpNotFound):
        idp.add_group_member(group.id, "00unosuchuser0000001")
    with pytest.raises(IdpNotFound):
        idp.add_group_member("00gnosuchgroup000001", user_id(sandbox, "oncall@example.com"))
    with pytest.raises(IdpNotFound):
        idp.list_group_members("00gnosuchgroup000001")


def test_list_groups_by_name_prefix_with_okta_last_membership_change(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    ro, ops = idp.ensure_group(RO), idp.ensure_group(RO.replace("RO", "Ops"))
    idp.ensure_group("Engineering")
    before = {g.name: g.last_membership_updated for g in idp.list_groups("aws#")}
    assert set(before) == {ro.name, ops.name} and all(before.values())
    time.sleep(0.01)  # Okta's timestamps have milliseconds

    sandbox.add_member_behind_the_back(RO, "oncall@example.com")

    after = {g.name: g.last_membership_updated for g in idp.list_groups("aws#")}
    assert after[ops.name] == before[ops.name]
    assert after[ro.name] > before[ro.name]
    assert {g.name for g in idp.list_groups("")} >= {ro.name, ops.name, "Engineering"}


def test_list_group_members_pages_through_everything(sandbox: SandboxServer) -> None:
    idp = OktaIdentityProvider(page_size=2)
    group = idp.ensure_group(RO)
    for login in LOGINS:
        sandbox.add_member_behind_the_back(RO, login)

    members = idp.list_group_members(group.id)

    assert [m.login for m in members] == LOGINS
    assert sandbox.snapshot()["request_counts"][f"GET /api/v1/groups/{group.id}/users"] == 3


def test_app_lifecycle_and_group_assignment(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    app = idp.get_app(DEFAULT_APP_ID)
    assert (app.name, app.label, app.status, app.sign_on_mode) == (
        "amazon_aws",
        "AWS Account Federation",
        "INACTIVE",
        "SAML_2_0",
    )

    idp.activate_app(DEFAULT_APP_ID)
    idp.activate_app(DEFAULT_APP_ID)
    assert idp.get_app(DEFAULT_APP_ID).status == "ACTIVE"
    idp.deactivate_app(DEFAULT_APP_ID)
    assert idp.get_app(DEFAULT_APP_ID).status == "INACTIVE"

    group = idp.ensure_group(RO)
    idp.assign_group_to_app(DEFAULT_APP_ID, group.id)
    idp.assign_group_to_app(DEFAULT_APP_ID, group.id)
    assert idp.list_app_group_ids(DEFAULT_APP_ID) == [group.id]


def test_app_errors(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    with pytest.raises(IdpNotFound):
        idp.get_app("0oanosuchapp00000001")
    with pytest.raises(IdpNotFound):
        idp.activate_app("0oanosuchapp00000001")  # the SDK's 2-tuple error shape
    with pytest.raises(IdpNotFound):
        idp.deactivate_app("0oanosuchapp00000001")
    with pytest.raises(IdpNotFound):
        idp.assign_group_to_app(DEFAULT_APP_ID, "00gnosuchgroup000001")


def test_list_app_group_ids_pages_through_everything(sandbox: SandboxServer) -> None:
    idp = OktaIdentityProvider(page_size=2)  # Okta's minimum for this list is 20
    groups = [idp.ensure_group(f"aws#{n:012d}#RO").id for n in range(25)]
    for group_id in groups:
        idp.assign_group_to_app(DEFAULT_APP_ID, group_id)

    assert idp.list_app_group_ids(DEFAULT_APP_ID) == groups
    assert sandbox.snapshot()["request_counts"][f"GET /api/v1/apps/{DEFAULT_APP_ID}/groups"] == 2


def test_revoke_user_sessions(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    engineer = user_id(sandbox, "engineer@example.com")

    idp.revoke_user_sessions(engineer)

    assert sandbox.snapshot()["users"][0]["sessions_cleared"] == 1
    with pytest.raises(IdpNotFound):
        idp.revoke_user_sessions("00unosuchuser0000001")


def test_read_system_log_polls_with_the_cursor(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    group = idp.ensure_group(RO)
    idp.add_group_member(group.id, user_id(sandbox, "engineer@example.com"))
    sso = sandbox.inject_event("user.authentication.sso", "engineer@example.com")

    first = idp.read_system_log(since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5), limit=2)
    second = idp.read_system_log(after=first.next_cursor, limit=2)
    idle = idp.read_system_log(after=second.next_cursor)

    assert [e.event_type for e in first.events] == [
        "group.lifecycle.create",
        "group.user_membership.add",
    ]
    event = second.events[0]
    assert (event.event_type, event.actor_login, event.outcome) == (
        "user.authentication.sso",
        "engineer@example.com",
        "SUCCESS",
    )
    assert event.uuid == sso["uuid"]
    assert event.external_session_id == sso["authenticationContext"]["externalSessionId"]
    assert event.targets[0]["id"] == DEFAULT_APP_ID
    assert event.published.tzinfo is not None
    assert idle.events == [] and idle.next_cursor == second.next_cursor

    sandbox.inject_event("user.session.end", "engineer@example.com")
    assert [e.event_type for e in idp.read_system_log(after=idle.next_cursor).events] == [
        "user.session.end"
    ]


def test_read_system_log_filter(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    sandbox.inject_event("user.session.start", "engineer@example.com")
    sandbox.inject_event("user.session.end", "engineer@example.com")

    page = idp.read_system_log(filter='eventType eq "user.session.end"')

    assert [e.event_type for e in page.events] == ["user.session.end"]
    with pytest.raises(IdpPermanentError):
        idp.read_system_log(filter="eventType is broken")


# --- failures -----------------------------------------------------------------------------


def test_429_then_success_through_the_sdks_own_retry(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    sandbox.fail_next("GET", "/api/v1/apps/", status=429, reset_in=0)
    started = time.monotonic()

    assert idp.get_app(DEFAULT_APP_ID).status == "INACTIVE"

    assert time.monotonic() - started >= 0.9  # the SDK waited reset - Date + 1 s
    assert sandbox.snapshot()["request_counts"][f"GET /api/v1/apps/{DEFAULT_APP_ID}"] == 2


def test_429_beyond_retries_is_retryable_with_retry_after(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_SDK_MAX_RETRIES = 0
    sandbox.fail_next("GET", "/api/v1/apps/", status=429, reset_in=7)

    with pytest.raises(IdpRetryableError) as raised:
        idp.get_app(DEFAULT_APP_ID)

    assert (raised.value.status, raised.value.code) == (429, "E0000047")
    assert 5 <= raised.value.retry_after <= 8


def test_a_far_rate_limit_reset_fails_fast_instead_of_sleeping(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    sandbox.fail_next("GET", "/api/v1/apps/", status=429, reset_in=50)
    started = time.monotonic()

    with pytest.raises(IdpRetryableError) as raised:
        idp.get_app(DEFAULT_APP_ID)

    assert time.monotonic() - started < 3  # not the SDK's 51 s sleep
    assert 49 <= raised.value.retry_after <= 52


def test_429_without_rate_limit_headers_is_retryable(
    idp: OktaIdentityProvider, sandbox: SandboxServer
) -> None:
    sandbox.fail_next("GET", "/api/v1/apps/", status=429, rate_headers=False)

    with pytest.raises(IdpRetryableError) as raised:
        idp.get_app(DEFAULT_APP_ID)

    assert raised.value.status == 429 and raised.value.retry_after is None


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retryable(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings, status: int
) -> None:
    settings.OKTA_SDK_MAX_RETRIES = 0
    sandbox.fail_next("PUT", "/api/v1/groups/", status=status)
    group = idp.ensure_group(RO)

    with pytest.raises(IdpRetryableError) as raised:
        idp.add_group_member(group.id, user_id(sandbox, "engineer@example.com"))

    assert raised.value.status == status
    assert sandbox.member_logins(RO) == []


def test_forbidden_is_permanent(idp: OktaIdentityProvider, sandbox: SandboxServer) -> None:
    sandbox.org._insert_group("AD Domain Admins", "", "APP_GROUP")
    group = sandbox.group_by_name("AD Domain Admins")

    with pytest.raises(IdpPermanentError) as raised:
        idp.add_group_member(group["id"], user_id(sandbox, "engineer@example.com"))

    assert (raised.value.status, raised.value.code) == (403, "E0000006")


def test_bad_token_is_permanent(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_API_TOKEN = "not-the-token"

    with pytest.raises(IdpPermanentError) as raised:
        idp.find_user("engineer@example.com")

    assert (raised.value.status, raised.value.code) == (401, "E0000011")


def test_connection_refused_is_retryable(idp: OktaIdentityProvider, settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.OKTA_ORG_URL = f"http://127.0.0.1:{port}"

    with pytest.raises(IdpRetryableError) as raised:
        idp.find_user("engineer@example.com")

    assert "ClientConnectorError" in str(raised.value)


def test_timeout_is_retryable(idp: OktaIdentityProvider, sandbox: SandboxServer, settings) -> None:
    settings.OKTA_REQUEST_TIMEOUT = 1
    sandbox.add_faults(latency_ms=1500)

    with pytest.raises(IdpRetryableError):
        idp.find_user("engineer@example.com")


def test_plain_http_needs_okta_allow_http(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", raising=False)
    settings.OKTA_ALLOW_HTTP = False

    with pytest.raises(IdpPermanentError, match="https"):
        idp.find_user("engineer@example.com")


# --- OAuth 2.0 service app ------------------------------------------------------------------


def _pem_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_private_key_mode_gets_a_token_and_works(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_API_TOKEN = None
    settings.OKTA_CLIENT_ID = "0oaportalserviceapp1"
    settings.OKTA_PRIVATE_KEY = _pem_key()
    settings.OKTA_KEY_ID = "portal-key-1"
    settings.OKTA_SCOPES = [
        "okta.groups.manage",
        "okta.users.read",
        "okta.users.manage",
        "okta.apps.manage",
        "okta.logs.read",
    ]

    group = idp.ensure_group(RO)
    idp.add_group_member(group.id, idp.find_user("engineer@example.com").id)
    idp.revoke_user_sessions(idp.find_user("engineer@example.com").id)

    actors = {e["actor"]["alternateId"] for e in sandbox.events()}
    assert actors == {"0oaportalserviceapp1"}


def test_a_revoked_oauth_token_is_replaced_by_a_new_one(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    """The client (and its access token) is reused; a token Okta no longer accepts is not
    the end: the next call gets a new client and token."""
    settings.OKTA_CLIENT_ID = "0oaportalserviceapp1"
    settings.OKTA_PRIVATE_KEY = _pem_key()
    idp.find_user("engineer@example.com")
    sandbox.credentials.forget_issued()

    assert idp.find_user("engineer@example.com").login == "engineer@example.com"


def test_one_client_per_thread_and_configuration(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []
    real = okta_adapter.Client

    def counting(config):
        built.append(config["token"])
        return real(config)

    monkeypatch.setattr(okta_adapter, "Client", counting)
    monkeypatch.setattr(okta_adapter._clients, "by_config", {}, raising=False)
    settings.OKTA_API_TOKEN = "a-new-token-for-this-test"
    monkeypatch.setattr(sandbox.org.credentials, "token", "a-new-token-for-this-test")
    idp.find_user("engineer@example.com")
    idp.find_user("oncall@example.com")
    assert built == ["a-new-token-for-this-test"]

    settings.OKTA_API_TOKEN = "another-token"
    with pytest.raises(IdpPermanentError):
        idp.find_user("engineer@example.com")  # the sandbox does not know that one
    assert built == ["a-new-token-for-this-test", "another-token"]


def test_revoking_sessions_needs_the_users_manage_scope(
    idp: OktaIdentityProvider, sandbox: SandboxServer, settings
) -> None:
    settings.OKTA_CLIENT_ID = "0oaportalserviceapp1"
    settings.OKTA_PRIVATE_KEY = _pem_key()
    settings.OKTA_SCOPES = ["okta.groups.manage", "okta.users.read", "okta.apps.manage"]

    with pytest.raises(IdpPermanentError) as raised:
        idp.revoke_user_sessions(user_id(sandbox, "engineer@example.com"))

    assert raised.value.status == 403


# --- logging ------------------------------------------------------------------------------


def test_the_token_never_reaches_the_logs(
    idp: OktaIdentityProvider,
    sandbox: SandboxServer,
    settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    adapter_token: str,
) -> None:
    # The SDK client is built and cached first: the calls below build none.
    idp.find_user("engineer@example.com")
    # Even if the SDK stopped silencing its logger (it logs whole requests at DEBUG).
    monkeypatch.setattr("okta.client.setup_logging", lambda **kwargs: None)
    sdk_logger = logging.getLogger(SDK_LOGGER)
    monkeypatch.setattr(sdk_logger, "level", logging.NOTSET)
    monkeypatch.setattr(sdk_logger, "disabled", False)
    caplog.set_level(logging.DEBUG)
    handlers = list(sdk_logger.handlers)

    idp.find_user("engineer@example.com")
    with pytest.raises(IdpNotFound):
        idp.find_user("nobody@example.com")
    sandbox.fail_next("GET", "/api/v1/users", status=500)
    with pytest.raises(IdpRetryableError) as server_error:
        idp.find_user("engineer@example.com")
    settings.OKTA_SDK_MAX_RETRIES = 0
    sandbox.fail_next("GET", "/api/v1/users", status=429, rate_headers=False)
    with pytest.raises(IdpRetryableError) as no_headers:
        idp.find_user("engineer@example.com")

    assert caplog.records  # something was logged, and none of it carries the token
    assert adapter_token not in caplog.text
    assert all(adapter_token not in str(r.args) for r in caplog.records)
    assert adapter_token not in str(server_error.value) + str(no_headers.value)
    assert sdk_logger.getEffectiveLevel() >= logging.INFO
    assert sdk_logger.handlers == handlers  # no StreamHandler added per Client()
