"""Helpers for tests that play the attacker: change the audit log behind the portal's back.

On PostgreSQL the append-only triggers (portal migrations 0003, 0004) refuse UPDATE,
DELETE and TRUNCATE of audit events, always. Only the table's owner can disable them
(the runtime role cannot: docs/security.md "Database roles"); the tests connect as
the owner, and a test that simulates tampering disables them for the duration, as an
attacker holding the owner's credentials could.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

TABLE = "portal_auditevent"
ROW_TRIGGER = "portal_auditevent_append_only"
TRUNCATE_TRIGGER = "portal_auditevent_no_truncate"


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

    As the test database's owner, disable the TRUNCATE trigger for the whole test
    database; tests of the guard enable it again inside their own transaction
    (``truncate_guard_enabled``).
    """
    if not has_guard():
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRUNCATE_TRIGGER}")


@contextmanager
def truncate_guard_enabled() -> Iterator[None]:
    """The TRUNCATE trigger as production has it, inside the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRUNCATE_TRIGGER}")
    yield
