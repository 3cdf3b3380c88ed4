"""The database under contention and outages: transparent retries of a service
transaction that lost a deadlock or serialisation race, and a clear 503 when PostgreSQL
is unreachable (docs/reliability.md)."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# PostgreSQL's SQLSTATEs of a transaction that lost a race and may simply run again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
RETRY_ATTEMPTS = 5


def is_retryable(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_on_conflict(func: F) -> F:
    """Run ``func`` (one whole transaction) again when PostgreSQL aborted it for a deadlock
    or a serialisation failure. Inside an outer transaction nothing can be retried here:
    the error goes to whoever owns the transaction."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            if connection.in_atomic_block:
                return func(*args, **kwargs)
            try:
                return func(*args, **kwargs)
            except DatabaseError as exc:
                if not is_retryable(exc) or attempt == RETRY_ATTEMPTS:
                    raise
                log.warning("%s lost a race (%s); running it again", func.__qualname__, exc)
                time.sleep(random.uniform(0.01, 0.05 * attempt))  # noqa: S311 -- jitter
        raise AssertionError("unreachable")

    return wrapper  # type: ignore[return-value]


UNAVAILABLE_TEXT = (
    "The portal cannot reach its database right now. Nothing you did was lost or half-done; "
    "try again in a minute. If you need emergency access now, follow the paper runbook."
)


class DatabaseUnavailableMiddleware:
    """PostgreSQL down or restarting: answer 503 with a clear page, never a traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError) or is_retryable(exception):
            return None
        log.error("database unavailable: %s", exception)
        # A broken connection is dropped so the next request opens a fresh one.
        connection.close_if_unusable_or_obsolete()
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"detail": UNAVAILABLE_TEXT, "code": "database_unavailable"}, status=503
            )
        else:
            response = HttpResponse(
                "<!doctype html><title>Portal unavailable</title>"
                f"<h1>The portal is briefly unavailable</h1><p>{UNAVAILABLE_TEXT}</p>",
                status=503,
                content_type="text/html",
            )
        response["Retry-After"] = "30"
        return response
