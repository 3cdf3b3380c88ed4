"""Configuration changes are audited: who became an approver or auditor, when, by whom;
privilege flags; the access plan's approval rules."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from portal.accounts import roles
from portal.core.access import APPROVERS, AUDITORS
from portal.core.errors import NotAllowed
from portal.models import AuditEvent
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def role_events(user):
    return list(
        AuditEvent.objects.filter(target_type="user", target_id=str(user.pk))
        .exclude(action="user.sessions_ended")  # tests/audit/test_who_may_act.py
        .order_by("seq")
        .values_list("action", "actor_label", "payload")
    )


class TestSetRoleCommand:
    def test_grant_and_revoke(self, engineer, capsys):
        call_command("set_role", "engineer", "approver")
        assert engineer.groups.filter(name=APPROVERS).exists()
        assert "engineer now holds the approver role." in capsys.readouterr().out
        call_command("set_role", "engineer", "approver", "--remove")
        assert not engineer.groups.filter(name=APPROVERS).exists()
        [(granted, by, payload), (revoked, _, _)] = role_events(engineer)
        assert (granted, revoked) == ("role.granted", "role.revoked")
        assert by.startswith("manage.py set_role (os user ")
        assert payload == {
            "user": "engineer",
            "group": APPROVERS,
            "role": "approver",
            "via": "manage.py set_role",
        }

    def test_nothing_to_do_records_nothing(self, approver, capsys):
        call_command("set_role", "approver1", "approver")
        assert "already held" in capsys.readouterr().out
        call_command("set_role", "approver1", "auditor", "--remove")
        assert "did not hold" in capsys.readouterr().out
        assert role_events(approver) == []

    def test_attributed_to_an_admin(self, engineer, admin_user):
        call_command("set_role", "engineer", "auditor", "--by", admin_user.username)
        [(_, by, _)] = role_events(engineer)
        assert by == admin_user.username

    def test_bad_input(self, engineer):
        with pytest.raises(CommandError, match="no portal user named 'nobody'"):
            call_command("set_role", "nobody", "approver")
        with pytest.raises(CommandError):
            call_command("set_role", "engineer", "king")


def test_auditors_cannot_grant_roles_even_as_superusers(engineer):
    boss = make_user("boss", "boss@example.com", AUDITORS)
    boss.is_superuser = True
    boss.save()
    with pytest.raises(NotAllowed):
        roles.grant_role(engineer, "approver", actor=boss)
    assert role_events(engineer) == []


class TestTheAdminUserPage:
    def change(self, client, user, groups, **flags):
        data = {
            "username": user.username,
            "email": user.email,
            "first_name": "",
            "last_name": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "groups": [g.pk for g in groups],
            **{k: "on" for k, v in {"is_active": True, **flags}.items() if v},
        }
        return client.post(reverse("admin:auth_user_change", args=[user.pk]), data)

    def test_group_changes_are_audited_with_the_admin_as_actor(
        self, admin_client, admin_user, engineer
    ):
        approvers = Group.objects.get_or_create(name=APPROVERS)[0]
        auditors = Group.objects.get_or_create(name=AUDITORS)[0]
        response = self.change(admin_client, engineer, [approvers, auditors])
        assert response.status_code == 302, response.context and response.context["errors"]
        assert [(a, by, p["group"]) for a, by, p in role_events(engineer)] == [
            ("role.granted", admin_user.username, APPROVERS),
            ("role.granted", admin_user.username, AUDITORS),
        ]
        self.change(admin_client, engineer, [auditors])
        assert role_events(engineer)[-1][0] == "role.revoked"
        assert role_events(engineer)[-1][2]["role"] == "approver"
        event = AuditEvent.objects.order_by("-seq").first()
        assert event.actor_id == admin_user.pk
        assert event.client_ip == "127.0.0.1"

    def test_privilege_flags_are_audited(self, admin_client, engineer):
        self.change(admin_client, engineer, [], is_staff=True)
        [(action, _, payload)] = role_events(engineer)
        assert action == "user.privileges_changed"
        assert payload["fields"] == {"is_staff": [False, True]}

    def test_saving_without_changes_records_nothing(self, admin_client, engineer):
        self.change(admin_client, engineer, [])
        assert role_events(engineer) == []

    def test_a_new_account_is_audited(self, admin_client, admin_user):
        response = admin_client.post(
            reverse("admin:auth_user_add"),
            {
                "username": "newbie",
                "password1": "a-long-enough-password-42",
                "password2": "a-long-enough-password-42",
                "usable_password": "true",
            },
        )
        assert response.status_code == 302, response.context and response.context["errors"]
        event = AuditEvent.objects.get(action="user.created")
        assert event.payload["user"] == "newbie"
        assert event.actor_label == admin_user.username

    def test_auditors_who_are_staff_cannot_change_users(self, client, engineer):
        boss = make_user("boss", "boss@example.com", AUDITORS)
        boss.is_staff = boss.is_superuser = True
        boss.save()
        client.force_login(boss)
        approvers = Group.objects.get_or_create(name=APPROVERS)[0]
        assert self.change(client, engineer, [approvers]).status_code == 403
        assert not engineer.groups.exists()
        assert role_events(engineer) == []


def test_approval_rules_changes_are_audited(admin_client, plan):
    """A level's approvals_required is plan data: an admin edit is a plan.changed event."""
    from tests.plan.test_admin import form_data

    ops = plan.levels["Ops"]
    url = reverse("admin:federation_level_change", args=[ops.pk])
    data = form_data(admin_client.get(url))
    data["approvals_required"] = 3
    assert admin_client.post(url, data).status_code == 302
    event = AuditEvent.objects.get(action="plan.changed")
    assert event.payload["fields"] == {"approvals_required": [2, 3]}


def test_granting_twice_records_once_and_revoking_twice_records_once(engineer):
    from portal.accounts import roles
    from portal.models import AuditEvent

    assert roles.grant_role(engineer, "approver") is True
    assert roles.grant_role(engineer, "approver") is False
    assert roles.revoke_role(engineer, "approver") is True
    assert roles.revoke_role(engineer, "approver") is False
    assert list(
        AuditEvent.objects.filter(action__startswith="role.").values_list("action", flat=True)
    ) == ["role.granted", "role.revoked"]
