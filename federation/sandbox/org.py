"""The sandbox Okta org's state and behaviour, independent of HTTP.

One :class:`SandboxOrg` holds users, groups, the federation app, the System
Log, rate-limit buckets and injected faults behind a single lock, so the
threaded HTTP server and tests that assert on it directly see one consistent
org. Mutations raise :class:`OktaError` with Okta's own error codes.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .auth import ADMIN_ACTOR, Credentials
from .events import (
    Caller,
    app_target,
    build_event,
    group_target,
    iso,
    parse_iso,
    user_target,
)
from .faults import CallLog, FaultRule, Throttle
from .filters import FilterError, compile_filter
from .ids import random_id, stable_id
from .seed import AWS_APP_SETTINGS, DEFAULT_TOKEN, merge_seed

# Okta's page-size defaults and caps for each list.
PAGE_LIMITS = {
    "users": (200, 200),
    "groups": (10000, 10000),
    "members": (1000, 10000),
    "app_groups": (20, 200),
    "logs": (100, 1000),
}
_USER_TYPE_ID = "otysandboxdefault01"
# The Okta session of an admin working in the console (members added "behind the back").
_ADMIN_SESSION = "102SandboxAdminConsole000001"


class OktaError(Exception):
    """An error the sandbox answers with, in Okta's JSON error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        summary: str,
        causes: Iterable[str] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {summary}")
        self.status = status
        self.code = code
        self.summary = summary
        self.causes = list(causes)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "errorCode": self.code,
            "errorSummary": self.summary,
            # Okta puts the code itself in errorLink, except for E0000009.
            "errorLink": "E0000000" if self.code == "E0000009" else self.code,
            "errorId": random_id("oae", 22),
            "errorCauses": [{"errorSummary": cause} for cause in self.causes],
        }


def not_found(what: str, kind: str) -> OktaError:
    return OktaError(404, "E0000007", f"Not found: Resource not found: {what} ({kind})")


def validation_failed(field_name: str, cause: str = "") -> OktaError:
    return OktaError(
        400, "E0000001", f"Api validation failed: {field_name}", [cause] if cause else []
    )


@dataclass
class _Event:
    seq: int
    persisted_ms: int
    published: dt.datetime
    body: dict[str, Any]


@dataclass
class LogQuery:
    since: str | None = None
    until: str | None = None
    after: str | None = None
    filter: str | None = None
    q: str | None = None
    limit: str | None = None
    sort_order: str | None = None


@dataclass
class LogPage:
    events: list[dict[str, Any]]
    next_cursor: str | None
    query: dict[str, str] = field(default_factory=dict)


def page_size(raw: str | None, kind: str) -> int:
    default, cap = PAGE_LIMITS[kind]
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_failed("limit", f"limit: '{raw}' is not a valid integer") from None
    if value < 1:
        raise validation_failed("limit", "limit: must be greater than 0")
    return min(value, cap)


