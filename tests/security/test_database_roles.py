"""Least-privilege database roles, on a real PostgreSQL (finding 3 of issue 10).

deploy/postgres/roles.sql creates an owner and a runtime role in a fresh database;
``manage.py migrate`` runs as the owner (DATABASE_OWNER_URL) and grants the runtime
role its privileges. Connected as the runtime role (DATABASE_URL), the application
writes audit events, but cannot UPDATE, DELETE or TRUNCATE them, cannot disable or
drop the append-only triggers, and the old ``portal.allow_audit_truncate`` escape
does nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import errors

ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.integration


def _url(db: dict, user: str, name: str) -> str:
    return f"postgres://{user}:pw-{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def roles() -> Iterator[SimpleNamespace]:
    if connection.vendor != "postgresql":
        pytest.fail("this test needs DATABASE_URL to be PostgreSQL")
    db = connection.settings_dict
    admin_url = _url(db, db["USER"], "postgres").replace(f":pw-{db['USER']}", "")
    if db.get("PASSWORD"):
        admin_url = admin_url.replace(f"{db['USER']}@", f"{db['USER']}:{db['PASSWORD']}@")
    suffix = uuid.uuid4().hex[:8]
    ns = SimpleNamespace(
        owner=f"eap_owner_{suffix}", app=f"eap_app_{suffix}", name=f"eap_roles_{suffix}"
    )
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{ns.name}"')
    try:
        created = subprocess.run(
            [
                "psql",
                admin_url.rsplit("/", 1)[0] + f"/{ns.name}",
                "-v",
                f"dbname={ns.name}",
                "-v",
                f"owner_role={ns.owner}",
                "-v",
                f"app_role={ns.app}",
                "-v",
                f"owner_password=pw-{ns.owner}",
                "-v",
                f"app_password=pw-{ns.app}",
                "-f",
                str(ROOT / "deploy" / "postgres" / "roles.sql"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        ns.app_url = _url(db, ns.app, ns.name)
        ns.owner_url = _url(db, ns.owner, ns.name)
        ns.env = {
            **os.environ,
            "DATABASE_URL": ns.app_url,
            "DATABASE_OWNER_URL": ns.owner_url,
        }
        migrated = _manage(ns.env, "migrate", "--noinput", "-v", "1")
        assert migrated.returncode == 0, migrated.stderr
        assert f"Granted the runtime role '{ns.app}'" in migrated.stdout
        wrote = _manage(
            ns.env,
            "shell",
            "-c",
            "from django.db import transaction\n"
            "from portal import audit\n"
            "with transaction.atomic():\n"
            "    audit.record('test.as_runtime_role', ('thing', 1))\n",
        )
        assert wrote.returncode == 0, wrote.stderr
        yield ns
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{ns.name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{ns.owner}"')
            admin.execute(f'DROP ROLE IF EXISTS "{ns.app}"')


def runtime_refuses(roles: SimpleNamespace, sql: str, error: type[Exception]) -> None:
    with psycopg.connect(roles.app_url, autocommit=True) as app, pytest.raises(error):
        app.execute(sql)


def test_the_schema_belongs_to_the_owner(roles):
    with psycopg.connect(roles.owner_url) as owner:
        owners = {
            row[0]
            for row in owner.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    assert owners == {roles.owner}


def test_the_runtime_role_appends_and_reads_the_audit_log(roles):
    with psycopg.connect(roles.app_url) as app:
        [(count,)] = app.execute(
            "SELECT count(*) FROM portal_auditevent WHERE action = 'test.as_runtime_role'"
        ).fetchall()
        [(writes,)] = app.execute(
            "SELECT has_table_privilege(current_user, 'requests_app_accessrequest', 'UPDATE')"
        ).fetchall()
    assert count == 1
    assert writes  # the rest of the application works as usual


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE portal_auditevent SET action = 'rewritten'",
        "DELETE FROM portal_auditevent",
        "TRUNCATE portal_auditevent CASCADE",
    ],
    ids=["update", "delete", "truncate"],
)
def test_the_runtime_role_cannot_change_audit_events(roles, sql):
    runtime_refuses(roles, sql, errors.InsufficientPrivilege)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only",
        "ALTER TABLE portal_auditevent DISABLE TRIGGER ALL",
        "DROP TRIGGER portal_auditevent_no_truncate ON portal_auditevent",
        "DROP FUNCTION portal_auditevent_refuse_change() CASCADE",
        "CREATE TABLE portal_sneaky (id int)",
    ],
    ids=["disable-row-trigger", "disable-all", "drop-trigger", "drop-function", "create"],
)
def test_the_runtime_role_cannot_touch_the_guard_or_the_schema(roles, sql):
    runtime_refuses(roles, sql, errors.InsufficientPrivilege)


def test_the_old_setting_is_no_escape(roles):
    with psycopg.connect(roles.app_url) as app:
        app.execute("SET portal.allow_audit_truncate = 'on'")
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute("TRUNCATE portal_auditevent CASCADE")


def test_not_even_the_owner_truncates_with_the_old_setting(roles):
    with psycopg.connect(roles.owner_url) as owner:
        owner.execute("SET portal.allow_audit_truncate = 'on'")
        with pytest.raises(errors.RestrictViolation, match="append-only"):
            owner.execute("TRUNCATE portal_auditevent CASCADE")
