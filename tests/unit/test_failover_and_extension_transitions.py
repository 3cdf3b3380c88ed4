"""The failover's and the extension's transitions tables (issue 8): each row walked from
every state, and no status written anywhere but through the table's one function."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation.failover import services as failover_services
from federation.models import FAILOVER_TRANSITIONS, Failover, FailoverStatus
from portal.audit import events_for
from portal.core.errors import InvalidTransition
from requests_app import extensions
from requests_app.models import (
    EXTENSION_TRANSITIONS,
    AccessRequest,
    Extension,
    ExtensionStatus,
    Status,
)

ROOT = Path(settings.BASE_DIR)


@pytest.mark.parametrize("transition", sorted(FAILOVER_TRANSITIONS))
@pytest.mark.parametrize("start", [s.value for s in FailoverStatus])
def test_failover_transition_table(transition, start, approver, db):
    sources, target, action = FAILOVER_TRANSITIONS[transition]
    failover = Failover.objects.create(opened_by=approver, reason="test", status=start)
    before = events_for(failover).count()
    with transaction.atomic():
        if start in sources:
            failover_services._move(failover, transition, actor=approver, payload={"x": 1})
            failover.refresh_from_db()
            assert failover.status == target
            last = events_for(failover).order_by("-seq").first()
            assert (last.action, last.payload) == (action, {"x": 1})
        else:
            with pytest.raises(InvalidTransition):
                failover_services._move(failover, transition, actor=approver)
            failover.refresh_from_db()
            assert failover.status == start
            assert events_for(failover).count() == before


@pytest.fixture
def active_grant(engineer, plan, open_failover):
    return AccessRequest.objects.create(
        requester=engineer,
        role=plan.roles[("prod-payments", "RO")],
        failover=open_failover,
        status=Status.ACTIVE,
        justification="Identity Center is down and payments are failing.",
        ticket="INC-1",
        duration_minutes=30,
        okta_login=engineer.email,
        activated_at=timezone.now(),
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )


@pytest.mark.parametrize("transition", sorted(EXTENSION_TRANSITIONS))
@pytest.mark.parametrize("start", [s.value for s in ExtensionStatus])
def test_extension_transition_table(transition, start, active_grant, engineer):
    sources, target, action = EXTENSION_TRANSITIONS[transition]
    ext = Extension.objects.create(
        request=active_grant, requested_by=engineer, minutes=10, justification="more time please",
        status=start,
    )  # fmt: skip
    before = events_for(active_grant).count()
    with transaction.atomic():
        if start in sources:
            extensions._move(ext, active_grant, transition, actor=engineer, payload={"x": 1})
            ext.refresh_from_db()
            assert ext.status == target
            last = events_for(active_grant).order_by("-seq").first()
            assert (last.action, last.payload) == (action, {"extension": ext.pk, "x": 1})
        else:
            with pytest.raises(InvalidTransition):
                extensions._move(ext, active_grant, transition, actor=engineer)
            ext.refresh_from_db()
            assert ext.status == start
            assert events_for(active_grant).count() == before


@pytest.mark.parametrize(
    ("module", "table_function"),
    [
        ("requests_app/services.py", "apply_transition"),
        ("requests_app/extensions.py", "_move"),
        ("federation/failover/services.py", "_move"),
    ],
)
def test_only_the_table_function_writes_a_status(module, table_function):
    tree = ast.parse((ROOT / module).read_text())
    writers = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        for node in ast.walk(func):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    writers.append(func.name)
    assert writers == [table_function]
