"""The plan's new keys: workload_trust, session_duration_seconds, saml_audiences.

Optional with defaults, validated with their key path, round-tripping through
export, edited in the admin with validation, frozen while a failover is open.
"""

from __future__ import annotations

import tomllib

import pytest

from federation.models import EmergencyAccount
from federation.plan import PlanError, export_plan, import_plan, parse_plan
from portal.models import AuditEvent

from .conftest import DEMO_TEXT

pytestmark = pytest.mark.django_db

MINIMAL_HEAD = '[emergency_account]\nid = "123456789012"\nsaml_provider = "Okta"\n'
REST = DEMO_TEXT[DEMO_TEXT.index("[[workload_accounts]]") :]


def test_keys_are_optional_with_safe_defaults():
    spec = parse_plan(MINIMAL_HEAD + "\n" + REST)

    assert spec.emergency_account.workload_trust == "emergency_role"
    assert spec.emergency_account.session_duration_seconds == 3600
    assert spec.emergency_account.saml_audiences == ["https://signin.aws.amazon.com/saml"]
    import_plan(MINIMAL_HEAD + "\n" + REST)
    emergency = EmergencyAccount.objects.get()
    assert (emergency.workload_trust, emergency.session_duration_seconds) == (
        "emergency_role",
        3600,
    )
    # The demo file states the defaults: importing it after the minimal one changes nothing.
    assert not import_plan(DEMO_TEXT).changed


def test_non_default_values_round_trip_through_export():
    head = (
        MINIMAL_HEAD + 'workload_trust = "account_root"\nsession_duration_seconds = 43200\n'
        'saml_audiences = ["https://eu-west-1.signin.aws.amazon.com/saml", '
        '"https://signin.aws.amazon.com/saml"]\n'
    )
    import_plan(head + "\n" + REST)

    exported = export_plan()
    assert tomllib.loads(exported)["emergency_account"] == {
        "id": "123456789012",
        "saml_provider": "Okta",
        "workload_trust": "account_root",
        "session_duration_seconds": 43200,
        "saml_audiences": [
            "https://eu-west-1.signin.aws.amazon.com/saml",
            "https://signin.aws.amazon.com/saml",
        ],
    }
    assert not import_plan(exported).changed


def test_changing_a_key_updates_in_place_and_is_audited():
    import_plan(DEMO_TEXT)

    result = import_plan(
        DEMO_TEXT.replace("session_duration_seconds = 3600", "session_duration_seconds = 7200")
    )

    assert [str(change) for change in result.changes] == [
        "updated emergency account 123456789012: session_duration_seconds 3600 -> 7200"
    ]
    event = AuditEvent.objects.filter(action="plan.imported").last()
    assert event.payload["changes"][0]["fields"] == {"session_duration_seconds": [3600, 7200]}


def test_changing_a_key_is_refused_while_a_failover_is_open(plan, open_failover):
    with pytest.raises(PlanError, match="cannot change during an emergency"):
        import_plan(DEMO_TEXT.replace('"emergency_role"', '"account_root"'))
    plan.emergency.refresh_from_db()
    assert plan.emergency.workload_trust == "emergency_role"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'workload_trust = "emergency_role"',
            'workload_trust = "role"',
            'emergency_account.workload_trust: must be "emergency_role" or "account_root", '
            'got "role"',
        ),
        (
            "session_duration_seconds = 3600",
            "session_duration_seconds = 600",
            "emergency_account.session_duration_seconds: must be seconds from 900 to 43200, "
            "got 600",
        ),
        (
            "session_duration_seconds = 3600",
            'session_duration_seconds = "3600"',
            "emergency_account.session_duration_seconds: must be seconds from 900 to 43200, "
            'got "3600"',
        ),
        (
            'saml_audiences = ["https://signin.aws.amazon.com/saml"]',
            'saml_audiences = ["https://evil.example.com/saml"]',
            "emergency_account.saml_audiences: must be a list of AWS sign-in SAML endpoints",
        ),
        (
            'saml_audiences = ["https://signin.aws.amazon.com/saml"]',
            "saml_audiences = []",
            "emergency_account.saml_audiences: must be a list of AWS sign-in SAML endpoints",
        ),
        (
            'saml_audiences = ["https://signin.aws.amazon.com/saml"]',
            'saml_audiences = ["https://signin.aws.amazon.com/saml", '
            '"https://signin.aws.amazon.com/saml"]',
            "emergency_account.saml_audiences: must be a list without repeats",
        ),
    ],
)
def test_bad_values_are_reported_with_their_key(old, new, message):
    assert old in DEMO_TEXT
    with pytest.raises(PlanError) as raised:
        parse_plan(DEMO_TEXT.replace(old, new))

    assert any(line.startswith(message) for line in raised.value.errors), raised.value.errors


# --- the admin --------------------------------------------------------------------------------


def change_form(emergency, **values):
    data = {
        "saml_provider": emergency.saml_provider,
        "workload_trust": emergency.workload_trust,
        "session_duration_seconds": emergency.session_duration_seconds,
        "saml_audiences": '["https://signin.aws.amazon.com/saml"]',
    }
    return data | values


def test_admin_edits_the_new_fields_with_validation(admin_client, plan):
    url = f"/admin/federation/emergencyaccount/{plan.emergency.pk}/change/"

    bad = admin_client.post(
        url,
        change_form(
            plan.emergency,
            session_duration_seconds="60",
            saml_audiences='["https://example.com/saml"]',
        ),
    )
    assert bad.status_code == 200
    page = bad.content.decode()
    assert "Ensure this value is greater than or equal to 900." in page
    assert "is not an AWS sign-in SAML endpoint" in page

    good = admin_client.post(
        url,
        change_form(
            plan.emergency,
            workload_trust="account_root",
            saml_audiences='["https://signin.aws.amazon.com/saml", '
            '"https://us-west-2.signin.aws.amazon.com/saml"]',
        ),
    )
    assert good.status_code == 302
    plan.emergency.refresh_from_db()
    assert plan.emergency.workload_trust == "account_root"
    assert len(plan.emergency.saml_audiences) == 2
    event = AuditEvent.objects.get(action="plan.changed")
    assert set(event.payload["fields"]) == {"workload_trust", "saml_audiences"}
    assert tomllib.loads(export_plan())["emergency_account"]["workload_trust"] == "account_root"


def test_admin_refuses_plan_changes_while_a_failover_is_open(admin_client, plan, open_failover):
    url = f"/admin/federation/emergencyaccount/{plan.emergency.pk}/change/"

    response = admin_client.post(url, change_form(plan.emergency, workload_trust="account_root"))

    assert response.status_code == 403
    plan.emergency.refresh_from_db()
    assert plan.emergency.workload_trust == "emergency_role"
