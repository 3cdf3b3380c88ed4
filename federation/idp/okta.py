"""The okta-sdk-python 3.x adapter behind the portal's synchronous IdentityProvider port.

The SDK is async-only and its results are not uniform, so every call goes
through :meth:`OktaIdentityProvider._run`: the thread's ``Client`` on a fresh event
loop (``asyncio.run``; an aiohttp session never crosses loops), the error read
as ``result[-1]``, and every failure -- returned or raised -- turned into the
port's typed errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from django.conf import settings
from okta.client import Client
from okta.models import AddGroupRequest, OktaUserGroupProfile
from okta.request_executor import RequestExecutor

from . import (
    IdpApp,
    IdpAppSettings,
    IdpError,
    IdpGroup,
    IdpLogEvent,
    IdpLogPage,
    IdpNotFound,
    IdpPaused,
    IdpPermanentError,
    IdpRateLimit,
    IdpRateLimited,
    IdpRetryableError,
    IdpUnavailable,
    IdpUser,
    guard,
)

logger = logging.getLogger(__name__)

SDK_LOGGER = "okta-sdk-python"
NOT_FOUND = "E0000007"
ALREADY_EXISTS = "E0000001"

# The SDK annotates its calls as returning the model (``get_user(...) -> User``) but they
# return ``(data, response, error)`` or ``(response, error)``: Any, as _run unpacks them.
SdkCall = Callable[[Client], Awaitable[Any]]
# Client() reconfigures the SDK's logger; one at a time so the restore is not raced.
_CLIENT_LOCK = threading.Lock()
# One client per thread and configuration, reused across calls: building one costs
# 1-12 ms (more on a busy machine), and with OAuth it holds the access token, which a
# fresh client would fetch again before every call. Safe across event loops: without a
# session set, the SDK opens a new aiohttp session per request; per thread, so its
# token lock is never contended by two loops at once.
_clients = threading.local()


class _TransportFailure(Exception):
    """The SDK got no usable HTTP answer (connection, timeout, 429/503 without headers)."""

    def __init__(self, cause: Exception, response: Any) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.response = response


class _BackoffTooLong(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited for {seconds:.0f} s")
        self.seconds = seconds


class _PacedOut(Exception):
    def __init__(self, family: str, seconds: float) -> None:
        super().__init__(f"the {family} rate limit is spent for {seconds:.0f} s")
        self.family = family
        self.seconds = seconds


class _PortalRequestExecutor(RequestExecutor):
    """The SDK's executor, paced to Okta's rate limits, with two failure paths made explicit.

    * Every HTTP request first takes a call from its endpoint family's budget
      (:func:`guard.pace`, shared by all processes); with the budget spent it waits for
      the window's reset here when that is near (``OKTA_PACE_MAX_WAIT_SECONDS``), else
      gives up at once (the task is deferred to the reset). Every answer's
      ``X-Rate-Limit-*`` headers correct the budget (:func:`guard.observe`).

    * On a transport failure the generated API methods dereference the missing
      response and raise ``AttributeError``, losing the cause; raise it instead.
    * On a 429 the SDK sleeps ``X-Rate-Limit-Reset - Date + 1`` seconds and only
      then compares with ``requestTimeout``: a reset a minute away would hold a
      worker for a minute. Give up at once; the portal's own retry waits.
    """

    async def fire_request_helper(
        self, request: dict[str, Any], attempts: int, request_start_time: float
    ) -> tuple[Any, ...]:
        # Called once per HTTP request, the SDK's own retries included.
        family = guard.family_of(str(request.get("url", "")))
        while (wait := guard.pace(family)) > 0:
            if wait > settings.OKTA_PACE_MAX_WAIT_SECONDS or guard.in_background():
                raise _PacedOut(family, wait)
            await asyncio.sleep(wait + guard.jitter())
        # The SDK leaves this method unannotated.
        result: tuple[Any, ...] = await super().fire_request_helper(  # type: ignore[no-untyped-call]
            request, attempts, request_start_time
        )
        response = result[1]
        if response is not None:
            guard.observe(family, getattr(response, "status", None), _headers_of(response))
        return result

    async def fire_request(self, request: dict[str, Any]) -> tuple[Any, ...]:
        sent, response, body, error = await super().fire_request(request)
        if error is not None:
            raise _TransportFailure(error, response)
        return sent, response, body, error

    async def pause_for_backoff(self, backoff_time: float) -> None:
        if self._request_timeout and backoff_time > self._request_timeout:
            raise _BackoffTooLong(float(backoff_time))
        # The SDK leaves this method unannotated (untyped_calls_exclude misses super() calls).
        await super().pause_for_backoff(backoff_time)  # type: ignore[no-untyped-call]


@contextmanager
def _sdk_logging_kept() -> Iterator[None]:
    """Undo what ``Client()`` does to logging.

    Every ``Client()`` adds a StreamHandler to the ``okta-sdk-python`` logger
    (one more per call here), resets its level and disables it. Keep the
    project's configuration, and never below INFO (``_keep_sdk_logger_quiet``).
    """
    sdk_logger = logging.getLogger(SDK_LOGGER)
    handlers, level, disabled = list(sdk_logger.handlers), sdk_logger.level, sdk_logger.disabled
    try:
        yield
    finally:
        sdk_logger.handlers = handlers
        sdk_logger.setLevel(level)
        sdk_logger.disabled = disabled
        _keep_sdk_logger_quiet()


def _keep_sdk_logger_quiet() -> None:
    """The SDK's logger never below INFO: at DEBUG it logs whole requests, API token
    included."""
    sdk_logger = logging.getLogger(SDK_LOGGER)
    if sdk_logger.getEffectiveLevel() < logging.INFO:
        sdk_logger.setLevel(logging.INFO)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds until the rate-limit window resets: ``X-Rate-Limit-Reset - Date``."""
    if not headers:
        return None
    reset, date = headers.get("X-Rate-Limit-Reset"), headers.get("Date")
    if not reset or not date:
        return None
    try:
        return max(0.0, float(reset) - parsedate_to_datetime(date).timestamp())
    except (TypeError, ValueError):
        return None


