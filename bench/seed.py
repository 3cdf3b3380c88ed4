"""Seeding a benchmark's portal: the plan, the people (with API tokens and browser
sessions), the Okta groups, an open failover. Runs in the benchmark process
through the ORM and the portal's own services, after ``setup_django()``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import django
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

EMERGENCY_ACCOUNT = "123456789012"


def setup_django() -> None:
    """Django for this process, on the stack's settings (Stack.start() exported them)."""
    django.setup()


@dataclass
class Person:
    """A portal user as a client: an API session (token) and a browser session (cookie)."""

    username: str
    email: str
    pk: int
    token: str
    web: str  # the portal's base URL
    session_key: str = ""
    _http: requests.Session | None = field(default=None, repr=False)

    @property
    def http(self) -> requests.Session:
        """A keep-alive HTTP session with the token (API) and the session cookie (pages)."""
        if self._http is None:
            self._http = requests.Session()
            # A kept-alive connection the server closes as a request goes out is reset:
            # browsers retry such a GET, and so does this client (gthread keeps alive).
            retry = Retry(total=2, connect=2, read=2, status=0, allowed_methods={"GET"})
            self._http.mount("http://", HTTPAdapter(max_retries=retry))
            self._http.headers["Authorization"] = f"Bearer {self.token}"
            if self.session_key:
                self._http.cookies.set("sessionid", self.session_key)
        return self._http

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.web}/api/v1{path}", timeout=60, **kwargs)

    def page(self, path: str, **kwargs: Any) -> requests.Response:
        """A page as the browser gets it (session cookie; the token is ignored there)."""
        return self.http.get(f"{self.web}{path}", timeout=60, **kwargs)


def second_factor(user: Any) -> None:
    """An authenticator app for ``user``, unless it has a second factor: approvers' and
    auditors' roles need one (MFA_REQUIRED_FOR), or every page they load is the
    "set up your second factor" redirect, which is not what a benchmark times."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    if not Authenticator.objects.filter(user=user).exists():
        TOTP.activate(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")


def plan(accounts: int) -> list[Any]:
    """``accounts`` workload accounts x (RO: one approver, Ops: two): 2 x accounts roles."""
    from federation.models import EmergencyAccount, EmergencyRole, Level, WorkloadAccount

    emergency = EmergencyAccount.objects.create(account_id=EMERGENCY_ACCOUNT, saml_provider="Okta")
    levels = [
        Level.objects.create(
            name="RO",
            policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess",
            max_duration_minutes=240,
            approvals_required=1,
            position=1,
        ),
        Level.objects.create(
            name="Ops",
            policy_arn="arn:aws:iam::aws:policy/job-function/SystemAdministrator",
            max_duration_minutes=120,
            approvals_required=2,
            position=2,
        ),
    ]
    roles = []
    for n in range(1, accounts + 1):
        account = WorkloadAccount.objects.create(
            emergency_account=emergency, number=n, account_id=f"{n:012d}", name=f"workload-{n:02d}"
        )
        for level in levels:
            role_name, group = EmergencyRole.names_for(n, level.name, EMERGENCY_ACCOUNT)
            roles.append(
                EmergencyRole.objects.create(
                    emergency_account=emergency,
                    workload_account=account,
                    level=level,
                    role_name=role_name,
                    okta_group_name=group,
                )
            )
    return roles


def okta_groups(roles: list[Any]) -> None:
    """Each role's group in Okta, assigned to the federation app (the runbook's preparation)."""
    from django.conf import settings

    from federation.idp import get_identity_provider
    from federation.models import EmergencyRole

    idp = get_identity_provider()
    for role in roles:
        group = idp.ensure_group(role.okta_group_name, "Emergency access (portal managed)")
        idp.assign_group_to_app(settings.OKTA_AWS_APP_ID, group.id)
        EmergencyRole.objects.filter(pk=role.pk).update(okta_group_id=group.id)


def people(prefix: str, count: int, web: str, *, group: str | None = None) -> list[Person]:
    """``count`` portal users ``<prefix>NNN@example.com`` with API tokens and sessions."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    from portal.accounts.tokens import HINT_LENGTH
    from portal.models import ApiToken, hash_token

    User = get_user_model()
    users = User.objects.bulk_create(
        [
            User(username=f"{prefix}{i:03d}", email=f"{prefix}{i:03d}@example.com")
            for i in range(count)
        ]
    )
    if group:
        Group.objects.get_or_create(name=group)[0].user_set.add(*users)
    if group in ("approvers", "auditors"):
        for user in users:
            second_factor(user)
    raws = [ApiToken.generate() for _ in users]
    ApiToken.objects.bulk_create(
        [
            ApiToken(user=u, name="bench", token_hash=hash_token(raw), hint=raw[:HINT_LENGTH])
            for u, raw in zip(users, raws, strict=True)
        ]
    )
    found = []
    for user, raw in zip(users, raws, strict=True):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        found.append(Person(user.username, user.email, user.pk, raw, web, session.session_key))
    return found


def open_failover(actor: Person, *, timeout: float = 60) -> int:
    """A drill (no second confirmation), opened over the API; waits for the app to be active."""
    from federation.models import Failover

    reply = actor.api("POST", "/failover", json={"reason": "benchmark", "drill": True})
    reply.raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failover = Failover.objects.order_by("-pk").first()
        if failover is not None and failover.app_activated_at is not None:
            return failover.pk
        time.sleep(0.1)
    raise TimeoutError("the federation app was not activated")


def login_of(okta_login: str) -> str:
    return okta_login.lower()
