"""Okta's circuit breaker and rate-limit pacer, shared by every process of the portal.

Both keep their state in Redis (``settings.REDIS_URL``; the broker's Redis), so the web
processes, every worker and beat see one circuit and one budget per endpoint family.
Without Redis (the demo on a filesystem broker) they keep it in the process.

**The circuit** (docs/reliability.md, "Okta down"): after ``OKTA_CIRCUIT_FAILURES``
consecutive calls without a usable answer (transport failure, timeout, 5xx) the circuit
*opens*: calls are refused at once with :class:`~federation.idp.IdpUnavailable` (work is
paused, not failed) for ``OKTA_CIRCUIT_COOLDOWN_SECONDS``; then one call at a time is let
through as a *probe* (half-open); a probe that gets an answer closes the circuit, one that
fails opens it for another cool-down. Any answer from Okta (2xx, 4xx, 429) counts as
success: Okta is there.

**The pacer** (issue 13): Okta limits calls per minute per endpoint family and says so on
every answer (``X-Rate-Limit-Limit/-Remaining/-Reset``). The pacer keeps, per family, the
tokens left in the current window; each call takes one before it is sent; with none left
the call waits for the reset (in the process when the wait is short, else the task is
deferred with :class:`~federation.idp.IdpRateLimited`). Every answer corrects the count
(``min`` with ``Remaining``: other clients of the org use the same budget); a 429 empties
it until its ``X-Rate-Limit-Reset``.

The state machines are pure functions of (state, now) so they can be unit-tested with a
mock clock; :class:`Store` applies them atomically (a Redis WATCH transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import DatabaseError, transaction

from portal import audit

log = logging.getLogger(__name__)

T = TypeVar("T")
State = dict[str, Any]
# A state change: the state now (None: none kept) -> (the new state, None to delete; result).
Change = Callable[[State | None], tuple[State | None, T]]

FAMILIES = ("users", "groups", "apps", "logs")
WINDOW_SECONDS = 60.0


def family_of(url: str) -> str:
    """Okta counts limits per endpoint family (as the sandbox org does: the path's root)."""
    path = urlsplit(url).path
    for family in FAMILIES:
        if path.startswith(f"/api/v1/{family}"):
            return family
    return "default"


# --- where the state lives ----------------------------------------------------------------


class Store:
    """Atomic read-modify-write of small JSON states by key: Redis, else this process."""

    def __init__(self, url: str | None, prefix: str) -> None:
        self.prefix = prefix
        self._redis = (
            redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            if url and url.startswith(("redis://", "rediss://", "unix://"))
            else None
        )
        self._local: dict[str, State] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> State | None:
        if self._redis is None:
            with self._lock:
                return dict(self._local[key]) if key in self._local else None
        raw = self._redis.get(self.prefix + key)
        return json.loads(raw) if raw else None

    def change(self, key: str, change: Change[T], ttl: float = 3600) -> T:
        if self._redis is None:
            with self._lock:
                new, result = change(self._local.get(key))
                if new is None:
                    self._local.pop(key, None)
                else:
                    self._local[key] = new
                return result
        full = self.prefix + key
        outcome: list[T] = []

        def apply(pipe: Any) -> None:
            raw = pipe.get(full)
            new, result = change(json.loads(raw) if raw else None)
            pipe.multi()
            if new is None:
                pipe.delete(full)
            else:
                pipe.set(full, json.dumps(new), ex=max(1, int(ttl)))
            outcome[:] = [result]  # the last attempt's (a WATCH conflict runs it again)

        self._redis.transaction(apply, full)
        return outcome[0]

    def clear(self) -> None:
        if self._redis is None:
            with self._lock:
                self._local.clear()
            return
        for key in self._redis.scan_iter(self.prefix + "*"):
            self._redis.delete(key)


_stores: dict[tuple[str | None, str], Store] = {}
_stores_lock = threading.Lock()


def store() -> Store:
    """The store of this Okta org (keys carry a hash of its URL: one state per org)."""
    url = settings.REDIS_URL or (
        settings.CELERY_BROKER_URL if settings.CELERY_BROKER_URL.startswith("redis") else None
    )
    org = hashlib.sha256(settings.OKTA_ORG_URL.rstrip("/").encode()).hexdigest()[:12]
    prefix = f"{settings.OKTA_GUARD_KEY_PREFIX}:{org}:"
    key = (url, prefix)
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Store(url, prefix)
        return _stores[key]


# After Redis failed, this process does without the guard for a few seconds rather than
# paying a connection timeout on every Okta call (Redis lost: docs/reliability.md).
_REDIS_BACKOFF_SECONDS = 5.0
_redis_down_until = 0.0


def _safely(what: str, default: T, action: Callable[[], T]) -> T:
    """The guard never stops a call because Redis is unreachable: it lets it through."""
    global _redis_down_until
    if time.monotonic() < _redis_down_until:
        return default
    try:
        return action()
    except (redis.RedisError, OSError, ValueError) as exc:
        _redis_down_until = time.monotonic() + _REDIS_BACKOFF_SECONDS
        log.warning("Okta %s: shared state unavailable (%s); not guarding calls for now", what, exc)
        return default


# --- the circuit: pure state machine ------------------------------------------------------

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True)
class CircuitConfig:
    failures: int = 5
    cooldown: float = 15.0
    # A probe that neither answers nor fails within this long frees the slot for another.
    probe_timeout: float = 30.0


