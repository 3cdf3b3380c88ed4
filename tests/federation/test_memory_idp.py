"""The in-memory identity provider keeps the okta adapter's semantics."""

from __future__ import annotations

import datetime as dt

import pytest

from federation.idp import IdpNotFound, IdpPermanentError, IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider

APP = "0oasandboxawsfed01"


@pytest.fixture
def idp(settings) -> InMemoryIdentityProvider:
    settings.OKTA_AWS_APP_ID = APP
    InMemoryIdentityProvider.reset()
    for login in ("engineer@example.com", "oncall@example.com"):
        InMemoryIdentityProvider.add_user(login)
    return InMemoryIdentityProvider()


def test_state_is_shared_by_every_instance(idp: InMemoryIdentityProvider) -> None:
    group = idp.ensure_group("aws#1#RO")

    assert InMemoryIdentityProvider().find_group("aws#1#RO") == group
    assert idp.ensure_group("aws#1#RO") == group
    with pytest.raises(IdpNotFound):
        idp.find_group("AWS#1#RO")


def test_membership_is_idempotent_and_logged_once(idp: InMemoryIdentityProvider) -> None:
    group = idp.ensure_group("aws#1#RO")
    user = idp.find_user("Engineer@Example.com")

    for _ in range(2):
        idp.add_group_member(group.id, user.id)
    assert InMemoryIdentityProvider.members_of("aws#1#RO") == ["engineer@example.com"]
    for _ in range(2):
        idp.remove_group_member(group.id, user.id)

    assert idp.list_group_members(group.id) == []
    page = idp.read_system_log(filter='eventType sw "group.user_membership"')
    assert [e.event_type for e in page.events] == [
        "group.user_membership.add",
        "group.user_membership.remove",
    ]


def test_errors_match_the_adapter(idp: InMemoryIdentityProvider) -> None:
    app_group = InMemoryIdentityProvider.add_group("AD Admins", "APP_GROUP")
    user = idp.find_user("oncall@example.com")

    with pytest.raises(IdpNotFound):
        idp.find_user("nobody@example.com")
    with pytest.raises(IdpNotFound):
        idp.add_group_member("00gmissing", user.id)
    with pytest.raises(IdpPermanentError) as raised:
        idp.add_group_member(app_group.id, user.id)
    assert raised.value.status == 403


def test_app_lifecycle_and_assignment(idp: InMemoryIdentityProvider) -> None:
    group = idp.ensure_group("aws#1#RO")

    idp.activate_app(APP)
    idp.assign_group_to_app(APP, group.id)
    idp.assign_group_to_app(APP, group.id)

    assert idp.get_app(APP).status == "ACTIVE"
    assert idp.list_app_group_ids(APP) == [group.id]
    idp.deactivate_app(APP)
    assert idp.get_app(APP).status == "INACTIVE"


def test_failure_injection(idp: InMemoryIdentityProvider) -> None:
    InMemoryIdentityProvider.fail_next("activate_app", IdpRetryableError("down", retry_after=3))

    with pytest.raises(IdpRetryableError):
        idp.activate_app(APP)
    idp.activate_app(APP)  # only the next call failed

    assert idp.get_app(APP).status == "ACTIVE"


def test_system_log_cursor_polls_like_okta(idp: InMemoryIdentityProvider) -> None:
    first = idp.read_system_log()
    assert first.events == [] and first.next_cursor

    user = idp.find_user("engineer@example.com")
    idp.revoke_user_sessions(user.id)
    InMemoryIdentityProvider.log_event(
        "user.session.end", "engineer@example.com", external_session_id="102abc"
    )
    page = idp.read_system_log(after=first.next_cursor, limit=1)
    rest = idp.read_system_log(after=page.next_cursor)
    idle = idp.read_system_log(after=rest.next_cursor)

    assert [e.event_type for e in page.events + rest.events] == [
        "user.session.clear",
        "user.session.end",
    ]
    assert rest.events[0].external_session_id == "102abc"
    assert idle.events == [] and idle.next_cursor == rest.next_cursor
    assert InMemoryIdentityProvider.revoked_sessions == [user.id]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    InMemoryIdentityProvider.log_event("user.session.start", "oncall@example.com", published=old)
    assert idp.read_system_log(after=idle.next_cursor).events == []  # older than 7 days
