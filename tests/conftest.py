"""Shared fixtures: named actors, the demo plan, an open failover, identity providers.

The integration harness (sandbox Okta org over HTTP, a real Celery worker on
Redis, PostgreSQL) lives in tests/harness.py and is loaded from here so unit,
integration and browser tests all share one set of names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
import uuid
from types import SimpleNamespace

import pytest
from allauth.account.internal.flows.login import (
    _AUTHENTICATION_METHODS_USER_SESSION_KEY,
    AUTHENTICATION_METHODS_SESSION_KEY,
)
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from federation.models import EmergencyAccount, EmergencyRole, Level, WorkloadAccount
from portal.core.access import APPROVERS, AUDITORS

pytest_plugins = ["tests.harness", "tests.web.auditor_fixtures"]

# The fixtures that start the portal's real processes on the shared broker: a test that
# uses one is an integration test, whatever its marks say (.ci/test runs those alone, after
# the rest has run on both cores).
REAL_PROCESS_FIXTURES = {"celery_worker_process", "processes"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if REAL_PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


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
def _own_okta_circuit(settings):
    """Okta's circuit and rate-limit budget live in the shared Redis: each test its own, so
    a test that opens the circuit does not pause the next one's Okta calls."""
    settings.OKTA_GUARD_KEY_PREFIX = f"okta-guard-test-{uuid.uuid4().hex}"


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


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings):
    """Rate limits live in the shared Redis cache: each test counts in its own namespace."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


# A second factor for the named actors whose role requires one (settings.MFA_REQUIRED_FOR).
TEST_TOTP_SECRET = "JBSWY3DPEHPK3PXP"


def totp_code(secret: str = TEST_TOTP_SECRET, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s): what an authenticator app shows now."""
    counter = int((time.time() if at is None else at) // 30)
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def give_authenticator(user, secret: str = TEST_TOTP_SECRET):
    """Give ``user`` a TOTP authenticator, as if they had set one up."""
    TOTP.activate(user, secret)
    return user


def stepped_up(session, user) -> None:
    """Record in ``session`` a second-factor authentication of ``user`` just now (step-up)."""
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "mfa", "type": "totp", "at": time.time(), "reauthenticated": True}
    ]
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)


@pytest.fixture(autouse=True)
def _test_logins_are_fresh(request, monkeypatch):
    """``client.login``/``force_login`` stand for a complete sign-in with a second factor
    a moment ago, so tests of other features act without the step-up page in between.
    Tests of sign-in and step-up themselves mark ``@pytest.mark.real_sign_in``."""
    if request.node.get_closest_marker("real_sign_in"):
        return
    original = Client._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        session = self.session
        stepped_up(session, user)
        session.save()

    monkeypatch.setattr(Client, "_login", _login)


def make_user(username: str, email: str, *groups: str, mfa: bool | None = None):
    """A user in ``groups``; approvers and auditors get an authenticator (MFA is mandatory)."""
    user = get_user_model().objects.create_user(
        username=username, email=email, password="demo-password-123"
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    if mfa if mfa is not None else bool({APPROVERS, AUDITORS} & set(groups)):
        give_authenticator(user)
    return user


@pytest.fixture
def admin_user(db, django_user_model, django_username_field):
    """pytest-django's superuser, with the second factor staff must have."""
    user = django_user_model._default_manager.create_superuser(
        **{django_username_field: "admin"}, email="admin@example.com", password="password"
    )
    return give_authenticator(user)


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
            break_glass=True,  # the plan's default for a read-only level
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