def _when(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC) if epoch is not None else None


def _status_of(response: Any) -> int | None:
    # Success responses are ApiResponse (status_code); errors are aiohttp's (status).
    return getattr(response, "status_code", None) or getattr(response, "status", None)


def _headers_of(response: Any) -> Mapping[str, str] | None:
    return getattr(response, "headers", None)


def _classify(
    what: str, status: int | None, code: str, summary: str, headers: Mapping[str, str] | None
) -> IdpError:
    message = f"{what}: Okta answered {status} {code} {summary}".rstrip()
    if status == 404 or code == NOT_FOUND:
        return IdpNotFound(message, status=status, code=code)
    if status is not None and (status == 429 or status >= 500):
        return IdpRetryableError(
            message, status=status, code=code, retry_after=_retry_after(headers)
        )
    return IdpPermanentError(message, status=status, code=code)


def _next_cursor(response: Any) -> str | None:
    """The ``after`` of the ``rel="next"`` Link, if any.

    Success responses carry a plain dict of headers in which only the last
    ``Link`` survives; Okta sends ``self`` first, so that one is ``next``.
    """
    headers = _headers_of(response) or {}
    links = headers.getall("Link", []) if hasattr(headers, "getall") else [headers.get("Link", "")]
    for link in links:
        for part in (link or "").split(","):
            if 'rel="next"' in part:
                url = part.split(";")[0].strip().strip("<>")
                after = parse_qs(urlsplit(url).query).get("after")
                if after:
                    return after[0]
    return None


def _at_cursor(call: Callable[[Client, str | None], Awaitable[Any]], after: str | None) -> SdkCall:
    """One page of a listing: ``call`` bound to the cursor ``after``."""
    return lambda client: call(client, after)


