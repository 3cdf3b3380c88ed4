"""Advisory locks for periodic work, and the machinery's heartbeats.

Celery beat runs with ``portal.beat.SingleBeatScheduler`` (one scheduler: the beat lock);
periodic sweeps also take a transaction-level advisory lock (``try_lock``), so two runs
that overlap anyway do the work once.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.db import connection
from django.utils import timezone

from portal.models import Heartbeat

log = logging.getLogger(__name__)


def beat_lock_name() -> str:
    """One scheduler per database and broker: the beats of one deployment share it."""
    return f"celery-beat:{settings.CELERY_BROKER_URL}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock named ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def try_lock(name: str) -> bool:
    """Take the transaction-level advisory lock ``name`` if free (True), else False at once.
    Outside PostgreSQL (SQLite tests: one process) always True."""
    if not connection.in_atomic_block:
        raise RuntimeError("try_lock must run inside a transaction")
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_key(name)])
        return bool(cursor.fetchone()[0])


def beat(name: str, detail: str = "") -> None:
    """Record a sign of life of ``name`` now."""
    Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": timezone.now(), "detail": detail[:254]}
    )