@dataclass(frozen=True)
class Decision:
    go: bool
    probe: bool = False
    retry_after: float = 0.0
    since: float | None = None


def circuit_before(
    state: State | None, now: float, config: CircuitConfig
) -> tuple[State | None, Decision]:
    """May a call go out? Closed: yes. Open: no until the cool-down ends; then one probe."""
    if not state or state.get("opened_at") is None:
        return state, Decision(go=True)
    opened_at, since = float(state["opened_at"]), state.get("since")
    reopen_at = opened_at + config.cooldown
    if now < reopen_at:
        return state, Decision(go=False, retry_after=reopen_at - now, since=since)
    probe_until = state.get("probe_until")
    if probe_until is not None and now < float(probe_until):
        return state, Decision(go=False, retry_after=float(probe_until) - now, since=since)
    return {**state, "probe_until": now + config.probe_timeout}, Decision(
        go=True, probe=True, since=since
    )


def circuit_failed(
    state: State | None, now: float, error: str, config: CircuitConfig
) -> tuple[State | None, str]:
    """A call got no usable answer. Returns "opened" when this failure opened the circuit."""
    state = dict(state or {})
    state["failures"] = int(state.get("failures", 0)) + 1
    state.setdefault("since", now)
    state["last_error"] = error[:300]
    if state.get("opened_at") is not None:
        # A probe failed (or a call sent before the circuit opened): another cool-down.
        state["opened_at"], state["probe_until"] = now, None
        return state, "still open"
    if state["failures"] >= config.failures:
        state["opened_at"], state["probe_until"] = now, None
        return state, "opened"
    return state, "counted"


def circuit_succeeded(state: State | None, now: float) -> tuple[State | None, State | None]:
    """Okta answered: forget the failures. Returns the episode when this closed the circuit."""
    if state and state.get("opened_at") is not None:
        return None, {**state, "closed_at": now}
    return None, None


@dataclass(frozen=True)
class CircuitState:
    state: str  # closed | open | half-open
    failures: int = 0
    since: dt.datetime | None = None  # the first failure of the streak
    opened_at: dt.datetime | None = None
    last_error: str = ""

    @property
    def is_open(self) -> bool:
        return self.state != CLOSED


