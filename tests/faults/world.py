"""The shared moves of the fault scenarios: a failover open, engineers who exist in Okta,
grants filed and approved, and the invariant checked after every scenario."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from federation.failover import services as failover_services
from federation.idp import get_identity_provider
from federation.models import EmergencyRole, Failover
from portal.audit import verify_chain
from requests_app import services
from requests_app.models import ENDED_GRANT_STATUSES, AccessRequest, Status
from tests.conftest import build_plan, make_user
from tests.harness import wait_for

JUSTIFICATION = "Identity Center is down and payments are failing for customers."


def prepare(org: Any, approver: Any, engineers: int) -> tuple[Any, list[Any], list[EmergencyRole]]:
    """The demo plan with its groups in Okta, an open failover (activated by the worker),
    and ``engineers`` people known to Okta. Returns (plan, engineers, the RO roles)."""
    plan = build_plan()
    idp = get_identity_provider()
    for role in plan.roles.values():
        group = idp.ensure_group(role.okta_group_name, "Emergency access (portal managed)")
        idp.assign_group_to_app(settings.OKTA_AWS_APP_ID, group.id)
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        timeout=60,
        what="the worker to activate the federation app",
    )
    people = []
    for n in range(engineers):
        login = f"eng{n}@example.com"
        org.create_user(login, "Eng", f"Number{n}")
        people.append(make_user(f"eng{n}", login))
    roles = [r for (_, level), r in plan.roles.items() if level == "RO"]
    return plan, people, roles


def file_and_approve(person: Any, role: EmergencyRole, approver: Any) -> AccessRequest:
    req = services.file_request(
        requester=person, role=role, justification=JUSTIFICATION, ticket="INC-11",
        duration_minutes=60,
    )  # fmt: skip
    return services.approve(req, actor=approver)


@dataclass
class WorkerUptime:
    """When a (repeatedly killed) worker was up: to measure convergence from a live worker."""

    up_since: list[float] = field(default_factory=list)  # wall-clock times it came up
    down_at: list[float] = field(default_factory=list)

    def live_seconds(self, start: float, end: float) -> float:
        """How long a worker was up (ready) between ``start`` and ``end``."""
        total = 0.0
        for up, down in zip(self.up_since, [*self.down_at, float("inf")], strict=False):
            total += max(0.0, min(down, end) - max(up, start))
        return total


def sigkill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool children (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_invariant(org: Any, roles: list[EmergencyRole] | None = None) -> None:
    """Okta's members of each emergency group == holders of ACTIVE grants; nothing stuck:
    no grant APPROVED (being granted) and no ended grant whose removal is unconfirmed."""
    for role in roles or EmergencyRole.objects.all():
        holders = {
            login.lower()
            for login in AccessRequest.objects.filter(role=role, status=Status.ACTIVE).values_list(
                "okta_login", flat=True
            )
        }
        members = {login.lower() for login in org.member_logins(role.okta_group_name)}
        assert members == holders, (role.okta_group_name, members ^ holders)
    assert not AccessRequest.objects.filter(status=Status.APPROVED).exists()
    assert not AccessRequest.objects.filter(
        status__in=ENDED_GRANT_STATUSES, membership_removed_at__isnull=True
    ).exists()
    assert verify_chain() is None


def wait_converged(predicate: Any, timeout: float, what: str) -> float:
    """Wait until predicate() holds; the moment it did (time.time())."""
    wait_for(predicate, timeout=timeout, interval=0.2, what=what)
    return time.time()


def activation_times(ids: list[int]) -> dict[int, float]:
    return {
        pk: at.timestamp()
        for pk, at in AccessRequest.objects.filter(pk__in=ids, activated_at__isnull=False)
        .values_list("pk", "activated_at")
        .iterator()
    }


def now() -> float:
    return timezone.now().timestamp()
