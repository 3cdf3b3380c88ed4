"""The plan's eligibility and break-glass keys: validated, imported, exported, in the admin."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from federation.models import EmergencyAccount, Level, WorkloadAccount
from federation.plan import PlanError, export_plan, import_plan, parse_plan
from federation.readiness.checks import PASS, WARN, Run, check_eligibility
from portal.models import AuditEvent
from tests.plan.test_admin import form_data

pytestmark = pytest.mark.django_db

# The demo plan without its own eligibility (Ops: requesters = ["sre"]) and break-glass
# wait (RO: 2 minutes): these tests add and remove the keys themselves.
DEMO_TEXT = (
    (Path(settings.BASE_DIR) / "plans" / "demo.toml")
    .read_text()
    .replace('requesters = ["sre"]\n', "")
    .replace("break_glass_after_minutes = 2\n", "")
)

ELIGIBLE = (
    DEMO_TEXT.replace(
        'name = "prod-payments"\n',
        'name = "prod-payments"\nrequesters = ["sre", "payments"]\napprovers = ["sre-leads"]\n',
    ).replace(
        "approvals_required = 2\n",
        'approvals_required = 2\nrequesters = ["sre"]\nbreak_glass = true\n'
        "break_glass_after_minutes = 15\nbreak_glass_max_minutes = 45\n",
    )
    + '\n[okta_groups]\n"okta-sre" = "sre"\n"Okta Payments" = "payments"\n'
)


def test_keys_import_and_round_trip_through_export():
    import_plan(ELIGIBLE)
    account = WorkloadAccount.objects.get(name="prod-payments")
    assert (account.requesters, account.approvers) == (["sre", "payments"], ["sre-leads"])
    ops, ro = Level.objects.get(name="Ops"), Level.objects.get(name="RO")
    assert (ops.requesters, ops.break_glass, ops.break_glass_after_minutes) == (["sre"], True, 15)
    assert ops.break_glass_max_minutes == 45
    # Defaults: on for RO, off for Ops when the plan does not say.
    assert ro.break_glass and (ro.break_glass_after_minutes, ro.break_glass_max_minutes) == (30, 60)
    assert EmergencyAccount.objects.get().okta_groups == {
        "okta-sre": "sre",
        "Okta Payments": "payments",
    }
    exported = export_plan()
    data = tomllib.loads(exported)
    assert data["okta_groups"] == {"okta-sre": "sre", "Okta Payments": "payments"}
    assert data["workload_accounts"][1] == {"id": "222222222222", "name": "prod-data"}
    assert "break_glass" not in data["levels"][0]  # the default is not written out
    assert data["levels"][1]["break_glass"] is True
    assert not import_plan(exported).changed


def test_a_plan_without_the_keys_exports_as_before():
    import_plan(DEMO_TEXT)
    exported = export_plan()
    for key in ("requesters", "approvers", "break_glass", "okta_groups"):
        assert key not in exported
    assert not Level.objects.get(name="Ops").break_glass


def test_changing_eligibility_is_an_audited_update():
    import_plan(DEMO_TEXT)
    result = import_plan(ELIGIBLE)
    assert (
        "updated workload account 111111111111: requesters [] -> ['sre', 'payments'], "
        "approvers [] -> ['sre-leads']"
    ) in [str(c) for c in result.changes]
    event = AuditEvent.objects.filter(action="plan.imported").last()
    assert event is not None and "okta_groups" in str(event.payload["changes"])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            ELIGIBLE.replace('requesters = ["sre", "payments"]', 'requesters = "sre"'),
            'workload_accounts[1].requesters: must be a list of portal group names, e.g. ["sre"], '
            'got "sre"',
        ),
        (
            ELIGIBLE.replace('approvers = ["sre-leads"]', 'approvers = ["approvers"]'),
            "workload_accounts[1].approvers: must be a group other than the portal roles",
        ),
        (
            ELIGIBLE.replace('"okta-sre" = "sre"', '"okta-sre" = "Has Spaces"'),
            "okta_groups: must be a portal group name",
        ),
        (
            ELIGIBLE.replace('"okta-sre" = "sre"', '"okta-sre" = "auditors"'),
            "okta_groups: must be a group other than the portal roles",
        ),
        (
            ELIGIBLE.replace("break_glass = true", 'break_glass = "yes"'),
            'levels[2].break_glass: must be true or false, got "yes"',
        ),
        (
            ELIGIBLE.replace("break_glass_max_minutes = 45", "break_glass_max_minutes = 500"),
            "levels[2].break_glass_max_minutes: 500 is more than the level's max_duration_minutes",
        ),
        (
            ELIGIBLE.replace('requesters = ["sre"]\n', 'requesters = ["sre", "sre"]\n'),
            "levels[2].requesters: must be a list without repeats",
        ),
    ],
)
def test_bad_values_are_named_with_their_key_path(text, error):
    with pytest.raises(PlanError) as refused:
        parse_plan(text)
    assert any(line.startswith(error) for line in refused.value.errors), refused.value.errors


def test_eligibility_is_edited_in_the_admin(admin_client, plan):
    level = plan.levels["Ops"]
    url = reverse("admin:federation_level_change", args=[level.pk])
    data = form_data(admin_client.get(url))
    data.update(requesters='["sre"]', approvers="", break_glass="on")
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    level.refresh_from_db()
    assert (level.requesters, level.approvers, level.break_glass) == (["sre"], [], True)

    data.update(requesters='["approvers"]')
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "is a portal role" in response.content.decode()


def test_readiness_warns_while_the_plan_names_nobody(plan):
    run = Run(plan=None, failover=None)  # type: ignore[arg-type]
    check_eligibility(run)
    assert run.results[0].status == WARN
    assert "every user may request every role" in run.results[0].detail
    plan.levels["Ops"].approvers = ["sre-leads"]
    plan.levels["Ops"].save()
    run = Run(plan=None, failover=None)  # type: ignore[arg-type]
    check_eligibility(run)
    assert run.results[0].status == PASS