def _user(user: Any) -> IdpUser:
    status = getattr(user.status, "value", user.status)
    return IdpUser(id=user.id, login=user.profile.login, status=str(status))


def _group(group: Any) -> IdpGroup:
    # Group.profile is an anyOf wrapper (Okta or AD group profile).
    profile = group.profile.actual_instance
    kind = getattr(group.type, "value", group.type)
    return IdpGroup(
        id=group.id,
        name=profile.name,
        type=str(kind or "OKTA_GROUP"),
        last_membership_updated=getattr(group, "last_membership_updated", None),
    )


def _target(target: Any) -> dict[str, str]:
    # Not target.to_dict(): the SDK leaves out read-only fields, and all of these are.
    fields = {
        "id": target.id,
        "type": target.type,
        "alternateId": target.alternate_id,
        "displayName": target.display_name,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _event(event: Any) -> IdpLogEvent:
    context = event.authentication_context
    return IdpLogEvent(
        uuid=event.uuid,
        published=event.published.astimezone(dt.UTC),
        event_type=event.event_type,
        actor_login=(event.actor.alternate_id if event.actor else "") or "",
        outcome=(event.outcome.result if event.outcome else "") or "",
        targets=[_target(target) for target in event.target or []],
        external_session_id=(context.external_session_id if context else "") or "",
    )


def _optional_int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _rate_limit(bucket: str, headers: Mapping[str, str] | None) -> IdpRateLimit | None:
    headers = headers or {}
    limit = _optional_int(headers.get("X-Rate-Limit-Limit"))
    remaining = _optional_int(headers.get("X-Rate-Limit-Remaining"))
    if limit is None or remaining is None:
        return None
    reset = _optional_int(headers.get("X-Rate-Limit-Reset"))
    reset_at = dt.datetime.fromtimestamp(reset, dt.UTC) if reset is not None else None
    return IdpRateLimit(bucket, limit, remaining, reset_at)


# One cheap read per endpoint family the portal relies on (Okta limits each family).
_RATE_LIMIT_PROBES = (
    ("users", "/api/v1/users", {"limit": "1"}),
    ("groups", "/api/v1/groups", {"limit": "1"}),
    ("logs", "/api/v1/logs", {"limit": "1"}),
)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class OktaIdentityProvider:
    """The portal's IdentityProvider over okta-sdk-python, configured from Django settings."""

    def __init__(self, page_size: int = 200) -> None:
        self.page_size = page_size

    # --- plumbing -------------------------------------------------------------------

    def _client(self) -> Client:
        # Checked on every call, not only when a client is built: clients are cached, so
        # whatever lowered the SDK's logger since would otherwise let a request (and its
        # API token) reach the logs at DEBUG.
        _keep_sdk_logger_quiet()
        config = self._config()
        key = repr((settings.OKTA_ALLOW_HTTP, sorted(config.items(), key=lambda item: item[0])))
        cached = getattr(_clients, "by_config", None)
        if cached is None:
            cached = _clients.by_config = {}
        client = cached.get(key)
        if client is None:
            if settings.OKTA_ALLOW_HTTP:
                # The SDK reads this from the environment only; settings allow it for loopback.
                os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"
            with _CLIENT_LOCK, _sdk_logging_kept():
                client = cached[key] = Client(config)
        return client

    @staticmethod
    def _config() -> dict[str, Any]:
        config: dict[str, Any] = {
            "orgUrl": settings.OKTA_ORG_URL.rstrip("/"),
            "requestTimeout": settings.OKTA_REQUEST_TIMEOUT,
            "rateLimit": {"maxRetries": settings.OKTA_SDK_MAX_RETRIES},
            "requestExecutor": _PortalRequestExecutor,
        }
        if settings.OKTA_CLIENT_ID and settings.OKTA_PRIVATE_KEY:
            config |= {
                "authorizationMode": "PrivateKey",
                "clientId": settings.OKTA_CLIENT_ID,
                "scopes": list(settings.OKTA_SCOPES),
                "privateKey": settings.OKTA_PRIVATE_KEY,
            }
            if settings.OKTA_KEY_ID:
                config["kid"] = settings.OKTA_KEY_ID
        else:
            config |= {"authorizationMode": "SSWS", "token": settings.OKTA_API_TOKEN}
        return config

    def _run(self, what: str, call: SdkCall) -> tuple[Any, Any]:
        """One SDK call through Okta's circuit breaker (docs/reliability.md, "Okta down").

        While the circuit is open the call is not sent: :class:`IdpUnavailable` (work paused,
        retried after the cool-down). A call without a usable answer (transport failure,
        timeout, 5xx) counts towards opening it; any answer from Okta closes it.
        """
        decision = guard.before_call()
        if not decision.go:
            since = _when(decision.since)
            when = f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
            raise IdpUnavailable(
                f"{what}: Okta unreachable{when}; paused until it answers again (circuit open)",
                retry_after=decision.retry_after,
                since=since,
            )
        try:
            result = self._call(what, call)
        except IdpPaused:
            raise  # not sent: says nothing about Okta
        except IdpRetryableError as exc:
            if exc.status is None or exc.status >= 500:
                guard.record_failure(what, str(exc))
                if decision.probe:
                    # The circuit stays open: still paused, not a failed attempt of the work.
                    raise IdpUnavailable(
                        f"{what}: Okta still unreachable (probe: {exc})",
                        retry_after=float(settings.OKTA_CIRCUIT_COOLDOWN_SECONDS),
                        since=_when(decision.since),
                    ) from exc
            else:
                guard.record_success(decision)  # a 429 is an answer: Okta is there
            raise
        except IdpError:
            guard.record_success(decision)
            raise
        guard.record_success(decision)
        return result

    def _call(self, what: str, call: SdkCall) -> tuple[Any, Any]:
        """Run one SDK call on a fresh event loop; return ``(data, response)`` or raise."""

        async def on_a_fresh_loop() -> tuple[Any, ...]:
            result: tuple[Any, ...] = await call(self._client())
            return result

        try:
            result = asyncio.run(on_a_fresh_loop())
            oauth = bool(settings.OKTA_CLIENT_ID and settings.OKTA_PRIVATE_KEY)
            if oauth and _status_of(result[-2]) == 401 and result[-1] is not None:
                # The cached client's OAuth token revoked or expired early: a new client
                # fetches a new one (once; a second 401 is a real refusal).
                _clients.by_config = {}
                result = asyncio.run(on_a_fresh_loop())
        except _PacedOut as exc:
            raise IdpRateLimited(
                f"{what}: paced to Okta's rate limit ({exc})",
                retry_after=exc.seconds + guard.jitter(),
            ) from exc
        except _BackoffTooLong as exc:
            raise IdpRetryableError(
                f"{what}: rate limited", status=429, code="E0000047", retry_after=exc.seconds
            ) from exc
        except _TransportFailure as exc:
            raise self._transport_error(what, exc) from exc
        except (aiohttp.ClientError, TimeoutError, OSError, AttributeError) as exc:
            # AttributeError: the SDK dereferencing a response it never got.
            raise IdpRetryableError(f"{what}: no answer from Okta ({type(exc).__name__})") from exc
        except (ValueError, TypeError) as exc:
            # Bad configuration (Client() raises ValueError) or an unexpected body.
            raise IdpPermanentError(f"{what}: {type(exc).__name__}: {exc}") from exc
        error, response = result[-1], result[-2]
        if error is not None:
            raise self._api_error(what, error, response)
        status = _status_of(response)
        if status is not None and status >= 300:
            # An error answered with an empty body comes back from the SDK as success.
            raise _classify(what, status, "", "(empty body)", _headers_of(response))
        return (result[0] if len(result) == 3 else None), response

    @staticmethod
    def _api_error(what: str, error: Exception, response: Any) -> IdpError:
        status = getattr(error, "status", None) or _status_of(response)
        headers = _headers_of(response) or getattr(error, "headers", None)
        code = str(getattr(error, "error_code", "") or "")
        summary = str(getattr(error, "error_summary", "") or error)
        idp_error = _classify(what, status, code, summary, headers)
        # Not found is an everyday answer (callers decide), the rest is worth a warning.
        logger.log(
            logging.INFO if isinstance(idp_error, IdpNotFound) else logging.WARNING, "%s", idp_error
        )
        return idp_error

    @staticmethod
    def _transport_error(what: str, failure: _TransportFailure) -> IdpRetryableError:
        response = failure.response
        status = getattr(response, "status", None)
        message = f"{what}: no usable answer from Okta ({type(failure.cause).__name__}: {failure})"
        logger.warning("%s", message)
        return IdpRetryableError(
            message, status=status, retry_after=_retry_after(_headers_of(response))
        )

    def _all_pages(
        self, what: str, call: Callable[[Client, str | None], Awaitable[Any]]
    ) -> list[Any]:
        items: list[Any] = []
        after: str | None = None
        while True:
            page, response = self._run(what, _at_cursor(call, after))
            items.extend(page or [])
            previous, after = after, _next_cursor(response)
            # A cursor that does not move would loop forever.
            if not page or after is None or after == previous:
                return items

    # --- users ----------------------------------------------------------------------

    def find_user(self, login: str) -> IdpUser:
        user, _ = self._run(f"find user {login}", lambda c: c.get_user(login))
        return _user(user)

    def revoke_user_sessions(self, user_id: str) -> None:
        self._run(f"revoke sessions of {user_id}", lambda c: c.revoke_user_sessions(user_id))

    # --- groups ---------------------------------------------------------------------

    def find_group(self, name: str) -> IdpGroup:
        search = f"profile.name eq {_quote(name)}"
        groups, _ = self._run(f"find group {name}", lambda c: c.list_groups(search=search))
        # Okta's eq ignores case; group names here are exact.
        for group in map(_group, groups or []):
            if group.name == name:
                return group
        raise IdpNotFound(f"find group {name}: no such group", code=NOT_FOUND)

    def ensure_group(self, name: str, description: str = "") -> IdpGroup:
        try:
            return self.find_group(name)
        except IdpNotFound:
            pass
        request = AddGroupRequest(
            profile=OktaUserGroupProfile(name=name, description=description or None)
        )
        try:
            group, _ = self._run(f"create group {name}", lambda c: c.add_group(request))
        except IdpPermanentError as exc:
            if exc.code != ALREADY_EXISTS:
                raise
            # Created meanwhile, or not yet visible to search (eventually consistent).
            try:
                return self.find_group(name)
            except IdpNotFound:
                raise IdpRetryableError(f"group {name} exists but is not searchable yet") from exc
        return _group(group)

    def list_groups(self, name_prefix: str) -> list[IdpGroup]:
        # Okta's search: `sw` on profile.name; up to 10,000 groups per page.
        search = f"profile.name sw {_quote(name_prefix)}" if name_prefix else None
        groups = self._all_pages(
            f"list groups {name_prefix}*",
            lambda c, after: c.list_groups(search=search, after=after, limit=10000),
        )
        return [group for group in map(_group, groups) if group.name.startswith(name_prefix)]

    def list_group_members(self, group_id: str) -> list[IdpUser]:
        users = self._all_pages(
            f"list members of {group_id}",
            lambda c, after: c.list_group_users(group_id, after=after, limit=self.page_size),
        )
        return [_user(user) for user in users]

    def add_group_member(self, group_id: str, user_id: str) -> None:
        # PUT is idempotent at Okta: adding a present member is a 204 too.
        self._run(
            f"add {user_id} to {group_id}", lambda c: c.assign_user_to_group(group_id, user_id)
        )

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        # DELETE of an absent member is a 204 at Okta.
        self._run(
            f"remove {user_id} from {group_id}",
            lambda c: c.unassign_user_from_group(group_id, user_id),
        )

    # --- the federation app ---------------------------------------------------------

    def get_app(self, app_id: str) -> IdpApp:
        app, _ = self._run(f"get app {app_id}", lambda c: c.get_application(app_id))
        return IdpApp(
            id=app.id,
            name=getattr(app, "name", "") or "",
            label=app.label,
            status=str(getattr(app.status, "value", app.status)),
            sign_on_mode=str(getattr(app.sign_on_mode, "value", app.sign_on_mode)),
        )

    def _raw_get(
        self, what: str, path: str, query: dict[str, str] | None = None
    ) -> tuple[Any, Mapping[str, str] | None]:
        """``GET path`` through the SDK's request executor: (JSON body, response headers).

        For what the SDK's models drop: a SAML app's ``settings.app`` (the generated
        SamlApplicationSettings has no ``app``) and the rate-limit headers.
        """
        url = path + ("?" + urlencode(query) if query else "")

        async def call(client: Client) -> tuple[Any, Any, Any]:
            executor = client.get_request_executor()
            request, error = await executor.create_request("GET", url, {}, {})
            if error is not None:
                return None, None, error
            response, body, error = await executor.execute(request)
            return body, response, error

        body, response = self._run(what, call)
        try:
            data = json.loads(body) if body else None
        except ValueError as exc:
            raise IdpPermanentError(f"{what}: Okta sent a body that is not JSON") from exc
        return data, _headers_of(response)

    def get_app_settings(self, app_id: str) -> IdpAppSettings:
        app, _ = self._raw_get(f"get settings of app {app_id}", f"/api/v1/apps/{app_id}")
        values = ((app or {}).get("settings") or {}).get("app") or {}
        return IdpAppSettings(
            group_filter=str(values.get("groupFilter") or ""),
            role_value_pattern=str(values.get("roleValuePattern") or ""),
            session_duration=_optional_int(values.get("sessionDuration")),
            identity_provider_arn=str(values.get("identityProviderArn") or ""),
            use_group_mapping=values.get("useGroupMapping"),
            app_filter=str(values.get("appFilter") or ""),
            raw=dict(values),
        )

    def rate_limits(self, app_id: str) -> list[IdpRateLimit]:
        probes = (("apps", f"/api/v1/apps/{app_id}", None), *_RATE_LIMIT_PROBES)
        found = []
        for bucket, path, query in probes:
            _, headers = self._raw_get(f"read the {bucket} rate limit", path, query)
            limit = _rate_limit(bucket, headers)
            if limit is not None:
                found.append(limit)
        return found

    def list_app_group_ids(self, app_id: str) -> list[str]:
        # Okta (and the SDK's argument check) allows 20..200 here.
        limit = min(max(self.page_size, 20), 200)
        assignments = self._all_pages(
            f"list groups of app {app_id}",
            lambda c, after: c.list_application_group_assignments(app_id, after=after, limit=limit),
        )
        return [assignment.id for assignment in assignments]

    def assign_group_to_app(self, app_id: str, group_id: str) -> None:
        self._run(
            f"assign {group_id} to app {app_id}",
            lambda c: c.assign_group_to_application(app_id, group_id),
        )

    def activate_app(self, app_id: str) -> None:
        self._run(f"activate app {app_id}", lambda c: c.activate_application(app_id))

    def deactivate_app(self, app_id: str) -> None:
        self._run(f"deactivate app {app_id}", lambda c: c.deactivate_application(app_id))

    # --- System Log -----------------------------------------------------------------

    def read_system_log(
        self,
        *,
        since: dt.datetime | None = None,
        after: str | None = None,
        filter: str | None = None,
        limit: int = 100,
    ) -> IdpLogPage:
        since_text = (
            since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if since else None
        )
        events, response = self._run(
            "read System Log",
            lambda c: c.list_log_events(since=since_text, after=after, filter=filter, limit=limit),
        )
        return IdpLogPage(
            events=[_event(event) for event in events or []], next_cursor=_next_cursor(response)
        )
