"""An in-memory IdentityProvider with the Okta adapter's semantics, for unit tests.

State is class-level, so every instance that ``get_identity_provider()`` makes
sees the same org; call :meth:`InMemoryIdentityProvider.reset` between tests.
Only for tests of one unit at a time: anything that crosses a process or
talks HTTP uses the sandbox org and the real adapter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading
import uuid
from dataclasses import replace
from typing import Any, ClassVar

from django.conf import settings

from federation.sandbox.filters import FilterError, compile_filter
from federation.sandbox.seed import AWS_APP_SETTINGS as DEFAULT_APP_SETTINGS

from . import (
    IdpApp,
    IdpAppSettings,
    IdpError,
    IdpGroup,
    IdpLogEvent,
    IdpLogPage,
    IdpNotFound,
    IdpPermanentError,
    IdpRateLimit,
    IdpUser,
)

DEFAULT_APP_ID = "0oasandboxawsfed01"
SERVICE_LOGIN = "portal-service@example.com"


def _not_found(what: str) -> IdpNotFound:
    return IdpNotFound(f"{what}: not found", status=404, code="E0000007")


class InMemoryIdentityProvider:
    """A fast fake org: users, OKTA_GROUP groups, one federation app and a System Log."""

    _lock: ClassVar[threading.RLock] = threading.RLock()
    _users: ClassVar[dict[str, IdpUser]] = {}
    _groups: ClassVar[dict[str, IdpGroup]] = {}
    _members: ClassVar[dict[str, list[str]]] = {}
    _apps: ClassVar[dict[str, IdpApp]] = {}
    _app_groups: ClassVar[dict[str, list[str]]] = {}
    _app_settings: ClassVar[dict[str, dict[str, Any]]] = {}
    # bucket -> (limit, remaining) reported by rate_limits()
    _rate_limits: ClassVar[dict[str, tuple[int, int]]] = {}
    _log: ClassVar[list[IdpLogEvent]] = []
    _membership_updated: ClassVar[dict[str, dt.datetime]] = {}  # group id -> last change
    _failures: ClassVar[list[list[Any]]] = []  # [method name, error, remaining]
    revoked_sessions: ClassVar[list[str]] = []
    _ids = itertools.count(1)

    # --- test controls (class-level) ------------------------------------------------

    @classmethod
    def reset(cls, app_id: str | None = None) -> None:
        """Empty org with the (inactive) federation app; no users, no groups."""
        with cls._lock:
            cls._users, cls._groups, cls._members = {}, {}, {}
            cls._app_groups, cls._log, cls._failures = {}, [], []
            cls._membership_updated = {}
            cls.revoked_sessions = []
            app_id = app_id or cls._configured_app_id()
            cls._apps = {
                app_id: IdpApp(
                    app_id, "amazon_aws", "AWS Account Federation", "INACTIVE", "SAML_2_0"
                )
            }
            cls._app_groups[app_id] = []
            cls._app_settings = {app_id: dict(DEFAULT_APP_SETTINGS)}
            cls._rate_limits = {
                bucket: (limit, limit - 1)
                for bucket, limit in (("apps", 100), ("users", 600), ("groups", 500), ("logs", 120))
            }

    @staticmethod
    def _configured_app_id() -> str:
        return (
            getattr(settings, "OKTA_AWS_APP_ID", DEFAULT_APP_ID)
            if settings.configured
            else DEFAULT_APP_ID
        )

    @classmethod
    def add_user(cls, login: str, status: str = "ACTIVE") -> IdpUser:
        # Ids derived from the login, so tests can predict them.
        user = IdpUser(
            "00u" + hashlib.sha256(login.lower().encode()).hexdigest()[:17], login, status
        )
        with cls._lock:
            cls._users[user.id] = user
        return user

    @classmethod
    def add_group(cls, name: str, group_type: str = "OKTA_GROUP") -> IdpGroup:
        """A group of any type (APP_GROUP / BUILT_IN memberships cannot be changed)."""
        with cls._lock:
            group = IdpGroup(f"00g{next(cls._ids):017d}", name, group_type)
            cls._groups[group.id] = group
            cls._members[group.id] = []
            cls._membership_updated[group.id] = dt.datetime.now(dt.UTC)
            return group

    @classmethod
    def set_app(cls, app_id: str | None = None, **changes: Any) -> IdpApp:
        """Change the app's fields (name, label, status, sign_on_mode) behind the portal's back."""
        with cls._lock:
            app_id = app_id or cls._configured_app_id()
            cls._apps[app_id] = replace(cls._apps[app_id], **changes)
            return cls._apps[app_id]

    @classmethod
    def set_app_settings(cls, app_id: str | None = None, **values: Any) -> None:
        """Change the app's ``settings.app`` keys (Okta's names: groupFilter, ...)."""
        with cls._lock:
            cls._app_settings[app_id or cls._configured_app_id()].update(values)

    @classmethod
    def set_rate_limit(cls, bucket: str, limit: int, remaining: int) -> None:
        with cls._lock:
            cls._rate_limits[bucket] = (limit, remaining)

    @classmethod
    def fail_next(cls, method: str, error: IdpError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` (e.g. "add_group_member") raise ``error``."""
        with cls._lock:
            cls._failures.append([method, error, times])

    @classmethod
    def members_of(cls, name: str) -> list[str]:
        """Logins in the group called ``name`` (for assertions)."""
        with cls._lock:
            group = next((g for g in cls._groups.values() if g.name == name), None)
            return [cls._users[uid].login for uid in cls._members[group.id]] if group else []

    @classmethod
    def log_event(
        cls,
        event_type: str,
        login: str,
        *,
        external_session_id: str = "",
        targets: list[dict[str, Any]] | None = None,
        outcome: str = "SUCCESS",
        published: dt.datetime | None = None,
    ) -> IdpLogEvent:
        """Record an event done outside the portal (a sign-in, an SSO, a sign-out)."""
        with cls._lock:
            return cls._record(
                event_type, login, targets or [], external_session_id, outcome, published
            )

    @classmethod
    def _record(
        cls,
        event_type: str,
        actor: str,
        targets: list[dict[str, Any]],
        session: str = "",
        outcome: str = "SUCCESS",
        published: dt.datetime | None = None,
    ) -> IdpLogEvent:
        event = IdpLogEvent(
            uuid=str(uuid.uuid4()),
            published=published or dt.datetime.now(dt.UTC),
            event_type=event_type,
            actor_login=actor,
            outcome=outcome,
            targets=targets,
            external_session_id=session,
        )
        cls._log.append(event)
        return event

    def _maybe_fail(self, method: str) -> None:
        with self._lock:
            for failure in self._failures:
                if failure[0] == method and failure[2] > 0:
                    failure[2] -= 1
                    raise failure[1]

    # --- the port --------------------------------------------------------------------

    def find_user(self, login: str) -> IdpUser:
        self._maybe_fail("find_user")
        with self._lock:
            for user in self._users.values():
                if user.login.lower() == login.lower() or user.id == login:
                    return user
        raise _not_found(f"user {login}")

    def find_group(self, name: str) -> IdpGroup:
        self._maybe_fail("find_group")
        with self._lock:
            for group in self._groups.values():
                if group.name == name:
                    return group
        raise _not_found(f"group {name}")

    def ensure_group(self, name: str, description: str = "") -> IdpGroup:
        self._maybe_fail("ensure_group")
        with self._lock:
            try:
                return self.find_group(name)
            except IdpNotFound:
                group = self.add_group(name)
                self._record("group.lifecycle.create", SERVICE_LOGIN, [self._target(group)])
                return group

    def _group(self, group_id: str) -> IdpGroup:
        if group_id not in self._groups:
            raise _not_found(f"group {group_id}")
        return self._groups[group_id]

    def _user(self, user_id: str) -> IdpUser:
        if user_id not in self._users:
            raise _not_found(f"user {user_id}")
        return self._users[user_id]

    def _app(self, app_id: str) -> IdpApp:
        if app_id not in self._apps:
            raise _not_found(f"app {app_id}")
        return self._apps[app_id]

    @staticmethod
    def _target(item: IdpUser | IdpGroup | IdpApp) -> dict[str, Any]:
        kind = {IdpUser: "User", IdpGroup: "UserGroup", IdpApp: "AppInstance"}[type(item)]
        name = getattr(item, "login", None) or getattr(item, "name", "")
        return {"id": item.id, "type": kind, "alternateId": name, "displayName": name}

    @classmethod
    def touch_membership(cls, group_id: str) -> None:
        """Okta's lastMembershipUpdated moves (a member added or removed, also by tests
        changing ``_members`` behind the portal's back)."""
        with cls._lock:
            cls._membership_updated[group_id] = dt.datetime.now(dt.UTC)

    def list_groups(self, name_prefix: str) -> list[IdpGroup]:
        self._maybe_fail("list_groups")
        with self._lock:
            return [
                replace(group, last_membership_updated=self._membership_updated.get(group.id))
                for group in self._groups.values()
                if group.name.startswith(name_prefix)
            ]

    def list_group_members(self, group_id: str) -> list[IdpUser]:
        self._maybe_fail("list_group_members")
        with self._lock:
            self._group(group_id)
            return [self._users[uid] for uid in self._members[group_id]]

    def _editable(self, group_id: str, user_id: str) -> tuple[IdpGroup, IdpUser]:
        group, user = self._group(group_id), self._user(user_id)
        if group.type != "OKTA_GROUP":
            raise IdpPermanentError(
                f"group {group.name} is {group.type}: membership is managed by its source",
                status=403,
                code="E0000006",
            )
        return group, user

    def add_group_member(self, group_id: str, user_id: str) -> None:
        self._maybe_fail("add_group_member")
        with self._lock:
            group, user = self._editable(group_id, user_id)
            if user.id not in self._members[group.id]:
                self._members[group.id].append(user.id)
                self.touch_membership(group.id)
                targets = [self._target(user), self._target(group)]
                self._record("group.user_membership.add", SERVICE_LOGIN, targets)

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        self._maybe_fail("remove_group_member")
        with self._lock:
            group, user = self._editable(group_id, user_id)
            if user.id in self._members[group.id]:
                self._members[group.id].remove(user.id)
                self.touch_membership(group.id)
                targets = [self._target(user), self._target(group)]
                self._record("group.user_membership.remove", SERVICE_LOGIN, targets)

    def get_app(self, app_id: str) -> IdpApp:
        self._maybe_fail("get_app")
        with self._lock:
            return self._app(app_id)

    def get_app_settings(self, app_id: str) -> IdpAppSettings:
        self._maybe_fail("get_app_settings")
        with self._lock:
            self._app(app_id)
            values = dict(self._app_settings.get(app_id, {}))
        duration = values.get("sessionDuration")
        return IdpAppSettings(
            group_filter=str(values.get("groupFilter") or ""),
            role_value_pattern=str(values.get("roleValuePattern") or ""),
            session_duration=int(duration) if duration is not None else None,
            identity_provider_arn=str(values.get("identityProviderArn") or ""),
            use_group_mapping=values.get("useGroupMapping"),
            app_filter=str(values.get("appFilter") or ""),
            raw=values,
        )

    def rate_limits(self, app_id: str) -> list[IdpRateLimit]:
        self._maybe_fail("rate_limits")
        reset = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
        with self._lock:
            self._app(app_id)
            return [
                IdpRateLimit(bucket, limit, remaining, reset)
                for bucket, (limit, remaining) in self._rate_limits.items()
            ]

    def list_app_group_ids(self, app_id: str) -> list[str]:
        self._maybe_fail("list_app_group_ids")
        with self._lock:
            self._app(app_id)
            return list(self._app_groups[app_id])

    def assign_group_to_app(self, app_id: str, group_id: str) -> None:
        self._maybe_fail("assign_group_to_app")
        with self._lock:
            self._app(app_id)
            self._group(group_id)
            if group_id not in self._app_groups[app_id]:
                self._app_groups[app_id].append(group_id)

    def _set_status(self, app_id: str, status: str) -> None:
        with self._lock:
            app = self._app(app_id)
            if app.status != status:
                self._apps[app_id] = IdpApp(app.id, app.name, app.label, status, app.sign_on_mode)
                action = "activate" if status == "ACTIVE" else "deactivate"
                self._record(f"application.lifecycle.{action}", SERVICE_LOGIN, [self._target(app)])

    def activate_app(self, app_id: str) -> None:
        self._maybe_fail("activate_app")
        self._set_status(app_id, "ACTIVE")

    def deactivate_app(self, app_id: str) -> None:
        self._maybe_fail("deactivate_app")
        self._set_status(app_id, "INACTIVE")

    def revoke_user_sessions(self, user_id: str) -> None:
        self._maybe_fail("revoke_user_sessions")
        with self._lock:
            user = self._user(user_id)
            self.revoked_sessions.append(user.id)
            self._record("user.session.clear", SERVICE_LOGIN, [self._target(user)])

    def read_system_log(
        self,
        *,
        since: dt.datetime | None = None,
        after: str | None = None,
        filter: str | None = None,
        limit: int = 100,
    ) -> IdpLogPage:
        """Polling semantics: oldest first, and always a next cursor (the position)."""
        self._maybe_fail("read_system_log")
        try:
            matches = compile_filter(filter) if filter else (lambda _event: True)
        except FilterError as exc:
            raise IdpPermanentError(
                f"bad filter {filter!r}: {exc}", status=400, code="E0000001"
            ) from exc
        with self._lock:
            position = int(after) if after else 0
            low = since or dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
            picked: list[IdpLogEvent] = []
            for event in self._log[position:]:
                if len(picked) == limit:
                    break
                position += 1
                if event.published >= low and matches(self._as_okta(event)):
                    picked.append(event)
            return IdpLogPage(events=picked, next_cursor=str(position))

    @staticmethod
    def _as_okta(event: IdpLogEvent) -> dict[str, Any]:
        """The event as Okta's JSON names it, for filter expressions."""
        return {
            "eventType": event.event_type,
            "actor": {"alternateId": event.actor_login},
            "outcome": {"result": event.outcome},
            "target": event.targets,
            "authenticationContext": {"externalSessionId": event.external_session_id},
        }


InMemoryIdentityProvider.reset(DEFAULT_APP_ID)
