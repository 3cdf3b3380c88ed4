"""Celery beat's scheduler: one scheduler, and beat's own heartbeat.

It schedules only while it holds a PostgreSQL advisory lock (session level, on beat's
database connection), so a second beat started by mistake stays a standby and schedules
nothing until the first one dies (its connection closes, the lock is free). Every few
seconds it records its heartbeat and checks the worker's (alerting approvers once per
silence: federation.monitor.machinery).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler
from django.db import DatabaseError, connection, transaction

from federation.monitor import machinery
from portal.core.scheduler import beat, beat_lock_name, lock_key

log = logging.getLogger(__name__)

# A standby beat looks for the lock this often (seconds).
STANDBY_POLL_SECONDS = 5.0
HEARTBEAT_EVERY_SECONDS = 5.0


class SingleBeatScheduler(PersistentScheduler):
    """Celery beat's scheduler, active only while it holds the beat advisory lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._holds_lock = False
        self._last_heartbeat = 0.0
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lock():
            return STANDBY_POLL_SECONDS
        self._heartbeat()
        return min(super().tick(*args, **kwargs), HEARTBEAT_EVERY_SECONDS)

    def _hold_lock(self) -> bool:
        if connection.vendor != "postgresql":
            return True
        try:
            with connection.cursor() as cursor:
                if self._holds_lock:
                    cursor.execute("SELECT 1")  # still connected: the lock is still ours
                else:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(beat_lock_name())])
                    self._holds_lock = bool(cursor.fetchone()[0])
                    if self._holds_lock:
                        log.info("beat: this scheduler holds the beat lock and schedules")
                    else:
                        log.info("beat: another beat holds the lock; standing by")
        except DatabaseError as exc:
            # The connection (and with it the lock) is gone: reconnect on the next tick.
            log.warning("beat: database unreachable, not scheduling: %s", exc)
            self._holds_lock = False
            connection.close()
        return self._holds_lock

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_EVERY_SECONDS:
            return
        try:
            with transaction.atomic():
                beat("beat")
            self._last_heartbeat = now
            machinery.check_and_alert()
        except DatabaseError as exc:
            log.warning("beat: could not record its heartbeat: %s", exc)
            self._holds_lock = False
            connection.close()
