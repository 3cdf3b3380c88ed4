"""The Celery app, and the retry policy every Okta-calling task shares."""

from __future__ import annotations

import os
import random

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than Okta's reset time."""
    from django.conf import settings

    cap = min(
        settings.GRANT_TASK_BACKOFF_MAX_SECONDS,
        settings.GRANT_TASK_BACKOFF_BASE_SECONDS * (2**retries),
    )
    delay = random.uniform(cap / 2, cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return round(delay, 3)
