"""manage.py import_plan / export_plan and federation.plan."""

from __future__ import annotations

import hashlib
import tomllib
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from federation.models import (
    EmergencyAccount,
    EmergencyRole,
    Failover,
    FailoverStatus,
    Level,
    WorkloadAccount,
)
from federation.plan import PlanError, export_plan, import_plan, parse_plan
from portal.models import AuditEvent
from requests_app.models import AccessRequest, Status

DEMO = Path(settings.BASE_DIR) / "plans" / "demo.toml"
DEMO_TEXT = DEMO.read_text()
EMERGENCY = "123456789012"

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def plan_file(tmp_path: Path, text: str, name: str = "plan.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def edited(*replacements: tuple[str, str], text: str = DEMO_TEXT) -> str:
    """The demo plan with each (old, new) replaced once; fails if `old` is not there."""
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def with_accounts(*accounts: tuple[str, str]) -> str:
    """The demo plan with its [[workload_accounts]] replaced by ``(id, name)`` pairs, in order."""
    head = DEMO_TEXT[: DEMO_TEXT.index("[[workload_accounts]]")]
    tail = DEMO_TEXT[DEMO_TEXT.index("[[levels]]") :]
    tables = "".join(
        f'[[workload_accounts]]\nid = "{account_id}"\nname = "{name}"\n\n'
        for account_id, name in accounts
    )
    return head + tables + tail


PAYMENTS = ("111111111111", "prod-payments")
DATA = ("222222222222", "prod-data")
WEB = ("333333333333", "prod-web")


def snapshot() -> dict[str, list[tuple]]:
    """Every plan row, for 'nothing changed' assertions."""
    return {
        "emergency": list(
            EmergencyAccount.objects.values_list("pk", "account_id", "saml_provider")
        ),
        "accounts": list(
            WorkloadAccount.objects.values_list(
                "pk", "number", "account_id", "name", "emergency_account_id"
            )
        ),
        "levels": list(
            Level.objects.values_list(
                "pk", "name", "policy_arn", "max_duration_minutes", "approvals_required", "position"
            )
        ),
        "roles": list(
            EmergencyRole.objects.values_list(
                "pk", "role_name", "okta_group_name", "workload_account_id", "level_id"
            )
        ),
        "audit": list(AuditEvent.objects.values_list("seq", flat=True)),
    }


def add_request(role: EmergencyRole) -> AccessRequest:
    """A finished request referring to ``role`` (history that must stay)."""
    user = get_user_model().objects.create_user("requester", "requester@example.com")
    failover = Failover.objects.create(
        opened_by=user, reason="drill", is_drill=True, status=FailoverStatus.CLOSED
    )
    return AccessRequest.objects.create(
        requester=user,
        role=role,
        failover=failover,
        justification="checking the payments database",
        ticket="INC-1",
        duration_minutes=30,
        status=Status.EXPIRED,
        okta_login=user.email,
    )


# --- the demo plan ------------------------------------------------------------------


def test_demo_plan_creates_exactly_the_plan():
    out = run("import_plan", str(DEMO))

    assert "imported (9 created)" in out
    emergency = EmergencyAccount.objects.get()
    assert (emergency.account_id, emergency.saml_provider) == (EMERGENCY, "Okta")
    assert list(WorkloadAccount.objects.values_list("number", "account_id", "name")) == [
        (1, "111111111111", "prod-payments"),
        (2, "222222222222", "prod-data"),
    ]
    assert list(
        Level.objects.values_list(
            "name", "policy_arn", "max_duration_minutes", "approvals_required", "position"
        )
    ) == [
        ("RO", "arn:aws:iam::aws:policy/ReadOnlyAccess", 240, 1, 1),
        ("Ops", "arn:aws:iam::aws:policy/job-function/SystemAdministrator", 120, 2, 2),
    ]
    roles = {
        (r.role_name, r.okta_group_name, r.workload_account.account_id, r.level.name)
        for r in EmergencyRole.objects.select_related("workload_account", "level")
    }
    assert roles == {
        (
            "EmergencyAccess_Role1_RO",
            "aws#EmergencyAccess_Role1_RO#123456789012",
            "111111111111",
            "RO",
        ),
        (
            "EmergencyAccess_Role1_Ops",
            "aws#EmergencyAccess_Role1_Ops#123456789012",
            "111111111111",
            "Ops",
        ),
        (
            "EmergencyAccess_Role2_RO",
            "aws#EmergencyAccess_Role2_RO#123456789012",
            "222222222222",
            "RO",
        ),
        (
            "EmergencyAccess_Role2_Ops",
            "aws#EmergencyAccess_Role2_Ops#123456789012",
            "222222222222",
            "Ops",
        ),
    }
    assert all(r.emergency_account == emergency for r in EmergencyRole.objects.all())

    event = AuditEvent.objects.get()
    assert (event.action, event.target_type, event.target_id) == (
        "plan.imported",
        "plan",
        EMERGENCY,
    )
    assert event.payload["sha256"] == hashlib.sha256(DEMO.read_bytes()).hexdigest()
    assert event.payload["source"] == str(DEMO)
    assert len(event.payload["changes"]) == 9
    assert {"action": "created", "kind": "level", "key": "Ops"}.items() <= event.payload["changes"][
        2
    ].items()


def test_second_import_changes_nothing():
    run("import_plan", str(DEMO))
    before = snapshot()

    out = run("import_plan", str(DEMO))

    assert out.strip() == f"{DEMO}: unchanged"
    assert snapshot() == before  # same rows, same ids, no second audit event


def as_demo_file(plan) -> None:
    """The demo file adds to the shared `plan` fixture what the demo shows (issue 14):
    Ops requested by the sre group only, PagerDuty's on-call rule, a short break-glass
    wait on RO."""
    ro = plan.levels["RO"]
    ro.break_glass_after_minutes = 2
    ro.save()
    ops = plan.levels["Ops"]
    ops.requesters, ops.oncall_schedule = ["sre"], "PSCHED1"
    ops.save()


def test_import_matches_the_fixture_plan(plan):
    """The shared `plan` fixture and the demo file describe the same plan."""
    as_demo_file(plan)
    before = snapshot()

    assert "unchanged" in run("import_plan", str(DEMO))
    assert snapshot() == before


def test_changed_file_updates_rows_in_place(tmp_path):
    run("import_plan", str(DEMO))
    before = snapshot()
    text = edited(
        ('name = "prod-data"', 'name = "prod-analytics"'),
        ("max_duration_minutes = 120", "max_duration_minutes = 60"),
        ("approvals_required = 2", "approvals_required = 1"),
        ("aws:policy/ReadOnlyAccess", "aws:policy/job-function/ViewOnlyAccess"),
    )

    out = run("import_plan", plan_file(tmp_path, text))

    assert "imported (3 updated)" in out
    assert "updated workload account 222222222222: name 'prod-data' -> 'prod-analytics'" in out
    assert "updated level Ops: max_duration_minutes 120 -> 60, approvals_required 2 -> 1" in out
    after = snapshot()
    # Same rows (ids), new values; roles untouched.
    assert [row[0] for row in after["accounts"]] == [row[0] for row in before["accounts"]]
    assert [row[0] for row in after["levels"]] == [row[0] for row in before["levels"]]
    assert after["roles"] == before["roles"]
    assert WorkloadAccount.objects.get(account_id="222222222222").name == "prod-analytics"
    ops = Level.objects.get(name="Ops")
    assert (ops.max_duration_minutes, ops.approvals_required) == (60, 1)
    assert Level.objects.get(name="RO").policy_arn.endswith("ViewOnlyAccess")

    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "plan.imported"
    assert event.payload["summary"] == "3 updated"
    assert {
        "action": "updated",
        "kind": "level",
        "key": "Ops",
        "fields": {"max_duration_minutes": [120, 60], "approvals_required": [2, 1]},
    } in event.payload["changes"]


def test_adding_then_removing_unused_accounts_and_levels(tmp_path):
    run("import_plan", str(DEMO))
    bigger = (
        DEMO_TEXT
        + '\n[[workload_accounts]]\nid = "333333333333"\nname = "prod-web"\n'
        + '\n[[levels]]\nname = "Admin"\npolicy = "arn:aws:iam::aws:policy/AdministratorAccess"\n'
        + "max_duration_minutes = 30\napprovals_required = 2\n"
    )

    out = run("import_plan", plan_file(tmp_path, bigger))

    assert "imported (7 created)" in out  # 1 account, 1 level, 5 roles
    assert EmergencyRole.objects.count() == 9
    assert EmergencyRole.objects.filter(role_name="EmergencyAccess_Role3_Admin").exists()
    assert Level.objects.get(name="Admin").position == 3

    out = run("import_plan", str(DEMO))

    assert "imported (7 removed)" in out
    assert EmergencyRole.objects.count() == 4
    assert not WorkloadAccount.objects.filter(account_id="333333333333").exists()
    assert not Level.objects.filter(name="Admin").exists()


def test_swapping_accounts_renames_their_roles(tmp_path):
    run("import_plan", str(DEMO))
    swapped = with_accounts(DATA, PAYMENTS)

    run("import_plan", plan_file(tmp_path, swapped))

    assert list(WorkloadAccount.objects.values_list("number", "account_id")) == [
        (1, "222222222222"),
        (2, "111111111111"),
    ]
    role = EmergencyRole.objects.select_related("workload_account").get(
        role_name="EmergencyAccess_Role1_RO"
    )
    assert role.workload_account.account_id == "222222222222"
    assert EmergencyRole.objects.count() == 4


def test_removing_a_role_with_requests_is_refused(tmp_path):
    run("import_plan", str(DEMO))
    add_request(EmergencyRole.objects.get(role_name="EmergencyAccess_Role2_RO"))
    before = snapshot()
    # Renames the first account (allowed on its own) and drops the second (not allowed).
    text = with_accounts(("111111111111", "payments"))

    with pytest.raises(CommandError) as refused:
        run("import_plan", plan_file(tmp_path, text))

    message = str(refused.value)
    assert "nothing changed" in message
    assert "cannot remove role EmergencyAccess_Role2_RO (prod-data / RO)" in message
    assert "1 access request refer to it" in message
    assert "workload account 222222222222 is no longer in the plan" in message
    assert "EmergencyAccess_Role2_Ops" not in message  # unused: could go
    assert snapshot() == before  # not even the rename


def test_moving_an_account_with_requests_is_refused(tmp_path):
    run("import_plan", str(DEMO))
    add_request(EmergencyRole.objects.get(role_name="EmergencyAccess_Role1_Ops"))
    text = with_accounts(WEB, DATA, PAYMENTS)
    before = snapshot()

    with pytest.raises(CommandError, match="moved from position 1 to 3, which renames its roles"):
        run("import_plan", plan_file(tmp_path, text))

    assert snapshot() == before


def test_import_is_refused_while_a_failover_is_open(open_failover, tmp_path):
    before = snapshot()

    with pytest.raises(CommandError) as refused:
        run("import_plan", str(DEMO))

    assert f"Failover #{open_failover.pk} is not closed" in str(refused.value)
    assert "cannot change during an emergency" in str(refused.value)
    assert snapshot() == before
    assert not EmergencyAccount.objects.exists()


def test_unchanged_plan_is_accepted_while_a_failover_is_open(plan, open_failover):
    """Nothing would change, so there is nothing to refuse (seed_demo re-runs mid-drill)."""
    as_demo_file(plan)
    assert "unchanged" in run("import_plan", str(DEMO))


def test_changed_plan_is_refused_while_closing(plan, approver, tmp_path):
    Failover.objects.create(opened_by=approver, reason="x", status=FailoverStatus.CLOSING)
    text = edited(('name = "prod-data"', 'name = "prod-analytics"'))

    with pytest.raises(CommandError, match=r"#\d+ is not closed"):
        run("import_plan", plan_file(tmp_path, text))


def test_changing_the_emergency_account_replaces_unused_roles(tmp_path):
    run("import_plan", str(DEMO))
    text = edited(('id = "123456789012"', 'id = "999999999999"'))

    run("import_plan", plan_file(tmp_path, text))

    assert list(EmergencyAccount.objects.values_list("account_id", flat=True)) == ["999999999999"]
    groups = set(EmergencyRole.objects.values_list("okta_group_name", flat=True))
    assert groups == {
        f"aws#EmergencyAccess_Role{n}_{level}#999999999999"
        for n in (1, 2)
        for level in ("RO", "Ops")
    }


# --- bad files ------------------------------------------------------------------------

BAD_FILES = {
    "toml syntax error": (
        edited(('saml_provider = "Okta"', 'saml_provider = "Okta')),
        "invalid TOML: ",
        "(at line 10, column 22)",
    ),
    "missing key": (
        edited(('saml_provider = "Okta"\n', "")),
        "emergency_account.saml_provider: is required",
    ),
    "missing table": (
        "\n".join(line for line in DEMO_TEXT.splitlines() if "emergency_account" not in line),
        "id: unknown key",
    ),
    "unknown key": (
        edited(("approvals_required = 1\n", 'approvals_required = 1\ncolour = "red"\n')),
        "levels[1].colour: unknown key",
    ),
    "unknown top-level key": ('owner = "sre"\n' + DEMO_TEXT, "owner: unknown key"),
    "11-digit account id": (
        edited(('id = "111111111111"', 'id = "11111111111"')),
        "workload_accounts[1].id: must be a 12-digit AWS account id in quotes, e.g. "
        '"111111111111", got "11111111111"',
    ),
    "account id as a number": (
        edited(('id = "222222222222"', "id = 222222222222")),
        "workload_accounts[2].id: must be a 12-digit AWS account id",
        "got 222222222222",
    ),
    "bad emergency id": (
        edited(('id = "123456789012"', 'id = "12345678901x"')),
        "emergency_account.id: must be a 12-digit",
    ),
    "bad policy ARN": (
        edited(("arn:aws:iam::aws:policy/job-function/", "arn:aws:iam:aws:policy/")),
        "levels[2].policy: must be a managed policy ARN",
    ),
    "duplicate workload id": (
        edited(('id = "222222222222"', 'id = "111111111111"')),
        'workload_accounts[2].id: "111111111111" is already used by workload_accounts[1]',
    ),
    "duplicate workload name": (
        edited(('name = "prod-data"', 'name = "prod-payments"')),
        'workload_accounts[2].name: "prod-payments" is already used by workload_accounts[1]',
    ),
    "duplicate level name": (
        edited(('name = "Ops"', 'name = "RO"')),
        'levels[2].name: "RO" is already used by levels[1]',
    ),
    "level names differing only in case": (
        edited(('name = "Ops"', 'name = "ro"')),
        "levels[2].name",
        "differ only in case",
    ),
    "bad level name": (
        edited(('name = "Ops"', 'name = "Ops-2"')),
        "levels[2].name: must be a level name of letters and digits",
    ),
    "zero duration": (
        edited(("max_duration_minutes = 240", "max_duration_minutes = 0")),
        "levels[1].max_duration_minutes: must be a positive integer (minutes), got 0",
    ),
    "negative approvals": (
        edited(("approvals_required = 2", "approvals_required = -1")),
        "levels[2].approvals_required: must be a positive integer, got -1",
    ),
    "duration as a string": (
        edited(("max_duration_minutes = 120", 'max_duration_minutes = "120"')),
        'levels[2].max_duration_minutes: must be a positive integer (minutes), got "120"',
    ),
    "approvals as a boolean": (
        edited(("approvals_required = 1", "approvals_required = true")),
        "levels[1].approvals_required: must be a positive integer, got true",
    ),
    "duration as a float": (
        edited(("max_duration_minutes = 240", "max_duration_minutes = 240.0")),
        "levels[1].max_duration_minutes: must be a positive integer (minutes), got 240.0",
    ),
    "table instead of array of tables": (
        edited(
            ("[[workload_accounts]]", "[workload_accounts]"),
            ('[[workload_accounts]]\nid = "222222222222"\nname = "prod-data"\n', ""),
        ),
        "workload_accounts: must be an array of tables: write each one as [[workload_accounts]]",
    ),
    "no levels": (
        "levels = []\n" + DEMO_TEXT[: DEMO_TEXT.index("[[levels]]")],
        "levels: must list at least one entry",
    ),
    "workload account is the emergency account": (
        edited(('id = "222222222222"', 'id = "123456789012"')),
        'workload_accounts[2].id: "123456789012" is the emergency account',
    ),
    "name with a newline": (
        edited(('name = "prod-data"', 'name = "prod\\ndata"')),
        "workload_accounts[2].name: must be a name of 1 to 64 characters",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_file_is_refused_naming_the_key_and_nothing_is_written(case, tmp_path):
    text, *expected = BAD_FILES[case]

    with pytest.raises(CommandError) as refused:
        run("import_plan", plan_file(tmp_path, text))

    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'plan.toml'}: not imported, nothing changed:")
    for part in expected:
        assert part in message
    assert snapshot() == {"emergency": [], "accounts": [], "levels": [], "roles": [], "audit": []}


def test_bad_file_leaves_an_existing_plan_alone(tmp_path):
    run("import_plan", str(DEMO))
    before = snapshot()
    text = edited(('name = "prod-data"', 'name = "analytics"'), ("= 240", "= 0"))

    with pytest.raises(CommandError, match=r"levels\[1\]\.max_duration_minutes"):
        run("import_plan", plan_file(tmp_path, text))

    assert snapshot() == before


def test_every_problem_is_reported_at_once():
    text = edited(
        ('id = "111111111111"', 'id = "1"'),
        ("max_duration_minutes = 120", "max_duration_minutes = 0"),
        ('saml_provider = "Okta"', 'saml_provider = "Okta"\nextra = 1'),
    )

    with pytest.raises(PlanError) as refused:
        parse_plan(text)

    assert [line.split(":")[0] for line in refused.value.errors] == [
        "emergency_account.extra",
        "workload_accounts[1].id",
        "levels[2].max_duration_minutes",
    ]


def test_unreadable_files(tmp_path):
    with pytest.raises(CommandError, match="cannot read the plan file"):
        run("import_plan", str(tmp_path / "missing.toml"))
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(DEMO_TEXT.replace("prod-data", "prod-d\xe9ta").encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        run("import_plan", str(latin1))


# --- export ---------------------------------------------------------------------------


def test_export_round_trips_the_demo_plan(tmp_path):
    run("import_plan", str(DEMO))

    exported = run("export_plan")

    assert tomllib.loads(exported) == tomllib.loads(DEMO_TEXT)
    assert parse_plan(exported) == parse_plan(DEMO_TEXT)
    assert exported == export_plan()
    assert "unchanged" in run("import_plan", plan_file(tmp_path, exported))


def test_export_escapes_names():
    name = 'prod "payments" \\ été'
    import_plan(edited(('name = "prod-payments"', r'name = "prod \"payments\" \\ été"')))
    assert WorkloadAccount.objects.get(number=1).name == name

    exported = export_plan()

    assert tomllib.loads(exported)["workload_accounts"][0]["name"] == name
    assert import_plan(exported).changed is False


def test_export_without_a_plan_fails():
    with pytest.raises(CommandError, match="no access plan in the database yet"):
        run("export_plan")


def test_export_refuses_gaps_in_account_numbers(plan):
    WorkloadAccount.objects.filter(number=2).update(number=3)

    with pytest.raises(CommandError, match=r"numbers are \[1, 3\], not 1..2"):
        run("export_plan")
