# Issue 10 (defence in depth): the append-only guard has no escape hatch any more.
# 0003 let TRUNCATE through where a session set portal.allow_audit_truncate = on, and
# any session may set a custom setting. Now UPDATE, DELETE and TRUNCATE are refused,
# always; only the table's owner can drop or disable the triggers (tests do, as the
# owner, see tests/tampering.py). The runtime role lacks those privileges anyway
# (docs/security.md "Database roles").

from django.db import migrations

GUARD_SQL = """
CREATE OR REPLACE FUNCTION portal_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'portal_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Audit events are evidence and are never changed; see docs/audit.md.';
END;
$$;
"""

ESCAPE_SQL = """
CREATE OR REPLACE FUNCTION portal_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND coalesce(current_setting('portal.allow_audit_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'portal_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Audit events are evidence and are never changed; see docs/audit.md.';
END;
$$;
"""


def without_escape(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD_SQL, params=None)


def with_escape(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ESCAPE_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("portal", "0004_account_security"),
    ]

    operations = [
        migrations.RunPython(without_escape, with_escape, elidable=False),
    ]
