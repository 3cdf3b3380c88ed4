"""Rate limits, injected faults and latency: what makes the sandbox misbehave on purpose."""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

# Per-minute limits of each bucket; Okta's differ by plan, so tests can lower them.
DEFAULT_RATE_LIMITS = {"users": 600, "groups": 500, "apps": 100, "logs": 120, "default": 600}


@dataclass
class FaultRule:
    """Fail the next ``count`` requests whose method and path prefix match."""

    status: int
    path: str = "/api/v1/"
    method: str = "*"
    count: int = 1
    # 429 only: X-Rate-Limit-Reset is this many seconds after Date (the SDK waits reset-date+1).
    reset_in: int = 0
    # False drops Date and X-Rate-Limit-*: the okta SDK then raises instead of returning.
    rate_headers: bool = True

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in {"*", method} and path.startswith(self.path)


@dataclass
class RateStatus:
    limit: int
    remaining: int
    reset: int
    exceeded: bool


@dataclass
class _Bucket:
    reset: int = 0
    used: int = 0


class Throttle:
    """Per-bucket per-minute rate limits, fault rules and added latency (thread-safe)."""

    def __init__(
        self,
        rate_limits: dict[str, int] | None = None,
        latency_ms: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._base_rate_limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self._base_latency_ms = latency_ms
        self.clear()

    def clear(self) -> None:
        """No faults, configured latency and limits, fresh windows."""
        with self._lock:
            self._rules: list[FaultRule] = []
            self.latency_ms = self._base_latency_ms
            self.rate_limits = dict(self._base_rate_limits)
            self._buckets: dict[str, _Bucket] = {}

    def add(
        self,
        rules: Iterable[FaultRule] = (),
        *,
        latency_ms: int | None = None,
        rate_limits: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            self._rules.extend(rules)
            if latency_ms is not None:
                self.latency_ms = latency_ms
            if rate_limits:
                self.rate_limits.update(rate_limits)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            return {
                "latency_ms": self.latency_ms,
                "rules": [asdict(rule) for rule in self._rules if rule.count > 0],
                "rate_limits": dict(self.rate_limits),
                # The open windows: calls counted so far and when each resets (benchmarks
                # check that their set-up left the window they measure unused).
                "windows": {
                    bucket: {"used": state.used, "reset": state.reset}
                    for bucket, state in self._buckets.items()
                    if state.reset > now
                },
            }

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        """The first matching rule, consuming one of its ``count``."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    return copy.copy(rule)
            return None

    def take(self, bucket: str) -> RateStatus:
        """Count one request against ``bucket``'s window (none counted once exceeded)."""
        with self._lock:
            limit = self.rate_limits.get(bucket, self.rate_limits["default"])
            now = self._clock()
            state = self._buckets.setdefault(bucket, _Bucket())
            if now >= state.reset:
                state.reset, state.used = int(now) + 60, 0
            exceeded = state.used >= limit
            if not exceeded:
                state.used += 1
            return RateStatus(limit, max(0, limit - state.used), state.reset, exceeded)

    def peek(self, bucket: str) -> RateStatus:
        """The bucket's state without counting a request (for error responses)."""
        with self._lock:
            limit = self.rate_limits.get(bucket, self.rate_limits["default"])
            now = self._clock()
            state = self._buckets.get(bucket, _Bucket())
            live = state.reset > now
            used = state.used if live else 0
            reset = state.reset if live else int(now) + 60
            return RateStatus(limit, max(0, limit - used), reset, used >= limit)


class CallLog:
    """Every API call the sandbox answered: when it arrived, when it was answered, and how.

    Benchmarks read it (``GET /__sandbox__/calls``) to time grants at Okta, count
    calls per endpoint family and count 429s. Bounded, oldest dropped first.
    """

    def __init__(self, keep: int = 1_000_000) -> None:
        self._lock = threading.Lock()
        self._calls: deque[tuple[float, float, str, str, int]] = deque(maxlen=keep)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def record(self, received: float, answered: float, method: str, path: str, status: int) -> None:
        with self._lock:
            self._calls.append((received, answered, method, path, status))

    def calls(self, since: float = 0.0) -> list[tuple[float, float, str, str, int]]:
        with self._lock:
            return [call for call in self._calls if call[0] >= since]
