"""manage.py seed_demo: the demo plan, users and Okta groups; safe to run again."""

from __future__ import annotations

from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from federation.idp import IdpRetryableError
from federation.models import EmergencyRole
from portal.core.access import is_approver, is_auditor
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

USERS = {
    "engineer": ("engineer@example.com", {"sre"}),
    "oncall": ("oncall@example.com", {"sre"}),
    "contractor": ("contractor@example.com", set()),
    "approver1": ("approver1@example.com", {"approvers"}),
    "approver2": ("approver2@example.com", {"approvers"}),
    "auditor": ("auditor@example.com", {"auditors"}),
    "admin": ("admin@example.com", set()),
}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def state() -> dict:
    user_model = get_user_model()
    return {
        "users": sorted(
            user_model.objects.values_list(
                "pk", "username", "email", "is_staff", "is_superuser", "is_active"
            )
        ),
        "memberships": sorted(
            user_model.groups.through.objects.values_list("user__username", "group__name")
        ),
        "groups": sorted(Group.objects.values_list("name", flat=True)),
        "emails": sorted(
            EmailAddress.objects.values_list("user__username", "email", "verified", "primary")
        ),
        "roles": sorted(EmergencyRole.objects.values_list("pk", "role_name", "okta_group_id")),
        "audit": AuditEvent.objects.count(),
    }


def test_seed_demo_without_okta_is_idempotent():
    out = seed("--no-okta")

    user_model = get_user_model()
    for username, (email, groups) in USERS.items():
        user = user_model.objects.get(username=username)
        assert user.email == email
        assert set(user.groups.values_list("name", flat=True)) == groups
        assert user.check_password("demo-password-123")
        address = EmailAddress.objects.get(user=user)
        assert (address.email, address.verified, address.primary) == (email, True, True)
    admin = user_model.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not user_model.objects.get(username="approver1").is_staff
    assert is_approver(user_model.objects.get(username="approver2"))
    assert is_auditor(user_model.objects.get(username="auditor"))
    assert EmergencyRole.objects.count() == 4
    assert AuditEvent.objects.filter(action="plan.imported").count() == 1
    assert "Access plan demo.toml: 9 created" in out
    assert "Okta: skipped (--no-okta)" in out
    assert "engineer   engineer@example.com     created" in out
    assert "Demo logins (password 'demo-password-123'" in out
    first = state()

    again = seed("--no-okta")

    assert state() == first
    assert "Access plan demo.toml: unchanged" in again
    for username in USERS:
        assert f"{username:<10} {USERS[username][0]:<24} unchanged" in again


def test_seed_demo_repairs_drifted_users():
    seed("--no-okta")
    user_model = get_user_model()
    engineer = user_model.objects.get(username="engineer")
    engineer.email = "someone@else.example"
    engineer.is_active = False
    engineer.save()
    engineer.groups.add(Group.objects.get(name="approvers"))
    EmailAddress.objects.filter(user=engineer).update(verified=False)

    out = seed("--no-okta", "--password", "another-password-456")

    engineer.refresh_from_db()
    assert engineer.email == "engineer@example.com"
    assert engineer.is_active
    assert set(engineer.groups.values_list("name", flat=True)) == {"sre"}  # approvers gone
    assert engineer.check_password("another-password-456")
    assert EmailAddress.objects.get(user=engineer, email="engineer@example.com").verified
    assert EmailAddress.objects.get(user=engineer, email="engineer@example.com").primary
    assert "engineer   engineer@example.com     updated" in out
    assert "Demo logins (password 'another-password-456'" in out


def test_seed_demo_ensures_groups_and_assigns_them_to_the_app(fake_idp, settings):
    app_id = settings.OKTA_AWS_APP_ID
    assert fake_idp.list_app_group_ids(app_id) == []

    out = seed()

    roles = list(EmergencyRole.objects.all())
    assert len(roles) == 4
    group_ids = {fake_idp.find_group(role.okta_group_name).id for role in roles}
    assert set(fake_idp.list_app_group_ids(app_id)) == group_ids
    assert {role.okta_group_id for role in roles} == group_ids  # cached on the role
    assert f"aws#EmergencyAccess_Role1_RO#123456789012 ({roles[0].okta_group_id})" in out
    assert out.count("now assigned to the app") == 4
    assert fake_idp.get_app(app_id).status == "INACTIVE"  # seeding never turns it on
    first = state()

    again = seed()

    assert state() == first
    assert sorted(fake_idp.list_app_group_ids(app_id)) == sorted(group_ids)
    assert again.count(": present, assigned to the app") == 4


def test_seed_demo_creates_missing_groups(fake_idp, settings):
    from federation.idp.memory import InMemoryIdentityProvider

    InMemoryIdentityProvider.reset()  # an org without the emergency groups

    seed()

    for role in EmergencyRole.objects.all():
        group = fake_idp.find_group(role.okta_group_name)
        assert group.id in fake_idp.list_app_group_ids(settings.OKTA_AWS_APP_ID)
        assert fake_idp.list_group_members(group.id) == []


def test_seed_demo_reports_okta_failures(fake_idp):
    fake_idp.fail_next("list_app_group_ids", IdpRetryableError("503 from Okta", status=503))

    with pytest.raises(CommandError, match=r"503 from Okta.*pass --no-okta"):
        seed()


def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="PORTAL_ENV=production"):
        seed("--no-okta")

    assert not get_user_model().objects.exists()
