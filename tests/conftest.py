"""Shared fixtures: named actors, the demo plan, an open failover, identity providers.

The integration harness (sandbox Okta org over HTTP, a real Celery worker on
Redis, PostgreSQL) lives in tests/harness.py and is loaded from here so unit,
integration and browser tests all share one set of names.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from federation.models import EmergencyAccount, EmergencyRole, Level, WorkloadAccount
from portal.core.access import APPROVERS, AUDITORS

pytest_plugins = ["tests.harness", "tests.web.auditor_fixtures"]

DEMO_LOGINS = [
    "engineer@example.com",
    "approver1@example.com",
    "approver2@example.com",
    "auditor@example.com",
    "oncall@example.com",
]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database lets Django's flush truncate the append-only audit log."""
    from tests.tampering import allow_truncate_in_test_database

    with django_db_blocker.unblock():
        allow_truncate_in_test_database()


@pytest.fixture(autouse=True)
def _no_shared_audit_checkpoints(settings):
    # Checkpoints left in PORTAL_VAR_DIR by another run would describe another database;
    # tests of checkpoints point AUDIT_CHECKPOINT_DIR at their own tmp_path.
    settings.AUDIT_CHECKPOINT_DIR = ""


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 with its production work factor would dominate every test's set-up.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_real_tasks_outside_integration(request, monkeypatch):
    """Only integration tests may publish to a broker; elsewhere a sent task is a bug."""
    if request.node.get_closest_marker("integration"):
        return
    from portal.celery import app

    def refuse(name, *args, **kwargs):
        raise AssertionError(
            f"a unit test sent the Celery task {name!r}; patch its queue.py function"
        )

    monkeypatch.setattr(app, "send_task", refuse)


def make_user(username: str, email: str, *groups: str):
    user = get_user_model().objects.create_user(
        username=username, email=email, password="demo-password-123"
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def engineer(db):
    return make_user("engineer", "engineer@example.com")


@pytest.fixture
def oncall(db):
    return make_user("oncall", "oncall@example.com")


@pytest.fixture
def approver(db):
    return make_user("approver1", "approver1@example.com", APPROVERS)


@pytest.fixture
def approver2(db):
    return make_user("approver2", "approver2@example.com", APPROVERS)


@pytest.fixture
def auditor(db):
    return make_user("auditor", "auditor@example.com", AUDITORS)


def build_plan(emergency_id: str = "123456789012") -> SimpleNamespace:
    emergency = EmergencyAccount.objects.create(account_id=emergency_id, saml_provider="Okta")
    accounts = {
        name: WorkloadAccount.objects.create(
            emergency_account=emergency, number=n, account_id=account_id, name=name
        )
        for n, (account_id, name) in enumerate(
            [("111111111111", "prod-payments"), ("222222222222", "prod-data")], start=1
        )
    }
    levels = {
        "RO": Level.objects.create(
            name="RO",
            policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess",
            max_duration_minutes=240,
            approvals_required=1,
            position=1,
        ),
        "Ops": Level.objects.create(
            name="Ops",
            policy_arn="arn:aws:iam::aws:policy/job-function/SystemAdministrator",
            max_duration_minutes=120,
            approvals_required=2,
            position=2,
        ),
    }
    roles = {}
    for account in accounts.values():
        for level in levels.values():
            role_name, group = EmergencyRole.names_for(account.number, level.name, emergency_id)
            roles[(account.name, level.name)] = EmergencyRole.objects.create(
                emergency_account=emergency,
                workload_account=account,
                level=level,
                role_name=role_name,
                okta_group_name=group,
            )
    return SimpleNamespace(emergency=emergency, accounts=accounts, levels=levels, roles=roles)


@pytest.fixture
def plan(db) -> SimpleNamespace:
    return build_plan()


@pytest.fixture
def open_failover(db, approver, django_capture_on_commit_callbacks):
    from federation.failover.services import open_failover as open_

    with django_capture_on_commit_callbacks(execute=False):
        return open_(actor=approver, reason="Identity Center is down in eu-west-1", drill=False)


@pytest.fixture
def fake_idp(settings, plan):
    """The in-memory identity provider, for unit tests of one unit only."""
    from federation.idp.memory import InMemoryIdentityProvider

    settings.IDENTITY_PROVIDER = "federation.idp.memory.InMemoryIdentityProvider"
    InMemoryIdentityProvider.reset()
    for login in DEMO_LOGINS:
        InMemoryIdentityProvider.add_user(login)
    for role in plan.roles.values():
        InMemoryIdentityProvider().ensure_group(role.okta_group_name)
    return InMemoryIdentityProvider()
