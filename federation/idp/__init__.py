"""The identity-provider port: the only way the portal speaks to Okta.

Everything outside ``federation`` calls :func:`get_identity_provider` and the
synchronous methods of :class:`IdentityProvider`; it never sees the okta SDK,
asyncio or HTTP. Every failure comes back as one of the :class:`IdpError`
family so callers can sort it into retry / fail / ignore.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class IdpUser:
    id: str
    login: str
    status: str = "ACTIVE"


@dataclass(frozen=True)
class IdpGroup:
    id: str
    name: str
    type: str = "OKTA_GROUP"
    # Okta's lastMembershipUpdated: when a member was last added or removed (listings only).
    last_membership_updated: dt.datetime | None = None


@dataclass(frozen=True)
class IdpApp:
    id: str
    name: str
    label: str
    status: str  # "ACTIVE" | "INACTIVE"
    sign_on_mode: str


@dataclass(frozen=True)
class IdpAppSettings:
    """The AWS Account Federation app's Sign On settings (Okta: the app's ``settings.app``)."""

    group_filter: str = ""
    role_value_pattern: str = ""
    session_duration: int | None = None
    identity_provider_arn: str = ""
    use_group_mapping: bool | None = None
    app_filter: str = ""
    # Everything ``settings.app`` holds, as Okta sent it (for display and new checks).
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IdpRateLimit:
    """One rate-limit bucket as Okta's ``X-Rate-Limit-*`` headers reported it."""

    bucket: str  # the endpoint family probed: "users", "groups", "apps", "logs"
    limit: int
    remaining: int
    reset_at: dt.datetime | None = None


@dataclass(frozen=True)
class IdpLogEvent:
    uuid: str
    published: dt.datetime
    event_type: str
    actor_login: str
    outcome: str
    targets: list[dict[str, Any]] = field(default_factory=list)
    external_session_id: str = ""


@dataclass(frozen=True)
class IdpLogPage:
    events: list[IdpLogEvent]
    # The opaque ``after`` cursor of the next page; keep it, not the last timestamp.
    next_cursor: str | None


class IdpError(Exception):
    """Base of every failure the identity provider reports."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class IdpRetryableError(IdpError):
    """Rate limited, 5xx, timeout or connection failure: try again later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class IdpPaused(IdpRetryableError):
    """Not sent: the portal holds the call back (Okta's circuit is open, or the endpoint
    family's rate limit is spent until its reset). Not a failure: try again after
    ``retry_after`` without counting an attempt (docs/reliability.md)."""


class IdpUnavailable(IdpPaused):
    """Okta's circuit is open: Okta has not answered since ``since``."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, since: dt.datetime | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.since = since


class IdpRateLimited(IdpPaused):
    """The endpoint family's calls for this rate-limit window are spent (paced, not sent)."""


def is_pause(exc: IdpError) -> bool:
    """Work paused, not failed: the call was not sent (Okta's circuit is open, or the rate
    limit is spent until its reset), or Okta said "wait until the reset" (a 429 with its
    reset). Tasks retry such work after ``retry_after`` without counting an attempt."""
    if isinstance(exc, IdpPaused):
        return True
    return isinstance(exc, IdpRetryableError) and exc.status == 429 and exc.retry_after is not None


class IdpNotFound(IdpError):
    """The user, group or app does not exist (Okta E0000007)."""


class IdpPermanentError(IdpError):
    """Any other refusal (bad request, forbidden, bad token): retrying will not help."""


class IdentityProvider(Protocol):
    def find_user(self, login: str) -> IdpUser: ...

    def find_group(self, name: str) -> IdpGroup: ...

    def ensure_group(self, name: str, description: str = "") -> IdpGroup: ...

    def list_group_members(self, group_id: str) -> list[IdpUser]: ...

    def list_groups(self, name_prefix: str) -> list[IdpGroup]:
        """Every group whose name starts with ``name_prefix`` (one call per 10,000), with
        ``last_membership_updated``."""
        ...

    def add_group_member(self, group_id: str, user_id: str) -> None: ...

    def remove_group_member(self, group_id: str, user_id: str) -> None: ...

    def get_app(self, app_id: str) -> IdpApp: ...

    def get_app_settings(self, app_id: str) -> IdpAppSettings: ...

    def rate_limits(self, app_id: str) -> list[IdpRateLimit]:
        """Headroom of the rate-limit buckets the portal depends on (one cheap read each)."""
        ...

    def list_app_group_ids(self, app_id: str) -> list[str]: ...

    def assign_group_to_app(self, app_id: str, group_id: str) -> None: ...

    def activate_app(self, app_id: str) -> None: ...

    def deactivate_app(self, app_id: str) -> None: ...

    def revoke_user_sessions(self, user_id: str) -> None: ...

    def read_system_log(
        self,
        *,
        since: dt.datetime | None = None,
        after: str | None = None,
        filter: str | None = None,
        limit: int = 100,
    ) -> IdpLogPage: ...


def get_identity_provider() -> IdentityProvider:
    """The adapter named by ``settings.IDENTITY_PROVIDER`` (okta-sdk by default)."""
    provider: IdentityProvider = import_string(settings.IDENTITY_PROVIDER)()
    return provider
