# Issue 5 (auditors): indexes for the auditors' request history (portal/history.py),
# measured with bench/bench_auditor_history.py. Only these operations.
#
# PostgreSQL only, and outside the model state on purpose: SQLite (the demo) cannot
# index NULLS LAST, and trigram indexes need PostgreSQL's pg_trgm. The demo's few
# rows need no index.

from django.db import migrations

# History sorts by "granted" / "ended" newest first with the never-granted rows last.
SORT_INDEXES = {
    "req_activated_idx": "activated_at DESC NULLS LAST, id DESC",
    "req_ended_idx": "ended_at DESC NULLS LAST, id DESC",
}
# The free-text filter is Django's icontains, which PostgreSQL runs as
# UPPER(col::text) LIKE UPPER('%...%'): trigram indexes on exactly that expression
# serve it. pg_trgm is a trusted extension (the database owner may create it); where
# it cannot be created these are skipped and the filter scans, still correct.
TRGM_INDEXES = {
    "req_justification_trgm": "justification",
    "req_ticket_trgm": "ticket",
}
TABLE = "requests_app_accessrequest"


def add_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    from django.db import DatabaseError, transaction

    for name, columns in SORT_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({columns})")
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        print(f"\n  pg_trgm unavailable ({exc}); the history's text filter will scan.")
        return
    for name, column in TRGM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in [*SORT_INDEXES, *TRGM_INDEXES]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('requests_app', '0002_grant_extensions'),
    ]

    operations = [
        migrations.RunPython(add_indexes, drop_indexes),
    ]
