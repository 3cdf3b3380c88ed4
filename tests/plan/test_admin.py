"""The admin: plan models editable (validated, audited) except during a failover;
failovers, requests, audit events and tokens read-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from federation.models import EmergencyRole, Failover, FailoverStatus, Level, WorkloadAccount
from portal import audit
from portal.models import ApiToken, AuditEvent, hash_token
from requests_app.models import AccessRequest, Approval, Status
from tests.conftest import give_authenticator

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "federation_emergencyaccount",
    "federation_workloadaccount",
    "federation_level",
    "federation_emergencyrole",
    "federation_failover",
    "requests_app_accessrequest",
    "portal_auditevent",
    "portal_apitoken",
    "auth_user",
]
READ_ONLY = {
    "federation_failover": Failover,
    "requests_app_accessrequest": AccessRequest,
    "portal_auditevent": AuditEvent,
    "portal_apitoken": ApiToken,
}
RAW_TOKEN = "eap_this-raw-token-must-never-show"


@pytest.fixture
def history(plan, engineer, approver, django_capture_on_commit_callbacks):
    """One of everything the read-only pages list."""
    failover = Failover.objects.create(
        opened_by=approver, reason="drill", is_drill=True, status=FailoverStatus.CLOSED
    )
    request = AccessRequest.objects.create(
        requester=engineer,
        role=plan.roles[("prod-payments", "RO")],
        failover=failover,
        justification="look at the payments queue",
        ticket="INC-7",
        duration_minutes=30,
        status=Status.EXPIRED,
        okta_login=engineer.email,
    )
    Approval.objects.create(request=request, approver=approver, comment="ok")
    token = ApiToken.objects.create(
        user=engineer, name="chatbot", token_hash=hash_token(RAW_TOKEN), hint=RAW_TOKEN[:8]
    )
    with transaction.atomic():
        audit.record("test.event", failover, actor=approver, payload={"note": "hello"})
    return {
        "federation_failover": failover,
        "requests_app_accessrequest": request,
        "portal_auditevent": AuditEvent.objects.get(),
        "portal_apitoken": token,
    }


def form_data(response: Any) -> dict[str, Any]:
    """The POST data of an admin change form as the page shows it."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            if value is None:
                continue
            if hasattr(value, "pk"):
                value = value.pk
            data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management.initial.get(name, 0)
        for form in formset.forms:
            add(form)
    return data


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_changelists_render_for_a_superuser(admin_client, history, changelist):
    response = admin_client.get(reverse(f"admin:{changelist}_changelist"))

    assert response.status_code == 200


@pytest.mark.parametrize("model", READ_ONLY)
def test_read_only_models_cannot_be_added_changed_or_deleted(admin_client, history, model):
    obj = history[model]
    count = READ_ONLY[model].objects.count()

    assert admin_client.get(reverse(f"admin:{model}_add")).status_code == 403
    page = admin_client.get(reverse(f"admin:{model}_change", args=[obj.pk]))
    assert page.status_code == 200  # viewable
    assert b'type="submit"' not in page.content.split(b'id="content-main"')[1].split(b"</form>")[0]
    assert admin_client.post(reverse(f"admin:{model}_change", args=[obj.pk]), {}).status_code == 403
    assert admin_client.post(reverse(f"admin:{model}_delete", args=[obj.pk])).status_code == 403
    bulk = admin_client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert bulk.status_code == 200  # the action is not offered: nothing happens
    assert READ_ONLY[model].objects.count() == count


def test_api_tokens_never_show_the_token_or_its_hash(admin_client, history):
    token = history["portal_apitoken"]
    pages = [
        admin_client.get(reverse("admin:portal_apitoken_changelist")),
        admin_client.get(reverse("admin:portal_apitoken_change", args=[token.pk])),
    ]

    for page in pages:
        assert b"chatbot" in page.content
        assert RAW_TOKEN.encode() not in page.content
        assert token.token_hash.encode() not in page.content


def test_audit_event_page_shows_the_payload(admin_client, history):
    event = history["portal_auditevent"]

    page = admin_client.get(reverse("admin:portal_auditevent_change", args=[event.pk]))

    assert b"&quot;note&quot;: &quot;hello&quot;" in page.content
    assert event.hash.encode() in page.content


def test_plan_change_is_saved_and_audited(admin_client, plan):
    ops = plan.levels["Ops"]
    url = reverse("admin:federation_level_change", args=[ops.pk])
    data = form_data(admin_client.get(url))
    data["max_duration_minutes"] = 60

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    ops.refresh_from_db()
    assert ops.max_duration_minutes == 60
    event = AuditEvent.objects.get(action="plan.changed")
    assert (event.target_type, event.target_id, event.actor_label) == (
        "level",
        str(ops.pk),
        "admin",
    )
    assert event.payload == {
        "via": "admin",
        "action": "updated",
        "model": "level",
        "object": "Ops",
        "fields": {"max_duration_minutes": [120, 60]},
    }