class SandboxOrg:
    """A small, faithful Okta org in memory. Every public method is thread-safe."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        bearer_tokens: Iterable[str] = (),
        rate_limits: dict[str, int] | None = None,
        latency_ms: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._seed = merge_seed(seed)
        self._created_ms = int(self._clock() * 1000)
        # The demo's simulated Identity Center (a control endpoint, not part of Okta).
        self.identity_center_healthy = True
        self.credentials = Credentials(token, bearer_tokens, clock)
        self.throttle = Throttle(rate_limits, latency_ms, clock)
        self.call_log = CallLog()
        self.reset()

    # --- lifecycle -------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: state, System Log, faults, rate buckets and counters."""
        with self._lock:
            self.users: dict[str, dict[str, Any]] = {}
            self.groups: dict[str, dict[str, Any]] = {}
            self.members: dict[str, set[str]] = {}
            self.apps: dict[str, dict[str, Any]] = {}
            self.app_groups: dict[str, dict[str, dict[str, Any]]] = {}
            self.sessions: dict[str, str] = {}  # user id -> current Okta session id
            self.sessions_cleared: dict[str, int] = {}
            self.request_counts: dict[str, int] = {}
            self.call_log.clear()
            self._events: list[_Event] = []
            # A new life: cursors handed out before the reset (or a restart) are unknown.
            self._created_ms = int(self._clock() * 1000)
            self._order: dict[str, int] = {}  # id -> insertion order, the paging key
            self._next_order = 0
            self.throttle.clear()
            self.credentials.forget_issued()
            self._apply_seed(self._seed)

    def _apply_seed(self, seed: dict[str, Any]) -> None:
        for spec in seed["users"]:
            self._insert_user(spec)
        logins = {u["profile"]["login"].lower(): uid for uid, u in self.users.items()}
        for spec in seed["groups"]:
            group = self._insert_group(
                spec["name"],
                spec.get("description", ""),
                spec.get("type", "OKTA_GROUP"),
                spec.get("id"),
            )
            for login in spec.get("members", []):
                self.members[group["id"]].add(logins[login.lower()])
        names = {g["profile"]["name"]: gid for gid, g in self.groups.items()}
        for spec in seed["apps"]:
            app = self._insert_app(spec)
            for name in spec.get("groups", []):
                self._assign_app_group(app["id"], names[name])

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def _remember(self, item_id: str) -> None:
        self._order[item_id] = self._next_order
        self._next_order += 1

    def _insert_user(self, spec: dict[str, Any]) -> dict[str, Any]:
        login = spec["login"]
        if self._find_user(login) is not None:
            raise validation_failed(
                "login",
                "login: An object with this field already exists in the current organization",
            )
        now = iso(self._now())
        user = {
            "id": spec.get("id") or stable_id("00u", login.lower()),
            "status": spec.get("status", "ACTIVE"),
            "created": now,
            "activated": now,
            "statusChanged": now,
            "lastLogin": None,
            "lastUpdated": now,
            "passwordChanged": now,
            "type": {"id": _USER_TYPE_ID},
            "profile": {
                "firstName": spec.get("firstName", ""),
                "lastName": spec.get("lastName", ""),
                "mobilePhone": None,
                "secondEmail": None,
                "login": login,
                "email": spec.get("email", login),
            },
            "credentials": {
                "password": {},
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
        }
        self.users[user["id"]] = user
        self._remember(user["id"])
        return user

    def _insert_group(
        self,
        name: str,
        description: str,
        group_type: str = "OKTA_GROUP",
        group_id: str | None = None,
    ) -> dict[str, Any]:
        now = iso(self._now())
        group: dict[str, Any] = {
            "id": group_id or random_id("00g"),
            "created": now,
            "lastUpdated": now,
            "lastMembershipUpdated": now,
            "objectClass": ["okta:user_group"],
            "type": group_type,
            "profile": {"name": name, "description": description},
        }
        self.groups[group["id"]] = group
        self.members[group["id"]] = set()
        self._remember(group["id"])
        return group

    def _insert_app(self, spec: dict[str, Any]) -> dict[str, Any]:
        now, name = iso(self._now()), spec.get("name", "amazon_aws")
        app = {
            "id": spec["id"],
            "orn": f"orn:okta:idp:00osandboxorg0000001:apps:{name}:{spec['id']}",
            "name": name,
            "label": spec.get("label", "AWS Account Federation"),
            "status": spec.get("status", "INACTIVE"),
            "created": now,
            "lastUpdated": now,
            "accessibility": {"selfService": False},
            "visibility": {
                "autoSubmitToolbar": False,
                "autoLaunch": False,
                "hide": {"iOS": False, "web": False},
                "appLinks": {"login": True},
            },
            "features": [],
            "signOnMode": spec.get("signOnMode", "SAML_2_0"),
            "credentials": {
                "userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"},
                "signing": {"kid": "sandboxSigningKey0001"},
            },
            "settings": {
                # The amazon_aws app's own keys (Okta's OIN app; not in the OpenAPI
                # document, whose SAML app schema leaves settings.app undeclared).
                "app": {**AWS_APP_SETTINGS, **spec.get("settings", {})},
                "notifications": {"vpn": {"network": {"connection": "DISABLED"}}},
                "signOn": {},
            },
        }
        self.apps[app["id"]] = app
        self.app_groups[app["id"]] = {}
        return app

    # --- lookups ---------------------------------------------------------------------

    def _find_user(self, id_or_login: str) -> dict[str, Any] | None:
        user = self.users.get(id_or_login)
        if user is None:
            wanted = id_or_login.lower()
            user = next(
                (u for u in self.users.values() if u["profile"]["login"].lower() == wanted), None
            )
        return user

    def user(self, id_or_login: str) -> dict[str, Any]:
        with self._lock:
            user = self._find_user(id_or_login)
            if user is None:
                raise not_found(id_or_login, "User")
            return copy.deepcopy(user)

    def _group(self, group_id: str) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if group is None:
            raise not_found(group_id, "UserGroup")
        return group

    def group(self, group_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._group(group_id))

    def group_by_name(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = next((g for g in self.groups.values() if g["profile"]["name"] == name), None)
            return copy.deepcopy(found)

    def _app(self, app_id: str) -> dict[str, Any]:
        app = self.apps.get(app_id)
        if app is None:
            raise not_found(app_id, "AppInstance")
        return app

    def app(self, app_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._app(app_id))

    def member_ids(self, group_id: str) -> list[str]:
        with self._lock:
            return sorted(self.members[self._group(group_id)["id"]], key=self._order.__getitem__)

    def group_names_of(self, user_id: str) -> list[str]:
        """The names of the groups ``user_id`` is a member of (the OIDC ``groups`` claim)."""
        with self._lock:
            return sorted(
                self.groups[gid]["profile"]["name"]
                for gid, members in self.members.items()
                if user_id in members and gid in self.groups
            )

    # --- paging ----------------------------------------------------------------------

    def _page(
        self, items: list[dict[str, Any]], after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page in insertion order; the cursor is the last item's id, as Okta's is."""
        items = sorted(items, key=lambda item: self._order[item["id"]])
        if after:
            if after not in self._order:
                raise validation_failed("after", f"after: '{after}' is not a valid cursor")
            start = self._order[after]
            items = [item for item in items if self._order[item["id"]] > start]
        page = items[:limit]
        return copy.deepcopy(page), (page[-1]["id"] if len(items) > limit else None)

    @staticmethod
    def _predicate(expression: str | None) -> Callable[[dict[str, Any]], bool]:
        if not expression:
            return lambda _item: True
        try:
            return compile_filter(expression)
        except FilterError as error:
            raise OktaError(400, "E0000031", "Invalid search criteria.", [str(error)]) from None

    # --- users -----------------------------------------------------------------------

    def list_users(
        self,
        *,
        search: str | None = None,
        filter: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        size = page_size(limit, "users")
        matches = self._predicate(search or filter)
        with self._lock:
            users = [u for u in self.users.values() if matches(u)]
            if filter is None and search is None:
                # Without search, Okta lists no DEPROVISIONED users.
                users = [u for u in users if u["status"] != "DEPROVISIONED"]
            if q:
                prefix = q.lower()
                fields = ("firstName", "lastName", "email", "login")
                users = [
                    u
                    for u in users
                    if any(
                        str(u["profile"].get(f) or "").lower().startswith(prefix) for f in fields
                    )
                ]
            return self._page(users, after, size)

    def create_user(
        self, login: str, first_name: str = "", last_name: str = "", status: str = "ACTIVE"
    ) -> dict[str, Any]:
        """Add a user (control plane: Okta would need a full create + activate)."""
        if not login or "@" not in login:
            raise validation_failed(
                "login", "login: Username must be in the form of an email address"
            )
        with self._lock:
            user = self._insert_user(
                {"login": login, "firstName": first_name, "lastName": last_name, "status": status}
            )
            return copy.deepcopy(user)

    def revoke_sessions(self, user_id: str, caller: Caller) -> None:
        with self._lock:
            user = self._find_user(user_id)
            if user is None:
                raise not_found(user_id, "User")
            self.sessions.pop(user["id"], None)
            self.sessions_cleared[user["id"]] = self.sessions_cleared.get(user["id"], 0) + 1
            self._log("user.session.clear", caller, [user_target(user)])

    # --- groups ----------------------------------------------------------------------

    def list_groups(
        self,
        *,
        search: str | None = None,
        filter: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        size = page_size(limit, "groups")
        matches = self._predicate(search or filter)
        with self._lock:
            groups = [g for g in self.groups.values() if matches(g)]
            if q:
                groups = [g for g in groups if g["profile"]["name"].lower().startswith(q.lower())]
            return self._page(groups, after, size)

    def create_group(self, profile: dict[str, Any], caller: Caller) -> dict[str, Any]:
        name = (profile or {}).get("name")
        if not isinstance(name, str) or not name.strip():
            raise validation_failed("profile", "profile.name: The field cannot be left blank")
        with self._lock:
            if any(g["profile"]["name"].lower() == name.lower() for g in self.groups.values()):
                raise validation_failed(
                    "profile",
                    "profile.name: An object with this field already exists in the current "
                    "organization",
                )
            group = self._insert_group(name, str(profile.get("description") or ""))
            self._log("group.lifecycle.create", caller, [group_target(group)])
            return copy.deepcopy(group)

    def list_members(
        self, group_id: str, *, after: str | None = None, limit: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        size = page_size(limit, "members")
        with self._lock:
            members = [self.users[uid] for uid in self.members[self._group(group_id)["id"]]]
            return self._page(members, after, size)

    def _membership(self, group_id: str, user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        group = self._group(group_id)
        user = self.users.get(user_id)
        if user is None:
            raise not_found(user_id, "User")
        if group["type"] != "OKTA_GROUP":
            # Okta: memberships of APP_GROUP / BUILT_IN groups are managed by their source.
            raise OktaError(
                403, "E0000006", "You do not have permission to perform the requested action"
            )
        return group, user

    def add_member(self, group_id: str, user_id: str, caller: Caller) -> bool:
        """Idempotent; True when the membership changed (only then is an event logged)."""
        with self._lock:
            group, user = self._membership(group_id, user_id)
            if user["id"] in self.members[group["id"]]:
                return False
            self.members[group["id"]].add(user["id"])
            group["lastMembershipUpdated"] = iso(self._now())
            self._log("group.user_membership.add", caller, [user_target(user), group_target(group)])
            return True

    def remove_member(self, group_id: str, user_id: str, caller: Caller) -> bool:
        with self._lock:
            group, user = self._membership(group_id, user_id)
            if user["id"] not in self.members[group["id"]]:
                return False
            self.members[group["id"]].discard(user["id"])
            group["lastMembershipUpdated"] = iso(self._now())
            self._log(
                "group.user_membership.remove", caller, [user_target(user), group_target(group)]
            )
            return True

    # --- apps ------------------------------------------------------------------------

    def set_app_settings(self, app_id: str, **values: Any) -> dict[str, Any]:
        """Change the app's ``settings.app`` as an admin would in the console (tests)."""
        with self._lock:
            app = self._app(app_id)
            app["settings"]["app"].update(values)
            app["lastUpdated"] = iso(self._now())
            return copy.deepcopy(app["settings"]["app"])

    def set_app_status(self, app_id: str, active: bool, caller: Caller) -> bool:
        with self._lock:
            app = self._app(app_id)
            status = "ACTIVE" if active else "INACTIVE"
            if app["status"] == status:
                return False
            app["status"] = status
            app["lastUpdated"] = iso(self._now())
            action = "activate" if active else "deactivate"
            self._log(f"application.lifecycle.{action}", caller, [app_target(app)])
            return True

    def _assign_app_group(self, app_id: str, group_id: str) -> tuple[dict[str, Any], bool]:
        assignments = self.app_groups[app_id]
        if group_id in assignments:
            return assignments[group_id], False
        assignments[group_id] = {
            "id": group_id,
            "lastUpdated": iso(self._now()),
            "priority": len(assignments),
            "profile": {},
        }
        return assignments[group_id], True

    def assign_group(self, app_id: str, group_id: str, caller: Caller) -> dict[str, Any]:
        with self._lock:
            app, group = self._app(app_id), self._group(group_id)
            assignment, created = self._assign_app_group(app["id"], group["id"])
            if created:
                self._log(
                    "group.application_assignment.add",
                    caller,
                    [app_target(app), group_target(group)],
                )
            return copy.deepcopy(assignment)

    def app_group(self, app_id: str, group_id: str) -> dict[str, Any]:
        with self._lock:
            assignment = self.app_groups[self._app(app_id)["id"]].get(group_id)
            if assignment is None:
                raise not_found(group_id, "ApplicationGroupAssignment")
            return copy.deepcopy(assignment)

    def unassign_group(self, app_id: str, group_id: str, caller: Caller) -> None:
        with self._lock:
            app = self._app(app_id)
            if self.app_groups[app["id"]].pop(group_id, None) is None:
                raise not_found(group_id, "ApplicationGroupAssignment")
            targets = [app_target(app)]
            if group_id in self.groups:
                targets.append(group_target(self.groups[group_id]))
            self._log("group.application_assignment.remove", caller, targets)

    def list_app_groups(
        self, app_id: str, *, after: str | None = None, limit: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        size = page_size(limit, "app_groups")
        with self._lock:
            assignments = list(self.app_groups[self._app(app_id)["id"]].values())
            return self._page(assignments, after, size)

    # --- System Log ------------------------------------------------------------------

    def _log(
        self,
        event_type: str,
        caller: Caller,
        targets: list[dict[str, Any]],
        *,
        published: dt.datetime | None = None,
        outcome: str = "SUCCESS",
        display_message: str = "",
    ) -> dict[str, Any]:
        now = self._now()
        body = build_event(
            event_type,
            caller,
            targets,
            published=published or now,
            outcome=outcome,
            display_message=display_message,
        )
        seq = len(self._events) + 1
        self._events.append(_Event(seq, int(now.timestamp() * 1000), published or now, body))
        return body

    def inject_event(
        self,
        event_type: str,
        login: str,
        *,
        published: str | None = None,
        outcome: str = "SUCCESS",
        external_session_id: str | None = None,
        app_id: str | None = None,
        targets: list[dict[str, Any]] | None = None,
        ip: str = "198.51.100.7",
        display_message: str = "",
    ) -> dict[str, Any]:
        """Record an event done by a user outside the portal (sign-in, SSO, sign-out)."""
        with self._lock:
            user = self._find_user(login)
            if user is None:
                raise not_found(login, "User")
            session = external_session_id or self._session_for(user["id"], event_type)
            if targets is None:
                targets = []
                if event_type == "user.authentication.sso":
                    app = self._app(app_id or next(iter(self.apps)))
                    targets = [app_target(app), {**user_target(user), "type": "AppUser"}]
            caller = Caller(
                actor={**user_target(user), "detailEntry": {}},
                external_session_id=session,
                ip=ip,
                user_agent="Mozilla/5.0 (X11; Linux x86_64) Sandbox",
                request_id=random_id("X"),
                path="/",
            )
            when = parse_iso(published) if published else None
            return copy.deepcopy(
                self._log(
                    event_type,
                    caller,
                    targets,
                    published=when,
                    outcome=outcome,
                    display_message=display_message,
                )
            )

    def _session_for(self, user_id: str, event_type: str) -> str:
        """The user's Okta session id: started by session.start, ended by session.end."""
        if event_type == "user.session.start" or user_id not in self.sessions:
            self.sessions[user_id] = random_id("102", 22)
        session = self.sessions[user_id]
        if event_type == "user.session.end":
            del self.sessions[user_id]
        return session

    def _cursor(self, seq: int) -> str:
        persisted = self._events[seq - 1].persisted_ms if seq else self._created_ms
        return f"{persisted}_{seq}"

    def _cursor_seq(self, cursor: str) -> int:
        """The position a cursor this org handed out stands for.

        A cursor from another life of the org (a restart, a reset) or one never
        issued is refused the way Okta refuses an unknown or expired ``after``: 400
        E0000001, never a server error.
        """
        try:
            seq = int(cursor.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            raise validation_failed("after", f"after: '{cursor}' is not a valid cursor") from None
        if not 0 <= seq <= len(self._events) or self._cursor(seq) != cursor:
            raise validation_failed("after", f"after: '{cursor}' is not a valid cursor") from None
        return seq

    def read_logs(self, query: LogQuery) -> LogPage:
        """``GET /api/v1/logs``: a polling query (no ``until``) always has a next cursor.

        Order and cursors follow persistence order; ``since``/``until`` filter on
        ``published``.
        """
        size = page_size(query.limit, "logs")
        descending = (query.sort_order or "ASCENDING").upper() == "DESCENDING"
        if (query.sort_order or "ASCENDING").upper() not in {"ASCENDING", "DESCENDING"}:
            raise validation_failed("sortOrder", "sortOrder: must be ASCENDING or DESCENDING")
        try:
            until = parse_iso(query.until) if query.until else None
            since = parse_iso(query.since) if query.since else None
        except ValueError:
            raise validation_failed("since", "since/until: not an ISO 8601 timestamp") from None
        matches = self._predicate(query.filter)
        keywords = [word.lower() for word in (query.q or "").split()]
        with self._lock:
            low = since or (until or self._now()) - dt.timedelta(days=7)
            events = [
                e
                for e in self._events
                if e.published >= low
                and (until is None or e.published < until)
                and matches(e.body)
                and all(k in str(e.body).lower() for k in keywords)
            ]
            if descending:
                events.reverse()
            if query.after:
                start = self._cursor_seq(query.after)
                events = [e for e in events if (e.seq < start if descending else e.seq > start)]
            page = events[:size]
            polling = until is None and not descending
            if len(events) > size:
                next_cursor: str | None = self._cursor(page[-1].seq)
            elif polling:
                # Everything persisted so far has been considered: resume after the newest.
                newest = len(self._events)
                seen = self._cursor_seq(query.after) if query.after else 0
                next_cursor = self._cursor(max(newest, seen))
            else:
                next_cursor = None
            return LogPage([copy.deepcopy(e.body) for e in page], next_cursor)

    def events(self) -> list[dict[str, Any]]:
        """Every System Log event so far, oldest first (for test assertions)."""
        with self._lock:
            return [copy.deepcopy(e.body) for e in self._events]

    # --- faults and counters (the throttle holds limits, rules and latency) -------

    @property
    def latency_ms(self) -> int:
        return self.throttle.latency_ms

    def add_faults(
        self,
        rules: Iterable[FaultRule] = (),
        *,
        latency_ms: int | None = None,
        rate_limits: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        return self.throttle.add(rules, latency_ms=latency_ms, rate_limits=rate_limits)

    def clear_faults(self) -> None:
        self.throttle.clear()

    def faults(self) -> dict[str, Any]:
        return self.throttle.describe()

    def count_request(self, method: str, path: str) -> None:
        with self._lock:
            key = f"{method} {path}"
            self.request_counts[key] = self.request_counts.get(key, 0) + 1

    # --- conveniences for tests -----------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int,
        count: int = 1,
        reset_in: int = 0,
        rate_headers: bool = True,
    ) -> None:
        """Fail the next ``count`` ``method`` requests under ``path`` with ``status``."""
        self.add_faults([FaultRule(status, path, method.upper(), count, reset_in, rate_headers)])

    def member_logins(self, group: str) -> list[str]:
        """Logins of a group's members (group by id or name); [] if there is no such group."""
        with self._lock:
            found = self.group_by_name(group) or self.groups.get(group)
            if found is None:
                return []
            return [self.users[uid]["profile"]["login"] for uid in self.member_ids(found["id"])]

    def app_status(self, app_id: str) -> str:
        status: str = self.app(app_id)["status"]
        return status

    def add_member_behind_the_back(self, group: str, login: str) -> bool:
        """Add a member as an Okta admin would in the console (logged as that admin)."""
        with self._lock:
            found = self.group_by_name(group) or self.group(group)
            caller = Caller(dict(ADMIN_ACTOR), _ADMIN_SESSION)
            return self.add_member(found["id"], self.user(login)["id"], caller)

    def remove_member_behind_the_back(self, group: str, login: str) -> bool:
        with self._lock:
            found = self.group_by_name(group) or self.group(group)
            caller = Caller(dict(ADMIN_ACTOR), _ADMIN_SESSION)
            return self.remove_member(found["id"], self.user(login)["id"], caller)

    def set_app_status_behind_the_back(self, app_id: str, *, active: bool) -> bool:
        """Activate or deactivate the app as an Okta admin would in the console (logged as
        that admin: ``application.lifecycle.activate`` / ``.deactivate``)."""
        with self._lock:
            caller = Caller(dict(ADMIN_ACTOR), _ADMIN_SESSION)
            return self.set_app_status(app_id, active, caller)

    # --- state for tests -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able picture of the org (``GET /__sandbox__/state``)."""
        with self._lock:
            login = {uid: u["profile"]["login"] for uid, u in self.users.items()}
            return {
                "users": [
                    {
                        "id": u["id"],
                        "login": u["profile"]["login"],
                        "firstName": u["profile"]["firstName"],
                        "lastName": u["profile"]["lastName"],
                        "status": u["status"],
                        "sessions_cleared": self.sessions_cleared.get(u["id"], 0),
                        "okta_session": self.sessions.get(u["id"]),
                    }
                    for u in self.users.values()
                ],
                "groups": [
                    {
                        "id": g["id"],
                        "name": g["profile"]["name"],
                        "description": g["profile"]["description"],
                        "type": g["type"],
                        "member_ids": self.member_ids(g["id"]),
                        "members": [login[uid] for uid in self.member_ids(g["id"])],
                    }
                    for g in self.groups.values()
                ],
                "apps": [
                    {
                        "id": a["id"],
                        "name": a["name"],
                        "label": a["label"],
                        "status": a["status"],
                        "group_ids": list(self.app_groups[a["id"]]),
                    }
                    for a in self.apps.values()
                ],
                "log_events": len(self._events),
                "request_counts": dict(self.request_counts),
                "faults": self.faults(),
            }
