"""The Okta side of readiness, through the identity-provider port (the in-memory fake)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from federation.idp import IdpPermanentError, IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider as Org
from federation.readiness import checks as readiness
from federation.readiness.checks import FAIL, PASS, UNKNOWN, WARN
from portal.models import AuditEvent

from .test_readiness_aws import find, not_passing

pytestmark = pytest.mark.django_db

RO1 = "aws#EmergencyAccess_Role1_RO#123456789012"
OPS2 = "aws#EmergencyAccess_Role2_Ops#123456789012"
APP = "app 0oasandboxawsfed01"


def okta_results():
    return readiness.run_checks(aws=False)


def test_prepared_org_passes(plan, okta_ready):
    found = okta_results()

    assert not_passing(found) == []
    assert find(found, "okta.app", APP).detail == (
        "'AWS Account Federation' is a SAML 2.0 AWS Account Federation app."
    )
    assert find(found, "okta.app_status", APP).detail == (
        "Deactivated, as it must be in normal times."
    )


def test_app_active_without_a_failover(plan, okta_ready, settings):
    okta_ready.activate_app(settings.OKTA_AWS_APP_ID)

    status = find(okta_results(), "okta.app_status", APP)

    assert status.status == FAIL
    assert status.detail.startswith("The federation app is ACTIVE while no failover is open")
    assert status.fix.startswith("Deactivate the app in Okta")


def test_group_with_members_without_a_failover(plan, okta_ready):
    group = okta_ready.find_group(RO1)
    for login in ("oncall@example.com", "engineer@example.com"):
        okta_ready.add_group_member(group.id, okta_ready.find_user(login).id)

    members = find(okta_results(), "okta.group_members", RO1)

    assert members.status == FAIL
    assert members.detail == (
        f"{RO1} has 2 member(s) while no failover is open (engineer@example.com, "
        "oncall@example.com): they keep emergency access the moment the app is activated."
    )


def test_during_an_open_failover_members_and_an_active_app_are_expected(
    plan, okta_ready, open_failover, settings
):
    okta_ready.activate_app(settings.OKTA_AWS_APP_ID)
    group = okta_ready.find_group(RO1)
    okta_ready.add_group_member(group.id, okta_ready.find_user("oncall@example.com").id)

    found = okta_results()

    assert not_passing(found) == []
    assert find(found, "okta.group_members", RO1).detail.startswith("1 member(s) during Failover")


def test_open_failover_with_the_app_still_inactive_warns(plan, okta_ready, open_failover):
    status = find(okta_results(), "okta.app_status", APP)

    assert status.status == WARN
    assert "emergency sign-in does not work" in status.detail


def test_missing_group_unassigned_group_and_wrong_group_type(plan, okta_ready, settings):
    # Role1_RO's group is gone; Role2_Ops's group is not assigned to the app.
    Org._groups.pop(okta_ready.find_group(RO1).id)
    Org._app_groups[settings.OKTA_AWS_APP_ID].remove(okta_ready.find_group(OPS2).id)

    found = okta_results()

    missing = find(found, "okta.group", RO1)
    assert missing.status == FAIL
    assert missing.detail == (
        f"The group {RO1} does not exist: EmergencyAccess_Role1_RO cannot be granted."
    )
    assert "verify_readiness --fix" in missing.fix
    assert not [r for r in found if r.subject == RO1 and r.name == "okta.group_assigned"]
    unassigned = find(found, "okta.group_assigned", OPS2)
    assert unassigned.status == FAIL
    assert "is not assigned to the federation app" in unassigned.detail


def test_group_that_is_not_an_okta_group(plan, fake_idp, settings):
    Org._groups.pop(fake_idp.find_group(RO1).id)
    pushed = Org.add_group(RO1, "APP_GROUP")
    for group in Org._groups.values():
        fake_idp.assign_group_to_app(settings.OKTA_AWS_APP_ID, group.id)

    result = find(okta_results(), "okta.group", RO1)

    assert result.status == FAIL
    assert result.detail.startswith(f"{RO1} is an APP_GROUP group")
    assert pushed.type == "APP_GROUP"


def test_fix_creates_and_assigns_missing_groups_and_audits_it(plan, okta_ready, settings):
    Org._groups.pop(okta_ready.find_group(RO1).id)
    Org._app_groups[settings.OKTA_AWS_APP_ID].remove(okta_ready.find_group(OPS2).id)

    done = readiness.fix_okta_groups(okta_results())

    assert done == [
        f"created the Okta group {RO1}",
        f"assigned {RO1} to the federation app 0oasandboxawsfed01",
        f"assigned {OPS2} to the federation app 0oasandboxawsfed01",
    ]
    assert not_passing(okta_results()) == []
    events = list(AuditEvent.objects.values_list("action", "target_id"))
    assert events == [
        ("readiness.okta_group_created", RO1),
        ("readiness.okta_group_assigned", RO1),
        ("readiness.okta_group_assigned", OPS2),
    ]


def test_fix_leaves_a_group_of_another_type_alone(plan, fake_idp):
    Org._groups.pop(fake_idp.find_group(RO1).id)
    Org.add_group(RO1, "APP_GROUP")

    done = readiness.fix_okta_groups(okta_results())

    assert all(RO1 not in line for line in done)
    assert fake_idp.find_group(RO1).type == "APP_GROUP"


def test_app_settings_drift(plan, okta_ready):
    Org.set_app_settings(
        sessionDuration=7200,
        roleValuePattern="arn:aws:iam::${accountid}:saml-provider/Okta,"
        "arn:aws:iam::${accountid}:role/Other_${role}",
        appFilter="okta, active_directory",
    )

    found = okta_results()

    duration = find(found, "okta.session_duration", APP)
    assert (duration.status, duration.detail) == (
        FAIL,
        "SessionDuration is 7200, the plan says 3600 seconds.",
    )
    mapping = find(found, "okta.group_role_mapping", RO1)
    assert mapping.status == FAIL
    assert mapping.detail == (
        "maps to arn:aws:iam::123456789012:role/Other_EmergencyAccess_Role1_RO, not "
        "arn:aws:iam::123456789012:role/EmergencyAccess_Role1_RO"
    )
    assert find(found, "okta.app_filter", APP).status == WARN


def test_group_filter_that_no_longer_matches(plan, okta_ready):
    Org.set_app_settings(groupFilter=r"^aws_(?{{accountid}}\d+)_(?{{role}}[\w\-]+)$")

    mapping = find(okta_results(), "okta.group_role_mapping", RO1)

    assert mapping.status == FAIL
    assert mapping.detail.startswith("does not match the Group Filter ^aws_")


def test_group_mapping_off(plan, okta_ready):
    Org.set_app_settings(useGroupMapping=False)

    result = find(okta_results(), "okta.group_mapping", APP)

    assert result.status == FAIL
    assert "Use Group Mapping is off" in result.detail


def test_session_longer_than_the_roles_allow(plan, okta_ready, aws):
    plan.emergency.session_duration_seconds = 7200
    plan.emergency.save()
    Org.set_app_settings(sessionDuration=7200)

    duration = find(readiness.run_checks(), "okta.session_duration", APP)

    # The seeded roles allow 3600 s: AWS would refuse a 2-hour SAML session.
    assert duration.status == FAIL
    assert "exceeds the MaxSessionDuration" in duration.detail


def test_wrong_app(plan, okta_ready):
    Org.set_app(name="salesforce", sign_on_mode="SAML_2_0")

    result = find(okta_results(), "okta.app", APP)

    assert result.status == FAIL
    assert "it is a 'salesforce' app, not Okta's 'amazon_aws'" in result.detail


def test_missing_app(plan, okta_ready, settings):
    settings.OKTA_AWS_APP_ID = "0oanothere"

    found = okta_results()

    assert find(found, "okta.credentials").status == PASS
    assert find(found, "okta.app").status == FAIL
    assert [r.name for r in found] == ["okta.credentials", "okta.app"]


def test_refused_credentials_fail_and_nothing_else_is_claimed(plan, okta_ready):
    Org.fail_next(
        "get_app", IdpPermanentError("get app: 401 E0000011", status=401, code="E0000011")
    )

    found = okta_results()

    assert [(r.name, r.status) for r in found] == [("okta.credentials", FAIL)]
    assert "Okta refused the portal's credentials" in found[0].detail
    assert "OKTA_API_TOKEN" in found[0].fix


def test_okta_unreachable_is_could_not_check(plan, okta_ready):
    Org.fail_next("get_app", IdpRetryableError("get app: no answer from Okta"))

    found = okta_results()

    assert [(r.name, r.status) for r in found] == [("okta.credentials", UNKNOWN)]


def test_a_failing_group_read_is_unknown_for_that_group_only(plan, okta_ready):
    Org.fail_next("list_group_members", IdpRetryableError("429", status=429))

    found = okta_results()

    assert find(found, "okta.group_members", RO1).status == UNKNOWN
    assert find(found, "okta.group", RO1).status == PASS
    assert {r.status for r in found if r.subject == OPS2} == {PASS}


def test_rate_limit_headroom(plan, okta_ready):
    Org.set_rate_limit("groups", 500, 20)

    found = okta_results()

    low = find(found, "okta.rate_limit", "rate limit: groups")
    assert low.status == WARN
    assert low.detail.startswith("20 of 500 requests left this minute.")
    assert find(found, "okta.rate_limit", "rate limit: apps").status == PASS


def test_without_a_plan_nothing_can_be_checked(db):
    found = readiness.run_checks()

    assert [(r.name, r.status) for r in found] == [("plan", UNKNOWN)]
    assert found[0].fix == "Import the access plan (manage.py import_plan FILE)."


def test_proposed_failover_counts_as_normal_times(plan, okta_ready, approver, settings):
    from federation.models import Failover

    Failover.objects.create(opened_by=approver, reason="maybe down", status="proposed")
    okta_ready.activate_app(settings.OKTA_AWS_APP_ID)

    assert find(okta_results(), "okta.app_status", APP).status == FAIL


def test_command_fix_prints_what_it_did(plan, okta_ready, capsys):
    Org._groups.pop(okta_ready.find_group(RO1).id)

    with pytest.raises(SystemExit) as exited:
        call_command("verify_readiness", "--okta-only", "--fix")

    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert f"fixed: created the Okta group {RO1}" in out
    assert "Readiness: pass" in out
