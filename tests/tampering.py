"""Helpers for tests that play the attacker: change the audit log behind the portal's back.

On PostgreSQL the append-only triggers (portal migration 0003) refuse UPDATE,
DELETE and TRUNCATE of audit events; a test that simulates tampering turns them
off for the duration, as an attacker with the table owner's rights could.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

TABLE = "portal_auditevent"
ROW_TRIGGER = "portal_auditevent_append_only"
TRUNCATE_GUC = "portal.allow_audit_truncate"


def has_guard() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def triggers_disabled() -> Iterator[None]:
    """Let UPDATE and DELETE through, on PostgreSQL, until the block ends."""
    if not has_guard():
        yield
        return
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # ALTER TABLE refuses while deferred foreign-key checks are pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {ROW_TRIGGER}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.in_atomic_block:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {ROW_TRIGGER}")
            if connection.in_atomic_block:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def allow_truncate_in_test_database() -> None:
    """Django's flush (transactional tests) truncates every table, audit log included.

    The guard lets TRUNCATE through where ``portal.allow_audit_truncate`` is on; set
    it as the test database's default so every session (this process, the Celery
    worker, the live server) can flush, and on this connection, already open.
    """
    if not has_guard():
        return
    name = connection.ops.quote_name(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER DATABASE {name} SET {TRUNCATE_GUC} = 'on'")
        cursor.execute(f"SET {TRUNCATE_GUC} = 'on'")
