"""The database's two roles (docs/security.md "Database roles").

The owner role (``DATABASE_OWNER_URL``) owns the schema: ``manage.py migrate`` runs
as it. The runtime role (``DATABASE_URL``) is what the web, worker and beat processes
connect as: it reads and writes the application's tables but cannot change the
schema, and on the audit log it may only INSERT and SELECT — no UPDATE, DELETE,
TRUNCATE, no ALTER (so it cannot disable the append-only triggers either).

After every migration the owner grants the runtime role exactly that (new tables
included), so the grants never drift from the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

OWNER_ALIAS = "owner"
AUDIT_TABLE = "portal_auditevent"


def runtime_role(runtime: Mapping[str, Any], owner: Mapping[str, Any]) -> str | None:
    """The runtime role's name, or None when both connect as the same role."""
    user = runtime.get("USER") or ""
    return user if user and user != owner.get("USER") else None


def grant_runtime_role(connection: BaseDatabaseWrapper, role: str) -> None:
    """As the owner: the runtime role's privileges, audit log append-only."""
    if connection.vendor != "postgresql":
        return
    quoted = connection.ops.quote_name(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
        f"REVOKE UPDATE, DELETE ON {AUDIT_TABLE} FROM {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