def test_plan_validation_errors_show_on_the_form(admin_client, plan):
    url = reverse("admin:federation_workloadaccount_add")
    data = {
        "emergency_account": plan.emergency.pk,
        "number": 3,
        "account_id": "12345",
        "name": "prod-web",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "An AWS account id is 12 digits." in response.content.decode()
    data.update(account_id="333333333333", number=2)
    response = admin_client.post(url, data)
    assert "Workload account with this Emergency account and Number already exists" in (
        response.content.decode()
    )
    assert not WorkloadAccount.objects.filter(name="prod-web").exists()
    assert not AuditEvent.objects.exists()


def test_admin_derives_role_names(admin_client, plan):
    level = Level.objects.create(
        name="Admin",
        policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
        max_duration_minutes=30,
        approvals_required=2,
        position=3,
    )
    account = plan.accounts["prod-data"]
    url = reverse("admin:federation_emergencyrole_add")

    response = admin_client.post(url, {"workload_account": account.pk, "level": level.pk})

    assert response.status_code == 302
    role = EmergencyRole.objects.get(level=level)
    assert role.role_name == "EmergencyAccess_Role2_Admin"
    assert role.okta_group_name == "aws#EmergencyAccess_Role2_Admin#123456789012"
    assert role.emergency_account == plan.emergency
    assert AuditEvent.objects.get(action="plan.changed").payload["action"] == "created"
    # The same pair again is refused with a form error, not a crash.
    again = admin_client.post(url, {"workload_account": account.pk, "level": level.pk})
    assert again.status_code == 200
    assert EmergencyRole.objects.filter(level=level).count() == 1


def test_identity_fields_are_fixed_once_created(admin_client, plan):
    account = plan.accounts["prod-payments"]
    url = reverse("admin:federation_workloadaccount_change", args=[account.pk])
    data = form_data(admin_client.get(url))
    assert "account_id" not in data and "number" not in data
    data.update(name="payments", account_id="999999999999", number=7)

    assert admin_client.post(url, data).status_code == 302

    account.refresh_from_db()
    assert (account.name, account.account_id, account.number) == (
        "payments",
        "111111111111",
        1,
    )


def test_plan_is_read_only_while_a_failover_is_open(admin_client, plan, open_failover):
    ops = plan.levels["Ops"]
    url = reverse("admin:federation_level_change", args=[ops.pk])

    page = admin_client.get(url)
    assert page.status_code == 200
    assert "is not closed: the access plan is read-only" in page.content.decode()
    assert "max_duration_minutes" not in form_data(page)  # shown, not editable

    response = admin_client.post(url, {"max_duration_minutes": 60, "policy_arn": ops.policy_arn})
    assert response.status_code == 403
    assert admin_client.post(reverse("admin:federation_level_add"), {}).status_code == 403
    delete = reverse(
        "admin:federation_workloadaccount_delete", args=[plan.accounts["prod-data"].pk]
    )
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse("admin:federation_emergencyrole_changelist"))
    assert "is not closed" in changelist.content.decode()

    ops.refresh_from_db()
    assert ops.max_duration_minutes == 120
    assert WorkloadAccount.objects.count() == 2
    assert not AuditEvent.objects.filter(action="plan.changed").exists()


def test_plan_save_rechecks_for_a_failover_opened_meanwhile(
    admin_client, plan, approver, monkeypatch
):
    """The permission check ran before the failover opened: the save is still refused."""
    from federation import admin as federation_admin

    ops = plan.levels["Ops"]
    url = reverse("admin:federation_level_change", args=[ops.pk])
    data = form_data(admin_client.get(url))
    data["max_duration_minutes"] = 60
    monkeypatch.setattr(federation_admin, "current_failover", lambda request: None)
    Failover.objects.create(opened_by=approver, reason="outage")

    response = admin_client.post(url, data)

    assert response.status_code == 403
    ops.refresh_from_db()
    assert ops.max_duration_minutes == 120


def test_admin_delete_of_unused_plan_rows_is_audited(admin_client, plan):
    role = plan.roles[("prod-data", "Ops")]

    response = admin_client.post(
        reverse("admin:federation_emergencyrole_delete", args=[role.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not EmergencyRole.objects.filter(pk=role.pk).exists()
    event = AuditEvent.objects.get(action="plan.changed")
    assert event.payload["action"] == "deleted"
    assert event.payload["object"] == "prod-data / Ops"


def test_staff_without_permissions_sees_nothing(client, plan):
    staff = get_user_model().objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    give_authenticator(staff)  # staff must have a second factor
    client.force_login(staff)

    response = client.get(reverse("admin:federation_level_changelist"))

    assert response.status_code == 403


def test_staff_auditors_cannot_change_the_plan(client, plan, auditor):
    """Auditors change nothing, even when someone also made them staff with every permission."""
    auditor.is_staff = True
    auditor.is_superuser = True
    auditor.save()
    client.force_login(auditor)
    level = plan.levels["RO"]
    url = reverse("admin:federation_level_change", args=[level.pk])
    assert client.get(url).status_code == 200  # they may look
    response = client.post(
        url,
        {
            "name": "RO",
            "policy_arn": level.policy_arn,
            "max_duration_minutes": 999,
            "approvals_required": 1,
            "position": 1,
        },
    )
    assert response.status_code == 403
    level.refresh_from_db()
    assert level.max_duration_minutes == 240
    assert client.post(reverse("admin:federation_level_add"), {}).status_code == 403
    delete = reverse("admin:federation_level_delete", args=[level.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Level.objects.filter(pk=level.pk).exists()
