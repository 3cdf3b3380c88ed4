"""The plan's on-call keys: validated with their key path, imported, exported."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from django.conf import settings

from federation.models import Level
from federation.plan import PlanError, export_plan, import_plan

pytestmark = pytest.mark.django_db

DEMO_TEXT = (Path(settings.BASE_DIR) / "plans" / "demo.toml").read_text()


def with_ro(extra: str) -> str:
    return DEMO_TEXT.replace("approvals_required = 1\n", f"approvals_required = 1\n{extra}", 1)


def test_oncall_keys_import_and_round_trip():
    import_plan(with_ro('oncall_schedule = "PSCHED2"\noncall_escalation_level = 2\n'))
    ops, ro = Level.objects.get(name="Ops"), Level.objects.get(name="RO")
    assert (ro.oncall_schedule, ro.oncall_escalation_level) == ("PSCHED2", 2)
    # The demo plan's Ops: the approvers' schedule, its first tier (the default).
    assert (ops.oncall_schedule, ops.oncall_escalation_level) == ("PSCHED1", 1)
    data = tomllib.loads(export_plan())
    ro_data = next(level for level in data["levels"] if level["name"] == "RO")
    assert (ro_data["oncall_schedule"], ro_data["oncall_escalation_level"]) == ("PSCHED2", 2)
    ops_data = next(level for level in data["levels"] if level["name"] == "Ops")
    assert ops_data["oncall_schedule"] == "PSCHED1"
    assert "oncall_escalation_level" not in ops_data  # the default is not written out
    assert not import_plan(export_plan()).changed


def test_a_level_without_the_keys_has_no_oncall_rule():
    import_plan(DEMO_TEXT.replace('oncall_schedule = "PSCHED1"\n', ""))
    assert set(Level.objects.values_list("oncall_schedule", flat=True)) == {""}
    assert "oncall" not in export_plan()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('oncall_schedule = "psched 1"\n', "oncall_schedule: must be a PagerDuty schedule id"),
        ("oncall_schedule = 7\n", "oncall_schedule: must be a PagerDuty schedule id"),
        ("oncall_escalation_level = 0\n", "oncall_escalation_level: must be an escalation level"),
        ('oncall_escalation_level = "1"\n', "oncall_escalation_level: must be an escalation"),
    ],
)
def test_bad_oncall_keys_are_refused_with_their_key_path(extra, message):
    with pytest.raises(PlanError) as caught:
        import_plan(with_ro(extra))
    assert message in str(caught.value)
    assert "levels[" in str(caught.value)
