"""The Celery app, the one way to send a task, and the retry policy every Okta-calling
task shares."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from celery.signals import worker_init
from django.conf import settings
from django.db import transaction

from portal.core.preload import preload

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

log = logging.getLogger(__name__)

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _preload_before_fork(**_: Any) -> None:
    """Import in the worker's main process, before the pool forks, what each new child would
    otherwise pay for on its first task (``portal.core.preload``) -- and a worker just
    restarted after a crash would sit on its first grants for that long."""
    preload()


# Every task that calls Okta: redelivered when a worker dies mid-task (acks_late +
# reject_on_worker_lost), retried by the task itself with ``backoff_seconds``.
OKTA_TASK_POLICY: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,  # each task decides when to give up (or never, for removals)
}


def send_on_commit(
    name: str, args: Sequence[Any], *, on_failure: Callable[[Exception], None] | None = None
) -> None:
    """Send task ``name`` once the current transaction commits (at once outside one).

    By name, so that no module needs to import a ``tasks.py``: each app's ``queue.py``
    wraps this in one typed function per task. ``on_failure`` handles a broker that
    cannot take the message (else the error propagates to the caller of on_commit).
    """

    def send() -> None:
        try:
            app.send_task(name, list(args))
        except Exception as exc:
            if on_failure is None:
                raise
            log.exception("could not queue %s", name)
            on_failure(exc)

    transaction.on_commit(send)


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, never sooner than Okta's reset time (plus jitter)."""
    cap = min(
        settings.GRANT_TASK_BACKOFF_MAX_SECONDS,
        settings.GRANT_TASK_BACKOFF_BASE_SECONDS * (2**retries),
    )
    delay = random.uniform(cap / 2, cap)  # noqa: S311 -- retry jitter, not a secret
    if retry_after is not None:
        # After Okta's reset, spread out: tasks that all waited for the same reset would
        # otherwise hit the fresh window at once and exceed the limit again.
        spread = random.uniform(0, min(5.0, 1 + retry_after / 10))  # noqa: S311 -- jitter
        delay = max(delay, retry_after + spread)
    return round(delay, 3)