def describe_circuit(state: State | None, now: float, config: CircuitConfig) -> CircuitState:
    if not state:
        return CircuitState(CLOSED)

    def when(value: Any) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(float(value), dt.UTC) if value is not None else None

    opened_at = state.get("opened_at")
    if opened_at is None:
        kind = CLOSED
    else:
        kind = OPEN if now < float(opened_at) + config.cooldown else HALF_OPEN
    return CircuitState(
        kind,
        int(state.get("failures", 0)),
        when(state.get("since")),
        when(opened_at),
        str(state.get("last_error", "")),
    )


# --- the pacer: pure state machine --------------------------------------------------------


def pace_take(
    state: State | None, now: float, reserve: int = 0, *, background: bool = False
) -> tuple[State | None, float]:
    """Take one call from the family's window: 0 (go now) or the seconds until the reset.

    Background work (the reconciler) yields to grant work: it takes no call from a window
    in which grant work had to wait (nor from the next, which the deferred work fills),
    nor the second half of any window.
    """
    if not state:
        return state, 0.0  # nothing known yet: the first answer tells
    state = dict(state)
    if now >= float(state["reset"]):
        # The window ended: a fresh one of ``limit`` calls, ending (at the latest) a minute
        # from now; the first answer in it gives its real reset.
        state.update(tokens=int(state["limit"]), reset=now + WINDOW_SECONDS, estimated=True)
    tokens, reset = int(state["tokens"]), float(state["reset"])
    if background:
        contended = now < float(state.get("contended_until") or 0)
        if contended or tokens <= max(reserve, int(state["limit"]) // 2):
            return state, max(reset - now, 0.001)
    if tokens > reserve:
        state["tokens"] = tokens - 1
        return state, 0.0
    state["contended_until"] = reset + WINDOW_SECONDS
    return state, reset - now


def pace_observe(
    state: State | None, now: float, limit: int, remaining: int, reset: float, limited: bool
) -> tuple[State | None, None]:
    """Correct the family's window with an answer's ``X-Rate-Limit-*`` (reset in local time)."""
    if limited:
        remaining = 0
    if reset <= now:
        return state, None  # an answer from a window that has ended since
    if not state:
        return {"limit": limit, "tokens": remaining, "reset": reset, "estimated": False}, None
    state = dict(state, limit=limit)
    known = float(state["reset"])
    if state.get("estimated"):
        state.update(tokens=min(int(state["tokens"]), remaining), reset=reset, estimated=False)
    elif reset > known + 1.5:
        state.update(tokens=remaining, reset=reset)  # Okta moved on to a new window
    elif reset < known - 1.5:
        return state, None  # late answer from the window before
    else:
        state["tokens"] = min(int(state["tokens"]), remaining)
    return state, None


def rate_headers(headers: Mapping[str, str] | None, now: float) -> tuple[int, int, float] | None:
    """(limit, remaining, reset in this machine's clock) from an answer's headers."""
    if not headers:
        return None
    try:
        limit = int(headers.get("X-Rate-Limit-Limit") or "")
        remaining = int(headers.get("X-Rate-Limit-Remaining") or "")
        reset = float(headers.get("X-Rate-Limit-Reset") or "")
    except ValueError:
        return None
    date = headers.get("Date")
    if date:
        try:
            # Okta's clock may differ from ours: the reset is "this long after its Date".
            return limit, remaining, now + (reset - parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            pass
    return limit, remaining, reset


# --- the portal's use of both -------------------------------------------------------------


def _config() -> CircuitConfig:
    return CircuitConfig(
        failures=settings.OKTA_CIRCUIT_FAILURES,
        cooldown=float(settings.OKTA_CIRCUIT_COOLDOWN_SECONDS),
        probe_timeout=float(settings.OKTA_REQUEST_TIMEOUT) * 2 + 5,
    )


CIRCUIT_KEY = "circuit"


def circuit_state(now: float | None = None) -> CircuitState:
    """What /readyz, `manage.py doctor` and the dashboard say about Okta."""
    now = time.time() if now is None else now
    config = _config()
    return _safely(
        "circuit",
        CircuitState(CLOSED),
        lambda: describe_circuit(store().get(CIRCUIT_KEY), now, config),
    )


def before_call() -> Decision:
    config = _config()
    now = time.time()

    def decide() -> Decision:
        current = store().get(CIRCUIT_KEY)
        if not current or current.get("opened_at") is None:
            return Decision(go=True, since=current.get("since") if current else None)
        return store().change(CIRCUIT_KEY, lambda s: circuit_before(s, now, config))

    return _safely("circuit", Decision(go=True), decide)


def record_failure(what: str, error: str) -> None:
    config = _config()
    now = time.time()
    outcome = _safely(
        "circuit",
        "counted",
        lambda: store().change(CIRCUIT_KEY, lambda s: circuit_failed(s, now, error, config)),
    )
    if outcome == "opened":
        state = circuit_state(now)
        log.error(
            "Okta circuit opened after %d consecutive failures (%s): Okta work is paused",
            state.failures,
            error,
        )
        _audit(
            "okta.circuit_opened",
            {
                "unreachable_since": state.since,
                "failures": state.failures,
                "last_error": error[:300],
                "cooldown_seconds": config.cooldown,
                "call": what,
            },
        )


def record_success(decision: Decision) -> None:
    """Okta answered. Cheap when nothing failed before (no write)."""
    if decision.go and not decision.probe and decision.since is None:
        return
    now = time.time()
    episode = _safely(
        "circuit", None, lambda: store().change(CIRCUIT_KEY, lambda s: circuit_succeeded(s, now))
    )
    if episode:
        since = float(episode.get("since") or episode["opened_at"])
        log.warning("Okta circuit closed: Okta answers again (unreachable for %.0f s)", now - since)
        _audit(
            "okta.circuit_closed",
            {
                "unreachable_since": dt.datetime.fromtimestamp(since, dt.UTC),
                "opened_at": dt.datetime.fromtimestamp(float(episode["opened_at"]), dt.UTC),
                "unreachable_seconds": round(now - since, 1),
                "failures": int(episode.get("failures", 0)),
            },
        )


def _audit(action: str, payload: dict[str, Any]) -> None:
    """Once per episode (only the process whose change opened or closed the circuit)."""
    try:
        with transaction.atomic():
            audit.record(
                action, ("okta", settings.OKTA_ORG_URL), system="okta-circuit", payload=payload
            )
    except DatabaseError:
        log.exception("could not record %s in the audit log", action)


_background: ContextVar[bool] = ContextVar("okta_background", default=False)


@contextmanager
def background() -> Iterator[None]:
    """Okta calls made inside are background work (the reconciler): they yield to grants
    and removals (:func:`pace_take`) and never wait for a window: paced out at once."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def in_background() -> bool:
    return _background.get()


def pace(family: str) -> float:
    """Take a call from ``family``'s budget: 0 to go now, else seconds until the reset."""
    reserve = settings.OKTA_RATE_LIMIT_RESERVE
    now = time.time()
    quiet = in_background()
    return _safely(
        "pacer",
        0.0,
        lambda: store().change(
            f"rate:{family}", lambda s: pace_take(s, now, reserve, background=quiet)
        ),
    )


def family_limit(family: str) -> int | None:
    """The family's calls per minute as Okta's last answer said (None: not known)."""

    def read() -> int | None:
        state = store().get(f"rate:{family}")
        return int(state["limit"]) if state and state.get("limit") else None

    return _safely("pacer", None, read)


def observe(family: str, status: int | None, headers: Mapping[str, str] | None) -> None:
    now = time.time()
    seen = rate_headers(headers, now)
    if seen is None:
        return
    limit, remaining, reset = seen
    _safely(
        "pacer",
        None,
        lambda: store().change(
            f"rate:{family}",
            lambda s: pace_observe(s, now, limit, remaining, reset, status == 429),
            ttl=max(WINDOW_SECONDS * 2, reset - now + 5),
        ),
    )


def jitter(seconds: float = 1.0) -> float:
    return random.uniform(0.05, seconds)  # noqa: S311 -- spreading waiters, not a secret
